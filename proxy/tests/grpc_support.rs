//! gRPC test harness: a tonic echo service served over h2c or TLS, a tonic
//! client through the proxy, hand-written prost messages (no protoc), a
//! raw HTTP/2 client for what tonic hides (trailers, `grpc-timeout`), and
//! configuration directories that declare port protocols.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tonic::codegen::BoxFuture;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use crate::util::{ConfigDir, WAIT};

/// The message every method takes and returns.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    /// Text; echoed back prefixed with the server's name.
    #[prost(string, tag = "1")]
    pub text: String,
    /// A number (stream length asked for, or a running count).
    #[prost(uint32, tag = "2")]
    pub n: u32,
}

/// Full method paths of the echo service.
pub const UNARY: &str = "/test.Echo/Unary";
/// Server streaming: `n` replies.
pub const SERVER_STREAM: &str = "/test.Echo/ServerStream";
/// Client streaming: one reply joining every message.
pub const CLIENT_STREAM: &str = "/test.Echo/ClientStream";
/// Bidirectional: one reply per message, as it arrives.
pub const BIDI: &str = "/test.Echo/Bidi";

/// What the echo server has seen.
#[derive(Debug, Default)]
pub struct Seen {
    /// Calls started.
    pub calls: AtomicUsize,
    /// Calls whose handler was dropped before it finished (cancelled).
    pub cancelled: AtomicUsize,
}

/// A running echo server.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

#[derive(Clone)]
struct Echo {
    name: &'static str,
    seen: Arc<Seen>,
}

/// Counts a handler dropped before it completed.
struct Cancelled(Arc<Seen>, bool);

impl Drop for Cancelled {
    fn drop(&mut self) {
        if !self.1 {
            self.0.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

type MsgStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send>>;

/// Reads the test's instructions from request metadata: `x-fail` (a gRPC
/// code to answer with), `x-fail-first` (fail that many calls with
/// UNAVAILABLE, counted per server), `x-sleep-ms`.
fn instructions(seen: &Seen, md: &MetadataMap) -> (Option<Code>, Duration) {
    let n = seen.calls.fetch_add(1, Ordering::SeqCst);
    let get = |k: &str| {
        md.get(k)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut fail = get("x-fail").map(|c| Code::from_i32(i32::try_from(c).unwrap_or(2)));
    if get("x-fail-first").is_some_and(|k| (n as u64) < k) {
        fail = Some(Code::Unavailable);
    }
    (fail, Duration::from_millis(get("x-sleep-ms").unwrap_or(0)))
}

/// The status a stream ends with when asked to fail: the code, a message,
/// binary details and a `-bin` metadata entry, all in trailers.
fn failure(code: Code) -> Status {
    let mut md = MetadataMap::new();
    md.insert_bin("x-detail-bin", MetadataValue::from_bytes(&[0, 1, 2, 255]));
    Status::with_details_and_metadata(code, "asked to fail", Bytes::from_static(&[9, 8, 7]), md)
}

struct Unary(Echo);

impl tonic::server::UnaryService<Msg> for Unary {
    type Response = Msg;
    type Future = BoxFuture<tonic::Response<Msg>, Status>;

    fn call(&mut self, req: tonic::Request<Msg>) -> Self::Future {
        let echo = self.0.clone();
        Box::pin(async move {
            let mut guard = Cancelled(echo.seen.clone(), false);
            let (fail, sleep) = instructions(&echo.seen, req.metadata());
            tokio::time::sleep(sleep).await;
            guard.1 = true;
            if let Some(code) = fail {
                return Err(Status::new(code, "asked to fail"));
            }
            let mut resp = tonic::Response::new(Msg {
                text: format!("{}:{}", echo.name, req.get_ref().text),
                n: req.get_ref().n,
            });
            resp.metadata_mut()
                .insert("x-version", echo.name.parse().unwrap());
            Ok(resp)
        })
    }
}

struct ServerStream(Echo);

impl tonic::server::ServerStreamingService<Msg> for ServerStream {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<tonic::Response<MsgStream>, Status>;

    fn call(&mut self, req: tonic::Request<Msg>) -> Self::Future {
        let echo = self.0.clone();
        Box::pin(async move {
            let (fail, sleep) = instructions(&echo.seen, req.metadata());
            let msg = req.into_inner();
            let name = echo.name;
            let seen = echo.seen.clone();
            let stream = async_stream(move |tx| async move {
                let mut guard = Cancelled(seen, false);
                for i in 0..msg.n {
                    tokio::time::sleep(sleep).await;
                    let m = Msg {
                        text: format!("{name}:{}", msg.text),
                        n: i,
                    };
                    if tx.send(Ok(m)).await.is_err() {
                        return;
                    }
                }
                guard.1 = true;
                if let Some(code) = fail {
                    let _ = tx.send(Err(failure(code))).await;
                }
            });
            Ok(tonic::Response::new(stream))
        })
    }
}

struct ClientStream(Echo);

impl tonic::server::ClientStreamingService<Msg> for ClientStream {
    type Response = Msg;
    type Future = BoxFuture<tonic::Response<Msg>, Status>;

    fn call(&mut self, req: tonic::Request<tonic::Streaming<Msg>>) -> Self::Future {
        let echo = self.0.clone();
        Box::pin(async move {
            let (fail, _) = instructions(&echo.seen, req.metadata());
            let mut stream = req.into_inner();
            let mut texts = Vec::new();
            while let Some(m) = stream.message().await? {
                texts.push(m.text);
            }
            if let Some(code) = fail {
                return Err(failure(code));
            }
            Ok(tonic::Response::new(Msg {
                text: format!("{}:{}", echo.name, texts.join(",")),
                n: u32::try_from(texts.len()).unwrap_or(u32::MAX),
            }))
        })
    }
}

struct Bidi(Echo);

impl tonic::server::StreamingService<Msg> for Bidi {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<tonic::Response<MsgStream>, Status>;

    fn call(&mut self, req: tonic::Request<tonic::Streaming<Msg>>) -> Self::Future {
        let echo = self.0.clone();
        Box::pin(async move {
            instructions(&echo.seen, req.metadata());
            let mut input = req.into_inner();
            let name = echo.name;
            let stream = async_stream(move |tx| async move {
                let mut n = 0;
                while let Ok(Some(m)) = input.message().await {
                    n += 1;
                    let reply = Msg {
                        text: format!("{name}:{}", m.text),
                        n,
                    };
                    if tx.send(Ok(reply)).await.is_err() {
                        return;
                    }
                }
            });
            Ok(tonic::Response::new(stream))
        })
    }
}

/// A stream fed by a task (no `async-stream` crate needed).
fn async_stream<F, Fut>(f: F) -> MsgStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Msg, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

impl Echo {
    async fn route(self, req: Request<Incoming>) -> Response<tonic::body::Body> {
        let codec = || ProstCodec::<Msg, Msg>::default();
        match req.uri().path() {
            UNARY => {
                tonic::server::Grpc::new(codec())
                    .unary(Unary(self), req)
                    .await
            }
            SERVER_STREAM => {
                tonic::server::Grpc::new(codec())
                    .server_streaming(ServerStream(self), req)
                    .await
            }
            CLIENT_STREAM => {
                tonic::server::Grpc::new(codec())
                    .client_streaming(ClientStream(self), req)
                    .await
            }
            BIDI => {
                tonic::server::Grpc::new(codec())
                    .streaming(Bidi(self), req)
                    .await
            }
            _ => Status::unimplemented("no such method").into_http(),
        }
    }
}

/// Starts an echo server named `name` speaking h2c only (as a gRPC server
/// does), or over TLS with ALPN `h2` when `tls` is given.
pub async fn echo_server(name: &'static str, tls: Option<Arc<rustls::ServerConfig>>) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let echo = Echo {
        name,
        seen: seen.clone(),
    };
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let echo = echo.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let echo = echo.clone();
                    async move { Ok::<_, Infallible>(echo.route(req).await) }
                });
                let h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                match acceptor {
                    None => {
                        let _ = h2.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                    Some(a) => {
                        if let Ok(tls) = a.accept(tcp).await {
                            let _ = h2.serve_connection(TokioIo::new(tls), svc).await;
                        }
                    }
                }
            });
        }
    });
    EchoServer { addr, seen }
}

/// A tonic client for the proxy at `proxy`, sending `:authority host`.
pub async fn grpc_client(
    proxy: SocketAddr,
    host: &str,
) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{proxy}"))
        .unwrap()
        .origin(format!("http://{host}").parse().unwrap())
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

/// One unary call with metadata `md` (`x-fail`, `x-sleep-ms`, ...).
pub async fn unary(
    client: &mut tonic::client::Grpc<tonic::transport::Channel>,
    text: &str,
    md: &[(&'static str, &str)],
) -> Result<tonic::Response<Msg>, Status> {
    let mut req = tonic::Request::new(Msg {
        text: text.into(),
        n: 0,
    });
    for (k, v) in md {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    client.ready().await.unwrap();
    tokio::time::timeout(
        WAIT,
        client.unary(
            req,
            http::uri::PathAndQuery::from_static(UNARY),
            ProstCodec::default(),
        ),
    )
    .await
    .expect("unary call timed out")
}

/// Starts a server-streaming call with one metadata entry.
pub async fn server_stream(
    client: &mut tonic::client::Grpc<tonic::transport::Channel>,
    msg: Msg,
    (key, value): (&'static str, &str),
) -> tonic::Streaming<Msg> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(key, value.parse().unwrap());
    client.ready().await.unwrap();
    client
        .server_streaming(
            req,
            http::uri::PathAndQuery::from_static(SERVER_STREAM),
            ProstCodec::<Msg, Msg>::default(),
        )
        .await
        .unwrap()
        .into_inner()
}

/// What `promtool check metrics` says about `text`, beyond the one lint
/// Istio's own metric name draws (`..._milliseconds` should use seconds);
/// `None` when promtool is not installed (see `require_tool`).
pub fn promtool_problems(text: &str) -> Option<Vec<String>> {
    use std::io::Write as _;
    if !crate::util::require_tool("promtool") {
        return None;
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Some(
        said.lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| !l.contains("use base unit \"seconds\""))
            .map(str::to_owned)
            .collect(),
    )
}

/// A configuration directory for service `svc` (subsets v1, v2) whose port
/// is declared by `port` (`{name: grpc}`), and DestinationRule
/// `trafficPolicy` YAML (`{}` for none).
pub fn grpc_config(
    http: &str,
    port: &str,
    traffic_policy: &str,
    v1: &[SocketAddr],
    v2: &[SocketAddr],
) -> ConfigDir {
    let cfg = ConfigDir::new(http, v1, v2);
    write_port(&cfg, port, v1, v2);
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  trafficPolicy: {traffic_policy}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc}}\nspec:\n  hosts: [svc]\n  http:\n{http}"
    );
    cfg.write("svc.yaml", &text);
    cfg
}

/// Rewrites `endpoints.yaml` with `port: PORT` on service `svc`.
pub fn write_port(cfg: &ConfigDir, port: &str, v1: &[SocketAddr], v2: &[SocketAddr]) {
    let mut text = format!("services:\n  svc:\n    port: {port}\n    endpoints:\n");
    for (version, addrs) in [("v1", v1), ("v2", v2)] {
        for a in addrs {
            text.push_str(&format!(
                "    - {{address: \"{a}\", labels: {{version: {version}}}}}\n"
            ));
        }
    }
    cfg.write("endpoints.yaml", &text);
}

/// A raw HTTP/2 (prior knowledge) connection to `addr`, for requests whose
/// every frame a test controls.
pub async fn h2_connect(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<H2Body> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// A request body of frames sent as the test pushes them.
pub type H2Body =
    StreamBody<tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, Infallible>>>;

/// A request body fed through the returned sender.
pub fn h2_body() -> (
    tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    H2Body,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    (
        tx,
        StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
}

/// A gRPC message frame (uncompressed) of `msg`.
pub fn grpc_frame(msg: &Msg) -> Bytes {
    let body = prost::Message::encode_to_vec(msg);
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// A whole response: head, body bytes and trailers.
pub struct H2Reply {
    pub head: http::response::Parts,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

/// Reads a response to its end (bounded by [`WAIT`]).
pub async fn h2_read(resp: Response<Incoming>) -> H2Reply {
    let (head, body) = resp.into_parts();
    let collected = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("body timed out")
        .expect("body failed");
    let trailers = collected.trailers().cloned();
    H2Reply {
        head,
        body: collected.to_bytes(),
        trailers,
    }
}

/// The `grpc-status` of a reply: from its trailers, or from its head for
/// a trailers-only reply.
pub fn grpc_status(r: &H2Reply) -> Option<String> {
    r.trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| r.head.headers.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_owned())
}

/// A plain gRPC request head for `path` on host `svc`.
pub fn grpc_request(path: &str) -> http::request::Builder {
    Request::post(format!("http://svc{path}"))
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
}

/// A request body of one message, complete.
pub fn full(msg: &Msg) -> H2Body {
    let (tx, body) = h2_body();
    tx.try_send(Ok(Frame::data(grpc_frame(msg)))).unwrap();
    body
}

/// A test CA (written to `dir/ca.pem`), a server certificate for `svc` /
/// 127.0.0.1 and a client certificate (`dir/client.crt`, `dir/client.key`).
/// Returns the server's TLS config offering `alpn`, requiring a client
/// certificate from the CA when `mutual`.
pub fn server_tls(dir: &Path, alpn: &[&[u8]], mutual: bool) -> Arc<rustls::ServerConfig> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params.subject_alt_names.push(SanType::URI(
            format!("spiffe://cluster.local/ns/default/sa/{name}")
                .try_into()
                .unwrap(),
        ));
        (params.signed_by(&key, &issuer).unwrap(), key)
    };
    let (client, client_key) = leaf("client");
    std::fs::write(dir.join("client.crt"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    let (cert, key) = leaf("svc");
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(meshproxy::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if mutual {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                meshproxy::tls::provider(),
            )
            .build()
            .unwrap(),
        )
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

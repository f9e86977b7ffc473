//! Fake upstreams on 127.0.0.1 built fluently (`upstream().respond(503).run()`)
//! and a small HTTP/1.1 client with bounded waits.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// What an upstream does with each request.
#[derive(Clone, Debug)]
enum Behaviour {
    /// Answer with a status and body (its name).
    Respond,
    /// Close the connection after reading the request, without answering.
    Reset,
}

/// Builder of a fake upstream.
#[must_use]
#[derive(Clone, Debug)]
pub struct UpstreamBuilder {
    status: StatusCode,
    body: String,
    delay: Duration,
    fail_first: usize,
    fail_status: StatusCode,
    fail_every: Option<usize>,
    hang_first: usize,
    echo: bool,
    behaviour: Behaviour,
}

/// A fake upstream on 127.0.0.1.
pub fn upstream() -> UpstreamBuilder {
    UpstreamBuilder {
        status: StatusCode::OK,
        body: "ok".into(),
        delay: Duration::ZERO,
        fail_first: 0,
        fail_status: StatusCode::SERVICE_UNAVAILABLE,
        fail_every: None,
        hang_first: 0,
        echo: false,
        behaviour: Behaviour::Respond,
    }
}

/// A running fake upstream.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl UpstreamBuilder {
    pub fn respond(mut self, status: u16) -> Self {
        self.status = StatusCode::from_u16(status).unwrap();
        self
    }
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    /// The first `n` requests get `status`.
    pub fn fail_first(mut self, n: usize, status: u16) -> Self {
        self.fail_first = n;
        self.fail_status = StatusCode::from_u16(status).unwrap();
        self
    }
    /// Every `n`-th request (the `n`-th, `2n`-th, ...) gets `status`: a
    /// canary failing `100 / n` percent of its requests.
    ///
    /// # Panics
    /// When `n` is 0 or `status` is not a status code.
    pub fn fail_every(mut self, n: usize, status: u16) -> Self {
        assert!(n > 0, "fail_every(0, ..) fails nothing: use n >= 1");
        self.fail_every = Some(n);
        self.fail_status = StatusCode::from_u16(status).unwrap();
        self
    }
    /// The first `n` requests never get an answer.
    pub fn hang_first(mut self, n: usize) -> Self {
        self.hang_first = n;
        self
    }
    /// Answer with the request's method, path and headers as the body.
    pub fn echo(mut self) -> Self {
        self.echo = true;
        self
    }
    /// Read each request and close the connection without answering.
    pub fn reset(mut self) -> Self {
        self.behaviour = Behaviour::Reset;
        self
    }

    pub async fn run(self) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let me = Arc::new(self);
        let h = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                let hits = h.clone();
                tokio::spawn(async move {
                    if let Behaviour::Reset = me.behaviour {
                        use tokio::io::AsyncReadExt;
                        let mut tcp = tcp;
                        let mut buf = [0u8; 4096];
                        let _ = tcp.read(&mut buf).await;
                        hits.fetch_add(1, Ordering::SeqCst);
                        drop(tcp);
                        return;
                    }
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let me = me.clone();
                        let n = hits.fetch_add(1, Ordering::SeqCst);
                        async move { Ok::<_, Infallible>(me.answer(n, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Upstream { addr, hits }
    }

    async fn answer(&self, n: usize, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if n < self.hang_first {
            std::future::pending::<()>().await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let failing =
            n < self.fail_first || self.fail_every.is_some_and(|k| (n + 1).is_multiple_of(k));
        let (status, body) = if failing {
            (self.fail_status, "failing".to_owned())
        } else if self.echo {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut s = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version);
            for (k, v) in &parts.headers {
                s.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
            }
            s.push_str(&format!("body-len: {}\n", body.len()));
            (self.status, s)
        } else {
            (self.status, self.body.clone())
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert("connection", http::HeaderValue::from_static("keep-alive"));
        resp
    }
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// An HTTP/1.1 client with pooled keep-alive connections.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A finished response: status, flags header-free body text.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// Sends `GET path` with `Host: host` through the proxy.
pub async fn get(
    client: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    host: &str,
    path: &str,
) -> Reply {
    send(
        client,
        proxy,
        Request::get(path).header("host", host),
        Bytes::new(),
    )
    .await
}

pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    builder: http::request::Builder,
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = builder.body(Full::new(body.into())).unwrap();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or("/".into());
    *req.uri_mut() = format!("http://{proxy}{pq}").parse().unwrap();
    let resp = tokio::time::timeout(WAIT, client.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("body timed out")
        .expect("body failed")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// GETs an admin path.
pub async fn admin_get(admin: SocketAddr, path: &str) -> Reply {
    send(&client(), admin, Request::get(path), Bytes::new()).await
}

/// The value of one series in `/metrics` text, matched by a set of label pairs.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// Polls `f` until it returns true, up to [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Is an external tool on PATH? When it is not, the test skips with a
/// reason, unless MESHCTL_REQUIRE_TOOLS=1 makes that a failure.
pub fn require_tool(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("MESHCTL_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!(
                "{tool} is required (MESHCTL_REQUIRE_TOOLS=1) but not on PATH: install its Debian package (.ci/run does)"
            );
        }
        eprintln!(
            "skipping: {tool} not on PATH (install the Debian package, or set MESHCTL_REQUIRE_TOOLS=1 to fail)"
        );
    }
    found
}

//! The gRPC workload of `meshctl demo --protocol grpc`: a unary `Greeter`
//! service (one server per version) and a load generator that calls it
//! through meshproxy, both on tonic's generic client and server APIs with
//! hand-written prost messages, so nothing needs `protoc`.
//!
//! ```text
//! package meshctl.demo;
//! service Greeter { rpc SayHello (HelloRequest) returns (HelloReply); }
//! message HelloRequest { string name = 1; }
//! message HelloReply { string message = 1; }
//! ```
//!
//! A server built with `fail_every = Some(n)` answers every n-th call with
//! `INTERNAL` (a bad canary): an HTTP 200 whose trailers carry
//! `grpc-status: 13`, which only the gRPC-aware analysis counts as failed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::uri::PathAndQuery;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

pub use super::Load;
use super::LoadStats;

/// The one method: `/meshctl.demo.Greeter/SayHello`.
pub const METHOD: &str = "/meshctl.demo.Greeter/SayHello";

/// `HelloRequest { string name = 1; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloRequest {
    /// Who is greeted.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `HelloReply { string message = 1; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloReply {
    /// `hello NAME from VERSION`.
    #[prost(string, tag = "1")]
    pub message: String,
}

/// The `Greeter` implementation of one version.
#[derive(Clone, Debug)]
struct Greeter {
    version: &'static str,
    fail_every: Option<u64>,
    calls: Arc<AtomicU64>,
}

impl tonic::server::UnaryService<HelloRequest> for Greeter {
    type Response = HelloReply;
    type Future = std::future::Ready<Result<tonic::Response<HelloReply>, Status>>;

    fn call(&mut self, request: tonic::Request<HelloRequest>) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let version = self.version;
        if self.fail_every.is_some_and(|k| n.is_multiple_of(k)) {
            return std::future::ready(Err(Status::internal(format!(
                "{version} failed (bad canary)"
            ))));
        }
        let name = request.into_inner().name;
        std::future::ready(Ok(tonic::Response::new(HelloReply {
            message: format!("hello {name} from {version}"),
        })))
    }
}

/// Serves `Greeter` over HTTP/2 in plain text (h2c) on 127.0.0.1, port
/// chosen by the system. With `fail_every = Some(n)` every n-th call ends
/// with `INTERNAL`. Other paths answer `UNIMPLEMENTED`.
pub async fn upstream(
    version: &'static str,
    fail_every: Option<u64>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let greeter = Greeter {
        version,
        fail_every,
        calls: Arc::default(),
    };
    super::listen(move |stream| {
        let greeter = greeter.clone();
        async move {
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let greeter = greeter.clone();
                async move {
                    if req.uri().path() != METHOD {
                        let status = Status::unimplemented(format!(
                            "{} is not a method of this server (it serves {METHOD})",
                            req.uri().path()
                        ));
                        return Ok::<_, Infallible>(status.into_http::<tonic::body::Body>());
                    }
                    let mut grpc =
                        tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
                    Ok(grpc.unary(greeter, req).await)
                }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        }
    })
    .await
}

/// A tonic client for `Greeter` that connects to `addr` and sends
/// `:authority` `authority` (the service's host, which meshproxy routes
/// by). The connection is made on the first call.
pub fn client(
    addr: SocketAddr,
    authority: &str,
    timeout: Duration,
) -> Result<GreeterClient, tonic::transport::Error> {
    let origin = format!("http://{authority}")
        .parse::<http::Uri>()
        .unwrap_or_else(|_| http::Uri::from_static("http://localhost"));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .origin(origin)
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy();
    Ok(GreeterClient {
        grpc: tonic::client::Grpc::new(channel),
        timeout,
    })
}

/// A `Greeter` client (see [`client`]).
#[derive(Clone, Debug)]
pub struct GreeterClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    timeout: Duration,
}

impl GreeterClient {
    /// One unary call, with a `grpc-timeout` of the client's timeout and
    /// the metadata `headers`.
    pub async fn say_hello(
        &mut self,
        name: &str,
        headers: &[(&'static str, &'static str)],
    ) -> Result<HelloReply, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("connecting: {e}")))?;
        let mut request = tonic::Request::new(HelloRequest {
            name: name.to_owned(),
        });
        request.set_timeout(self.timeout);
        for (k, v) in headers {
            request
                .metadata_mut()
                .insert(*k, tonic::metadata::MetadataValue::from_static(v));
        }
        self.grpc
            .unary(
                request,
                PathAndQuery::from_static(METHOD),
                ProstCodec::<HelloRequest, HelloReply>::default(),
            )
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Counts one call's result.
fn record(stats: &LoadStats, result: &Result<HelloReply, Status>) {
    match result {
        Ok(reply) => stats.record(&reply.message, None),
        Err(status) => stats.record(status.message(), Some(code_name(status.code()).to_owned())),
    }
}

/// The canonical name of a tonic status code.
fn code_name(code: Code) -> &'static str {
    let n = u32::try_from(i32::from(code)).unwrap_or(2);
    crate::metrics::grpc::GrpcCode::from_number(n).name()
}

/// Sends `load.rate` unary calls per second through the proxy, one at a
/// time, until `stop` changes or `load.max_run` has passed.
pub fn load(load: Load, stats: Arc<LoadStats>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut client) = client(load.proxy, &load.authority, Duration::from_secs(2)) else {
            return;
        };
        let mut pace = load.pace(stop);
        while let Some(mark) = pace.next().await {
            let headers: Vec<_> = mark.into_iter().collect();
            let result = client.say_hello("demo", &headers).await;
            record(&stats, &result);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn greeter_answers_and_the_bad_canary_fails_with_internal() {
        let (addr, task) = upstream("v2", Some(4)).await.unwrap();
        let mut c = client(addr, "discounts", Duration::from_secs(5)).unwrap();
        let stats = LoadStats::default();
        for _ in 0..8 {
            record(&stats, &c.say_hello("you", &[("x-canary", "true")]).await);
        }
        assert_eq!(stats.ok.load(Ordering::Relaxed), 6);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 2);
        assert_eq!(stats.v2.load(Ordering::Relaxed), 8);
        assert_eq!(stats.failures(), "INTERNAL ×2");
        let reply = c.say_hello("you", &[]).await.unwrap();
        assert_eq!(reply.message, "hello you from v2");
        task.abort();
    }

    #[tokio::test]
    async fn other_methods_are_unimplemented() {
        let (addr, task) = upstream("v1", None).await.unwrap();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let e = grpc
            .unary(
                tonic::Request::new(HelloRequest::default()),
                PathAndQuery::from_static("/meshctl.demo.Greeter/Nope"),
                ProstCodec::<HelloRequest, HelloReply>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented);
        assert!(e.message().contains("/meshctl.demo.Greeter/Nope"), "{e}");
        task.abort();
    }
}

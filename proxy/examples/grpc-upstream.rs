//! A fixed gRPC and HTTP/2 upstream for `proxy/bench/h2.sh`: one process
//! serving v1 and v2 on two ports, as the discounts service's two versions.
//!
//! Every port speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c), as a
//! gRPC server in a mesh does behind a sidecar:
//!
//! - `POST /bench.Discounts/Quote` (`content-type: application/grpc`) is a
//!   unary gRPC method, served by tonic's server-side `Grpc` with the prost
//!   codec: it answers `QuoteReply { version, percent }` with `grpc-status: 0`
//!   in the trailers, so a client can tell which version served a call;
//! - any other request gets `200` and a 13-byte body (`hello, mesh!\n`), the
//!   same answer `bench-upstream` gives over HTTP/1.1.
//!
//! The messages are hand-written prost messages (no `protoc` needed), shared
//! with `grpc-client` through `support/grpc_bench.rs`.
//!
//! ```text
//! cargo run --release -p meshproxy --example grpc-upstream -- 2 127.0.0.1:18181 127.0.0.1:18182
//! ```
//! The first address answers as `v1`, the second as `v2`, any further as `v3`...

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tonic::server::{Grpc, UnaryService};
use tonic_prost::ProstCodec;

#[path = "support/grpc_bench.rs"]
mod grpc_bench;
use grpc_bench::{QUOTE_PATH, QuoteReply, QuoteRequest};

/// The unary method: answers with the version this port stands for.
#[derive(Clone)]
struct Quote {
    version: Arc<str>,
}

impl UnaryService<QuoteRequest> for Quote {
    type Response = QuoteReply;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<QuoteReply>, tonic::Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<QuoteRequest>) -> Self::Future {
        let version = self.version.to_string();
        let percent = u32::try_from(request.get_ref().sku.len() % 50).unwrap_or(0);
        Box::pin(async move { Ok(tonic::Response::new(QuoteReply { version, percent })) })
    }
}

type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

async fn serve(
    version: Arc<str>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Body>, Infallible> {
    if request.uri().path() == QUOTE_PATH {
        let mut grpc = Grpc::new(ProstCodec::<QuoteReply, QuoteRequest>::default());
        let response = grpc.unary(Quote { version }, request).await;
        return Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()));
    }
    // A plain HTTP request: drain its body, answer the fixed 13 bytes.
    let _ = request.into_body().collect().await;
    Ok(http::Response::new(
        Full::new(Bytes::from_static(b"hello, mesh!\n"))
            .map_err(|never| match never {})
            .boxed_unsync(),
    ))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: grpc-upstream THREADS ADDR_V1 [ADDR_V2...]";
    let threads: usize = args.next().and_then(|t| t.parse().ok()).expect(usage);
    let addrs: Vec<String> = args.collect();
    assert!(!addrs.is_empty(), "{usage}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for (i, addr) in addrs.into_iter().enumerate() {
            let version: Arc<str> = format!("v{}", i + 1).into();
            let listener = TcpListener::bind(&addr).await.expect("bind");
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let version = version.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| serve(version.clone(), req));
                        let mut builder = auto::Builder::new(TokioExecutor::new());
                        builder.http2().max_concurrent_streams(1024);
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    });
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

//! A fixed, fast upstream for the proxy benchmark (`proxy/bench/run.sh`):
//! answers every request on each given port with `200` and a 13-byte body,
//! HTTP/1.1 keep-alive. Usage: `bench-upstream THREADS ADDR...`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args
        .next()
        .and_then(|t| t.parse().ok())
        .expect("usage: bench-upstream THREADS ADDR...");
    let addrs: Vec<String> = args.collect();
    assert!(!addrs.is_empty(), "usage: bench-upstream THREADS ADDR...");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for addr in addrs {
            let listener = TcpListener::bind(&addr).await.expect("bind");
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(async move {
                        let svc = service_fn(|_req| async {
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                                b"hello, mesh!\n",
                            ))))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), svc)
                            .await;
                    });
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

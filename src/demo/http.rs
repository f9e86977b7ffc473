//! The HTTP workload of `meshctl demo`: an HTTP/1.1 server per version
//! answering `hello from VERSION` (optionally behind mutual TLS), and a
//! load generator that sends GET requests through meshproxy.
//!
//! A server built with `fail_every = Some(n)` answers every n-th request
//! with a 500 (a bad canary).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Load, LoadStats};

/// Serves HTTP/1.1 on 127.0.0.1, port chosen by the system, answering
/// `hello from VERSION`; with `fail_every = Some(n)` every n-th request
/// gets a 500. With `tls`, only clients with a certificate that `tls`
/// accepts are served (`meshctl demo --mtls`).
pub async fn upstream(
    version: &'static str,
    fail_every: Option<u64>,
    tls: Option<Arc<meshproxy::tls::ServerTls>>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let count = Arc::new(AtomicU64::new(0));
    super::listen(move |stream| {
        let count = count.clone();
        let tls = tls.clone();
        async move {
            let svc = service_fn(move |_req: Request<Incoming>| {
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                let fail = fail_every.is_some_and(|k| n.is_multiple_of(k));
                async move {
                    let (status, body) = if fail {
                        (500, format!("{version} failed (bad canary)\n"))
                    } else {
                        (200, format!("hello from {version}\n"))
                    };
                    Response::builder()
                        .status(status)
                        .header("content-type", "text/plain")
                        .body(Full::new(Bytes::from(body)))
                }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(tls) => {
                    if let Ok((stream, _)) = tls.accept(stream, Duration::from_secs(10)).await {
                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            }
        }
    })
    .await
}

/// Sends `load.rate` GET requests per second to `http://PROXY/` with
/// `Host: AUTHORITY`, one at a time, until `stop` changes or
/// `load.max_run` has passed.
pub fn load(load: Load, stats: Arc<LoadStats>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(client) = crate::metrics::http_client(Duration::from_secs(2)) else {
            return;
        };
        let url = format!("http://{}/", load.proxy);
        let mut pace = load.pace(stop);
        while let Some(mark) = pace.next().await {
            let mut req = client.get(&url).header("host", &load.authority);
            if let Some((k, v)) = mark {
                req = req.header(k, v);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    let failure =
                        (!status.is_success()).then(|| format!("HTTP {}", status.as_u16()));
                    stats.record(&body, failure);
                }
                Err(_) => stats.record("", Some("no answer".to_owned())),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upstream_answers_and_the_bad_canary_fails_every_nth() {
        let (addr, task) = upstream("v2", Some(4), None).await.unwrap();
        let client = crate::metrics::http_client(Duration::from_secs(5)).unwrap();
        let mut statuses = Vec::new();
        for _ in 0..8 {
            let resp = client.get(format!("http://{addr}/")).send().await.unwrap();
            statuses.push(resp.status().as_u16());
            let body = resp.text().await.unwrap();
            assert!(body.contains("v2"), "{body}");
        }
        assert_eq!(statuses, [200, 200, 200, 500, 200, 200, 200, 500]);
        task.abort();
    }

    #[tokio::test]
    async fn load_marks_every_nth_request_and_counts_the_answers() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (addr, server) = {
            let seen = seen.clone();
            super::super::listen(move |stream| {
                let seen = seen.clone();
                async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let marked = req.headers().contains_key("x-canary");
                        let host = req.headers()["host"].to_str().unwrap_or("").to_owned();
                        seen.lock().unwrap().push((marked, host));
                        async move {
                            Response::builder()
                                .status(if marked { 500 } else { 200 })
                                .body(Full::new(Bytes::from(if marked { "v2" } else { "v1" })))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                }
            })
            .await
            .unwrap()
        };
        let stats = Arc::new(LoadStats::default());
        let (_stop_tx, stop_rx) = watch::channel(false);
        let load = Load {
            proxy: addr,
            authority: "discounts".to_owned(),
            rate: 8,
            max_run: Duration::from_secs(1),
            mark: Some(("x-canary", "true", 4)),
        };
        super::load(load, stats.clone(), stop_rx).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 8);
        assert!(seen.iter().all(|(_, host)| host == "discounts"), "{seen:?}");
        let marked: Vec<bool> = seen.iter().map(|(m, _)| *m).collect();
        assert_eq!(
            marked,
            [true, false, false, false, true, false, false, false]
        );
        assert_eq!(
            stats.summary(),
            "6 ok, 2 failed (HTTP 500 ×2); answered by v1 6, v2 2"
        );
        server.abort();
    }
}

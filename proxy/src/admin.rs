//! The admin listener (default `127.0.0.1:15000`): `/metrics` (Prometheus
//! text), `/ready` (200 once a configuration is live and until drain
//! starts), `/config` (the live configuration as JSON).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::ResponseBody;
use crate::metrics::{PROMETHEUS_TEXT, encode_prometheus_text};
use crate::source::Live;

/// State the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    /// The metrics registry.
    pub registry: Registry,
    /// The live configuration.
    pub live: Arc<Live>,
    /// Set when draining starts; `/ready` then answers 503.
    pub draining: AtomicBool,
}

// === impl Admin ===

impl Admin {
    /// Answers one admin request.
    pub fn handle<B>(&self, req: &Request<B>) -> Response<ResponseBody> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                Bytes::from_static(b"use GET\n"),
            );
        }
        match req.uri().path() {
            "/metrics" => reply(
                StatusCode::OK,
                PROMETHEUS_TEXT,
                Bytes::from(encode_prometheus_text(&self.registry)),
            ),
            "/ready" => {
                if self.draining.load(Ordering::Acquire) {
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        Bytes::from_static(b"draining\n"),
                    )
                } else if self.live.generation() == 0 {
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        Bytes::from_static(b"no configuration loaded\n"),
                    )
                } else {
                    reply(StatusCode::OK, "text/plain", Bytes::from_static(b"ready\n"))
                }
            }
            "/config" => {
                let table = self.live.table();
                match serde_json::to_vec_pretty(&**table.snapshot()) {
                    Ok(json) => reply(StatusCode::OK, "application/json", Bytes::from(json)),
                    Err(e) => reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        Bytes::from(format!("cannot encode the configuration: {e}\n")),
                    ),
                }
            }
            _ => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                Bytes::from_static(b"not found: try /metrics, /ready or /config\n"),
            ),
        }
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::bytes(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

/// Serves the admin endpoints until `shutdown` flips.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, mut shutdown: watch::Receiver<bool>) {
    let builder = Arc::new(auto_builder());
    loop {
        let tcp = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let admin = admin.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let resp = admin.handle(&req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
        });
    }
}

fn auto_builder() -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
}

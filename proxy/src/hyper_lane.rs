//! The hyper lane: HTTP/2 clients (prior knowledge or ALPN `h2`), and the
//! HTTP/1.1 connections the lean lane hands over (or all of them with
//! `--http1 hyper`), served by hyper.
//!
//! Each request is planned once ([`Forwarder::plan`]) and sent by the
//! sender its destination calls for: HTTP/2 ([`crate::send_h2`]) for
//! gRPC and destinations whose port or DestinationRule asks for it, else
//! HTTP/1.1 through hyper's pooled client ([`crate::send_hyper`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, Version, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::conn::Shared;
use crate::forward::{ConnInfo, Forwarder, Plan, protocol_of};
use crate::inflight::ConnState;
use crate::metrics::Protocol;
use crate::send_h2::{ClientBody, H2Exchange};

/// Serves a connection with hyper (HTTP/1.1 or HTTP/2), without counting
/// it in the connection gauge (the caller does).
pub async fn serve<I>(io: I, info: ConnInfo, shared: &Shared, mut drain: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = ConnState::new();
    let forwarder = shared.forwarder.clone();
    let svc_state = state.clone();
    let svc_info = Arc::new(info);
    let svc = service_fn(move |req| {
        let guard = svc_state.enter();
        let forwarder = forwarder.clone();
        let info = svc_info.clone();
        // Boxed: hyper spawns a task per HTTP/2 stream holding this future
        // and moves it into the task and over again when storing the
        // output; a pointer moves instead of the whole request path's state.
        Box::pin(async move {
            let resp = forwarder.handle(req, &info).await;
            Ok::<_, Infallible>(resp.map(|b| b.with_guard(guard)))
        })
    });
    let conn = shared.builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let idle = shared.limits.idle_timeout;
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(25)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Once asked to close, a connection gets this long to finish on its own.
    let mut closing_deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
                break;
            }
            _ = drain.changed(), if closing_deadline.is_none() => {
                conn.as_mut().graceful_shutdown();
                // The process-wide drain deadline bounds this.
                closing_deadline = Some(Instant::now() + Duration::from_secs(3600));
            }
            _ = tick.tick() => {
                match closing_deadline {
                    None if state.idle_for() >= idle => {
                        conn.as_mut().graceful_shutdown();
                        closing_deadline = Some(Instant::now() + idle.min(Duration::from_secs(5)));
                    }
                    Some(d) if Instant::now() >= d => break,
                    _ => {}
                }
            }
        }
    }
}

// === impl Forwarder ===

impl Forwarder {
    /// Handles one client request; never fails (errors become responses).
    pub async fn handle(&self, req: Request<Incoming>, conn: &ConnInfo) -> Response<ResponseBody> {
        let start = Instant::now();
        let table = self.live().table();
        let (mut parts, body) = req.into_parts();
        let protocol = protocol_of(&parts.headers);
        // `TE: trailers` is hop-by-hop, but gRPC needs it on the next hop.
        let te_trailers = parts
            .headers
            .get(header::TE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        match self.plan(&table, &mut parts, conn, protocol).await {
            Plan::Reply(reply) => self.reply(reply, &parts, protocol, conn, start),
            Plan::Forward(plan)
                if plan
                    .backend
                    .http2
                    .use_h2(parts.version == Version::HTTP_2, protocol == Protocol::Grpc) =>
            {
                let body = ClientBody::Stream(body);
                let x = H2Exchange {
                    plan,
                    parts,
                    protocol,
                    te_trailers,
                    start,
                };
                self.forward_h2(x, body, conn).await
            }
            Plan::Forward(plan) => {
                let result = self
                    .send_hyper(
                        plan.route,
                        plan.backend,
                        &mut parts,
                        body,
                        plan.shadow.clone(),
                    )
                    .await;
                self.respond(result, plan, &parts, protocol, conn, start)
            }
        }
    }
}

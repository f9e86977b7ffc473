//! Sending a planned request over HTTP/2: the lane of gRPC calls and of
//! destinations whose port or DestinationRule asks for HTTP/2, whatever
//! HTTP version the client spoke.
//!
//! The request streams both ways frame by frame with HTTP/2 flow control;
//! trailers pass in both directions. A retry or a mirror reads the client
//! body through a [`Replayable`] (kept up to `max_replay_body`), so a
//! streaming call is never held back to make it replayable. The route
//! timeout bounds the wait for the response head; `grpc-timeout` caps it,
//! and also bounds the whole call (the client then gets
//! `DEADLINE_EXCEEDED` and the upstream a reset). A gRPC call is counted
//! when it ends, with its `grpc-status` ([`crate::body::CallRecord`]).
//! A client that resets its stream drops the exchange, which resets the
//! upstream stream.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::{Body as _, Incoming};
use tokio::time::Instant;

use crate::body::{CallRecord, Replayable, ResponseBody, UpstreamBody};
use crate::forward::{
    ConnInfo, Failure, Forwarder, MirrorCount, Planned, Shadow, access_line, pause_before_retry,
    shadow_host, strip_hop_by_hop,
};
use crate::grpc;
use crate::metrics::Protocol;
use crate::tls::UpstreamTls;
use crate::upstream::http2::Http2Error;

/// The client's request body as a lane hands it over.
#[derive(Debug)]
pub enum ClientBody {
    /// Read whole already (the lean HTTP/1.1 lane).
    Bytes(Bytes),
    /// Still arriving (hyper's lanes).
    Stream(Incoming),
}

/// A planned request on its way to an HTTP/2 upstream.
#[derive(Debug)]
pub(crate) struct H2Exchange<'t> {
    pub(crate) plan: Planned<'t>,
    pub(crate) parts: http::request::Parts,
    pub(crate) protocol: Protocol,
    /// The client asked for `TE: trailers` (gRPC does).
    pub(crate) te_trailers: bool,
    pub(crate) start: Instant,
}

/// Where each try's body comes from.
enum Source {
    Bytes(Bytes),
    Replay(Replayable),
    Once(Option<Incoming>),
}

impl From<Http2Error> for Failure {
    fn from(e: Http2Error) -> Self {
        match e {
            Http2Error::Connect => Self::Connect,
            Http2Error::Protocol => Self::Protocol,
            Http2Error::Refused | Http2Error::Reset => Self::Reset,
        }
    }
}

// === impl Forwarder ===

impl Forwarder {
    /// Sends a planned request to its destination over HTTP/2 and returns
    /// the client's response (failures as the proxy's own replies, gRPC
    /// errors for gRPC calls).
    pub(crate) async fn forward_h2(
        &self,
        x: H2Exchange<'_>,
        body: ClientBody,
        conn: &ConnInfo,
    ) -> Response<ResponseBody> {
        let H2Exchange {
            plan,
            mut parts,
            protocol,
            te_trailers,
            start,
        } = x;
        let route = plan.route;
        let route_timeout = route.timeout.unwrap_or(self.settings.default_timeout);
        let grpc_timeout = match protocol {
            Protocol::Grpc => grpc::timeout_of(&parts.headers),
            Protocol::Http => None,
        };
        // `grpc-timeout` caps the route timeout, as Envoy's
        // `grpc_timeout_header_max`; it bounds the whole call.
        let head_timeout = match (route_timeout.is_zero(), grpc_timeout) {
            (true, g) => g,
            (false, Some(g)) => Some(g.min(route_timeout)),
            (false, None) => Some(route_timeout),
        };
        let call_deadline = grpc_timeout.map(|g| {
            start
                + match route.timeout {
                    Some(t) if !t.is_zero() => g.min(t),
                    _ => g,
                }
        });
        // Counted when it ends; if this future is dropped first (the client
        // reset the stream), as cancelled.
        let mut record = (protocol == Protocol::Grpc).then(|| {
            CallRecord::new(
                &plan.backend.metrics,
                plan.flags,
                conn.security,
                &conn.principal,
                start,
                access_line(self.settings.access_log, &parts, route, conn),
            )
        });
        if te_trailers {
            parts
                .headers
                .insert(header::TE, HeaderValue::from_static("trailers"));
        }
        let source = match body {
            ClientBody::Bytes(b) => Source::Bytes(b),
            ClientBody::Stream(s) if s.is_end_stream() => Source::Bytes(Bytes::new()),
            ClientBody::Stream(s) if route.retry.attempts > 0 || plan.shadow.is_some() => {
                Source::Replay(Replayable::new(s, self.settings.max_replay_body))
            }
            ClientBody::Stream(s) => Source::Once(Some(s)),
        };
        let tries = self.h2_tries(&plan, &mut parts, source, call_deadline);
        let result = match head_timeout {
            Some(t) => tokio::time::timeout(t, tries)
                .await
                .unwrap_or(Err(Failure::Timeout)),
            None => tries.await,
        };
        let result = result.map(|resp| {
            let (mut head, body) = resp.into_parts();
            strip_hop_by_hop(&mut head.headers);
            let mut body = ResponseBody::stream(body);
            if let Some(mut record) = record.take() {
                record.set_http(head.status);
                let head_status = grpc::status_of(&head.headers);
                body = body.with_call(record, head_status, call_deadline);
            }
            Response::from_parts(head, body)
        });
        if let Some(record) = record.take() {
            // Counted below as the proxy's own reply.
            record.discard();
        }
        self.respond(result, plan, &parts, protocol, conn, start)
    }

    /// Sends the request to the backend over HTTP/2, retrying by the
    /// route's policy while the body can be replayed: on statuses, on
    /// failures, and on the `grpc-status` of trailers-only responses.
    async fn h2_tries(
        &self,
        plan: &Planned<'_>,
        parts: &mut http::request::Parts,
        mut source: Source,
        call_deadline: Option<Instant>,
    ) -> Result<Response<Incoming>, Failure> {
        let backend = plan.backend;
        let policy = plan.route.retry;
        let tls = self.upstream_tls(backend)?;
        let scheme = if tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        // `:authority` is the client's host, as Envoy sends it.
        let authority = parts
            .headers
            .remove(header::HOST)
            .and_then(|h| Authority::try_from(h.as_bytes()).ok())
            .or_else(|| parts.uri.authority().cloned());
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if let Some(shadow) = plan.shadow.clone() {
            self.mirror_h2(
                shadow,
                parts,
                authority.as_ref(),
                &path,
                &source,
                call_deadline,
            );
        }
        let mut attempt = 0;
        loop {
            let Some(endpoint) = backend.next_endpoint() else {
                return Err(Failure::NoHealthy);
            };
            let (body, replayable) = match &mut source {
                Source::Bytes(b) if b.is_empty() => (UpstreamBody::Empty, true),
                Source::Bytes(b) => (UpstreamBody::Full(Some(b.clone())), true),
                Source::Replay(r) => (UpstreamBody::Replay(r.next_try()), true),
                Source::Once(s) => (
                    s.take().map_or(UpstreamBody::Empty, UpstreamBody::Stream),
                    false,
                ),
            };
            let may_retry = replayable && attempt < policy.attempts;
            let uri = h2_uri(&scheme, authority.as_ref().unwrap_or(endpoint), &path)?;
            let mut req = Request::new(body);
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = uri;
            *req.version_mut() = Version::HTTP_2;
            *req.headers_mut() = if may_retry {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            let send = self.http2.send(endpoint, tls.as_ref(), &backend.name, req);
            let result = match policy.per_try_timeout {
                Some(t) => tokio::time::timeout(t, send)
                    .await
                    .unwrap_or(Err(Http2Error::Reset))
                    .map_err(Failure::from),
                None => send.await.map_err(Failure::from),
            };
            let still_whole = match &source {
                Source::Replay(r) => r.whole(),
                _ => true,
            };
            let retry = may_retry
                && still_whole
                && match &result {
                    Ok(resp) => {
                        policy.on.status(resp.status())
                            || policy.on.grpc_status(grpc::status_of(resp.headers()))
                    }
                    Err(f) => policy.on.failure(*f),
                };
            if !retry {
                return result;
            }
            drop(result);
            pause_before_retry(backend, &mut attempt).await;
        }
    }

    /// Sends a copy to the mirror destination in the background over
    /// HTTP/2 (`:authority NAME-shadow`), counted under the mirror's
    /// version with `reporter="destination"`; never delays or fails the
    /// request. A body that outgrows the replay limit ends the copy.
    fn mirror_h2(
        &self,
        shadow: Shadow<'_>,
        parts: &http::request::Parts,
        authority: Option<&Authority>,
        path: &PathAndQuery,
        source: &Source,
        deadline: Option<Instant>,
    ) {
        let count = MirrorCount::new(&shadow);
        let backend = &shadow.mirror.backend;
        let body = match source {
            Source::Bytes(b) if b.is_empty() => UpstreamBody::Empty,
            Source::Bytes(b) => UpstreamBody::Full(Some(b.clone())),
            Source::Replay(r) => UpstreamBody::Replay(r.mirror()),
            Source::Once(_) => return,
        };
        let tls = match self.upstream_tls(backend) {
            Ok(t) => t,
            Err(f) => return count.failed(f),
        };
        let Some(endpoint) = backend.next_endpoint().cloned() else {
            return count.failed(Failure::NoHealthy);
        };
        let host = authority
            .and_then(|a| Authority::try_from(shadow_host(a.as_str())).ok())
            .unwrap_or_else(|| endpoint.clone());
        let scheme = if tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let Ok(uri) = h2_uri(&scheme, &host, path) else {
            return count.failed(Failure::Connect);
        };
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_2;
        *req.headers_mut() = parts.headers.clone();
        let pool = self.http2.clone();
        let name = backend.name.clone();
        let timeout = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(self.settings.default_timeout);
        tokio::spawn(async move {
            let exchange = async {
                let tls: Option<&UpstreamTls> = tls.as_ref();
                let resp = pool.send(&endpoint, tls, &name, req).await?;
                let status = resp.status();
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                Ok::<_, Failure>(status)
            };
            count.run(exchange, timeout).await;
        });
    }
}

/// `scheme://authority/path` for an HTTP/2 request.
fn h2_uri(scheme: &Scheme, authority: &Authority, path: &PathAndQuery) -> Result<Uri, Failure> {
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(scheme.clone());
    uri.authority = Some(authority.clone());
    uri.path_and_query = Some(path.clone());
    Uri::from_parts(uri).map_err(|_| Failure::Connect)
}

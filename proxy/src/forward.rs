//! The request path's plan: route, choose the destination (weights,
//! sticky sessions), inject faults, rewrite the head for the upstream,
//! decide on mirroring, and count the outcome. Every lane uses the same
//! plan ([`Forwarder::plan`], then [`Forwarder::respond`] or
//! [`Forwarder::reply`]); the senders are elsewhere: the lean HTTP/1.1
//! lane's own ([`crate::h1`]), hyper's HTTP/1.1 client
//! ([`crate::send_hyper`]) and HTTP/2 ([`crate::send_h2`]).
//!
//! The [`Forwarder`] also holds the worker's upstream clients and pools,
//! which the senders use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use crate::body::{AccessLine, ResponseBody, UpstreamBody};
use crate::grpc;
use crate::metrics::{
    DestinationId, DestinationMetrics, Flags, Protocol, ResponseStatus, Security,
};
use crate::routes::{AbortWith, Backend, Mirror, RetryOn, Route, RouteTable};
use crate::source::Live;
use crate::tls::{ClientTls, UpstreamClients};

/// Responses up to this size are read whole before they are sent on.
pub const SMALL_RESPONSE: u64 = 16 * 1024;

/// Settings of the request path.
#[derive(Clone, Debug)]
pub struct ForwardSettings {
    /// Timeout for routes that set none (Envoy's default is 15 s); zero disables.
    pub default_timeout: Duration,
    /// Upstream TCP connect timeout.
    pub connect_timeout: Duration,
    /// Largest request body buffered so the request can be retried.
    pub max_replay_body: u64,
    /// Log one line per request.
    pub access_log: bool,
    /// Sticky sessions: the cookie that pins a client to the version it
    /// first got (`--sticky-cookie NAME`).
    pub sticky_cookie: Option<String>,
    /// Serve plain-text HTTP/1.1 on the lean lane ([`crate::h1`]) rather
    /// than hyper's (`--http1 lean|hyper`).
    pub lean_http1: bool,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_replay_body: 64 * 1024,
            access_log: false,
            sticky_cookie: None,
            lean_http1: true,
        }
    }
}

/// What the listener knows about a client connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the client authenticated with mTLS.
    pub security: Security,
    /// The client's SPIFFE ID (`source_principal`), `unknown` without mTLS.
    pub principal: Arc<str>,
    /// The client's IP as a header value, formatted once per connection.
    peer_ip: HeaderValue,
    /// Whether the client connection is TLS (`x-forwarded-proto: https`).
    tls: bool,
}

// === impl ConnInfo ===

impl ConnInfo {
    /// Describes a new client connection (`source_principal` `unknown`).
    pub fn new(peer: SocketAddr, security: Security) -> Self {
        static UNKNOWN: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        let peer_ip = HeaderValue::from_str(&peer.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            peer,
            security,
            principal: UNKNOWN.get_or_init(|| Arc::from("unknown")).clone(),
            peer_ip,
            tls: false,
        }
    }

    /// Marks the connection as TLS, so upstreams see
    /// `x-forwarded-proto: https`.
    #[must_use]
    pub fn over_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Sets the client's SPIFFE ID from its verified certificate.
    #[must_use]
    pub fn with_principal(mut self, id: &crate::tls::SpiffeId) -> Self {
        self.principal = Arc::from(id.as_str());
        self
    }
}

/// The upstream client: a pooled HTTP/1.1 client over plain TCP.
///
/// Destinations with DestinationRule `trafficPolicy.tls` use a client from
/// [`UpstreamClients`] instead: same pool settings, a rustls handshake on top.
pub type UpstreamClient = Client<HttpConnector, UpstreamBody>;

/// The request handler shared by all connections.
#[derive(Debug)]
pub struct Forwarder {
    live: Arc<Live>,
    pub(crate) client: UpstreamClient,
    pub(crate) tls: Option<UpstreamClients<UpstreamBody>>,
    pub(crate) settings: ForwardSettings,
    no_route: DestinationMetrics,
    /// Plain-TCP upstream connections of the lean HTTP/1.1 lane.
    pub(crate) pool: Arc<crate::upstream::http1::Pool>,
    /// Multiplexed HTTP/2 upstream connections.
    pub(crate) http2: Arc<crate::upstream::http2::Pool>,
}

/// What to do with a routed request.
#[derive(Debug)]
pub(crate) enum Plan<'t> {
    /// Answer locally: no route, or an injected abort.
    Reply(LocalReply<'t>),
    /// Send it upstream.
    Forward(Planned<'t>),
}

/// A local answer and how to count it.
#[derive(Debug)]
pub(crate) struct LocalReply<'t> {
    pub(crate) response: Response<ResponseBody>,
    /// Counted against this destination; `None`: the unknown one.
    pub(crate) metrics: Option<&'t DestinationMetrics>,
    pub(crate) flags: Flags,
    pub(crate) route: Option<&'t Route>,
}

/// A request on its way upstream.
#[derive(Debug)]
pub(crate) struct Planned<'t> {
    pub(crate) route: &'t Route,
    pub(crate) backend: &'t Backend,
    /// `Set-Cookie` value when sticky sessions (re)pin the client.
    pub(crate) pin: Option<HeaderValue>,
    pub(crate) ops: Option<&'t crate::headers::HeaderRules>,
    pub(crate) flags: Flags,
    pub(crate) shadow: Option<Shadow<'t>>,
}

/// A request chosen for mirroring, with the labels its metrics need.
#[derive(Clone, Debug)]
pub(crate) struct Shadow<'a> {
    pub(crate) mirror: &'a Mirror,
    pub(crate) protocol: Protocol,
    pub(crate) security: Security,
    pub(crate) principal: Arc<str>,
}

/// Counts one mirrored copy (`reporter="destination"`) under the mirror's
/// version: its status, or the failure that kept it from one.
#[derive(Debug)]
pub(crate) struct MirrorCount {
    metrics: DestinationMetrics,
    protocol: Protocol,
    security: Security,
    principal: Arc<str>,
    start: Instant,
}

impl MirrorCount {
    /// Starts the clock for a copy of `shadow`.
    pub(crate) fn new(shadow: &Shadow<'_>) -> Self {
        Self {
            metrics: shadow.mirror.backend.metrics.clone(),
            protocol: shadow.protocol,
            security: shadow.security,
            principal: shadow.principal.clone(),
            start: Instant::now(),
        }
    }

    /// Counts a copy that failed (or could not be sent).
    pub(crate) fn failed(&self, f: Failure) {
        let (status, flags, _) = f.reply();
        self.record(status.as_u16(), flags);
    }

    /// Runs the copy's exchange within `timeout` (zero: none) and counts
    /// its outcome.
    pub(crate) async fn run(
        self,
        exchange: impl Future<Output = Result<StatusCode, Failure>>,
        timeout: Duration,
    ) {
        let result = if timeout.is_zero() {
            exchange.await
        } else {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(Failure::Timeout))
        };
        match result {
            Ok(status) => self.record(status.as_u16(), Flags::NONE),
            Err(f) => self.failed(f),
        }
    }

    fn record(&self, code: u16, flags: Flags) {
        self.metrics.record_mirror(
            code,
            flags,
            self.protocol,
            self.security,
            &self.principal,
            self.start.elapsed(),
        );
    }
}

/// Why no upstream response came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No endpoint for the destination.
    NoHealthy,
    /// TCP connect failed or timed out.
    Connect,
    /// The connection broke before a response arrived.
    Reset,
    /// A per-try or the route timeout fired.
    Timeout,
    /// The upstream does not speak the protocol its port declares (an
    /// HTTP/1.1 server where HTTP/2 is expected).
    Protocol,
}

// === impl Failure ===

impl Failure {
    pub(crate) fn reply(self) -> (StatusCode, Flags, &'static str) {
        match self {
            Self::NoHealthy => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flags::UH,
                "no healthy upstream\n",
            ),
            Self::Connect => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flags::UF,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure\n",
            ),
            Self::Reset => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flags::UC,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination\n",
            ),
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                Flags::UT,
                "upstream request timeout\n",
            ),
            Self::Protocol => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flags::UPE,
                "upstream connect error or disconnect/reset before headers. reset reason: protocol error\n",
            ),
        }
    }

    /// The proxy's answer to a client: a gRPC error for gRPC calls
    /// (`DEADLINE_EXCEEDED` for a timeout, else `UNAVAILABLE`, as Envoy
    /// maps them), else the HTTP reply.
    pub(crate) fn response(self, protocol: Protocol) -> (Response<ResponseBody>, Flags) {
        let (status, flags, text) = self.reply();
        let resp = match protocol {
            Protocol::Http => local_reply(status, text),
            Protocol::Grpc => {
                let code = if self == Self::Timeout {
                    grpc::DEADLINE_EXCEEDED
                } else {
                    grpc::UNAVAILABLE
                };
                grpc_reply(code, text.trim_end())
            }
        };
        (resp, flags)
    }
}

// === impl RetryOn ===

impl RetryOn {
    pub(crate) fn status(self, s: StatusCode) -> bool {
        (self.server_error && s.is_server_error())
            || (self.gateway_error
                && matches!(
                    s,
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                ))
            || (self.conflict && s == StatusCode::CONFLICT)
    }

    pub(crate) fn failure(self, f: Failure) -> bool {
        match f {
            Failure::Connect => self.connect_failure,
            Failure::Reset => self.reset || self.server_error || self.gateway_error,
            Failure::Timeout => self.server_error || self.gateway_error,
            Failure::NoHealthy | Failure::Protocol => false,
        }
    }

    /// Whether a gRPC status (from a trailers-only response's headers, as
    /// Envoy reads it) is retried.
    pub(crate) fn grpc_status(self, code: Option<u8>) -> bool {
        code.is_some_and(|c| c < 32 && self.grpc & (1 << c) != 0)
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

// === impl Forwarder ===

impl Forwarder {
    /// A forwarder reading routes from `live`.
    pub fn new(live: Arc<Live>, settings: ForwardSettings) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            // One write() per request head, as on the listener (server.rs).
            .http1_writev(false)
            .build(http);
        let no_route = live.metrics().destination(DestinationId::unknown());
        let pool = Arc::new(crate::upstream::http1::Pool::new(settings.connect_timeout));
        let http2 = crate::upstream::http2::Pool::new(settings.connect_timeout);
        Self {
            live,
            client,
            tls: None,
            settings,
            no_route,
            pool,
            http2,
        }
    }

    /// The live configuration this forwarder routes by.
    pub(crate) fn live(&self) -> &Live {
        &self.live
    }

    /// Enables TLS to upstreams whose DestinationRule asks for it.
    #[must_use]
    pub fn with_tls(mut self, tls: Arc<ClientTls>) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.settings.connect_timeout));
        self.tls = Some(UpstreamClients::new(tls, http, Duration::from_secs(90)));
        self
    }

    /// Everything before the upstream exchange: route, choose the
    /// destination, inject faults, rewrite the request head for the
    /// upstream, and decide on mirroring.
    pub(crate) async fn plan<'t>(
        &self,
        table: &'t RouteTable,
        parts: &mut http::request::Parts,
        conn: &ConnInfo,
        protocol: Protocol,
    ) -> Plan<'t> {
        let authority = match parts.uri.authority() {
            Some(a) => a.as_str(),
            None => parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        };
        let route = table
            .host(authority)
            .and_then(|vh| vh.route(&parts.method, &parts.uri, &parts.headers));
        let Some(route) = route else {
            let response = match protocol {
                Protocol::Http => local_reply(StatusCode::NOT_FOUND, "no route\n"),
                Protocol::Grpc => grpc_reply(grpc::UNIMPLEMENTED, "no route"),
            };
            return Plan::Reply(LocalReply {
                response,
                metrics: None,
                flags: Flags::NR,
                route: None,
            });
        };
        let (backend, pin) = self.choose(route, &parts.headers);
        let ops = route.header_rules(backend);

        let mut flags = Flags::NONE;
        if let Some((delay, share)) = route.fault.delay
            && hit(share)
        {
            tokio::time::sleep(delay).await;
            flags = flags.with(Flags::DI);
        }
        if let Some((abort, share)) = route.fault.abort
            && hit(share)
        {
            let mut response = match (abort, protocol) {
                (AbortWith::Http(s), Protocol::Http) => local_reply(s, "fault filter abort\n"),
                (AbortWith::Grpc(c), Protocol::Http) => {
                    local_reply(grpc::to_http(c), "fault filter abort\n")
                }
                (AbortWith::Http(s), Protocol::Grpc) => {
                    grpc_reply(grpc::from_http(s), "fault filter abort")
                }
                (AbortWith::Grpc(c), Protocol::Grpc) => grpc_reply(c, "fault filter abort"),
            };
            if let Some(cookie) = pin {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            return Plan::Reply(LocalReply {
                response,
                metrics: Some(&backend.metrics),
                flags: flags.with(Flags::FI),
                route: Some(route),
            });
        }

        prepare_upstream_headers(parts, conn);
        crate::headers::on_request(ops, &mut parts.headers);
        let shadow = route
            .mirror
            .as_ref()
            .filter(|m| hit(m.fraction))
            .map(|mirror| Shadow {
                mirror,
                protocol,
                security: conn.security,
                principal: conn.principal.clone(),
            });
        Plan::Forward(Planned {
            route,
            backend,
            pin,
            ops,
            flags,
            shadow,
        })
    }

    /// Counts a locally answered request and returns its response.
    pub(crate) fn reply(
        &self,
        reply: LocalReply<'_>,
        parts: &http::request::Parts,
        protocol: Protocol,
        conn: &ConnInfo,
        start: Instant,
    ) -> Response<ResponseBody> {
        let metrics = reply.metrics.unwrap_or(&self.no_route);
        self.finish(
            metrics,
            parts,
            response_status(&reply.response, protocol),
            reply.flags,
            protocol,
            conn,
            start,
            reply.route,
        );
        reply.response
    }

    /// Turns the upstream result into the client's response: failures
    /// become local replies, header operations and the sticky cookie are
    /// applied, and the request is counted.
    pub(crate) fn respond(
        &self,
        result: Result<Response<ResponseBody>, Failure>,
        plan: Planned<'_>,
        parts: &http::request::Parts,
        protocol: Protocol,
        conn: &ConnInfo,
        start: Instant,
    ) -> Response<ResponseBody> {
        let mut flags = plan.flags;
        let mut resp = match result {
            Ok(resp) => resp,
            Err(f) => {
                let (resp, flag) = f.response(protocol);
                flags = flags.with(flag);
                resp
            }
        };
        crate::headers::on_response(plan.ops, resp.headers_mut());
        if let Some(cookie) = plan.pin {
            add_pin(resp.headers_mut(), cookie);
        }
        if resp.body().counts_itself() {
            // A gRPC call: counted when it ends.
            return resp;
        }
        self.finish(
            &plan.backend.metrics,
            parts,
            response_status(&resp, protocol),
            flags,
            protocol,
            conn,
            start,
            Some(plan.route),
        );
        resp
    }

    /// Picks the route's destination: by weight, or, with sticky sessions,
    /// the version named in the client's cookie while that version still
    /// gets traffic. Returns the `Set-Cookie` value when a client is
    /// (re)pinned.
    fn choose<'r>(
        &self,
        route: &'r Route,
        headers: &HeaderMap,
    ) -> (&'r Backend, Option<HeaderValue>) {
        let Some(name) = &self.settings.sticky_cookie else {
            return (route.pick(), None);
        };
        if let Some(b) = cookie(headers, name).and_then(|v| route.destination_for_version(v)) {
            return (b, None);
        }
        let b = route.pick();
        let version = &b.metrics.id().version;
        let set =
            HeaderValue::from_str(&format!("{name}={version}; Path=/; HttpOnly; SameSite=Lax"))
                .ok();
        (b, set)
    }

    /// How to open TLS to `backend` when its DestinationRule asks for it
    /// (for the lean lane's own pool); failures as in [`Self::tls_client`].
    pub(crate) fn upstream_tls(
        &self,
        backend: &Backend,
    ) -> Result<Option<crate::tls::UpstreamTls>, Failure> {
        match &backend.tls {
            None => Ok(None),
            Some(settings) => {
                let pool = self.tls.as_ref().ok_or(Failure::Connect)?;
                pool.upstream_tls(settings, &backend.metrics.id().name)
                    .map(Some)
                    .map_err(|_| Failure::Connect)
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site per outcome; a struct would only rename them
    pub(crate) fn finish(
        &self,
        metrics: &DestinationMetrics,
        parts: &http::request::Parts,
        status: impl Into<ResponseStatus>,
        flags: Flags,
        protocol: Protocol,
        conn: &ConnInfo,
        start: Instant,
        route: Option<&Route>,
    ) {
        let elapsed = start.elapsed();
        let status = status.into();
        metrics.record(
            status,
            flags,
            protocol,
            conn.security,
            &conn.principal,
            elapsed,
        );
        if self.settings.access_log {
            let id = metrics.id();
            tracing::info!(
                target: "meshproxy::access",
                method = %parts.method,
                path = parts.uri.path(),
                status = status.http,
                grpc_status = status.grpc_label(),
                flags = flags.as_str(),
                route = route.map_or("-", |r| r.name.as_str()),
                destination = %id.name,
                version = %id.version,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                peer = %conn.peer,
            );
        }
    }
}

/// How a response is counted: its HTTP status, and for a gRPC call the
/// `grpc-status` of its head (the proxy's own replies are trailers-only).
pub(crate) fn response_status(resp: &Response<ResponseBody>, protocol: Protocol) -> ResponseStatus {
    let http = resp.status();
    match protocol {
        Protocol::Http => http.into(),
        Protocol::Grpc => ResponseStatus::grpc(
            http.as_u16(),
            grpc::status_of(resp.headers()).unwrap_or_else(|| grpc::from_http(http)),
        ),
    }
}

/// The start of a request's access-log line, when access logging is on.
pub(crate) fn access_line(
    on: bool,
    parts: &http::request::Parts,
    route: &Route,
    conn: &ConnInfo,
) -> Option<AccessLine> {
    on.then(|| AccessLine {
        method: parts.method.clone(),
        path: parts.uri.path().into(),
        route: route.name.as_str().into(),
        peer: conn.peer,
    })
}

/// `grpc` for gRPC requests (by `content-type`), else `http`.
pub(crate) fn protocol_of(headers: &HeaderMap) -> Protocol {
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
    {
        Protocol::Grpc
    } else {
        Protocol::Http
    }
}

/// Waits before retry `attempt + 1` to `backend` (Envoy's back-off),
/// counting it.
pub(crate) async fn pause_before_retry(backend: &Backend, attempt: &mut u32) {
    tracing::debug!(backend = %backend.name, attempt = *attempt, "retrying");
    *attempt += 1;
    tokio::time::sleep(backoff(*attempt)).await;
}

/// Envoy's retry back-off: 25 ms base, doubling, full jitter, capped at 250 ms.
fn backoff(attempt: u32) -> Duration {
    let cap = 25u64.saturating_mul(1 << attempt.min(4)).min(250);
    Duration::from_millis(fastrand::u64(0..=cap))
}

/// `svc:8080` → `svc-shadow:8080`, Envoy's host for mirrored requests.
pub(crate) fn shadow_host(host: &str) -> String {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => format!("{h}-shadow:{p}"),
        _ => format!("{host}-shadow"),
    }
}

/// Adds the sticky-session `Set-Cookie`, unless the response sets that
/// cookie already (the VirtualService's own sticky routes may add the
/// same one with a header operation).
pub(crate) fn add_pin(headers: &mut HeaderMap, cookie: HeaderValue) {
    let bytes = cookie.as_bytes();
    let name = &bytes[..=bytes.iter().position(|b| *b == b'=').unwrap_or(0)];
    if !headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(name))
    {
        headers.append(header::SET_COOKIE, cookie);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Draws whether a request falls in a `share` (0.0..=1.0) of traffic.
fn hit(share: f64) -> bool {
    share >= 1.0 || (share > 0.0 && fastrand::f64() < share)
}

pub(crate) fn local_reply(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::text(text));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// A trailers-only gRPC reply: HTTP 200, `content-type: application/grpc`,
/// `grpc-status: code` and `grpc-message: message`, no body.
pub(crate) fn grpc_reply(code: u8, message: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::empty());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(grpc::GRPC_STATUS.clone(), grpc::status_value(code));
    h.insert(
        grpc::GRPC_MESSAGE.clone(),
        HeaderValue::from_static(message),
    );
    resp
}

/// Turns the client's request head into the upstream's: hop-by-hop headers
/// removed, `Host` kept (taken from `:authority` for HTTP/2 clients),
/// `x-forwarded-for` appended, `x-forwarded-proto` and `x-request-id` set.
fn prepare_upstream_headers(parts: &mut http::request::Parts, conn: &ConnInfo) {
    strip_hop_by_hop(&mut parts.headers);
    // Room for what is added below (and `te` for gRPC), so the map grows
    // at most once: growing it one insert at a time was 1.4% of a worker's
    // CPU on gRPC calls (HPACK decoding sizes it for the client's fields).
    parts.headers.reserve(5);
    if !parts.headers.contains_key(header::HOST)
        && let Some(a) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
    let xff = match parts.headers.get(&X_FORWARDED_FOR).map(|v| v.to_str()) {
        Some(Ok(prev)) => HeaderValue::from_str(&format!("{prev}, {}", conn.peer.ip())).ok(),
        _ => Some(conn.peer_ip.clone()),
    };
    if let Some(v) = xff {
        parts.headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    if !parts.headers.contains_key(&X_FORWARDED_PROTO) {
        parts.headers.insert(
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
        );
    }
    if !parts.headers.contains_key(&X_REQUEST_ID) {
        parts.headers.insert(X_REQUEST_ID.clone(), request_id());
    }
}

/// A random UUIDv4-formatted request id.
fn request_id() -> HeaderValue {
    let n = fastrand::u128(..);
    let n = (n & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    // 8-4-4-4-12 lowercase hex digits, written without the formatter: this
    // runs once per request.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut digit = 0;
    for (i, c) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        *c = HEX[((n >> (124 - 4 * digit)) & 0xf) as usize];
        digit += 1;
    }
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1): `Connection`, the headers
/// it names, and the well-known ones (`Keep-Alive`, `Proxy-Connection`,
/// `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, no hashing, then lookups only for what is
    // there: most heads carry none of these (HTTP/2 forbids all but `te`,
    // which every gRPC request has), and a lookup for each was 1–2% of a
    // gRPC call's instructions.
    let mut present = [false; HOP_BY_HOP.len()];
    let mut connection = false;
    for name in headers.keys() {
        if name == header::CONNECTION {
            connection = true;
        } else if let Some(i) = HOP_BY_HOP.iter().position(|h| name == *h) {
            present[i] = true;
        }
    }
    if connection && let Some(conn) = headers.remove(header::CONNECTION) {
        let mut named: Vec<HeaderName> = Vec::new();
        if let Ok(s) = conn.to_str() {
            named.extend(
                s.split(',')
                    .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
            );
        }
        for extra in headers.get_all(header::CONNECTION).iter() {
            if let Ok(s) = extra.to_str() {
                named.extend(
                    s.split(',')
                        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
                );
            }
        }
        headers.remove(header::CONNECTION);
        for n in named {
            headers.remove(n);
        }
    }
    for (h, there) in HOP_BY_HOP.iter().zip(present) {
        if there {
            headers.remove(*h);
        }
    }
}

/// The hop-by-hop headers other than `Connection` (and those it names).
static HOP_BY_HOP: [&HeaderName; 6] = [
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn request_ids_look_like_uuid_v4() {
        let id = request_id();
        let s = id.to_str().unwrap();
        assert_eq!(s.len(), 36, "{s}");
        assert_eq!(&s[14..15], "4", "{s}");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert!(
            s.char_indices()
                .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
                }),
            "{s}"
        );
        assert_ne!(request_id(), id);
    }

    #[test]
    fn retry_conditions() {
        let on = RetryOn {
            gateway_error: true,
            connect_failure: true,
            ..RetryOn::default()
        };
        assert!(on.status(StatusCode::BAD_GATEWAY));
        assert!(!on.status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(on.failure(Failure::Connect));
        assert!(on.failure(Failure::Timeout));
        assert!(!RetryOn::default().failure(Failure::Connect));
    }

    #[test]
    fn shadow_hosts_and_cookies() {
        assert_eq!(shadow_host("svc"), "svc-shadow");
        assert_eq!(
            shadow_host("svc.example.com:8080"),
            "svc.example.com-shadow:8080"
        );
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mesh-version=v2"),
        );
        assert_eq!(cookie(&h, "mesh-version"), Some("v2"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn the_pin_cookie_is_not_set_twice() {
        let pin = HeaderValue::from_static("mesh=v2; Path=/; HttpOnly; SameSite=Lax");
        let mut h = HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("session=abc"));
        add_pin(&mut h, pin.clone());
        assert_eq!(h.get_all(header::SET_COOKIE).iter().count(), 2);
        add_pin(&mut h, pin);
        assert_eq!(h.get_all(header::SET_COOKIE).iter().count(), 2, "{h:?}");
    }

    #[test]
    fn fault_shares() {
        assert!(hit(1.0));
        assert!(!hit(0.0));
        let n = (0..10_000).filter(|_| hit(0.3)).count();
        assert!((2_700..3_300).contains(&n), "{n}");
    }
}

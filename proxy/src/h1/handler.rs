//! One request on the lean lane: the same plan as hyper's path (route,
//! faults, header rewrites, mirroring, metrics), then a direct exchange
//! with the upstream whose response is forwarded as it arrives.
//!
//! Destinations with DestinationRule TLS use TLS connections from the
//! same pool; [`write_response`] writes the proxy's own replies.

use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Body as _;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::codec::{self, ChunkedEnd, Framing, ResponseHead};
use crate::forward::{
    ConnInfo, Failure, Forwarder, MirrorCount, Plan, Planned, Shadow, add_pin, pause_before_retry,
    protocol_of, shadow_host, strip_hop_by_hop,
};
use crate::metrics::Flags;
use crate::send_h2::{ClientBody, H2Exchange};
use crate::tls::UpstreamTls;
use crate::upstream::http1::{Conn, ExchangeError};

/// Bytes gathered before a write while forwarding a body.
const WRITE_CHUNK: usize = 64 * 1024;

/// The client side of one exchange.
#[derive(Debug)]
pub struct Downstream<'a, W> {
    /// The client connection.
    pub io: &'a mut W,
    /// Reused output buffer.
    pub out: &'a mut BytesMut,
    /// Reused buffer for the upstream request.
    pub request: &'a mut BytesMut,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
}

/// A request past its plan, on its way through the lane.
struct Exchange<'t, 'c> {
    plan: Planned<'t>,
    parts: http::request::Parts,
    conn: &'c ConnInfo,
    protocol: crate::metrics::Protocol,
    start: Instant,
    /// The route timeout, if any.
    deadline: Option<Instant>,
    /// TLS to the upstream, when its DestinationRule asks for it.
    tls: Option<UpstreamTls>,
}

/// What the response left behind.
#[derive(Debug)]
pub enum Sent {
    /// The whole response was written; the connection can go on.
    Complete,
    /// The response could not be completed: close the connection.
    Broken,
    /// The upstream switched protocols (`101`): the connection becomes a
    /// tunnel to this upstream connection.
    Upgraded(Box<Conn>),
}

// === impl Forwarder ===

impl Forwarder {
    /// Serves one request read by the lean lane and writes its response.
    pub(crate) async fn handle_h1<W>(
        &self,
        mut parts: http::request::Parts,
        body: Bytes,
        conn: &ConnInfo,
        down: &mut Downstream<'_, W>,
        upgrade: Option<HeaderValue>,
    ) -> Sent
    where
        W: AsyncWrite + Unpin,
    {
        let start = Instant::now();
        let table = self.live().table();
        let protocol = protocol_of(&parts.headers);
        let head_only = parts.method == Method::HEAD;
        let plan = match self.plan(&table, &mut parts, conn, protocol).await {
            Plan::Reply(reply) => {
                let resp = self.reply(reply, &parts, protocol, conn, start);
                return write_response(down, resp, head_only).await;
            }
            Plan::Forward(plan) => plan,
        };
        if plan
            .backend
            .http2
            .use_h2(false, protocol == crate::metrics::Protocol::Grpc)
        {
            // A destination spoken to over HTTP/2 (its port or
            // DestinationRule says so), or a gRPC call.
            let x = H2Exchange {
                plan,
                parts,
                protocol,
                te_trailers: false,
                start,
            };
            let resp = self.forward_h2(x, ClientBody::Bytes(body), conn).await;
            return write_response(down, resp, head_only).await;
        }
        let tls = match self.upstream_tls(plan.backend) {
            Ok(tls) => tls,
            Err(f) => {
                let resp = self.respond(Err(f), plan, &parts, protocol, conn, start);
                return write_response(down, resp, head_only).await;
            }
        };
        let timeout = plan.route.timeout.unwrap_or(self.settings.default_timeout);
        let deadline = (!timeout.is_zero()).then(|| start + timeout);
        let x = Exchange {
            plan,
            parts,
            conn,
            protocol,
            start,
            deadline,
            tls,
        };
        if let Some(token) = upgrade {
            return self.upgrade_h1(x, token, down).await;
        }
        if let Some(shadow) = x.plan.shadow.clone() {
            self.mirror_h1(shadow, &x.parts, &body, timeout);
        }
        let request = &mut *down.request;
        request.clear();
        codec::write_request_head(request, &x.parts.method, &x.parts.uri, &x.parts.headers);
        request.extend_from_slice(&body);
        let resendable = idempotent(&x.parts.method);
        let tries = self.lean_tries(&x.plan, x.tls.as_ref(), request, resendable);
        let result = match deadline {
            None => tries.await,
            Some(d) => tokio::time::timeout_at(d, tries)
                .await
                .unwrap_or(Err(Failure::Timeout)),
        };
        let (up, head, endpoint) = match result {
            Ok(r) => r,
            Err(f) => {
                let resp = self.respond(Err(f), x.plan, &x.parts, protocol, conn, start);
                return write_response(down, resp, head_only).await;
            }
        };
        self.relay(x, up, head, Some(endpoint), down).await
    }

    /// Forwards an upstream response head and body to the client and
    /// counts the request; the upstream connection goes back to the pool
    /// (to `endpoint`) when the exchange ended cleanly.
    async fn relay<W>(
        &self,
        x: Exchange<'_, '_>,
        mut up: Conn,
        head: ResponseHead,
        endpoint: Option<&http::uri::Authority>,
        down: &mut Downstream<'_, W>,
    ) -> Sent
    where
        W: AsyncWrite + Unpin,
    {
        let status = head.status;
        let framing = head.body_framing(&x.parts.method);
        let reusable = head.keep_alive;
        write_upstream_head(down, &head, framing, &x.plan);
        up.recycle(head);
        let forwarded = forward_body(down, &mut up, framing, x.deadline).await;
        let mut flags = x.plan.flags;
        let mut sent = match forwarded {
            Ok(()) => {
                if let Some(endpoint) = endpoint.filter(|_| reusable) {
                    self.pool.checkin(endpoint, x.tls.as_ref(), up);
                }
                Sent::Complete
            }
            Err(BodyError::Upstream) => {
                flags = flags.with(Flags::UC);
                Sent::Broken
            }
            Err(BodyError::Timeout) => {
                flags = flags.with(Flags::UT);
                Sent::Broken
            }
            // The client went away: its status stays what the upstream said.
            Err(BodyError::Client) => Sent::Broken,
        };
        // Counted before the last bytes go out: a client that has its
        // answer finds it in /metrics (meshctl polls right after a window).
        self.finish(
            &x.plan.backend.metrics,
            &x.parts,
            status,
            flags,
            x.protocol,
            x.conn,
            x.start,
            Some(x.plan.route),
        );
        if matches!(sent, Sent::Complete) && flush(down).await.is_err() {
            sent = Sent::Broken;
        }
        sent
    }

    /// An upgrade request (WebSocket and the like): sent with its
    /// `Upgrade` and `Connection: upgrade` on a new upstream connection,
    /// within the route timeout and without retries. A `101` answer is
    /// forwarded and the connection becomes a tunnel; any other answer is
    /// forwarded as usual.
    async fn upgrade_h1<W>(
        &self,
        mut x: Exchange<'_, '_>,
        token: HeaderValue,
        down: &mut Downstream<'_, W>,
    ) -> Sent
    where
        W: AsyncWrite + Unpin,
    {
        x.parts.headers.insert(header::UPGRADE, token);
        x.parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let request = &mut *down.request;
        request.clear();
        codec::write_request_head(request, &x.parts.method, &x.parts.uri, &x.parts.headers);
        let exchange = async {
            let endpoint = x.plan.backend.next_endpoint().ok_or(Failure::NoHealthy)?;
            let r = self
                .pool
                .exchange_upgrade(endpoint, x.tls.as_ref(), request)
                .await;
            r.map_err(Failure::from)
        };
        let result = match x.deadline {
            None => exchange.await,
            Some(d) => tokio::time::timeout_at(d, exchange)
                .await
                .unwrap_or(Err(Failure::Timeout)),
        };
        let (mut up, head) = match result {
            Ok(r) => r,
            Err(f) => {
                let resp = self.respond(Err(f), x.plan, &x.parts, x.protocol, x.conn, x.start);
                return write_response(down, resp, false).await;
            }
        };
        if head.status != StatusCode::SWITCHING_PROTOCOLS {
            return self.relay(x, up, head, None, down).await;
        }
        let out = &mut *down.out;
        out.clear();
        codec::write_status_line(out, head.status);
        for (name, value) in head.field_bytes() {
            // `Connection` and `Upgrade` are the point of a 101 and stay.
            if !codec::is_hop_by_hop(name)
                || name.eq_ignore_ascii_case(b"connection")
                || name.eq_ignore_ascii_case(b"upgrade")
            {
                codec::write_field(out, name, value);
            }
        }
        out.extend_from_slice(b"\r\n");
        up.recycle(head);
        self.finish(
            &x.plan.backend.metrics,
            &x.parts,
            StatusCode::SWITCHING_PROTOCOLS,
            x.plan.flags,
            x.protocol,
            x.conn,
            x.start,
            Some(x.plan.route),
        );
        match flush(down).await {
            Ok(()) => Sent::Upgraded(Box::new(up)),
            Err(_) => Sent::Broken,
        }
    }

    /// Sends the request to the planned destination, retrying by the
    /// route's policy (the body is already buffered, so every request can
    /// be retried).
    async fn lean_tries<'p>(
        &self,
        plan: &Planned<'p>,
        tls: Option<&UpstreamTls>,
        request: &[u8],
        resendable: bool,
    ) -> Result<(Conn, ResponseHead, &'p http::uri::Authority), Failure> {
        let policy = plan.route.retry;
        let mut attempt = 0;
        loop {
            let Some(endpoint) = plan.backend.next_endpoint() else {
                return Err(Failure::NoHealthy);
            };
            let exchange = self.pool.exchange(endpoint, tls, request, resendable);
            let result = match policy.per_try_timeout {
                Some(t) => tokio::time::timeout(t, exchange)
                    .await
                    .unwrap_or(Err(ExchangeError::Timeout)),
                None => exchange.await,
            };
            let result = result.map_err(Failure::from);
            let retry = attempt < policy.attempts
                && match &result {
                    Ok((_, head)) => policy.on.status(head.status),
                    Err(f) => policy.on.failure(*f),
                };
            if !retry {
                return result.map(|(conn, head)| (conn, head, endpoint));
            }
            drop(result);
            pause_before_retry(plan.backend, &mut attempt).await;
        }
    }
}

impl Forwarder {
    /// Sends a copy of the request to the mirror destination in the
    /// background, over the lane's pool when the mirror is plain HTTP (as
    /// [`Forwarder::spawn_mirror`] does through hyper's client otherwise):
    /// `Host: NAME-shadow`, counted with `reporter="destination"`, its
    /// response read and dropped, never delaying or failing the request.
    fn mirror_h1(
        &self,
        shadow: Shadow<'_>,
        parts: &http::request::Parts,
        body: &Bytes,
        timeout: std::time::Duration,
    ) {
        let backend = &shadow.mirror.backend;
        if backend.tls.is_some() {
            let path = parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
            return self.spawn_mirror(shadow, parts, &path, body.clone(), timeout);
        }
        let count = MirrorCount::new(&shadow);
        let Some(endpoint) = backend.next_endpoint().cloned() else {
            return count.failed(Failure::NoHealthy);
        };
        let mut request = BytesMut::with_capacity(512 + body.len());
        let mut headers = parts.headers.clone();
        if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok())
            && let Ok(v) = http::HeaderValue::from_str(&shadow_host(host))
        {
            headers.insert(header::HOST, v);
        }
        codec::write_request_head(&mut request, &parts.method, &parts.uri, &headers);
        request.extend_from_slice(body);
        let method = parts.method.clone();
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let exchange = async {
                let (mut conn, head) = pool
                    .exchange(&endpoint, None, &request, idempotent(&method))
                    .await
                    .map_err(Failure::from)?;
                let status = head.status;
                let framing = head.body_framing(&method);
                let reusable = head.keep_alive;
                conn.recycle(head);
                // Read the body to its end so the connection can be reused.
                if discard_body(&mut conn, framing).await.is_ok() && reusable {
                    pool.checkin(&endpoint, None, conn);
                }
                Ok::<_, Failure>(status)
            };
            count.run(exchange, timeout).await;
        });
    }
}

/// Reads an upstream body to its end and drops it.
async fn discard_body(up: &mut Conn, framing: Framing) -> Result<(), BodyError> {
    let mut chunked = ChunkedEnd::default();
    let mut left = match framing {
        Framing::Empty => return Ok(()),
        Framing::Length(n) => n,
        Framing::Chunked | Framing::Close => u64::MAX,
    };
    loop {
        let take = match framing {
            Framing::Chunked => chunked.advance(&up.buf).map_err(|_| BodyError::Upstream)?,
            _ => usize::try_from(left.min(up.buf.len() as u64)).unwrap_or(usize::MAX),
        };
        up.buf.advance(take);
        left = left.saturating_sub(take as u64);
        if left == 0 || chunked.done() {
            return Ok(());
        }
        match up.read_more().await {
            Ok(0) if framing == Framing::Close => return Ok(()),
            Ok(0) | Err(_) => return Err(BodyError::Upstream),
            Ok(_) => {}
        }
    }
}

impl From<ExchangeError> for Failure {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Connect => Self::Connect,
            ExchangeError::Reset => Self::Reset,
            ExchangeError::Timeout => Self::Timeout,
        }
    }
}

/// Methods a proxy may send again on its own (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Writes the client's response head for an upstream response into
/// `down.out`: hop-by-hop fields dropped, header operations and the sticky
/// cookie applied, a close-delimited body re-framed as chunked.
fn write_upstream_head<W>(
    down: &mut Downstream<'_, W>,
    head: &ResponseHead,
    framing: Framing,
    plan: &Planned<'_>,
) {
    let out = &mut *down.out;
    out.clear();
    codec::write_status_line(out, head.status);
    let edited = plan.pin.is_some() || plan.ops.is_some_and(|r| !r.response_is_empty());
    if edited {
        let mut map = head.header_map();
        strip_hop_by_hop(&mut map);
        crate::headers::on_response(plan.ops, &mut map);
        if let Some(cookie) = &plan.pin {
            add_pin(&mut map, cookie.clone());
        }
        if matches!(framing, Framing::Chunked | Framing::Close) {
            map.remove(header::CONTENT_LENGTH);
        }
        codec::write_fields(out, &map);
        if matches!(framing, Framing::Chunked | Framing::Close) {
            codec::write_field(out, b"transfer-encoding", b"chunked");
        }
    } else {
        let has_connection = head
            .field_bytes()
            .any(|(n, _)| n.eq_ignore_ascii_case(b"connection"));
        let named: Vec<(&[u8], &[u8])> = if has_connection {
            head.field_bytes().collect()
        } else {
            Vec::new()
        };
        for (name, value) in head.field_bytes() {
            if codec::is_hop_by_hop(name)
                || (has_connection && codec::named_by_connection(&named, name))
                || name.eq_ignore_ascii_case(b"transfer-encoding")
                || (framing == Framing::Chunked && name.eq_ignore_ascii_case(b"content-length"))
            {
                continue;
            }
            codec::write_field(out, name, value);
        }
        if matches!(framing, Framing::Chunked | Framing::Close) {
            codec::write_field(out, b"transfer-encoding", b"chunked");
        }
    }
    if !down.keep_alive {
        codec::write_field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

/// Why forwarding a response body stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyError {
    /// The upstream broke the body off or framed it wrongly.
    Upstream,
    /// The route timeout passed.
    Timeout,
    /// The client went away.
    Client,
}

/// Forwards the body after the head already in `down.out`; the last
/// bytes stay there for the caller to flush. A chunked body passes byte for
/// byte; a close-delimited one is re-framed as chunked.
async fn forward_body<W>(
    down: &mut Downstream<'_, W>,
    up: &mut Conn,
    framing: Framing,
    deadline: Option<Instant>,
) -> Result<(), BodyError>
where
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Empty => {}
        Framing::Length(mut left) => loop {
            let take = usize::try_from(left.min(up.buf.len() as u64)).unwrap_or(usize::MAX);
            take_into(down, up, take).await?;
            left -= take as u64;
            if left == 0 {
                break;
            }
            read_upstream(down, up, deadline).await?;
        },
        Framing::Chunked => {
            let mut chunked = ChunkedEnd::default();
            loop {
                let take = chunked.advance(&up.buf).map_err(|_| BodyError::Upstream)?;
                take_into(down, up, take).await?;
                if chunked.done() {
                    break;
                }
                read_upstream(down, up, deadline).await?;
            }
        }
        Framing::Close => loop {
            codec::write_chunk(down.out, &up.buf);
            up.buf.clear();
            if down.out.len() >= WRITE_CHUNK {
                flush(down).await?;
            }
            match read_upstream(down, up, deadline).await {
                Ok(()) => {}
                Err(BodyError::Upstream) => {
                    down.out.extend_from_slice(codec::LAST_CHUNK);
                    break;
                }
                Err(e) => return Err(e),
            }
        },
    }
    Ok(())
}

/// Moves `n` buffered upstream bytes to the client's output.
async fn take_into<W>(
    down: &mut Downstream<'_, W>,
    up: &mut Conn,
    n: usize,
) -> Result<(), BodyError>
where
    W: AsyncWrite + Unpin,
{
    if down.out.len() + n <= WRITE_CHUNK {
        down.out.extend_from_slice(&up.buf[..n]);
    } else {
        flush(down).await?;
        down.io
            .write_all(&up.buf[..n])
            .await
            .map_err(|_| BodyError::Client)?;
        down.io.flush().await.map_err(|_| BodyError::Client)?;
    }
    up.buf.advance(n);
    Ok(())
}

/// Reads more of the upstream body (the pending output is written first,
/// so the client is never kept waiting on the upstream). End of stream is
/// `BodyError::Upstream`.
async fn read_upstream<W>(
    down: &mut Downstream<'_, W>,
    up: &mut Conn,
    deadline: Option<Instant>,
) -> Result<(), BodyError>
where
    W: AsyncWrite + Unpin,
{
    flush(down).await?;
    let read = match deadline {
        None => up.read_more().await,
        Some(d) => tokio::time::timeout_at(d, up.read_more())
            .await
            .map_err(|_| BodyError::Timeout)?,
    };
    match read {
        Ok(0) | Err(_) => Err(BodyError::Upstream),
        Ok(_) => Ok(()),
    }
}

async fn flush<W>(down: &mut Downstream<'_, W>) -> Result<(), BodyError>
where
    W: AsyncWrite + Unpin,
{
    if !down.out.is_empty() {
        down.io
            .write_all(down.out)
            .await
            .map_err(|_| BodyError::Client)?;
        down.out.clear();
        // A no-op on TCP; TLS may hold records back until flushed.
        down.io.flush().await.map_err(|_| BodyError::Client)?;
    }
    Ok(())
}

/// Adds body data to the output, as a chunk when `chunked`; data that
/// would grow the buffer past [`WRITE_CHUNK`] is written from where it is,
/// so the per-connection buffer stays small.
async fn write_data<W>(
    down: &mut Downstream<'_, W>,
    data: &[u8],
    chunked: bool,
) -> Result<(), BodyError>
where
    W: AsyncWrite + Unpin,
{
    if data.is_empty() {
        return Ok(());
    }
    if down.out.len() + data.len() <= WRITE_CHUNK {
        if chunked {
            codec::write_chunk(down.out, data);
        } else {
            down.out.extend_from_slice(data);
        }
        return Ok(());
    }
    if chunked {
        codec::write_chunk_size(down.out, data.len());
    }
    flush(down).await?;
    down.io
        .write_all(data)
        .await
        .map_err(|_| BodyError::Client)?;
    if chunked {
        down.out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// Writes a response built by the request path (local replies, responses
/// through the hyper client): `content-length` when the body's size is
/// known, chunked otherwise.
pub async fn write_response<W>(
    down: &mut Downstream<'_, W>,
    resp: Response<ResponseBody>,
    head_only: bool,
) -> Sent
where
    W: AsyncWrite + Unpin,
{
    let (head, mut body) = resp.into_parts();
    let out = &mut *down.out;
    out.clear();
    codec::write_status_line(out, head.status);
    for (name, value) in &head.headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            codec::write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !head.headers.contains_key(header::DATE) {
        // As hyper's listener does for the proxy's own replies.
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        codec::write_field(out, b"date", now.as_bytes());
    }
    let bodiless = head.status.is_informational()
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED;
    let exact = body.size_hint().exact();
    match exact {
        _ if bodiless => {}
        Some(n) => codec::write_field(out, b"content-length", n.to_string().as_bytes()),
        None => codec::write_field(out, b"transfer-encoding", b"chunked"),
    }
    if !down.keep_alive {
        codec::write_field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if !(head_only || bodiless) {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Sent::Broken;
            };
            if let Ok(data) = frame.into_data()
                && write_data(down, &data, exact.is_none()).await.is_err()
            {
                return Sent::Broken;
            }
        }
        if exact.is_none() {
            down.out.extend_from_slice(codec::LAST_CHUNK);
        }
    }
    match flush(down).await {
        Ok(()) => Sent::Complete,
        Err(_) => Sent::Broken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_built_responses_are_written_whole_and_the_buffer_stays_small() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let body = Bytes::from(vec![b'x'; 1024 * 1024]);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut all)
                .await
                .unwrap();
            all
        });
        let mut out = BytesMut::new();
        let mut request = BytesMut::new();
        let mut down = Downstream {
            io: &mut server,
            out: &mut out,
            request: &mut request,
            keep_alive: true,
        };
        let resp = Response::new(ResponseBody::bytes(body));
        assert!(matches!(
            write_response(&mut down, resp, false).await,
            Sent::Complete
        ));
        assert!(out.capacity() <= 2 * WRITE_CHUNK, "{}", out.capacity());
        drop(server);
        let all = reader.await.unwrap();
        let text = String::from_utf8_lossy(&all[..100]).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ndate: "), "{text}");
        assert!(
            text.contains("\r\ncontent-length: 1048576\r\n\r\nxxx"),
            "{text}"
        );
        assert_eq!(all.len(), text.find("xxx").unwrap() + 1024 * 1024);
    }

    #[test]
    fn idempotent_methods() {
        assert!(idempotent(&Method::GET));
        assert!(idempotent(&Method::PUT));
        assert!(!idempotent(&Method::POST));
        assert!(!idempotent(&Method::PATCH));
    }
}

//! The lean HTTP/1.1 lane: plain-text HTTP/1.1 keep-alive traffic, the
//! bulk of what a sidecar or gateway carries, served without hyper's
//! per-request machinery.
//!
//! Why: with hyper on both sides a proxied request cost about 6.5 µs of
//! user CPU (two codecs, a dispatcher per side, a connection task and
//! channels for the client, two `HeaderMap`s), against nginx's 2.4 µs, and
//! that was the whole throughput gap (proxy/bench). This lane reads a
//! request head with `httparse` (hyper's own parser), runs the same
//! request path as hyper's listener (routing, faults, header operations,
//! mirroring, retries, timeouts, metrics: [`crate::forward`]), writes the
//! upstream request in one `write`, and forwards the upstream response
//! head and body as they arrive, over a per-worker keep-alive pool.
//!
//! What it does not take on, it hands to hyper, whole and unchanged:
//! before the first request is parsed, or at any later request, the
//! connection with the bytes read so far goes to
//! [`crate::hyper_lane::serve`] — HTTP/2 prior knowledge, HTTP/1.0,
//! `Upgrade: h2c`, `Expect`, `CONNECT`, chunked or large (above
//! `max_replay_body`) request bodies, malformed or oversized heads (hyper
//! answers 400/431). On a TLS listener the lane serves connections that did
//! not negotiate `h2` by ALPN. Upstreams with DestinationRule TLS get TLS
//! connections from the same pool.
//!
//! Upgrades (WebSocket) it serves itself: a `101` from the upstream turns
//! the connection into a tunnel, copied both ways until either side closes
//! or it idles out.
//!
//! Limits hold as on hyper's path: a request head must arrive within
//! `header_read_timeout`, an idle keep-alive connection closes after
//! `idle_timeout`, and a drain closes idle connections at once and others
//! after their response (`connection: close`). One timer per connection is
//! re-armed lazily, so a keep-alive request costs no timer operation.

mod handler;
mod prefixed;

use std::io;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Version, header};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::codec;
use crate::conn::Shared;
use crate::forward::ConnInfo;
use crate::upstream;
use handler::{Downstream, Sent};
pub use prefixed::Prefixed;

/// Serves one HTTP/1.1 client connection (plain TCP, or TLS without h2
/// negotiated) on the lean lane until it ends (`None`), or until a request
/// needs more than the lane does: then the connection, with every byte
/// read so far in front of it, is returned for hyper's lane to serve.
pub async fn serve<I>(
    tcp: I,
    info: &ConnInfo,
    shared: &Shared,
    drain: watch::Receiver<bool>,
) -> Option<(Prefixed<I>, watch::Receiver<bool>)>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tcp, read, drain) = Lane::new(shared).run(tcp, info, drain).await?;
    Some((Prefixed::new(read, tcp), drain))
}

/// How HTTP/2 with prior knowledge starts (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2";

/// One connection's buffers and deadlines.
struct Lane<'s> {
    shared: &'s Shared,
    buf: BytesMut,
    out: BytesMut,
    /// The upstream request being written.
    request: BytesMut,
    scratch: Vec<codec::FieldRange>,
    /// The connection's one timer: header read, idle, or body deadline.
    timer: LazyTimer,
}

/// A deadline on a timer that is re-armed only when the deadline moves
/// earlier, or when it fires before a deadline that moved later: a
/// keep-alive request sets the idle deadline without touching the timer.
struct LazyTimer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// When `sleep` fires.
    at: Instant,
    deadline: Instant,
}

impl LazyTimer {
    fn new(deadline: Instant) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            at: deadline,
            deadline,
        }
    }

    fn set(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if self.at > deadline {
            self.sleep.as_mut().reset(deadline);
            self.at = deadline;
        }
    }

    /// Resolves once the deadline has passed.
    async fn expired(&mut self) {
        loop {
            self.sleep.as_mut().await;
            if Instant::now() >= self.deadline {
                return;
            }
            self.sleep.as_mut().reset(self.deadline);
            self.at = self.deadline;
        }
    }
}

/// What the connection waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// A request head that has begun (or the first one).
    Head,
    /// The next request on an idle keep-alive connection.
    Idle,
}

impl<'s> Lane<'s> {
    fn new(shared: &'s Shared) -> Self {
        Self {
            shared,
            buf: BytesMut::with_capacity(8 * 1024),
            out: BytesMut::with_capacity(8 * 1024),
            request: BytesMut::with_capacity(1024),
            scratch: Vec::new(),
            timer: LazyTimer::new(Instant::now() + shared.limits.header_read_timeout),
        }
    }

    /// Serves requests until the connection ends (`None`) or must go to
    /// hyper (`Some`, with what was read and not yet served).
    async fn run<I>(
        mut self,
        mut tcp: I,
        info: &ConnInfo,
        drain: watch::Receiver<bool>,
    ) -> Option<(I, Bytes, watch::Receiver<bool>)>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = &self.shared.limits;
        let max_head = limits.max_header_bytes.max(8192);
        let max_body = self.shared.forwarder.settings.max_replay_body;
        let forwarder = &self.shared.forwarder;
        let mut waiting = Waiting::Head;
        // One registration with the drain signal for the whole connection
        // (the signal is shared by every connection).
        let mut drain_signal = drain.clone();
        let drained = drain_signal.changed();
        tokio::pin!(drained);
        loop {
            // A complete request head, read within its deadline.
            let head = loop {
                if !self.buf.is_empty() {
                    let reason = match codec::parse_request(&mut self.buf, &mut self.scratch) {
                        Ok(Some(head)) => break head,
                        Ok(None) if self.buf.len() < max_head => None,
                        Ok(None) => Some("head_too_large"),
                        Err(codec::HeadError::TooManyHeaders) => Some("too_many_headers"),
                        Err(codec::HeadError::Invalid) if self.buf.starts_with(H2_PREFACE) => {
                            Some("h2_prior_knowledge")
                        }
                        Err(codec::HeadError::Invalid) => Some("invalid_head"),
                    };
                    // Malformed, too large, HTTP/2's preface: hyper answers
                    // (400, 431) or serves it.
                    if let Some(reason) = reason {
                        self.shared.metrics.http1_handoff(reason);
                        return Some((tcp, self.buf.freeze(), drain));
                    }
                    if waiting == Waiting::Idle {
                        waiting = Waiting::Head;
                        self.timer.set(Instant::now() + limits.header_read_timeout);
                    }
                } else if waiting == Waiting::Idle && *drain.borrow() {
                    return close(tcp).await;
                }
                let idle = waiting == Waiting::Idle;
                match self.read(&mut tcp, drained.as_mut(), idle).await {
                    Ok(true) => {}
                    // End of stream, error, timeout or drain: close.
                    _ => return close(tcp).await,
                }
            };

            // Only what the lane serves stays; the rest goes to hyper with
            // the head unread.
            let body_len = codec::request_body_len(&head.headers)
                .ok()
                .filter(|n| *n <= max_body);
            // An upgrade the lane tunnels: `Upgrade` with `Connection:
            // upgrade` and no body (WebSocket); h2c goes to hyper.
            let upgrade = head
                .headers
                .get(header::UPGRADE)
                .filter(|v| !v.as_bytes().eq_ignore_ascii_case(b"h2c"))
                .filter(|_| codec::has_token(&head.headers, &header::CONNECTION, "upgrade"))
                .filter(|_| body_len == Some(0))
                .cloned();
            let reason = match body_len {
                _ if head.minor != 1 => Some("http_1_0"),
                _ if head.method == Method::CONNECT => Some("connect"),
                _ if head.headers.contains_key(header::UPGRADE) && upgrade.is_none() => {
                    Some("upgrade")
                }
                _ if head.headers.contains_key(header::EXPECT) => Some("expect"),
                None => Some("request_body"),
                Some(_) => None,
            };
            let (None, Some(body_len)) = (reason, body_len) else {
                self.shared
                    .metrics
                    .http1_handoff(reason.unwrap_or("request_body"));
                let mut read = BytesMut::from(&head.raw[..]);
                read.extend_from_slice(&self.buf);
                return Some((tcp, read.freeze(), drain));
            };
            let body_len = usize::try_from(body_len).unwrap_or(usize::MAX);
            // A stalled body is cut off like an idle connection.
            self.timer.set(Instant::now() + limits.idle_timeout);
            while self.buf.len() < body_len {
                match self.read(&mut tcp, drained.as_mut(), false).await {
                    Ok(true) => self.timer.set(Instant::now() + limits.idle_timeout),
                    _ => return close(tcp).await,
                }
            }
            let body = self.buf.split_to(body_len).freeze();

            let keep_alive =
                !codec::has_token(&head.headers, &header::CONNECTION, "close") && !*drain.borrow();
            let (mut parts, ()) = Request::new(()).into_parts();
            parts.method = head.method;
            parts.uri = head.uri;
            parts.version = Version::HTTP_11;
            parts.headers = head.headers;
            let mut down = Downstream {
                io: &mut tcp,
                out: &mut self.out,
                request: &mut self.request,
                keep_alive,
            };
            match forwarder
                .handle_h1(parts, body, info, &mut down, upgrade)
                .await
            {
                Sent::Complete if keep_alive => {}
                Sent::Complete | Sent::Broken => return close(tcp).await,
                Sent::Upgraded(up) => {
                    tunnel(tcp, &self.buf, *up, limits.idle_timeout).await;
                    return None;
                }
            }
            waiting = Waiting::Idle;
            self.timer.set(Instant::now() + limits.idle_timeout);
        }
    }

    /// Reads more client bytes. `Ok(false)`: the connection should close
    /// (end of stream, the timer's deadline passed, or, with `watch_drain`,
    /// the `drained` signal fired; it is not polled again after that).
    async fn read<I>(
        &mut self,
        tcp: &mut I,
        drained: Pin<&mut impl Future<Output = Result<(), watch::error::RecvError>>>,
        watch_drain: bool,
    ) -> io::Result<bool>
    where
        I: AsyncRead + Unpin,
    {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8 * 1024);
        }
        // Reading first: when bytes are there, nothing else is polled.
        tokio::select! {
            biased;
            r = tcp.read_buf(&mut self.buf) => r.map(|n| n > 0),
            () = self.timer.expired() => Ok(false),
            _ = drained, if watch_drain => Ok(false),
        }
    }
}

/// Joins the client to the upstream after `101 Switching Protocols`,
/// passing first what each side sent early, until either side closes or
/// no byte has moved either way for `idle` (nginx's `proxy_read_timeout`
/// for WebSockets; `--idle-timeout`).
async fn tunnel<I>(
    mut client: I,
    early: &[u8],
    mut up: upstream::http1::Conn,
    idle: std::time::Duration,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let result = async {
        up.io.write_all(early).await?;
        up.io.flush().await?;
        client.write_all(&up.buf).await?;
        client.flush().await?;
        let (mut client_in, mut client_out) = tokio::io::split(client);
        let (mut up_in, mut up_out) = tokio::io::split(up.io);
        let mut to_up = [0u8; 16 * 1024];
        let mut to_client = [0u8; 16 * 1024];
        // Each direction closes its write side when its read side ends; the
        // tunnel is over when both have.
        let (mut client_done, mut up_done) = (false, false);
        while !(client_done && up_done) {
            tokio::select! {
                r = client_in.read(&mut to_up), if !client_done => match r? {
                    0 => {
                        client_done = true;
                        up_out.shutdown().await?;
                    }
                    n => {
                        up_out.write_all(&to_up[..n]).await?;
                        up_out.flush().await?;
                    }
                },
                r = up_in.read(&mut to_client), if !up_done => match r? {
                    0 => {
                        up_done = true;
                        client_out.shutdown().await?;
                    }
                    n => {
                        client_out.write_all(&to_client[..n]).await?;
                        client_out.flush().await?;
                    }
                },
                () = tokio::time::sleep(idle) => {
                    tracing::debug!(?idle, "upgraded connection idle; closing");
                    break;
                }
            }
        }
        Ok::<_, io::Error>(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
}

/// Ends a connection the lane is done with: FIN first, so a response just
/// written is not cut off by a reset.
async fn close<I>(mut tcp: I) -> Option<(I, Bytes, watch::Receiver<bool>)>
where
    I: AsyncWrite + Unpin,
{
    let _ = tcp.shutdown().await;
    None
}

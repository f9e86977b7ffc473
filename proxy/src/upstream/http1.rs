//! Upstream HTTP/1.1 connections of the lean lane: a per-worker keep-alive
//! pool and one request/response exchange on a connection.
//!
//! Each worker has its own [`Pool`] (its own `Forwarder`), so checkout and
//! checkin take an uncontended lock. An idle connection the upstream has
//! closed is noticed at checkout (the event loop has seen it readable) and
//! dropped; one that closes while the request is being sent is replaced by
//! a fresh connection once, when the request is safe to send again.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt as _;
use http::uri::Authority;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::codec::{self, FieldRange, HeadError, ResponseHead};
use crate::tls::UpstreamTls;

/// Idle connections kept per endpoint, at most.
const MAX_IDLE_PER_ENDPOINT: usize = 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Largest upstream response head.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// An upstream connection's byte stream: plain TCP, or TLS for
/// destinations whose DestinationRule asks for it.
#[derive(Debug)]
pub enum Io {
    /// Plain text.
    Plain(TcpStream),
    /// TLS (`SIMPLE`, `MUTUAL`, `ISTIO_MUTUAL`).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(t) => Pin::new(t).poll_read(cx, buf),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(t) => Pin::new(t).poll_write(cx, buf),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(t) => Pin::new(t).poll_flush(cx),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(t) => Pin::new(t).poll_shutdown(cx),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Which pool a connection belongs to: the endpoint, and for TLS the
/// config and server name it was opened with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    endpoint: Authority,
    tls: Option<(usize, ServerName<'static>)>,
}

impl Key {
    fn new(endpoint: &Authority, tls: Option<&UpstreamTls>) -> Self {
        Self {
            endpoint: endpoint.clone(),
            tls: tls.map(|t| (t.config_id(), t.server_name().clone())),
        }
    }
}

/// One upstream connection and its read buffer.
#[derive(Debug)]
pub struct Conn {
    /// The stream.
    pub io: Io,
    /// Bytes read but not yet consumed.
    pub buf: BytesMut,
    fields: Vec<FieldRange>,
    reused: bool,
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeError {
    /// The TCP connect failed or timed out.
    Connect,
    /// The connection broke, or the upstream answered with a malformed head.
    Reset,
    /// The per-try timeout passed.
    Timeout,
}

/// Keep-alive connections per endpoint, for one worker.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Idle>,
    connect_timeout: Duration,
}

/// The idle connections, and when they are next swept.
#[derive(Debug)]
struct Idle {
    /// Keyed by a fast hash (two lookups per request; keys from the config).
    by_endpoint: HashMap<Key, Vec<(Conn, Instant)>, foldhash::fast::RandomState>,
    next_sweep: Instant,
}

// === impl Idle ===

impl Idle {
    /// Closes connections idle too long or closed by the upstream, and
    /// forgets endpoints without any (they may have left the config).
    fn sweep(&mut self, now: Instant) {
        self.by_endpoint.retain(|_, list| {
            list.retain_mut(|(conn, since)| {
                now.duration_since(*since) < IDLE_TIMEOUT && conn.is_open()
            });
            !list.is_empty()
        });
        self.next_sweep = now + IDLE_TIMEOUT / 3;
    }
}

// === impl Pool ===

impl Pool {
    /// An empty pool whose connects give up after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Idle {
                by_endpoint: HashMap::default(),
                next_sweep: Instant::now() + IDLE_TIMEOUT / 3,
            }),
            connect_timeout,
        }
    }

    /// A live idle connection to `endpoint`, if there is one.
    fn checkout(&self, key: &Key) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.by_endpoint.get_mut(key)?;
        while let Some((mut conn, since)) = list.pop() {
            if since.elapsed() < IDLE_TIMEOUT && conn.is_open() {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// Idle connections, over all endpoints.
    #[cfg(test)]
    pub fn idle_connections(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.by_endpoint.values().map(Vec::len).sum()
    }

    /// Returns a connection whose last exchange ended cleanly; every
    /// `IDLE_TIMEOUT / 3` this also sweeps out stale ones.
    pub fn checkin(&self, endpoint: &Authority, tls: Option<&UpstreamTls>, conn: Conn) {
        if !conn.buf.is_empty() {
            return; // the upstream sent more than its response
        }
        let key = Key::new(endpoint, tls);
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if now >= idle.next_sweep {
            idle.sweep(now);
        }
        let list = match idle.by_endpoint.get_mut(&key) {
            Some(list) => list,
            None => idle.by_endpoint.entry(key).or_default(),
        };
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push((conn, now));
        }
    }

    async fn connect(
        &self,
        endpoint: &Authority,
        tls: Option<&UpstreamTls>,
    ) -> Result<Conn, ExchangeError> {
        let connect = async {
            let tcp = match endpoint.as_str().parse::<SocketAddr>() {
                Ok(addr) => TcpStream::connect(addr).await?,
                Err(_) => {
                    let port = endpoint.port_u16().unwrap_or(80);
                    TcpStream::connect((endpoint.host(), port)).await?
                }
            };
            tcp.set_nodelay(true)?;
            // The handshake counts as part of connecting (a refused one is UF).
            Ok::<_, io::Error>(match tls {
                None => Io::Plain(tcp),
                Some(tls) => Io::Tls(Box::new(tls.connect(tcp).await?)),
            })
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(io)) => Ok(Conn {
                io,
                buf: BytesMut::with_capacity(8 * 1024),
                fields: Vec::new(),
                reused: false,
            }),
            Ok(Err(e)) => {
                tracing::debug!(%endpoint, error = %e, "upstream connect failed");
                Err(ExchangeError::Connect)
            }
            Err(_) => {
                tracing::debug!(%endpoint, "upstream connect timed out");
                Err(ExchangeError::Connect)
            }
        }
    }

    /// Sends `request` (head and body bytes) to `endpoint` and reads the
    /// response head. A pooled connection that turns out to be closed is
    /// replaced once by a new one when `resendable`.
    pub async fn exchange(
        &self,
        endpoint: &Authority,
        tls: Option<&UpstreamTls>,
        request: &[u8],
        resendable: bool,
    ) -> Result<(Conn, ResponseHead), ExchangeError> {
        if let Some(mut conn) = self.checkout(&Key::new(endpoint, tls)) {
            match conn.round_trip(request, false).await {
                Ok(head) => return Ok((conn, head)),
                Err(Trip::Stale) if resendable => {
                    tracing::debug!(%endpoint, "pooled connection was closed; resending on a new one");
                }
                Err(_) => return Err(ExchangeError::Reset),
            }
        }
        let mut conn = self.connect(endpoint, tls).await?;
        match conn.round_trip(request, false).await {
            Ok(head) => Ok((conn, head)),
            Err(_) => Err(ExchangeError::Reset),
        }
    }

    /// Sends an upgrade request (`Connection: upgrade`) on a new
    /// connection, never a pooled one, and reads the response head: `101
    /// Switching Protocols` or an ordinary answer.
    pub async fn exchange_upgrade(
        &self,
        endpoint: &Authority,
        tls: Option<&UpstreamTls>,
        request: &[u8],
    ) -> Result<(Conn, ResponseHead), ExchangeError> {
        let mut conn = self.connect(endpoint, tls).await?;
        match conn.round_trip(request, true).await {
            Ok(head) => Ok((conn, head)),
            Err(_) => Err(ExchangeError::Reset),
        }
    }
}

/// How a round trip failed.
enum Trip {
    /// Nothing came back at all: the connection was closed before or while
    /// the request was sent.
    Stale,
    /// It broke later, or the answer was malformed.
    Broken,
}

// === impl Conn ===

impl Conn {
    /// Whether an idle connection is still usable: the event loop has not
    /// seen it readable (a close or stray bytes), which costs no syscall.
    fn is_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match &mut self.io {
            Io::Plain(tcp) => {
                matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            // Through rustls, which handles what is not application data
            // (session tickets); a close or stray data makes it ready.
            Io::Tls(tls) => tls.read(&mut probe).now_or_never().is_none(),
        }
    }

    /// Writes `request` and reads the final response head; `101` is final
    /// only when the request asked to `upgrade`.
    async fn round_trip(&mut self, request: &[u8], upgrade: bool) -> Result<ResponseHead, Trip> {
        let stale = if self.reused {
            Trip::Stale
        } else {
            Trip::Broken
        };
        if self.io.write_all(request).await.is_err() || self.io.flush().await.is_err() {
            return Err(stale);
        }
        let mut got_any = false;
        loop {
            if !self.buf.is_empty() {
                got_any = true;
                let fields = std::mem::take(&mut self.fields);
                match codec::parse_response(&mut self.buf, fields) {
                    Ok(Some(head))
                        if upgrade && head.status == http::StatusCode::SWITCHING_PROTOCOLS =>
                    {
                        return Ok(head);
                    }
                    Ok(Some(head)) if head.status.is_informational() => {
                        // 1xx (103 Early Hints, a stray 100): not forwarded.
                        if head.status == http::StatusCode::SWITCHING_PROTOCOLS {
                            return Err(Trip::Broken);
                        }
                        self.fields = head.fields;
                        continue;
                    }
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) => {}
                    Err((HeadError::TooManyHeaders | HeadError::Invalid, fields)) => {
                        self.fields = fields;
                        return Err(Trip::Broken);
                    }
                }
                if self.buf.len() > MAX_RESPONSE_HEAD {
                    return Err(Trip::Broken);
                }
            }
            match self.read_more().await {
                Ok(0) | Err(_) if !got_any => return Err(stale),
                Ok(0) | Err(_) => return Err(Trip::Broken),
                Ok(_) => {}
            }
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    pub async fn read_more(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8 * 1024);
        }
        self.io.read_buf(&mut self.buf).await
    }

    /// Gives the head's field buffer back for the next response.
    pub fn recycle(&mut self, head: ResponseHead) {
        self.fields = head.fields;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    use super::*;

    /// An upstream answering each request head with a fixed response,
    /// keeping connections open until `close` says otherwise.
    async fn upstream() -> (Authority, tokio::sync::mpsc::UnboundedReceiver<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                let _ = tx.send(tcp);
            }
        });
        (addr.to_string().parse().unwrap(), rx)
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_swept_out() {
        let (endpoint, mut served) = upstream().await;
        let pool = Pool::new(Duration::from_secs(1));
        let (mut conn, head) = pool
            .exchange(&endpoint, None, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", true)
            .await
            .unwrap();
        assert_eq!(head.status, 200);
        conn.recycle(head);
        conn.buf.clear(); // the body, as the lane would have forwarded it
        pool.checkin(&endpoint, None, conn);
        assert_eq!(pool.idle_connections(), 1);

        // The upstream closes it; once the event loop has seen that, a
        // sweep drops it.
        drop(served.recv().await.unwrap());
        // The runtime parks meanwhile, and its event loop sees the close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.idle.lock().unwrap().sweep(Instant::now());
        assert_eq!(pool.idle_connections(), 0);
        assert!(
            pool.idle.lock().unwrap().by_endpoint.is_empty(),
            "endpoint forgotten"
        );
    }

    #[tokio::test]
    async fn refused_connects_and_dead_answers_are_told_apart() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint: Authority = closed.local_addr().unwrap().to_string().parse().unwrap();
        drop(closed);
        let pool = Pool::new(Duration::from_secs(1));
        let err = pool
            .exchange(&endpoint, None, b"GET / HTTP/1.1\r\n\r\n", true)
            .await
            .unwrap_err();
        assert_eq!(err, ExchangeError::Connect);

        // An upstream that reads the request and closes without answering.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
            }
        });
        let err = pool
            .exchange(&endpoint, None, b"GET / HTTP/1.1\r\n\r\n", true)
            .await
            .unwrap_err();
        assert_eq!(err, ExchangeError::Reset);
    }
}

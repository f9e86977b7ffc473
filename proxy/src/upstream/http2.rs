//! Upstream HTTP/2: one multiplexed connection per endpoint (and TLS
//! configuration), over `hyper::client::conn::http2`.
//!
//! Plain-text upstreams get h2c with prior knowledge; TLS upstreams offer
//! ALPN `h2` only, and a server that does not select it is refused (a
//! request marked HTTP/2 never goes out as HTTP/1.1). Each worker has its
//! own pool (its own `Forwarder`). Many requests share a connection
//! (concurrent first requests wait for one connection to open);
//! hyper's h2 client queues streams beyond the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` until one finishes. A connection that
//! got `GOAWAY` or closed is replaced on the next request; a request that
//! such a connection never sent is sent on a new one. A connection that has
//! taken no new request for [`IDLE_TIMEOUT`] leaves the pool (checked every
//! third of it, as requests come): hyper then closes it once its last
//! stream ends, so endpoints that left the configuration or get no more
//! traffic do not keep connections open.
//!
//! An upstream that does not speak HTTP/2 (an HTTP/1.1 server behind a port
//! marked `grpc`) fails the first request of a new connection with a
//! protocol error: that is [`Http2Error::Protocol`] (flag `UPE`), logged at
//! most once per endpoint every [`WARN_EVERY`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::body::UpstreamBody;
use crate::exec::Exec;
use crate::tls::UpstreamTls;

/// How often a protocol failure of one endpoint is logged, at most.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// How long a pooled connection may go without a new request before the
/// pool lets it go (as the HTTP/1.1 pool's idle connections).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why an HTTP/2 exchange produced no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Http2Error {
    /// TCP connect (or the TLS handshake) failed or timed out.
    Connect,
    /// The upstream does not speak HTTP/2 (no `h2` by ALPN, or a protocol
    /// error on a new connection).
    Protocol,
    /// The upstream refused the stream (`REFUSED_STREAM`): safe to retry.
    Refused,
    /// The connection or stream broke before a response head.
    Reset,
}

/// The pooled HTTP/2 connections of one worker.
#[derive(Debug)]
pub struct Pool {
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// Per endpoint, the connection in use.
    conns: Mutex<Conns>,
    /// TLS configurations offering ALPN `h2`, made from (and keeping alive)
    /// the destination's, keyed by its config id.
    h2_tls: Mutex<HashMap<usize, (UpstreamTls, UpstreamTls), foldhash::fast::RandomState>>,
    /// When each endpoint's protocol failure was last logged.
    warned: Mutex<HashMap<Authority, Instant, foldhash::fast::RandomState>>,
}

/// An endpoint and the id of its TLS configuration (0: plain text).
type Key = (Authority, usize);

type Sender = SendRequest<UpstreamBody>;

/// The slots by endpoint, and when they are next swept.
#[derive(Debug)]
struct Conns {
    by_key: HashMap<Key, Slot, foldhash::fast::RandomState>,
    next_sweep: Instant,
}

/// An endpoint's connection; `opening` is held while a connection is
/// being opened, so concurrent first requests share one.
#[derive(Debug)]
struct SlotState {
    current: Mutex<Current>,
    opening: AsyncMutex<()>,
}

/// `None` before the first connection or after a failed connect, and when
/// a request last took the connection.
#[derive(Debug)]
struct Current {
    sender: Option<Sender>,
    used: Instant,
}

type Slot = Arc<SlotState>;

// === impl Conns ===

impl Conns {
    /// Forgets the connections that are closed or took no request for
    /// `idle`, and endpoints without one, unless one is being opened.
    fn sweep(&mut self, now: Instant, idle: Duration) {
        self.by_key.retain(|_, slot| {
            let opening = slot.opening.try_lock().is_err();
            let current = slot.lock();
            opening
                || (current.sender.as_ref().is_some_and(|s| !s.is_closed())
                    && now.duration_since(current.used) < idle)
        });
        self.next_sweep = now + idle / 3;
    }
}

// === impl SlotState ===

impl SlotState {
    fn new(now: Instant) -> Self {
        Self {
            current: Mutex::new(Current {
                sender: None,
                used: now,
            }),
            opening: AsyncMutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The endpoint's connection, if open and not closing, marked used at `now`.
    fn live(&self, now: Instant) -> Option<Sender> {
        let mut current = self.lock();
        let sender = current.sender.as_ref().filter(|s| !s.is_closed())?.clone();
        current.used = now;
        Some(sender)
    }
}

// === impl Pool ===

impl Pool {
    /// An empty pool; connecting takes at most `connect_timeout` (TCP and
    /// TLS each).
    pub fn new(connect_timeout: Duration) -> Arc<Self> {
        Self::with_idle_timeout(connect_timeout, IDLE_TIMEOUT)
    }

    fn with_idle_timeout(connect_timeout: Duration, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            connect_timeout,
            idle_timeout,
            conns: Mutex::new(Conns {
                by_key: HashMap::default(),
                next_sweep: Instant::now() + idle_timeout / 3,
            }),
            h2_tls: Mutex::default(),
            warned: Mutex::default(),
        })
    }

    /// Sends `req` (absolute URI: its authority is sent as `:authority`)
    /// to `endpoint`, over TLS when `tls` is given. `service` names the
    /// destination in the log line of a protocol failure.
    pub async fn send(
        &self,
        endpoint: &Authority,
        tls: Option<&UpstreamTls>,
        service: &str,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, Http2Error> {
        let tls = tls.map(|t| self.h2_tls(t));
        let key = (
            endpoint.clone(),
            tls.as_ref().map_or(0, UpstreamTls::config_id),
        );
        let now = Instant::now();
        let slot = {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            if now >= conns.next_sweep {
                conns.sweep(now, self.idle_timeout);
            }
            conns
                .by_key
                .entry(key.clone())
                .or_insert_with(|| Arc::new(SlotState::new(now)))
                .clone()
        };
        // The common case takes no async lock: a live connection is cloned
        // out of a plain mutex. Opening one (rare) is boxed, so its future
        // (TCP + TLS handshake, several KB) is not carried inline by every
        // stream's task: held inline it was copied on each spawn and
        // completion (20% of a worker's CPU was memmove).
        let (mut sender, mut fresh) = match slot.live(now) {
            Some(s) => (s, false),
            None => (
                Box::pin(self.open(&slot, &key, tls.as_ref(), service)).await?,
                true,
            ),
        };
        loop {
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    // Never sent: the connection went away (GOAWAY, closed)
                    // before it took the request. A new one gets it (unless
                    // another request replaced it meanwhile).
                    Some(back) if !fresh => {
                        req = back;
                        sender = Box::pin(self.open(&slot, &key, tls.as_ref(), service)).await?;
                        fresh = true;
                    }
                    _ => {
                        let error = self.classify(&e.into_error(), fresh);
                        if error == Http2Error::Protocol {
                            self.warn(
                                endpoint,
                                service,
                                "it answered HTTP/2 with a protocol error",
                            );
                        }
                        return Err(error);
                    }
                },
            }
        }
    }

    /// The connection of `slot`, opened now unless another request opened
    /// one meanwhile. Concurrent callers wait for one connection to open.
    async fn open(
        &self,
        slot: &Slot,
        key: &Key,
        tls: Option<&UpstreamTls>,
        service: &str,
    ) -> Result<Sender, Http2Error> {
        let _opening = slot.opening.lock().await;
        let now = Instant::now();
        if let Some(s) = slot.live(now) {
            return Ok(s);
        }
        let s = self.connect(key, tls, service).await?;
        *slot.lock() = Current {
            sender: Some(s.clone()),
            used: now,
        };
        Ok(s)
    }

    /// The TLS configuration of `tls` offering only ALPN `h2`, made once
    /// per configuration.
    fn h2_tls(&self, tls: &UpstreamTls) -> UpstreamTls {
        let mut cache = self.h2_tls.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(tls.config_id())
            .or_insert_with(|| (tls.clone(), tls.with_alpn(vec![b"h2".to_vec()])))
            .1
            .clone()
    }

    /// Opens a connection for `key` (the caller pools it).
    async fn connect(
        &self,
        key: &Key,
        tls: Option<&UpstreamTls>,
        service: &str,
    ) -> Result<Sender, Http2Error> {
        let endpoint = &key.0;
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(endpoint.as_str()))
            .await
            .map_err(|_| Http2Error::Connect)?
            .map_err(|_| Http2Error::Connect)?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => handshake(tcp).await,
            Some(tls) => {
                let stream = tokio::time::timeout(self.connect_timeout, tls.connect(tcp))
                    .await
                    .map_err(|_| Http2Error::Connect)?
                    .map_err(|e| {
                        // A server that offers no protocol in common
                        // refuses the handshake: it does not speak h2.
                        let no_h2 = e
                            .get_ref()
                            .and_then(|e| e.downcast_ref::<rustls::Error>())
                            .is_some_and(|e| {
                                matches!(
                                    e,
                                    rustls::Error::AlertReceived(
                                        rustls::AlertDescription::NoApplicationProtocol
                                    )
                                )
                            });
                        if no_h2 {
                            self.warn(endpoint, service, "its TLS server refused ALPN h2");
                            Http2Error::Protocol
                        } else {
                            Http2Error::Connect
                        }
                    })?;
                if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                    self.warn(endpoint, service, "its TLS server did not select ALPN h2");
                    return Err(Http2Error::Protocol);
                }
                handshake(stream).await
            }
        }
    }

    /// Sorts a failed exchange. A new connection that fails before any
    /// response (other than by refusing the stream) is an upstream that
    /// does not speak HTTP/2.
    fn classify(&self, e: &hyper::Error, fresh: bool) -> Http2Error {
        let h2 = std::error::Error::source(e).and_then(|s| s.downcast_ref::<h2::Error>());
        match h2.and_then(h2::Error::reason) {
            Some(h2::Reason::REFUSED_STREAM) => Http2Error::Refused,
            Some(h2::Reason::PROTOCOL_ERROR | h2::Reason::FRAME_SIZE_ERROR) => Http2Error::Protocol,
            _ if fresh && !e.is_canceled() => Http2Error::Protocol,
            _ => Http2Error::Reset,
        }
    }

    /// Logs a protocol failure of `endpoint`, once per [`WARN_EVERY`].
    fn warn(&self, endpoint: &Authority, service: &str, what: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if warned
            .get(endpoint)
            .is_some_and(|at| now.duration_since(*at) < WARN_EVERY)
        {
            return;
        }
        warned.insert(endpoint.clone(), now);
        tracing::warn!(
            service,
            port = endpoint.port_u16().unwrap_or(0),
            endpoint = %endpoint,
            "upstream does not speak HTTP/2: {what}; its port is declared grpc/http2 (or the request is gRPC); requests get 503 (UPE), gRPC calls UNAVAILABLE"
        );
    }
}

/// Starts HTTP/2 on `io` (the preface and SETTINGS; the connection then
/// runs in its own task).
async fn handshake<I>(io: I) -> Result<Sender, Http2Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::client::conn::http2::Builder::new(Exec);
    builder.timer(TokioTimer::new());
    let (sender, conn) = builder
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| Http2Error::Protocol)?;
    tokio::spawn(conn);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::service::service_fn;
    use hyper_util::rt::TokioExecutor;
    use tokio::net::TcpListener;

    use super::*;

    /// An h2c upstream on loopback answering 200 to everything, and how
    /// many connections it has open.
    async fn upstream() -> (Authority, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let counted = open.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let counted = counted.clone();
                tokio::spawn(async move {
                    let svc = service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(
                            http_body_util::Empty::<bytes::Bytes>::new(),
                        ))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                    counted.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (addr.to_string().parse().unwrap(), open)
    }

    fn get(to: &Authority) -> Request<UpstreamBody> {
        Request::builder()
            .uri(format!("http://{to}/"))
            .body(UpstreamBody::Empty)
            .unwrap()
    }

    #[tokio::test]
    async fn connections_unused_for_the_idle_timeout_are_closed() {
        let (a, open_a) = upstream().await;
        let (b, open_b) = upstream().await;
        let pool = Pool::with_idle_timeout(Duration::from_secs(1), Duration::from_millis(300));
        for _ in 0..3 {
            let resp = pool.send(&a, None, "a", get(&a)).await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        assert_eq!(open_a.load(Ordering::SeqCst), 1, "one connection, reused");

        // Past the idle timeout, the next request (to another endpoint)
        // sweeps a's connection out of the pool, and it closes.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let resp = pool.send(&b, None, "b", get(&b)).await.unwrap();
        assert_eq!(resp.status(), 200);
        for _ in 0..200 {
            if open_a.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            open_a.load(Ordering::SeqCst),
            0,
            "a's idle connection closed"
        );
        assert_eq!(open_b.load(Ordering::SeqCst), 1);
        let conns = pool.conns.lock().unwrap();
        assert_eq!(conns.by_key.len(), 1, "only b's connection is pooled");
        assert!(conns.by_key.keys().all(|(ep, _)| *ep == b));
    }
}

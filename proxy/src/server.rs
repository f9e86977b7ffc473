//! The client-facing listener: HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! port, with limits on everything a client controls, and graceful drain.
//!
//! Limits: request headers larger than `max_header_bytes` get 431 (hyper
//! answers it for HTTP/1.1; HTTP/2 enforces `SETTINGS_MAX_HEADER_LIST_SIZE`);
//! a client that does not finish its request head within
//! `header_read_timeout` is disconnected; a connection with no request in
//! flight for `idle_timeout` is closed; past `max_connections` a new
//! connection is closed at once and counted.
//!
//! TLS plugs in per connection: with [`Shared::with_tls`] the accept loop
//! runs the handshake (config loaded fresh for each connection, so
//! rotations apply to new connections only) inside the connection task and
//! passes the TLS stream to [`serve_connection`], which takes any
//! `AsyncRead + AsyncWrite` stream, with the peer's identity in its
//! [`ConnInfo`]. A refused handshake closes the connection and counts in
//! `meshproxy_tls_handshake_failures_total`.
//!
//! Workers balance connections exactly (like Envoy's `exact_balance`):
//! `SO_REUSEPORT` spreads new connections over the workers' listeners by a
//! hash of the addresses, which with few clients can leave one worker with
//! most of them (the tail latency then comes from that worker's queue). A
//! worker that accepts a connection while another serves fewer hands it
//! over through the [`Balancer`]; it costs a channel send per connection,
//! nothing per request.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::forward::{ConnInfo, Forwarder};
use crate::inflight::ConnState;
use crate::metrics::{ProxyMetrics, Security};
use crate::tls::ServerTls;

/// Limits applied to client connections.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request head (request line and headers), in bytes; at least 8192.
    pub max_header_bytes: usize,
    /// Time a client has to send a complete request head.
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Open client connections at most.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Everything a connection task needs, shared.
#[derive(Debug)]
pub struct Shared {
    /// The request handler.
    pub forwarder: Arc<Forwarder>,
    /// Connection gauges.
    pub metrics: ProxyMetrics,
    /// Limits.
    pub limits: Limits,
    /// Inbound TLS; `None` serves plain text.
    pub tls: Option<Arc<ServerTls>>,
    builder: auto::Builder<TokioExecutor>,
}

// === impl Shared ===

impl Shared {
    /// Builds the HTTP/1.1 + HTTP/2 connection builder for `limits`.
    pub fn new(forwarder: Arc<Forwarder>, metrics: ProxyMetrics, limits: Limits) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true)
            // Copy each small response into one buffer and write() it
            // rather than writev() head and body: 3.5% less CPU per request
            // in proxy/bench (responses of a few hundred bytes).
            .writev(false);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(None);
        Self {
            forwarder,
            metrics,
            limits,
            tls: None,
            builder,
        }
    }

    /// Serves TLS (ALPN `h2`/`http/1.1`, optional mTLS) instead of plain text.
    #[must_use]
    pub fn with_tls(mut self, tls: Arc<ServerTls>) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A connection accepted by one worker, on its way to another.
#[derive(Debug)]
pub struct Handoff {
    tcp: std::net::TcpStream,
    peer: std::net::SocketAddr,
    permit: OwnedSemaphorePermit,
    served: Served,
}

/// Open connections per worker, and the way to hand a connection to
/// another worker.
#[derive(Debug)]
pub struct Balancer {
    active: Box<[AtomicUsize]>,
    inboxes: Box<[mpsc::UnboundedSender<Handoff>]>,
}

/// One worker's place in the [`Balancer`].
#[derive(Debug)]
pub struct WorkerSlot {
    /// This worker's index.
    pub index: usize,
    /// Shared by all workers.
    pub balancer: Arc<Balancer>,
    /// Connections other workers hand to this one.
    pub inbox: mpsc::UnboundedReceiver<Handoff>,
}

/// Counts a connection on its worker until dropped.
#[derive(Debug)]
struct Served(Arc<Balancer>, usize);

// === impl Balancer ===

impl Balancer {
    /// A balancer for `workers` workers, and each worker's slot.
    pub fn slots(workers: usize) -> Vec<WorkerSlot> {
        let (inboxes, receivers): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let balancer = Arc::new(Self {
            active: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            inboxes: inboxes.into(),
        });
        receivers
            .into_iter()
            .enumerate()
            .map(|(index, inbox)| WorkerSlot {
                index,
                balancer: balancer.clone(),
                inbox,
            })
            .collect()
    }

    /// Open connections per worker.
    pub fn active(&self) -> Vec<usize> {
        self.active
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }

    /// The worker that should serve a connection `me` accepted: `me`
    /// unless another serves fewer.
    fn pick(&self, me: usize) -> usize {
        let mine = self.active[me].load(Ordering::Relaxed);
        let (least, n) = self
            .active
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .enumerate()
            .min_by_key(|(_, n)| *n)
            .unwrap_or((me, mine));
        if n < mine { least } else { me }
    }

    fn serve(self: &Arc<Self>, worker: usize) -> Served {
        self.active[worker].fetch_add(1, Ordering::Relaxed);
        Served(self.clone(), worker)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.0.active[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until `shutdown` flips, then waits for the open
/// ones to drain (each is told to finish its in-flight requests and close).
/// Returns once every connection task has ended, or when `force` flips.
/// `permits` caps open connections across all workers; `slot` balances
/// them between workers.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    mut force: watch::Receiver<bool>,
    mut slot: WorkerSlot,
) {
    // Every connection task holds a sender; recv() returns None when all are gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    loop {
        let (tcp, peer, permit, served) = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(h) = slot.inbox.recv() => match tokio::net::TcpStream::from_std(h.tcp) {
                Ok(tcp) => (tcp, h.peer, h.permit, h.served),
                Err(e) => {
                    tracing::debug!(error = %e, "handed-over connection lost");
                    continue;
                }
            },
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        shared.metrics.connections_rejected.inc();
                        tracing::debug!(%peer, "connection limit reached; closing");
                        drop(tcp);
                        continue;
                    };
                    match hand_over(&slot, tcp, peer, permit) {
                        Some(mine) => mine,
                        None => continue,
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let drain = shutdown.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _served = served;
            match &shared.tls {
                None => {
                    let info = ConnInfo::new(peer, Security::None);
                    if shared.forwarder.settings.lean_http1 {
                        crate::h1::serve(tcp, info, &shared, drain).await;
                    } else {
                        serve_connection(tcp, info, &shared, drain).await;
                    }
                }
                // The handshake runs in the connection task, bounded like a
                // request head; the config in use now serves the whole
                // connection, so a rotation never disturbs it.
                Some(tls) => match tls.accept(tcp, shared.limits.header_read_timeout).await {
                    Ok((stream, peer_info)) => {
                        let mut info = ConnInfo::new(peer, peer_info.security_policy).over_tls();
                        if let Some(id) = &peer_info.principal {
                            info = info.with_principal(id);
                        }
                        if shared.forwarder.settings.lean_http1 && !peer_info.h2 {
                            crate::h1::serve(stream, info, &shared, drain).await;
                        } else {
                            serve_connection(stream, info, &shared, drain).await;
                        }
                    }
                    Err(e) => {
                        shared.metrics.tls_handshake_failures.inc();
                        tracing::debug!(%peer, error = %e, "TLS handshake failed; connection refused");
                    }
                },
            }
            drop(permit);
            drop(alive);
        });
    }
    drop(listener);
    drop(alive_tx);
    tokio::select! {
        _ = alive_rx.recv() => {}
        _ = force.changed() => {}
    }
}

/// Sends a connection this worker accepted to the worker serving the
/// fewest, counting it there at once so the next accepts see it. Returns it
/// when this worker should serve it (it serves fewest, or the other worker
/// has stopped).
fn hand_over(
    slot: &WorkerSlot,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    permit: OwnedSemaphorePermit,
) -> Option<(
    tokio::net::TcpStream,
    std::net::SocketAddr,
    OwnedSemaphorePermit,
    Served,
)> {
    let to = slot.balancer.pick(slot.index);
    if to == slot.index {
        return Some((tcp, peer, permit, slot.balancer.serve(slot.index)));
    }
    let std = match tcp.into_std() {
        Ok(std) => std,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "cannot hand the connection over");
            return None;
        }
    };
    let handoff = Handoff {
        tcp: std,
        peer,
        permit,
        served: slot.balancer.serve(to),
    };
    match slot.balancer.inboxes[to].send(handoff) {
        Ok(()) => None,
        // That worker has stopped: serve it here.
        Err(mpsc::error::SendError(h)) => {
            drop(h.served);
            let tcp = tokio::net::TcpStream::from_std(h.tcp).ok()?;
            Some((tcp, h.peer, h.permit, slot.balancer.serve(slot.index)))
        }
    }
}

/// Opens a listening socket with `SO_REUSEPORT`, so each worker thread can
/// have its own listener on the same address and the kernel spreads
/// connections between them.
pub fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Serves one client connection over any byte stream until it closes, its
/// idle timeout passes, or `drain` flips.
pub async fn serve_connection<I>(
    io: I,
    info: ConnInfo,
    shared: &Shared,
    drain: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.metrics.active_connections.inc();
    serve_hyper(io, info, shared, drain).await;
    shared.metrics.active_connections.dec();
}

/// Serves a connection with hyper (HTTP/1.1 or HTTP/2), without counting
/// it in the connection gauge (the caller does).
pub async fn serve_hyper<I>(
    io: I,
    info: ConnInfo,
    shared: &Shared,
    mut drain: watch::Receiver<bool>,
) where
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
        async move {
            let resp = forwarder.handle(req, &info).await;
            Ok::<_, Infallible>(resp.map(|b| b.with_guard(guard)))
        }
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

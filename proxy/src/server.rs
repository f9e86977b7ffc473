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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

pub use crate::conn::{Limits, Shared};
use crate::forward::ConnInfo;
use crate::metrics::Security;

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
                    let lean = shared.forwarder.settings.lean_http1;
                    serve_client(tcp, info, &shared, drain, lean).await;
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
                        let lean = shared.forwarder.settings.lean_http1 && !peer_info.h2;
                        serve_client(stream, info, &shared, drain, lean).await;
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

/// Serves one client connection on the lane chosen for it, once: the lean
/// HTTP/1.1 lane (`lean`: HTTP/1.1 is enabled there and TLS did not
/// negotiate `h2`), which hands hyper's lane what it does not serve, with
/// the bytes it read; hyper's lane otherwise. Counted in the connection
/// gauge while open.
async fn serve_client<I>(
    io: I,
    info: ConnInfo,
    shared: &Shared,
    drain: watch::Receiver<bool>,
    lean: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.metrics.active_connections.inc();
    if lean {
        if let Some((rest, drain)) = crate::h1::serve(io, &info, shared, drain).await {
            crate::hyper_lane::serve(rest, info, shared, drain).await;
        }
    } else {
        crate::hyper_lane::serve(io, info, shared, drain).await;
    }
    shared.metrics.active_connections.dec();
}

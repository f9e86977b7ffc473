//! What every connection task of a worker shares: the request handler,
//! the connection gauges, the limits on what a client controls, and the
//! listener's TLS.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;

use crate::exec::Exec;
use crate::forward::Forwarder;
use crate::metrics::ProxyMetrics;
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
    pub(crate) builder: auto::Builder<Exec>,
}

// === impl Shared ===

impl Shared {
    /// Builds the HTTP/1.1 + HTTP/2 connection builder for `limits`.
    pub fn new(forwarder: Arc<Forwarder>, metrics: ProxyMetrics, limits: Limits) -> Self {
        let mut builder = auto::Builder::new(Exec);
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

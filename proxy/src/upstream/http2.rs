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
//! such a connection never sent is sent on a new one.
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
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::body::UpstreamBody;
use crate::tls::UpstreamTls;

/// How often a protocol failure of one endpoint is logged, at most.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

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
    /// Per endpoint, the connection in use; its lock is held while a
    /// connection is being opened, so concurrent first requests share one.
    conns: Mutex<HashMap<Key, Slot, foldhash::fast::RandomState>>,
    /// TLS configurations offering ALPN `h2`, made from (and keeping alive)
    /// the destination's, keyed by its config id.
    h2_tls: Mutex<HashMap<usize, (UpstreamTls, UpstreamTls), foldhash::fast::RandomState>>,
    /// When each endpoint's protocol failure was last logged.
    warned: Mutex<HashMap<Authority, Instant, foldhash::fast::RandomState>>,
}

/// An endpoint and the id of its TLS configuration (0: plain text).
type Key = (Authority, usize);

type Sender = SendRequest<UpstreamBody>;

/// An endpoint's connection, `None` before the first or after a failed connect.
type Slot = Arc<AsyncMutex<Option<Sender>>>;

// === impl Pool ===

impl Pool {
    /// An empty pool; connecting takes at most `connect_timeout` (TCP and
    /// TLS each).
    pub fn new(connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            connect_timeout,
            conns: Mutex::default(),
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
        let slot = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let (mut sender, mut fresh) = {
            let mut current = slot.lock().await;
            match current.as_ref().filter(|s| !s.is_closed()) {
                Some(s) => (s.clone(), false),
                None => {
                    // Boxed: the connect future (TCP + TLS handshake, ~6.6 KB)
                    // runs once per connection; held inline it made every
                    // HTTP/2 stream's task ~11 KB, copied on spawn and on
                    // completion (20% of a worker's CPU was memmove).
                    let s = Box::pin(self.connect(&key, tls.as_ref(), service)).await?;
                    *current = Some(s.clone());
                    (s, true)
                }
            }
        };
        loop {
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    // Never sent: the connection went away (GOAWAY, closed)
                    // before it took the request. A new one gets it.
                    Some(back) if !fresh => {
                        req = back;
                        let mut current = slot.lock().await;
                        sender = match current.as_ref().filter(|s| !s.is_closed()) {
                            // Another request replaced it meanwhile.
                            Some(s) => s.clone(),
                            None => {
                                let s = Box::pin(self.connect(&key, tls.as_ref(), service)).await?;
                                *current = Some(s.clone());
                                s
                            }
                        };
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
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    let (sender, conn) = builder
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| Http2Error::Protocol)?;
    tokio::spawn(conn);
    Ok(sender)
}

//! Pooled hyper-util clients for TLS upstreams, one per DestinationRule TLS
//! setting and destination host, refreshed when certificates rotate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use super::{ClientTls, TlsError, UpstreamTls, error_chain};
use crate::istio::ClientTlsSettings;
use crate::metrics::Security;

/// A pooled client for one TLS upstream.
pub type TlsClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// How long a failed TLS set-up is remembered before it is tried (and
/// logged) again, so a broken DestinationRule does not log per request.
const RETRY_FAILED: Duration = Duration::from_secs(5);

enum Slot<B> {
    Ready {
        generation: u64,
        client: Box<TlsClient<B>>,
        security: Security,
        upstream: Box<UpstreamTls>,
    },
    Failed {
        at: Instant,
        error: Arc<TlsError>,
    },
}

/// Hands out pooled clients for TLS upstreams. Connections of a client
/// that was replaced after a rotation finish their requests undisturbed.
pub struct UpstreamClients<B> {
    tls: Arc<ClientTls>,
    http: HttpConnector,
    pool_idle_timeout: Duration,
    slots: Mutex<HashMap<(ClientTlsSettings, String), Slot<B>>>,
}

// === impl UpstreamClients ===

impl<B> UpstreamClients<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Clients connecting with `http` (connect timeout, nodelay) and `tls`.
    pub fn new(tls: Arc<ClientTls>, http: HttpConnector, pool_idle_timeout: Duration) -> Self {
        Self {
            tls,
            http,
            pool_idle_timeout,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The outbound TLS configuration.
    pub fn tls(&self) -> &Arc<ClientTls> {
        &self.tls
    }

    /// The client for `host` under `settings` (not `DISABLE`) and whether it
    /// is mutual TLS. Requests must use `https://ENDPOINT` URIs.
    pub fn client(
        &self,
        settings: &ClientTlsSettings,
        host: &str,
    ) -> Result<(TlsClient<B>, Security), Arc<TlsError>> {
        self.slot(settings, host)
            .map(|(client, security, _)| (client, security))
    }

    /// How to open TLS to `host` under `settings` (not `DISABLE`), for a
    /// connection pool of one's own (the lean HTTP/1.1 lane's). Shares the
    /// cache, rotation and failure back-off of [`Self::client`].
    pub fn upstream_tls(
        &self,
        settings: &ClientTlsSettings,
        host: &str,
    ) -> Result<UpstreamTls, Arc<TlsError>> {
        self.slot(settings, host).map(|(_, _, upstream)| upstream)
    }

    fn slot(
        &self,
        settings: &ClientTlsSettings,
        host: &str,
    ) -> Result<(TlsClient<B>, Security, UpstreamTls), Arc<TlsError>> {
        let generation = self.tls.generation();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let key = (settings.clone(), host.to_string());
        match slots.get(&key) {
            Some(Slot::Ready {
                generation: g,
                client,
                security,
                upstream,
            }) if *g == generation => {
                return Ok((
                    TlsClient::clone(client),
                    *security,
                    UpstreamTls::clone(upstream),
                ));
            }
            Some(Slot::Failed { at, error }) if at.elapsed() < RETRY_FAILED => {
                return Err(error.clone());
            }
            _ => {}
        }
        match self.tls.connector_for(settings, host) {
            Ok(Some(upstream)) => {
                let client = Client::builder(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(self.pool_idle_timeout)
                    .build(upstream.https_connector(self.http.clone()));
                let security = upstream.security_policy();
                slots.insert(
                    key,
                    Slot::Ready {
                        generation,
                        client: Box::new(client.clone()),
                        security,
                        upstream: Box::new(upstream.clone()),
                    },
                );
                Ok((client, security, upstream))
            }
            Ok(None) => Err(Arc::new(TlsError::MissingField {
                mode: "DISABLE",
                field: "a TLS mode",
                fix: "DISABLE is plain text; use the plain-text client",
            })),
            Err(error) => {
                let error = Arc::new(error);
                tracing::warn!(
                    host,
                    "cannot set up TLS to the upstream: {}; requests get 503 (UF)",
                    error_chain(error.as_ref())
                );
                slots.insert(
                    key,
                    Slot::Failed {
                        at: Instant::now(),
                        error: error.clone(),
                    },
                );
                Err(error)
            }
        }
    }
}

impl<B> std::fmt::Debug for UpstreamClients<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClients")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

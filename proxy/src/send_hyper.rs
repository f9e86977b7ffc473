//! Sending a planned request over HTTP/1.1 through hyper-util's pooled
//! client (plain, or TLS for destinations whose DestinationRule asks for
//! it): the sender of hyper's lane for HTTP/1.1 destinations, and of the
//! lean lane's mirrored copies to TLS destinations.
//!
//! **Retries replay the request body**, so a request is retried only when
//! its body is empty or has a `content-length` of at most
//! [`crate::forward::ForwardSettings::max_replay_body`] (64 KiB by default); such a body is
//! read whole before the first try. A larger or chunked body is streamed
//! and tried once.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, Uri, Version};
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Incoming};

use crate::body::{ResponseBody, UpstreamBody};
use crate::forward::{
    Failure, Forwarder, MirrorCount, SMALL_RESPONSE, Shadow, pause_before_retry, shadow_host,
    strip_hop_by_hop,
};
use crate::routes::{Backend, Route};
use crate::tls::TlsClient;

// === impl Forwarder ===

impl Forwarder {
    /// Sends the request to the backend, retrying by the route's policy,
    /// all within the route timeout.
    ///
    /// A response whose `content-length` is at most [`SMALL_RESPONSE`] is
    /// read whole before it is returned, so its head and body reach the
    /// client in one write (one wake-up of the client instead of two);
    /// anything larger or of unknown length streams.
    pub(crate) async fn send_hyper(
        &self,
        route: &Route,
        backend: &Backend,
        parts: &mut http::request::Parts,
        body: Incoming,
        shadow: Option<Shadow<'_>>,
    ) -> Result<Response<ResponseBody>, Failure> {
        let timeout = route.timeout.unwrap_or(self.settings.default_timeout);
        let exchange = async {
            let resp = self.tries(route, backend, parts, body, shadow).await?;
            let (mut head, body) = resp.into_parts();
            strip_hop_by_hop(&mut head.headers);
            let body = match body.size_hint().exact() {
                Some(n) if n <= SMALL_RESPONSE => ResponseBody::bytes(
                    body.collect().await.map_err(|_| Failure::Reset)?.to_bytes(),
                ),
                _ => ResponseBody::stream(body),
            };
            Ok(Response::from_parts(head, body))
        };
        if timeout.is_zero() {
            exchange.await
        } else {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(Failure::Timeout))
        }
    }

    async fn tries(
        &self,
        route: &Route,
        backend: &Backend,
        parts: &mut http::request::Parts,
        body: Incoming,
        shadow: Option<Shadow<'_>>,
    ) -> Result<Response<Incoming>, Failure> {
        let policy = route.retry;
        // Decide once whether the body can be replayed (see the module docs).
        let prepared = if body.is_end_stream() {
            (None, Some(Bytes::new()))
        } else if (policy.attempts > 0 || shadow.is_some())
            && UpstreamBody::replayable(&body, self.settings.max_replay_body)
        {
            match UpstreamBody::buffer(body).await {
                Ok(b) => (None, Some(b)),
                // The client went away mid-body; nothing can be sent.
                Err(_) => return Err(Failure::Reset),
            }
        } else {
            (Some(body), None)
        };
        self.send(route, backend, parts, prepared, shadow).await
    }

    /// Sends a request whose body is either streamed or buffered for
    /// replay, retrying by the route's policy when it is buffered.
    async fn send(
        &self,
        route: &Route,
        backend: &Backend,
        parts: &mut http::request::Parts,
        (mut stream, replay): (Option<Incoming>, Option<Bytes>),
        shadow: Option<Shadow<'_>>,
    ) -> Result<Response<Incoming>, Failure> {
        let policy = route.retry;
        let max_attempts = if replay.is_some() { policy.attempts } else { 0 };
        // Bytes-backed: cloning per try does not copy the path.
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        if let (Some(shadow), Some(body)) = (shadow, &replay) {
            let timeout = route.timeout.unwrap_or(self.settings.default_timeout);
            self.spawn_mirror(shadow, parts, &path, body.clone(), timeout);
        }
        let tls_client = self.tls_client(backend)?;
        let scheme = if tls_client.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let mut attempt = 0;
        loop {
            let Some(endpoint) = backend.next_endpoint() else {
                return Err(Failure::NoHealthy);
            };
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(scheme.clone());
            uri.authority = Some(endpoint.clone());
            uri.path_and_query = Some(path.clone());
            let uri = Uri::from_parts(uri).map_err(|_| Failure::Connect)?;
            let body = match (&replay, stream.take()) {
                (Some(b), _) if b.is_empty() => UpstreamBody::Empty,
                (Some(b), _) => UpstreamBody::Full(Some(b.clone())),
                (None, Some(s)) => UpstreamBody::Stream(s),
                (None, None) => UpstreamBody::Empty,
            };
            let mut req = Request::new(body);
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = uri;
            *req.version_mut() = Version::HTTP_11;
            *req.headers_mut() = if attempt < max_attempts {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            let fut = match &tls_client {
                Some(client) => client.request(req),
                None => self.client.request(req),
            };
            let result = match policy.per_try_timeout {
                Some(t) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => r.map_err(classify),
                    Err(_) => Err(Failure::Timeout),
                },
                None => fut.await.map_err(classify),
            };
            let retry = attempt < max_attempts
                && match &result {
                    Ok(resp) => policy.on.status(resp.status()),
                    Err(f) => policy.on.failure(*f),
                };
            if !retry {
                return result;
            }
            drop(result);
            pause_before_retry(backend, &mut attempt).await;
        }
    }

    /// Sends a copy of the request to the mirror destination in the
    /// background. Its response is read and dropped; it never delays or
    /// fails the real request. Mirrored requests carry `Host: NAME-shadow`,
    /// as Envoy sends them, and are counted with `reporter="destination"`.
    pub(crate) fn spawn_mirror(
        &self,
        shadow: Shadow<'_>,
        parts: &http::request::Parts,
        path: &http::uri::PathAndQuery,
        body: Bytes,
        timeout: Duration,
    ) {
        let count = MirrorCount::new(&shadow);
        // A copy that cannot even be sent is counted with its failure.
        let unsent = |f: Failure| count.failed(f);
        let tls_client = match self.tls_client(&shadow.mirror.backend) {
            Ok(c) => c,
            Err(f) => return unsent(f),
        };
        let Some(endpoint) = shadow.mirror.backend.next_endpoint() else {
            return unsent(Failure::NoHealthy);
        };
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(if tls_client.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        });
        uri.authority = Some(endpoint.clone());
        uri.path_and_query = Some(path.clone());
        let Ok(uri) = Uri::from_parts(uri) else {
            return;
        };
        let mut headers = parts.headers.clone();
        if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok())
            && let Ok(v) = HeaderValue::from_str(&shadow_host(host))
        {
            headers.insert(header::HOST, v);
        }
        let mut req = Request::new(if body.is_empty() {
            UpstreamBody::Empty
        } else {
            UpstreamBody::Full(Some(body))
        });
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let client = self.client.clone();
        tokio::spawn(async move {
            let exchange = async {
                let resp = match &tls_client {
                    Some(tls) => tls.request(req),
                    None => client.request(req),
                };
                let resp = resp.await.map_err(classify)?;
                let status = resp.status();
                // Drain the body so the connection can be reused.
                let _ = resp.into_body().collect().await;
                Ok::<_, Failure>(status)
            };
            count.run(exchange, timeout).await;
        });
    }

    /// The pooled TLS client for `backend` when its DestinationRule asks for
    /// TLS. Failures to set it up are logged by the pool and answered like
    /// a failed connect (503, `UF`).
    pub(crate) fn tls_client(
        &self,
        backend: &Backend,
    ) -> Result<Option<TlsClient<UpstreamBody>>, Failure> {
        match &backend.tls {
            None => Ok(None),
            Some(settings) => {
                let pool = self.tls.as_ref().ok_or(Failure::Connect)?;
                let (client, _) = pool
                    .client(settings, &backend.metrics.id().name)
                    .map_err(|_| Failure::Connect)?;
                Ok(Some(client))
            }
        }
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> Failure {
    if e.is_connect() {
        Failure::Connect
    } else {
        Failure::Reset
    }
}

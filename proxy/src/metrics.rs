//! The metrics meshproxy exports: Istio's standard request metrics per
//! destination version, and the proxy's own gauges.
//!
//! The request path never builds a label set: each compiled destination owns
//! a [`DestinationMetrics`] that caches the counter and histogram handles per
//! (status code, flags, protocol) it has seen, in a copy-on-write list read
//! without locks.

mod histogram;
mod labels;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::{DurationHistogram, ISTIO_DURATION_BUCKETS_MS};
pub use labels::{HandoffLabels, RequestLabels};

/// Envoy-style response flags, as a small bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

// === impl Flags ===

impl Flags {
    /// No flag (`-`).
    pub const NONE: Self = Self(0);
    /// `UF`: upstream connection failure.
    pub const UF: Self = Self(1);
    /// `UT`: upstream request timeout.
    pub const UT: Self = Self(2);
    /// `UH`: no healthy upstream endpoint.
    pub const UH: Self = Self(4);
    /// `FI`: the request was aborted by fault injection.
    pub const FI: Self = Self(8);
    /// `DI`: the request was delayed by fault injection.
    pub const DI: Self = Self(16);
    /// `NR`: no route matched.
    pub const NR: Self = Self(32);
    /// `UC`: the upstream connection was terminated (reset) before a response.
    pub const UC: Self = Self(64);
    /// `URX`: the retry limit was reached.
    pub const URX: Self = Self(128);
    /// `UPE`: the upstream did not speak the protocol the port declares
    /// (an HTTP/1.1 server behind a port marked `grpc` or `http2`).
    pub const UPE: Self = Self(256);
    /// `DC`: the client ended the request (a cancelled gRPC call) before
    /// the response was complete.
    pub const DC: Self = Self(512);

    const NAMES: [(Self, &'static str); 10] = [
        (Self::UH, "UH"),
        (Self::UF, "UF"),
        (Self::UC, "UC"),
        (Self::UPE, "UPE"),
        (Self::DC, "DC"),
        (Self::UT, "UT"),
        (Self::NR, "NR"),
        (Self::URX, "URX"),
        (Self::DI, "DI"),
        (Self::FI, "FI"),
    ];

    /// Adds `other`'s flags.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Does this set hold all of `other`?
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Envoy's text form (`-`, `UF`, `DI,UF`), interned so label sets hold a
    /// `&'static str`.
    pub fn as_str(self) -> &'static str {
        static TABLE: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
        let table = TABLE.get_or_init(|| {
            (0..1u16 << Self::NAMES.len())
                .map(|bits| {
                    let names: Vec<&str> = Self::NAMES
                        .iter()
                        .filter(|(f, _)| Self(bits).contains(*f))
                        .map(|(_, n)| *n)
                        .collect();
                    if names.is_empty() {
                        "-"
                    } else {
                        // 1024 short strings, leaked once for the process.
                        Box::leak(names.join(",").into_boxed_str()) as &'static str
                    }
                })
                .collect()
        });
        table[usize::from(self.0)]
    }
}

/// The request protocol label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP (1.1 or 2).
    Http,
    /// gRPC (`content-type: application/grpc*`).
    Grpc,
}

// === impl Protocol ===

impl Protocol {
    /// `http` or `grpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        }
    }
}

/// What the client was answered: the HTTP status and, for a gRPC call,
/// the gRPC status (`grpc-status`, 0..=16) the call ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResponseStatus {
    /// The HTTP status code.
    pub http: u16,
    /// The gRPC status code; `None` for plain HTTP.
    pub grpc: Option<u8>,
}

// === impl ResponseStatus ===

impl ResponseStatus {
    /// A gRPC call's outcome: HTTP `http`, gRPC status `grpc`.
    pub fn grpc(http: u16, grpc: u8) -> Self {
        Self {
            http,
            grpc: Some(grpc),
        }
    }

    /// The `grpc_response_status` label: the code in decimal (`"14"`), or
    /// empty for plain HTTP, as Istio writes it.
    pub fn grpc_label(self) -> &'static str {
        const CODES: [&str; 17] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16",
        ];
        self.grpc
            .and_then(|c| CODES.get(usize::from(c)).copied())
            .unwrap_or("")
    }
}

impl From<http::StatusCode> for ResponseStatus {
    fn from(status: http::StatusCode) -> Self {
        status.as_u16().into()
    }
}

impl From<u16> for ResponseStatus {
    fn from(http: u16) -> Self {
        Self { http, grpc: None }
    }
}

/// Whether the client connection was mutually authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    /// Plain text or server-only TLS.
    None,
    /// mTLS with a verified client certificate.
    MutualTls,
}

// === impl Security ===

impl Security {
    /// `none` or `mutual_tls`, as Istio labels it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::MutualTls => "mutual_tls",
        }
    }
}

/// All metric families of the proxy.
#[derive(Clone, Debug)]
pub struct ProxyMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, DurationHistogram>,
    /// Open client connections.
    pub active_connections: Gauge,
    /// Generation of the live configuration (1 after the first load).
    pub config_generation: Gauge,
    /// Configuration loads rejected since start.
    pub config_reload_failures: Counter,
    /// Client connections refused or closed because `--max-connections` was reached.
    pub connections_rejected: Counter,
    /// Client TLS handshakes that failed (no or bad client certificate, plain text, ...).
    pub tls_handshake_failures: Counter,
    http1_handoffs: Family<HandoffLabels, Counter>,
}

// === impl ProxyMetrics ===

impl ProxyMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            durations: Family::default(),
            active_connections: Gauge::default(),
            config_generation: Gauge::default(),
            config_reload_failures: Counter::default(),
            connections_rejected: Counter::default(),
            tls_handshake_failures: Counter::default(),
            http1_handoffs: Family::default(),
        };
        // prometheus-client appends `_total` to counters.
        registry.register(
            "istio_requests",
            "Requests handled, by destination version and response",
            m.requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Time from request start to response headers, in milliseconds",
            m.durations.clone(),
        );
        registry.register(
            "meshproxy_active_connections",
            "Open client connections",
            m.active_connections.clone(),
        );
        registry.register(
            "meshproxy_config_generation",
            "Generation of the live configuration, incremented on every accepted load",
            m.config_generation.clone(),
        );
        registry.register(
            "meshproxy_config_reload_failures",
            "Configuration loads rejected because the new configuration was invalid",
            m.config_reload_failures.clone(),
        );
        registry.register(
            "meshproxy_connections_rejected",
            "Client connections closed at once because the connection limit was reached",
            m.connections_rejected.clone(),
        );
        registry.register(
            "meshproxy_tls_handshake_failures",
            "Client TLS handshakes refused: no or untrusted client certificate, identity not allowed, not TLS",
            m.tls_handshake_failures.clone(),
        );
        registry.register(
            "meshproxy_http1_handoffs",
            "HTTP/1.1 connections the lean lane handed to hyper, by reason",
            m.http1_handoffs.clone(),
        );
        m
    }

    /// Counts a connection the lean HTTP/1.1 lane handed to hyper.
    pub fn http1_handoff(&self, reason: &'static str) {
        self.http1_handoffs
            .get_or_create(&HandoffLabels { reason })
            .inc();
    }

    /// A handle for one destination (service + version).
    pub fn destination(&self, dest: DestinationId) -> DestinationMetrics {
        DestinationMetrics {
            inner: Arc::new(DestInner {
                id: dest,
                requests: self.requests.clone(),
                durations: self.durations.clone(),
                cache: ArcSwap::from_pointee(Vec::new()),
            }),
        }
    }

    /// The counter for a label set (tests and diagnostics).
    pub fn requests_for(&self, labels: &RequestLabels) -> u64 {
        self.requests.get(labels).map_or(0, |c| c.get())
    }
}

/// Who a request went to, as metric labels spell it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DestinationId {
    /// `discounts.default.svc.cluster.local`.
    pub service: Arc<str>,
    /// `discounts`.
    pub name: Arc<str>,
    /// `default`.
    pub namespace: Arc<str>,
    /// `v2`, or `unknown` when the route names no subset.
    pub version: Arc<str>,
}

// === impl DestinationId ===

impl DestinationId {
    /// The pseudo destination of requests that matched no route.
    pub fn unknown() -> Self {
        let u: Arc<str> = Arc::from("unknown");
        Self {
            service: u.clone(),
            name: u.clone(),
            namespace: u.clone(),
            version: u,
        }
    }
}

/// Cheap per-destination handle used on the request path.
#[derive(Clone, Debug)]
pub struct DestinationMetrics {
    inner: Arc<DestInner>,
}

#[derive(Debug)]
struct DestInner {
    id: DestinationId,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, DurationHistogram>,
    cache: ArcSwap<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    key: SlotKey,
    counter: Counter,
    histogram: DurationHistogram,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SlotKey {
    reporter: &'static str,
    code: ResponseStatus,
    flags: Flags,
    protocol: Protocol,
    security: Security,
    principal: Arc<str>,
}

// === impl DestinationMetrics ===

impl DestinationMetrics {
    /// The destination's labels.
    pub fn id(&self) -> &DestinationId {
        &self.inner.id
    }

    /// Counts one finished request, as the client-side proxy
    /// (`reporter="source"`), from a client identified as `principal`
    /// (`unknown` without mTLS).
    pub fn record(
        &self,
        code: impl Into<ResponseStatus>,
        flags: Flags,
        protocol: Protocol,
        security: Security,
        principal: &Arc<str>,
        elapsed: Duration,
    ) {
        self.record_as(
            "source",
            code.into(),
            flags,
            protocol,
            security,
            principal,
            elapsed,
        );
    }

    /// Counts one mirrored (shadow) request. Istio reports those only from
    /// the destination's sidecar, so they carry `reporter="destination"`.
    pub fn record_mirror(
        &self,
        code: impl Into<ResponseStatus>,
        flags: Flags,
        protocol: Protocol,
        security: Security,
        principal: &Arc<str>,
        elapsed: Duration,
    ) {
        self.record_as(
            "destination",
            code.into(),
            flags,
            protocol,
            security,
            principal,
            elapsed,
        );
    }

    #[allow(clippy::too_many_arguments)] // the label values, then the observation
    fn record_as(
        &self,
        reporter: &'static str,
        code: ResponseStatus,
        flags: Flags,
        protocol: Protocol,
        security: Security,
        principal: &Arc<str>,
        elapsed: Duration,
    ) {
        let key = SlotKey {
            reporter,
            code,
            flags,
            protocol,
            security,
            principal: principal.clone(),
        };
        {
            let cache = self.inner.cache.load();
            if let Some(slot) = cache.iter().find(|s| s.key == key) {
                slot.counter.inc();
                slot.histogram.observe(elapsed);
                return;
            }
        }
        // First request with this code/flag combination: resolve the series
        // once and publish it for the next requests.
        let labels = self.labels(key.clone());
        let counter = self.inner.requests.get_or_create_owned(&labels);
        let histogram = self.inner.durations.get_or_create_owned(&labels);
        counter.inc();
        histogram.observe(elapsed);
        self.inner.cache.rcu(|old| {
            let mut v: Vec<Slot> = old
                .iter()
                .map(|s| Slot {
                    key: s.key.clone(),
                    counter: s.counter.clone(),
                    histogram: s.histogram.clone(),
                })
                .collect();
            if !v.iter().any(|s| s.key == key) {
                v.push(Slot {
                    key: key.clone(),
                    counter: counter.clone(),
                    histogram: histogram.clone(),
                });
            }
            v
        });
    }

    fn labels(&self, key: SlotKey) -> RequestLabels {
        let id = &self.inner.id;
        RequestLabels {
            reporter: key.reporter,
            source_workload: "meshproxy",
            destination_service: id.service.clone(),
            destination_service_name: id.name.clone(),
            destination_service_namespace: id.namespace.clone(),
            destination_version: id.version.clone(),
            request_protocol: key.protocol.as_str(),
            response_code: key.code.http,
            grpc_response_status: key.code.grpc_label(),
            response_flags: key.flags.as_str(),
            connection_security_policy: key.security.as_str(),
            source_principal: key.principal,
        }
    }
}

/// Encodes the registry as Prometheus text (exposition format 0.0.4).
///
/// prometheus-client writes OpenMetrics text; Prometheus' classic text parser
/// (what `promtool check metrics` and many scrapers use) differs in three
/// ways that matter here: counters are typed under their sample name
/// (`# TYPE istio_requests_total counter`), there are no `# UNIT` lines and
/// no `# EOF` terminator. This rewrites exactly those lines.
pub fn encode_prometheus_text(registry: &Registry) -> String {
    let mut open_metrics = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut open_metrics, registry);
    let mut out = String::with_capacity(open_metrics.len() + 256);
    for line in open_metrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str("_total counter\n");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ")
            && let Some((name, help)) = rest.split_once(' ')
            && open_metrics.contains(&format!("# TYPE {name} counter"))
        {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push_str("_total ");
            out.push_str(help);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The content type of [`encode_prometheus_text`]'s output.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    fn dest() -> DestinationId {
        DestinationId {
            service: "discounts.default.svc.cluster.local".into(),
            name: "discounts".into(),
            namespace: "default".into(),
            version: "v2".into(),
        }
    }

    #[test]
    fn flags_print_like_envoy() {
        assert_eq!(Flags::NONE.as_str(), "-");
        assert_eq!(Flags::UF.as_str(), "UF");
        assert_eq!(Flags::DI.with(Flags::UT).as_str(), "UT,DI");
    }

    #[test]
    fn records_through_cached_handles_and_encodes_istio_names() {
        let mut registry = Registry::default();
        let m = ProxyMetrics::register(&mut registry);
        let d = m.destination(dest());
        let unknown: Arc<str> = Arc::from("unknown");
        for _ in 0..3 {
            d.record(
                200,
                Flags::NONE,
                Protocol::Http,
                Security::None,
                &unknown,
                Duration::from_millis(2),
            );
        }
        d.record(
            503,
            Flags::UF,
            Protocol::Http,
            Security::None,
            &unknown,
            Duration::from_millis(1),
        );
        let peer: Arc<str> = Arc::from("spiffe://cluster.local/ns/default/sa/web");
        d.record(
            200,
            Flags::NONE,
            Protocol::Http,
            Security::MutualTls,
            &peer,
            Duration::from_millis(1),
        );
        d.record(
            ResponseStatus::grpc(200, 14),
            Flags::UF,
            Protocol::Grpc,
            Security::None,
            &unknown,
            Duration::from_millis(1),
        );
        let labels = d.labels(SlotKey {
            reporter: "source",
            code: 200.into(),
            flags: Flags::NONE,
            protocol: Protocol::Http,
            security: Security::None,
            principal: unknown.clone(),
        });
        assert_eq!(m.requests_for(&labels), 3);

        let text = encode_prometheus_text(&registry);
        assert!(
            text.contains("# TYPE istio_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("istio_requests_total{reporter=\"source\",source_workload=\"meshproxy\",destination_service=\"discounts.default.svc.cluster.local\",destination_service_name=\"discounts\",destination_service_namespace=\"default\",destination_version=\"v2\",request_protocol=\"http\",response_code=\"503\",grpc_response_status=\"\",response_flags=\"UF\",connection_security_policy=\"none\",source_principal=\"unknown\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("request_protocol=\"grpc\",response_code=\"200\",grpc_response_status=\"14\",response_flags=\"UF\""),
            "{text}"
        );
        assert!(
            text.contains("connection_security_policy=\"mutual_tls\",source_principal=\"spiffe://cluster.local/ns/default/sa/web\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "istio_request_duration_milliseconds_bucket{le=\"5.0\",reporter=\"source\""
            ) || text.contains("istio_request_duration_milliseconds_bucket{reporter=\"source\""),
            "{text}"
        );
        assert!(
            text.contains("istio_request_duration_milliseconds_count{"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
}

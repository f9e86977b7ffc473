//! Command-line flags of `meshproxy`, and their validation into [`Settings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::Settings;
use crate::forward::ForwardSettings;
use crate::server::Limits;
use crate::tls::{MeshIdentityFiles, ServerTlsFiles, SpiffeId, TlsSettings};

/// meshproxy: an HTTP proxy that routes by Istio VirtualServices and
/// DestinationRules and exports Istio's metrics.
/// The engine for plain-text HTTP/1.1 client connections (`--http1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Http1Engine {
    /// The lean lane ([`crate::h1`]); hyper serves what it hands over.
    Lean,
    /// hyper for every connection.
    Hyper,
}

/// The command line of the `meshproxy` binary (raw values; `Settings`
/// is built from them).
#[derive(Clone, Debug, Parser)]
#[command(name = "meshproxy", version, about, long_about = None)]
pub struct Args {
    /// Configuration directory: Istio YAML files plus endpoints.yaml, watched for changes.
    #[arg(
        long,
        value_name = "DIR",
        env = "MESHPROXY_CONFIG",
        required_unless_present = "kube",
        conflicts_with = "kube"
    )]
    pub config: Option<PathBuf>,
    /// Cluster mode: watch VirtualServices, DestinationRules, EndpointSlices and Pods in a Kubernetes namespace (needs the `kube` cargo feature).
    #[arg(long)]
    pub kube: bool,
    /// Namespace to watch with --kube (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Kubeconfig for --kube (default: KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of the proxy listener (HTTP/1.1 and HTTP/2 cleartext).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15001")]
    pub listen: SocketAddr,
    /// Address of the admin listener (/metrics, /ready, /config).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15000")]
    pub admin: SocketAddr,
    /// Proxy worker threads, each with its own event loop, listener (SO_REUSEPORT) and upstream pool (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Largest request head (request line + headers) in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Time a client has to send its request headers.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Close client connections idle (no request in flight) for this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Maximum open client connections; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Upstream timeout for routes without `timeout` (Envoy's default); 0s disables.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub default_timeout: Duration,
    /// Upstream TCP connect timeout.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// On SIGTERM, wait this long for in-flight requests before exiting.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Log one line per request (target `meshproxy::access`).
    #[arg(long)]
    pub access_log: bool,
    /// Sticky sessions: pin each client to the version it first got with this cookie, while that version keeps a weight above 0.
    #[arg(long, value_name = "NAME")]
    pub sticky_cookie: Option<String>,
    /// Plain-text HTTP/1.1 engine: `lean` (httparse and a direct upstream exchange; hyper takes whatever it does not serve) or `hyper` (hyper for everything).
    #[arg(long, value_name = "ENGINE", default_value = "lean")]
    pub http1: Http1Engine,
    /// Serve TLS on the proxy listener with this PEM certificate chain (ALPN h2, http/1.1).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (keep it mode 0600; never logged).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: require client certificates signed by this PEM CA.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Accept only clients whose certificate carries this SPIFFE ID (repeatable).
    #[arg(
        long = "tls-allow-identity",
        value_name = "SPIFFE_ID",
        requires = "tls_client_ca"
    )]
    pub tls_allow_identities: Vec<String>,
    /// Certificate presented to ISTIO_MUTUAL upstreams (default: --tls-cert when --tls-client-ca is set).
    #[arg(long, value_name = "FILE", requires_all = ["workload_key", "mesh_ca"])]
    pub workload_cert: Option<PathBuf>,
    /// PEM private key of --workload-cert (default: --tls-key).
    #[arg(long, value_name = "FILE", requires_all = ["workload_cert", "mesh_ca"])]
    pub workload_key: Option<PathBuf>,
    /// Mesh CA verifying ISTIO_MUTUAL upstreams and SIMPLE/MUTUAL ones without caCertificates (default: --tls-client-ca).
    #[arg(long, value_name = "FILE", requires_all = ["workload_cert", "workload_key"])]
    pub mesh_ca: Option<PathBuf>,
    /// How often certificate and key files are re-read to pick up rotations.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Duration,
}

/// A flag value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct ArgsError {
    /// The flag, without dashes.
    pub flag: &'static str,
    /// What is wrong and the fix.
    pub message: String,
}

// === impl Args ===

impl Args {
    /// Validates the flags into settings.
    pub fn into_settings(self) -> Result<Settings, ArgsError> {
        let Self {
            config,
            kube,
            namespace,
            kubeconfig,
            listen,
            admin,
            workers,
            max_header_bytes,
            header_read_timeout,
            idle_timeout,
            max_connections,
            default_timeout,
            connect_timeout,
            drain_timeout,
            access_log,
            sticky_cookie,
            http1,
            tls_cert,
            tls_key,
            tls_client_ca,
            tls_allow_identities,
            workload_cert,
            workload_key,
            mesh_ca,
            tls_reload_interval,
        } = self;
        if max_header_bytes < 8192 {
            return Err(ArgsError {
                flag: "max-header-bytes",
                message: format!("{max_header_bytes} is too small: use at least 8192"),
            });
        }
        if let Some(name) = &sticky_cookie
            && (name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(ArgsError {
                flag: "sticky-cookie",
                message: format!(
                    "{name:?} is not a cookie name: use letters, digits, '-', '_' and '.'"
                ),
            });
        }
        if max_connections == 0 {
            return Err(ArgsError {
                flag: "max-connections",
                message: "0 would refuse every client: use at least 1".into(),
            });
        }
        if workers == Some(0) {
            return Err(ArgsError {
                flag: "workers",
                message: "0 workers cannot serve: use at least 1".into(),
            });
        }
        for (flag, d) in [
            ("header-read-timeout", header_read_timeout),
            ("idle-timeout", idle_timeout),
            ("connect-timeout", connect_timeout),
            ("tls-reload-interval", tls_reload_interval),
        ] {
            if d.is_zero() {
                return Err(ArgsError {
                    flag,
                    message: "0s is not a timeout: use a positive duration such as 10s".into(),
                });
            }
        }
        for (flag, given) in [
            ("namespace", namespace.is_some()),
            ("kubeconfig", kubeconfig.is_some()),
        ] {
            if given && !kube {
                return Err(ArgsError {
                    flag,
                    message: "only applies to cluster mode: add --kube (or drop it with --config)"
                        .into(),
                });
            }
        }
        if kube && !cfg!(feature = "kube") {
            return Err(ArgsError {
                flag: "kube",
                message: "this meshproxy was built without cluster mode: rebuild it with `cargo build -p meshproxy --features kube`".into(),
            });
        }
        let allowed_identities = tls_allow_identities
            .iter()
            .map(|id| id.parse::<SpiffeId>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ArgsError {
                flag: "tls-allow-identity",
                // The message starts with the flag already.
                message: e
                    .to_string()
                    .trim_start_matches("--tls-allow-identity ")
                    .to_string(),
            })?;
        let inbound = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(ServerTlsFiles {
                cert,
                key,
                client_ca: tls_client_ca,
                allowed_identities,
            }),
            _ => None,
        };
        // The proxy's identity towards ISTIO_MUTUAL upstreams: explicit
        // flags, else the inbound mTLS certificate and client CA.
        let mesh = match (workload_cert, workload_key, mesh_ca) {
            (Some(cert), Some(key), Some(ca)) => Some(MeshIdentityFiles { cert, key, ca }),
            _ => inbound.as_ref().and_then(|i| {
                i.client_ca.clone().map(|ca| MeshIdentityFiles {
                    cert: i.cert.clone(),
                    key: i.key.clone(),
                    ca,
                })
            }),
        };
        Ok(Settings {
            config_dir: config.unwrap_or_default(),
            kube: kube.then_some(crate::KubeSource {
                namespace,
                kubeconfig,
            }),
            listen,
            admin,
            workers,
            limits: Limits {
                max_header_bytes,
                header_read_timeout,
                idle_timeout,
                max_connections,
            },
            forward: ForwardSettings {
                default_timeout,
                connect_timeout,
                access_log,
                sticky_cookie,
                lean_http1: http1 == Http1Engine::Lean,
                ..ForwardSettings::default()
            },
            drain_timeout,
            reload_debounce: Duration::from_millis(100),
            tls: TlsSettings {
                inbound,
                mesh,
                reload_interval: tls_reload_interval,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let s = Args::parse_from(["meshproxy", "--config", "x"])
            .into_settings()
            .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:15001");
        assert_eq!(s.admin.to_string(), "127.0.0.1:15000");
        assert_eq!(s.limits.max_header_bytes, 65536);
    }

    #[test]
    fn bad_values_name_the_flag_and_fix() {
        let e = Args::parse_from(["meshproxy", "--config", "x", "--max-header-bytes", "100"])
            .into_settings()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--max-header-bytes: 100 is too small: use at least 8192"
        );
        let e = Args::parse_from(["meshproxy", "--config", "x", "--idle-timeout", "0s"])
            .into_settings()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--idle-timeout: 0s is not a timeout: use a positive duration such as 10s"
        );
    }

    #[test]
    fn kube_mode_replaces_the_config_directory() {
        let s = Args::parse_from(["meshproxy", "--kube", "-n", "shop"]).into_settings();
        if cfg!(feature = "kube") {
            let s = s.unwrap();
            assert_eq!(
                s.kube,
                Some(crate::KubeSource {
                    namespace: Some("shop".into()),
                    kubeconfig: None
                })
            );
        } else {
            assert!(s.unwrap_err().to_string().starts_with(
                "--kube: this meshproxy was built without cluster mode: rebuild it with"
            ));
        }
        assert!(Args::try_parse_from(["meshproxy", "--kube", "--config", "x"]).is_err());
        let e = Args::parse_from(["meshproxy", "-n", "shop", "--config", "x"])
            .into_settings()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--namespace: only applies to cluster mode: add --kube (or drop it with --config)"
        );
        assert!(
            Args::try_parse_from(["meshproxy"]).is_err(),
            "--config or --kube is required"
        );
    }
}

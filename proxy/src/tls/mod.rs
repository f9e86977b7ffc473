//! Mutual TLS for meshproxy, on tokio-rustls with the `ring` provider.
//!
//! - [`ServerTls`]: the inbound side. A certificate and key (`--tls-cert`,
//!   `--tls-key`), ALPN `h2` and `http/1.1`, and with a client CA
//!   (`--tls-client-ca`) mandatory client certificates verified at the
//!   handshake, optionally restricted to an allow-list of SPIFFE identities.
//!   [`ServerTls::accept`] returns the [`PeerInfo`] the metrics need
//!   (`connection_security_policy`, `source_principal`).
//! - [`ClientTls`]: the outbound side, one TLS connector per DestinationRule
//!   `trafficPolicy.tls` (`DISABLE`, `SIMPLE`, `MUTUAL`, `ISTIO_MUTUAL`),
//!   honouring `sni` and `subjectAltNames`; [`UpstreamClients`] turns those
//!   into pooled hyper-util clients for the forwarder.
//! - Rotation: both sides rebuild from their files when the files' contents
//!   change ([`Reloadable`], polled by [`spawn_watcher`]). A broken new pair
//!   is rejected with a log line naming the file; the previous configuration
//!   keeps serving, and connections already established are never touched.
//!
//! Private keys never appear in logs or errors: error messages name the key
//! file and what is wrong with it, never its contents, and the types holding
//! keys print only their paths.

mod client;
mod files;
mod identity;
mod pool;
mod server;

#[cfg(test)]
pub(crate) mod testing;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use client::{ClientTls, MeshIdentityFiles, UpstreamTls};
pub use files::{CertKeyPair, Reload, Reloadable, pem_certificates, spawn_watcher};
pub use identity::{CertNames, SpiffeId, cert_names, spiffe_id_of};
pub use pool::{TlsClient, UpstreamClients};
pub use server::{PeerInfo, ServerTls, ServerTlsFiles};

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// TLS settings of one proxy, from its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Inbound TLS on the proxy listener (`--tls-cert`, `--tls-key`, ...).
    pub inbound: Option<ServerTlsFiles>,
    /// The proxy's workload identity for `ISTIO_MUTUAL` upstreams (and the
    /// default CA for `SIMPLE`/`MUTUAL` ones).
    pub mesh: Option<MeshIdentityFiles>,
    /// How often certificate and key files are checked for rotation.
    pub reload_interval: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            inbound: None,
            mesh: None,
            reload_interval: Duration::from_secs(2),
        }
    }
}

/// The crypto provider every config in this module uses: rustls' `ring`
/// backend (the workspace does not build aws-lc).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// What can go wrong setting up TLS. Every variant names the file or flag,
/// what is wrong and how to fix it; none carries key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}; check the path and that meshproxy may read it")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate file holds no certificate.
    #[error(
        "{path} contains no PEM certificate (`-----BEGIN CERTIFICATE-----`); \
         point the flag or field at the certificate file (e.g. NAME.crt from `meshctl certs`)"
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate file is not well-formed PEM.
    #[error("{path} is not a well-formed PEM certificate file; replace it with a PEM certificate")]
    CertificatePem {
        /// The file.
        path: PathBuf,
        /// The PEM error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate does not parse as X.509.
    #[error(
        "{path}: certificate number {index} is not a valid X.509 certificate; replace the file"
    )]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// 1-based position in the file.
        index: usize,
    },
    /// A key file holds no usable private key. The PEM parser's own message
    /// is deliberately dropped: it may quote bytes of the key.
    #[error(
        "{path} contains no usable PEM private key ({reason}); point the flag or field at the \
         key file (PKCS#8, SEC1 or PKCS#1, e.g. NAME.key from `meshctl certs`)"
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
        /// What was found instead, without any of the file's contents.
        reason: &'static str,
    },
    /// The key is of a type the ring provider cannot sign with.
    #[error("{path}: unsupported private key type; use an ECDSA P-256/P-384, Ed25519 or RSA key")]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate.
    #[error(
        "{key} is not the private key of the certificate in {cert}; \
         install a matching certificate and key (replace both files together)"
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The leaf certificate is outside its validity period.
    #[error(
        "the certificate in {path} is {state} (valid from {not_before} to {not_after}, \
         UNIX seconds); issue a new one (e.g. `meshctl certs`)"
    )]
    NotValidNow {
        /// The file.
        path: PathBuf,
        /// `expired` or `not yet valid`.
        state: &'static str,
        /// `notBefore` in UNIX seconds.
        not_before: i64,
        /// `notAfter` in UNIX seconds.
        not_after: i64,
    },
    /// A CA file holds no certificate usable as a trust anchor.
    #[error(
        "{path}: no usable CA certificate ({reason}); point the flag or field at a PEM CA file"
    )]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused to build a configuration.
    #[error("building the {what} TLS configuration")]
    Config {
        /// `inbound` / `outbound`.
        what: &'static str,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// An allow-list entry is not a SPIFFE ID.
    #[error(
        "--tls-allow-identity {value:?}: not a SPIFFE ID; \
         use spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT"
    )]
    InvalidIdentity {
        /// The value as given.
        value: String,
    },
    /// An allow-list without a client CA would allow nobody and verify nothing.
    #[error(
        "--tls-allow-identity needs --tls-client-ca: identities come from verified \
         client certificates"
    )]
    AllowListWithoutClientCa,
    /// A DestinationRule field the mode needs is missing.
    #[error("trafficPolicy.tls.mode {mode} needs {field}: {fix}")]
    MissingField {
        /// `SIMPLE`, `MUTUAL`, ...
        mode: &'static str,
        /// The missing field(s).
        field: &'static str,
        /// How to fix it.
        fix: &'static str,
    },
    /// `sni` (or the destination host) is not a valid server name.
    #[error(
        "{field} {value:?} is not a valid DNS name or IP address; \
         set trafficPolicy.tls.sni to the upstream's certificate name"
    )]
    InvalidServerName {
        /// `trafficPolicy.tls.sni` or `destination host`.
        field: &'static str,
        /// The value.
        value: String,
    },
}

/// `error` and its sources joined with `: `, for log lines.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

//! Outbound TLS: a connector per DestinationRule `trafficPolicy.tls`.
//!
//! | mode | verifies the upstream with | presents |
//! |---|---|---|
//! | `DISABLE` | (plain text) | nothing |
//! | `SIMPLE` | `caCertificates`, else the mesh CA | nothing |
//! | `MUTUAL` | `caCertificates`, else the mesh CA | `clientCertificate` + `privateKey` |
//! | `ISTIO_MUTUAL` | the mesh CA | the proxy's own workload certificate |
//!
//! Name checks: with `subjectAltNames`, the upstream's certificate must carry
//! one of them (URI, DNS or IP SAN). Without, `SIMPLE` and `MUTUAL` check the
//! server name (`sni`, else the destination host) as HTTPS does, and
//! `ISTIO_MUTUAL` accepts any workload certificate the mesh CA signed (the
//! mesh identity is the check, as in Istio when no SANs are configured).
//! Verification is never skipped: a mode that has no CA to verify with is a
//! configuration error, not an insecure connection.
//!
//! Relative file paths in a DestinationRule are resolved against the
//! proxy's config directory.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::files::{CertKeyPair, Files, Poll, Reloadable, roots};
use super::identity::cert_names;
use super::{TlsError, error_chain, provider};
use crate::istio::{ClientTlsSettings, TlsMode};
use crate::metrics::Security;

/// The proxy's own workload identity, used for `ISTIO_MUTUAL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshIdentityFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM mesh CA certificates.
    pub ca: PathBuf,
}

/// A loaded [`MeshIdentityFiles`].
#[derive(Debug)]
struct MeshIdentity {
    pair: CertKeyPair,
    roots: Arc<RootCertStore>,
}

/// What a client config is built from; connections to different hosts with
/// the same settings share one config (and its session cache).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    mode: &'static str,
    client_cert: Option<(PathBuf, PathBuf)>,
    ca: Option<PathBuf>,
    subject_alt_names: Vec<String>,
}

// === impl Key ===

impl Key {
    /// The files this config reads (the mesh identity's are watched apart).
    fn paths(&self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        if let Some((cert, key)) = &self.client_cert {
            paths.push(cert.clone());
            paths.push(key.clone());
        }
        paths.extend(self.ca.clone());
        paths
    }

    /// Does the config use the mesh identity (and so need a rebuild when it rotates)?
    fn uses_mesh(&self) -> bool {
        self.mode == "ISTIO_MUTUAL" || self.ca.is_none()
    }
}

struct Entry {
    config: Arc<ClientConfig>,
    mesh_generation: u64,
    fingerprint: u64,
}

/// Outbound TLS for every DestinationRule, with configs cached per
/// settings and rebuilt when their files (or the mesh identity) rotate.
pub struct ClientTls {
    base_dir: Option<PathBuf>,
    mesh: Option<Arc<Reloadable<MeshIdentity>>>,
    alpn: Vec<Vec<u8>>,
    cache: Mutex<HashMap<Key, Entry>>,
    /// Incremented whenever a cached config is rebuilt by [`Poll::poll`].
    rebuilds: AtomicU64,
}

/// How to open TLS to one upstream: a connector and the server name (SNI).
#[derive(Clone)]
pub struct UpstreamTls {
    config: Arc<ClientConfig>,
    connector: TlsConnector,
    server_name: ServerName<'static>,
    policy: Security,
}

// === impl ClientTls ===

impl ClientTls {
    /// Outbound TLS with the proxy's workload identity (for `ISTIO_MUTUAL`,
    /// and as the CA for `SIMPLE`/`MUTUAL` without `caCertificates`), and
    /// `base_dir` for relative paths in DestinationRules.
    pub fn new(
        mesh: Option<MeshIdentityFiles>,
        base_dir: Option<PathBuf>,
    ) -> Result<Self, TlsError> {
        let mesh = mesh
            .map(|files| {
                let paths = vec![files.cert.clone(), files.key.clone(), files.ca.clone()];
                Reloadable::new(
                    format!(
                        "mesh workload certificate ({}, {}, {})",
                        files.cert.display(),
                        files.key.display(),
                        files.ca.display()
                    ),
                    paths,
                    move |contents| {
                        Ok(MeshIdentity {
                            pair: CertKeyPair::from_files(contents, &files.cert, &files.key)?,
                            roots: roots(&files.ca, contents.get(&files.ca))?,
                        })
                    },
                )
                .map(Arc::new)
            })
            .transpose()?;
        Ok(Self {
            base_dir,
            mesh,
            alpn: Vec::new(),
            cache: Mutex::new(HashMap::new()),
            rebuilds: AtomicU64::new(0),
        })
    }

    /// Offers these ALPN protocols to upstreams (e.g. `h2`, `http/1.1`);
    /// none by default.
    #[must_use]
    pub fn with_alpn(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// The TLS to use towards `host` under `settings`; `None` for `DISABLE`.
    /// Builds (and caches) the config on first use, reading its files.
    pub fn connector_for(
        &self,
        settings: &ClientTlsSettings,
        host: &str,
    ) -> Result<Option<UpstreamTls>, TlsError> {
        let policy = match settings.mode {
            TlsMode::Disable => return Ok(None),
            TlsMode::Simple => Security::None,
            TlsMode::Mutual | TlsMode::IstioMutual => Security::MutualTls,
        };
        let server_name = match &settings.sni {
            Some(sni) => server_name("trafficPolicy.tls.sni", sni)?,
            None => server_name("destination host", host)?,
        };
        let key = self.key(settings)?;
        let config = self.config(&key)?;
        Ok(Some(UpstreamTls {
            connector: TlsConnector::from(config.clone()),
            config,
            server_name,
            policy,
        }))
    }

    /// Checks that `settings` can be used (fields present, files loadable),
    /// for validating a DestinationRule before it is applied.
    pub fn check(&self, settings: &ClientTlsSettings) -> Result<(), TlsError> {
        if settings.mode == TlsMode::Disable {
            return Ok(());
        }
        if let Some(sni) = &settings.sni {
            server_name("trafficPolicy.tls.sni", sni)?;
        }
        self.config(&self.key(settings)?).map(drop)
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        }
    }

    fn key(&self, settings: &ClientTlsSettings) -> Result<Key, TlsError> {
        let mode = match settings.mode {
            TlsMode::Disable => "DISABLE",
            TlsMode::Simple => "SIMPLE",
            TlsMode::Mutual => "MUTUAL",
            TlsMode::IstioMutual => "ISTIO_MUTUAL",
        };
        let client_cert = match settings.mode {
            TlsMode::Mutual => match (&settings.client_certificate, &settings.private_key) {
                (Some(cert), Some(key)) => Some((self.resolve(cert), self.resolve(key))),
                _ => {
                    return Err(TlsError::MissingField {
                        mode,
                        field: "clientCertificate and privateKey",
                        fix: "set them to the PEM certificate and key files meshproxy \
                              presents to the upstream (or use ISTIO_MUTUAL for the \
                              proxy's own certificate)",
                    });
                }
            },
            _ => None,
        };
        let ca = match settings.mode {
            // Istio's own CA, never a file from the DestinationRule.
            TlsMode::IstioMutual => None,
            _ => settings
                .ca_certificates
                .as_deref()
                .map(|ca| self.resolve(ca)),
        };
        if self.mesh.is_none() {
            if settings.mode == TlsMode::IstioMutual {
                return Err(TlsError::MissingField {
                    mode,
                    field: "the proxy's workload certificate",
                    fix: "start meshproxy with a workload certificate, key and mesh CA \
                          (--workload-cert, --workload-key, --mesh-ca)",
                });
            }
            if ca.is_none() {
                return Err(TlsError::MissingField {
                    mode,
                    field: "caCertificates",
                    fix: "set it to the PEM CA file that signed the upstream's certificate, \
                          or start meshproxy with --mesh-ca",
                });
            }
        }
        Ok(Key {
            mode,
            client_cert,
            ca,
            subject_alt_names: settings.subject_alt_names.clone(),
        })
    }

    /// Changes whenever a config [`Self::connector_for`] may return has been
    /// rebuilt (file rotation), so callers caching connectors know to refresh.
    pub fn generation(&self) -> u64 {
        self.rebuilds.load(Ordering::Acquire) + self.mesh_generation()
    }

    fn mesh_generation(&self) -> u64 {
        self.mesh.as_ref().map_or(0, |mesh| mesh.generation())
    }

    /// The cached config for `key`, building it if missing or stale.
    fn config(&self, key: &Key) -> Result<Arc<ClientConfig>, TlsError> {
        let generation = self.mesh_generation();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = cache.get(key)
            && (!key.uses_mesh() || entry.mesh_generation == generation)
        {
            return Ok(entry.config.clone());
        }
        let files = Files::read(&key.paths())?;
        let config = Arc::new(self.build(key, &files)?);
        cache.insert(
            key.clone(),
            Entry {
                config: config.clone(),
                mesh_generation: generation,
                fingerprint: files.fingerprint(),
            },
        );
        Ok(config)
    }

    fn build(&self, key: &Key, files: &Files) -> Result<ClientConfig, TlsError> {
        let mesh = self.mesh.as_ref().map(|mesh| mesh.current());
        let roots = match (&key.ca, &mesh) {
            (Some(ca), _) => roots(ca, files.get(ca))?,
            (None, Some(mesh)) => mesh.roots.clone(),
            // `key()` refuses this combination.
            (None, None) => Arc::new(RootCertStore::empty()),
        };
        let verifier = Arc::new(UpstreamVerifier {
            roots,
            subject_alt_names: key.subject_alt_names.clone(),
            check_server_name: key.mode != "ISTIO_MUTUAL",
            algorithms: provider().signature_verification_algorithms,
        });
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Config {
                what: "outbound",
                source,
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let certified = match (&key.client_cert, &mesh) {
            (Some((cert, key_file)), _) => {
                Some(CertKeyPair::from_files(files, cert, key_file)?.certified_key())
            }
            (None, Some(mesh)) if key.mode == "ISTIO_MUTUAL" => Some(mesh.pair.certified_key()),
            _ => None,
        };
        let mut config = match certified {
            Some(certified) => builder.with_client_cert_resolver(Arc::new(
                rustls::sign::SingleCertAndKey::from(certified),
            )),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(config)
    }
}

impl Poll for ClientTls {
    /// Reloads the mesh identity, then rebuilds cached configs whose files
    /// changed; a broken rotation keeps the previous config and is logged.
    fn poll(&self) {
        if let Some(mesh) = &self.mesh {
            mesh.poll();
        }
        let entries: Vec<(Key, u64)> = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .iter()
                .filter(|(key, _)| !key.paths().is_empty())
                .map(|(key, entry)| (key.clone(), entry.fingerprint))
                .collect()
        };
        for (key, seen) in entries {
            let files = match Files::read(&key.paths()) {
                Ok(files) if files.fingerprint() == seen => continue,
                Ok(files) => files,
                Err(e) => {
                    tracing::error!(
                        "cannot re-read outbound TLS files: {}; still using the previous ones",
                        error_chain(&e)
                    );
                    continue;
                }
            };
            let rebuilt = self.build(&key, &files);
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = cache.get_mut(&key) else {
                continue;
            };
            // Either way, don't re-report the same contents on every poll.
            entry.fingerprint = files.fingerprint();
            match rebuilt {
                Ok(config) => {
                    entry.config = Arc::new(config);
                    entry.mesh_generation = self.mesh_generation();
                    self.rebuilds.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(files = ?key.paths(), "reloaded outbound TLS ({})", key.mode);
                }
                Err(e) => tracing::error!(
                    files = ?key.paths(),
                    "rejected new outbound TLS files ({}): {}; still using the previous ones",
                    key.mode,
                    error_chain(&e)
                ),
            }
        }
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("base_dir", &self.base_dir)
            .field("mesh", &self.mesh)
            .finish_non_exhaustive()
    }
}

fn server_name(field: &'static str, value: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(value.to_string()).map_err(|_| TlsError::InvalidServerName {
        field,
        value: value.to_string(),
    })
}

// === impl UpstreamTls ===

impl UpstreamTls {
    /// The connector (config shared with every upstream using the same settings).
    pub fn connector(&self) -> &TlsConnector {
        &self.connector
    }

    /// The name sent as SNI (not sent for IP addresses) and checked when
    /// no `subjectAltNames` are configured.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// Wraps `http` so `https://` URIs get this TLS, verified against the
    /// server name above whatever address the URI holds (endpoints are IPs).
    /// For a pooled hyper-util client; `http://` URIs are refused, so a
    /// routing mistake cannot silently fall back to plain text. (`http` is
    /// told to accept `https://` URIs: it only opens the TCP connection.)
    pub fn https_connector(&self, mut http: HttpConnector) -> HttpsConnector<HttpConnector> {
        http.enforce_http(false);
        HttpsConnector::new(
            http,
            self.config.clone(),
            true,
            Arc::new(FixedServerNameResolver::new(self.server_name.clone())),
        )
    }

    /// Is this the same TLS configuration as `other`? A config is rebuilt
    /// when its files rotate; callers caching clients rebuild them then.
    pub fn same_config(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }

    /// Identifies the config: equal for upstreams sharing settings until
    /// their files rotate (a connection holds its config, so the address
    /// is not reused while one made with it is pooled).
    pub fn config_id(&self) -> usize {
        Arc::as_ptr(&self.config) as usize
    }

    /// The same TLS offering `protocols` by ALPN (a new configuration,
    /// with its own id: callers cache it).
    #[must_use]
    pub fn with_alpn(&self, protocols: Vec<Vec<u8>>) -> Self {
        let mut config = ClientConfig::clone(&self.config);
        config.alpn_protocols = protocols;
        let config = Arc::new(config);
        Self {
            connector: TlsConnector::from(config.clone()),
            config,
            server_name: self.server_name.clone(),
            policy: self.policy,
        }
    }

    /// `mutual_tls` for `MUTUAL` and `ISTIO_MUTUAL`.
    pub fn security_policy(&self) -> Security {
        self.policy
    }

    /// Runs the TLS handshake over `io`.
    pub async fn connect<IO>(&self, io: IO) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.connector.connect(self.server_name.clone(), io).await
    }
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Verifies the upstream's chain against the configured roots, then its
/// name: one of `subjectAltNames`, else the server name (unless the mode
/// trusts any mesh identity).
#[derive(Debug)]
struct UpstreamVerifier {
    roots: Arc<RootCertStore>,
    subject_alt_names: Vec<String>,
    check_server_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if !self.subject_alt_names.is_empty() {
            let names = cert_names(end_entity)
                .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
            if !self.subject_alt_names.iter().any(|san| names.contains(san)) {
                tracing::debug!(
                    presented = ?names.all(),
                    expected = ?self.subject_alt_names,
                    "upstream certificate carries none of subjectAltNames"
                );
                return Err(Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext {
                        expected: server_name.to_owned(),
                        presented: names.all(),
                    },
                ));
            }
        } else if self.check_server_name {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    use super::super::testing::{Pki, server_config, upstream};
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn settings(mode: TlsMode) -> ClientTlsSettings {
        ClientTlsSettings {
            mode,
            ..Default::default()
        }
    }

    /// Connects through `tls` and returns the upstream's answer line.
    async fn call(tls: &UpstreamTls, addr: SocketAddr) -> Result<String, String> {
        let attempt = async {
            let tcp = TcpStream::connect(addr).await?;
            let mut stream = tls.connect(tcp).await?;
            let mut out = String::new();
            stream.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        match tokio::time::timeout(TIMEOUT, attempt).await {
            Ok(Ok(out)) if !out.is_empty() => Ok(out.trim_end().to_string()),
            Ok(Ok(_)) => Err("closed without an answer".to_string()),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(_) => Err("timed out".to_string()),
        }
    }

    /// A mesh CA with the proxy's identity (`proxy`) written to `dir`.
    fn mesh(dir: &Path, pki: &Pki) -> MeshIdentityFiles {
        let (cert, key) = pki.workload("proxy").write(dir, "proxy");
        MeshIdentityFiles {
            cert,
            key,
            ca: pki.write_ca(dir),
        }
    }

    #[tokio::test]
    async fn disable_means_plain_text() {
        let tls = ClientTls::new(None, None).unwrap();
        assert!(
            tls.connector_for(&settings(TlsMode::Disable), "reviews")
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn simple_verifies_the_server_name() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let ca = pki.write_ca(dir.path());
        let addr = upstream(server_config(&pki.workload("reviews"), None)).await;
        let tls = ClientTls::new(None, Some(dir.path().to_path_buf())).unwrap();
        let mut simple = settings(TlsMode::Simple);
        simple.ca_certificates = Some("ca.crt".to_string());

        let ok = tls.connector_for(&simple, "reviews").unwrap().unwrap();
        assert_eq!(ok.security_policy(), Security::None);
        assert_eq!(call(&ok, addr).await.unwrap(), "anonymous reviews");

        // The wrong name is refused, whether from the host or from `sni`.
        let wrong = tls.connector_for(&simple, "ratings").unwrap().unwrap();
        let err = call(&wrong, addr).await.unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
        simple.sni = Some("ratings".to_string());
        let wrong = tls.connector_for(&simple, "reviews").unwrap().unwrap();
        assert!(call(&wrong, addr).await.is_err());

        // A server signed by another CA is refused.
        let other = upstream(server_config(&Pki::new().workload("reviews"), None)).await;
        simple.sni = None;
        let err = call(
            &tls.connector_for(&simple, "reviews").unwrap().unwrap(),
            other,
        )
        .await
        .unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
        let _ = ca;
    }

    #[tokio::test]
    async fn subject_alt_names_replace_the_name_check() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let addr = upstream(server_config(&pki.workload("reviews"), None)).await;
        let tls = ClientTls::new(Some(mesh(dir.path(), &pki)), None).unwrap();
        let mut simple = settings(TlsMode::Simple);
        simple.sni = Some("reviews.default.svc.cluster.local".to_string());
        simple.subject_alt_names = vec!["spiffe://cluster.local/ns/default/sa/reviews".to_string()];
        let ok = tls.connector_for(&simple, "reviews").unwrap().unwrap();
        assert_eq!(
            call(&ok, addr).await.unwrap(),
            "anonymous reviews.default.svc.cluster.local"
        );

        simple.subject_alt_names = vec!["spiffe://cluster.local/ns/default/sa/ratings".to_string()];
        let wrong = tls.connector_for(&simple, "reviews").unwrap().unwrap();
        let err = call(&wrong, addr).await.unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
    }

    #[tokio::test]
    async fn mutual_presents_the_configured_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let ca = pki.write_ca(dir.path());
        let (cert, key) = pki.workload("checkout").write(dir.path(), "checkout");
        let addr = upstream(server_config(&pki.workload("payments"), Some(&pki))).await;
        let tls = ClientTls::new(None, None).unwrap();

        let mut mutual = settings(TlsMode::Mutual);
        mutual.ca_certificates = Some(ca.display().to_string());
        mutual.client_certificate = Some(cert.display().to_string());
        mutual.private_key = Some(key.display().to_string());
        let conn = tls.connector_for(&mutual, "payments").unwrap().unwrap();
        assert_eq!(conn.security_policy(), Security::MutualTls);
        assert_eq!(
            call(&conn, addr).await.unwrap(),
            "spiffe://cluster.local/ns/default/sa/checkout payments"
        );

        // Without a client certificate the upstream refuses us.
        let mut simple = settings(TlsMode::Simple);
        simple.ca_certificates = mutual.ca_certificates.clone();
        let anonymous = tls.connector_for(&simple, "payments").unwrap().unwrap();
        assert!(call(&anonymous, addr).await.is_err());
    }

    #[tokio::test]
    async fn istio_mutual_uses_the_proxy_identity_and_mesh_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let addr = upstream(server_config(&pki.workload("payments"), Some(&pki))).await;
        let tls = ClientTls::new(Some(mesh(dir.path(), &pki)), None).unwrap();

        // The destination host is a cluster name the certificate need not carry.
        let conn = tls
            .connector_for(
                &settings(TlsMode::IstioMutual),
                "payments.default.svc.cluster.local",
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            call(&conn, addr).await.unwrap(),
            "spiffe://cluster.local/ns/default/sa/proxy payments.default.svc.cluster.local"
        );

        // An upstream outside the mesh is refused.
        let outsider = upstream(server_config(&Pki::new().workload("payments"), None)).await;
        assert!(call(&conn, outsider).await.is_err());
    }

    #[tokio::test]
    async fn mesh_rotation_is_picked_up_by_istio_mutual() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let addr = upstream(server_config(&pki.workload("payments"), Some(&pki))).await;
        let files = mesh(dir.path(), &pki);
        let tls = ClientTls::new(Some(files.clone()), None).unwrap();
        let conn = tls
            .connector_for(&settings(TlsMode::IstioMutual), "payments")
            .unwrap()
            .unwrap();
        assert!(
            call(&conn, addr)
                .await
                .unwrap()
                .ends_with("/sa/proxy payments")
        );

        pki.workload("proxy-v2").write(dir.path(), "proxy");
        tls.poll();
        let conn = tls
            .connector_for(&settings(TlsMode::IstioMutual), "payments")
            .unwrap()
            .unwrap();
        assert!(
            call(&conn, addr)
                .await
                .unwrap()
                .ends_with("/sa/proxy-v2 payments")
        );
    }

    #[tokio::test]
    async fn mutual_file_rotation_keeps_the_old_pair_when_broken() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let ca = pki.write_ca(dir.path());
        let (cert, key) = pki.workload("checkout").write(dir.path(), "client");
        let addr = upstream(server_config(&pki.workload("payments"), Some(&pki))).await;
        let tls = ClientTls::new(None, None).unwrap();
        let mut mutual = settings(TlsMode::Mutual);
        mutual.ca_certificates = Some(ca.display().to_string());
        mutual.client_certificate = Some(cert.display().to_string());
        mutual.private_key = Some(key.display().to_string());
        let who = || async {
            let conn = tls.connector_for(&mutual, "payments").unwrap().unwrap();
            call(&conn, addr).await.unwrap()
        };
        assert!(who().await.contains("/sa/checkout"));

        // Half a rotation: a new certificate with the old key is rejected.
        std::fs::write(&cert, pki.workload("checkout-v2").cert_pem()).unwrap();
        tls.poll();
        assert!(who().await.contains("/sa/checkout "));

        pki.workload("checkout-v2").write(dir.path(), "client");
        tls.poll();
        assert!(who().await.contains("/sa/checkout-v2 "));
    }

    #[tokio::test]
    async fn pooled_hyper_client_speaks_https_to_an_ip_endpoint() {
        use http_body_util::{BodyExt, Empty};
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::{TokioExecutor, TokioIo};

        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        // An HTTPS server that answers with the client's identity.
        let config = Arc::new(server_config(&pki.workload("payments"), Some(&pki)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let who = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(crate::tls::spiffe_id_of);
                    let who = who.map_or("anonymous".to_string(), |id| id.to_string());
                    let svc = hyper::service::service_fn(move |_req| {
                        let who = who.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(who)),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });

        let tls = ClientTls::new(Some(mesh(dir.path(), &pki)), None).unwrap();
        let upstream = tls
            .connector_for(&settings(TlsMode::IstioMutual), "payments")
            .unwrap()
            .unwrap();
        let again = tls
            .connector_for(&settings(TlsMode::IstioMutual), "payments")
            .unwrap()
            .unwrap();
        assert!(upstream.same_config(&again));
        let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new())
            .build(upstream.https_connector(HttpConnector::new()));
        for _ in 0..3 {
            let uri: http::Uri = format!("https://{addr}/").parse().unwrap();
            let resp = tokio::time::timeout(TIMEOUT, client.get(uri))
                .await
                .unwrap()
                .unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "spiffe://cluster.local/ns/default/sa/proxy");
        }
        // Plain http:// through a TLS client is an error, never plain text.
        let plain: http::Uri = format!("http://{addr}/").parse().unwrap();
        assert!(client.get(plain).await.is_err());
    }

    #[test]
    fn misconfigurations_name_the_field_and_the_fix() {
        let tls = ClientTls::new(None, None).unwrap();
        let err = tls
            .check(&settings(TlsMode::Mutual))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mode MUTUAL needs clientCertificate and privateKey"),
            "{err}"
        );
        let err = tls
            .check(&settings(TlsMode::Simple))
            .unwrap_err()
            .to_string();
        assert!(err.contains("mode SIMPLE needs caCertificates"), "{err}");
        assert!(err.contains("--mesh-ca"), "{err}");
        let err = tls
            .check(&settings(TlsMode::IstioMutual))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ISTIO_MUTUAL needs the proxy's workload certificate"),
            "{err}"
        );

        let mut bad_sni = settings(TlsMode::Simple);
        bad_sni.sni = Some("not a name".to_string());
        bad_sni.ca_certificates = Some("/nonexistent/ca.crt".to_string());
        let err = tls.check(&bad_sni).unwrap_err().to_string();
        assert!(
            err.contains("trafficPolicy.tls.sni \"not a name\""),
            "{err}"
        );

        bad_sni.sni = None;
        let err = tls.check(&bad_sni).unwrap_err().to_string();
        assert!(err.contains("cannot read /nonexistent/ca.crt"), "{err}");
        assert!(tls.check(&settings(TlsMode::Disable)).is_ok());
    }
}

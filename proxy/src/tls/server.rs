//! Inbound TLS: the listener's certificate, client verification against a
//! CA, the identity allow-list, and what a handshake tells the metrics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::files::{CertKeyPair, Files, Reloadable, roots};
use super::identity::{SpiffeId, spiffe_id_of};
use super::{ALPN_H2, ALPN_HTTP11, TlsError, provider};
use crate::metrics::Security;

/// Where the inbound certificate, key and client CA live, and which client
/// identities are allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first (`--tls-cert`).
    pub cert: PathBuf,
    /// PEM private key (`--tls-key`).
    pub key: PathBuf,
    /// PEM CA certificates that sign client certificates (`--tls-client-ca`);
    /// when set, every client must present a certificate signed by one.
    pub client_ca: Option<PathBuf>,
    /// When not empty, only clients whose certificate carries one of these
    /// SPIFFE IDs are accepted (`--tls-allow-identity`).
    pub allowed_identities: Vec<SpiffeId>,
}

// === impl ServerTlsFiles ===

impl ServerTlsFiles {
    fn paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.cert.clone(), self.key.clone()];
        paths.extend(self.client_ca.clone());
        paths
    }

    /// Builds a rustls server config from the files' contents.
    fn build(&self, files: &Files) -> Result<ServerConfig, TlsError> {
        let pair = CertKeyPair::from_files(files, &self.cert, &self.key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Config {
                what: "inbound",
                source,
            })?;
        let builder = match &self.client_ca {
            None if !self.allowed_identities.is_empty() => {
                return Err(TlsError::AllowListWithoutClientCa);
            }
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let roots = roots(ca, files.get(ca))?;
                let webpki = WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| TlsError::BadCa {
                        path: ca.clone(),
                        reason: e.to_string(),
                    })?;
                let verifier: Arc<dyn ClientCertVerifier> = if self.allowed_identities.is_empty() {
                    webpki
                } else {
                    Arc::new(AllowList {
                        inner: webpki,
                        allowed: self.allowed_identities.clone(),
                    })
                };
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(
            rustls::sign::SingleCertAndKey::from(pair.certified_key()),
        ));
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
        Ok(config)
    }
}

/// Checks the client's chain with webpki, then its SPIFFE ID against the
/// allow-list, so a client not on the list is refused at the handshake.
#[derive(Debug)]
struct AllowList {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<SpiffeId>,
}

impl ClientCertVerifier for AllowList {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match spiffe_id_of(end_entity) {
            Some(id) if self.allowed.contains(&id) => Ok(verified),
            id => {
                tracing::debug!(
                    identity = id.as_ref().map_or("none", SpiffeId::as_str),
                    "refusing client: identity not on --tls-allow-identity"
                );
                Err(Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What the handshake established about the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// `mutual_tls` when the client presented a verified certificate.
    pub security_policy: Security,
    /// The client's SPIFFE ID, when its certificate carries one.
    pub principal: Option<SpiffeId>,
    /// Did ALPN select HTTP/2?
    pub h2: bool,
}

// === impl PeerInfo ===

impl PeerInfo {
    /// A plain-text connection.
    pub fn plaintext() -> Self {
        Self {
            security_policy: Security::None,
            principal: None,
            h2: false,
        }
    }

    /// Reads the peer's certificate and ALPN from an established connection.
    pub fn of(conn: &ServerConnection) -> Self {
        let leaf = conn.peer_certificates().and_then(|chain| chain.first());
        Self {
            // rustls only exposes peer certificates it verified.
            security_policy: if leaf.is_some() {
                Security::MutualTls
            } else {
                Security::None
            },
            principal: leaf.and_then(spiffe_id_of),
            h2: conn.alpn_protocol() == Some(ALPN_H2),
        }
    }

    /// Istio's `source_principal` label: the SPIFFE ID, or `unknown`.
    pub fn source_principal(&self) -> &str {
        self.principal.as_ref().map_or("unknown", SpiffeId::as_str)
    }
}

/// Inbound TLS, rebuilt from its files when they change.
#[derive(Debug)]
pub struct ServerTls {
    config: Arc<Reloadable<ServerConfig>>,
}

// === impl ServerTls ===

impl ServerTls {
    /// Loads the files; any error is returned (there is nothing to fall
    /// back to at start-up).
    pub fn load(files: ServerTlsFiles) -> Result<Self, TlsError> {
        let paths = files.paths();
        let what = format!(
            "inbound TLS certificate ({})",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let config = Reloadable::new(what, paths, move |contents| files.build(contents))?;
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The reloadable config, for [`super::spawn_watcher`].
    pub fn reloadable(&self) -> Arc<Reloadable<ServerConfig>> {
        self.config.clone()
    }

    /// An acceptor for the config in use now. Connections keep the config
    /// they were accepted with, so a rotation never disturbs them.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.current())
    }

    /// Runs the TLS handshake on `io` within `timeout` (a client that stalls
    /// the handshake must not hold the connection forever).
    pub async fn accept<IO>(
        &self,
        io: IO,
        timeout: Duration,
    ) -> std::io::Result<(TlsStream<IO>, PeerInfo)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = tokio::time::timeout(timeout, self.acceptor().accept(io))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        let info = PeerInfo::of(stream.get_ref().1);
        Ok((stream, info))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::super::testing::{Pki, client_config};
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// Accepts connections, answers each with its peer info, and reports
    /// handshake errors.
    async fn serve(
        tls: Arc<ServerTls>,
    ) -> (
        SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<Result<PeerInfo, String>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let tls = tls.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tls.accept(tcp, TIMEOUT).await {
                        Ok((mut stream, info)) => {
                            let line = format!(
                                "{} {} {}\n",
                                info.security_policy.as_str(),
                                info.source_principal(),
                                info.h2
                            );
                            let _ = stream.write_all(line.as_bytes()).await;
                            let _ = stream.shutdown().await;
                            let _ = tx.send(Ok(info));
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                });
            }
        });
        (addr, rx)
    }

    /// Connects with `config` and reads the server's one-line answer.
    async fn exchange(addr: SocketAddr, config: rustls::ClientConfig) -> Result<String, String> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let attempt = async {
            let mut stream = connector.connect(name, tcp).await?;
            let mut out = String::new();
            stream.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        match tokio::time::timeout(TIMEOUT, attempt).await {
            Ok(Ok(out)) if !out.is_empty() => Ok(out),
            Ok(Ok(_)) => Err("connection closed without an answer".to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        }
    }

    fn mtls_files(dir: &std::path::Path, pki: &Pki) -> ServerTlsFiles {
        let (cert, key) = pki.workload("server").write(dir, "server");
        ServerTlsFiles {
            cert,
            key,
            client_ca: Some(pki.write_ca(dir)),
            allowed_identities: Vec::new(),
        }
    }

    #[tokio::test]
    async fn one_way_tls_negotiates_h2_and_reports_no_mtls() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (cert, key) = pki.workload("server").write(dir.path(), "server");
        let tls = ServerTls::load(ServerTlsFiles {
            cert,
            key,
            ..Default::default()
        })
        .unwrap();
        let (addr, mut results) = serve(Arc::new(tls)).await;

        let mut h2 = client_config(&pki, None);
        h2.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        assert_eq!(exchange(addr, h2).await.unwrap(), "none unknown true\n");
        let mut h1 = client_config(&pki, None);
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        assert_eq!(exchange(addr, h1).await.unwrap(), "none unknown false\n");
        assert!(results.recv().await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn mutual_tls_reports_the_client_identity() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let tls = ServerTls::load(mtls_files(dir.path(), &pki)).unwrap();
        let (addr, mut results) = serve(Arc::new(tls)).await;

        let client = pki.workload("frontend");
        let answer = exchange(addr, client_config(&pki, Some(&client)))
            .await
            .unwrap();
        assert_eq!(
            answer,
            "mutual_tls spiffe://cluster.local/ns/default/sa/frontend false\n"
        );
        let info = results.recv().await.unwrap().unwrap();
        assert_eq!(info.security_policy, Security::MutualTls);
    }

    #[tokio::test]
    async fn clients_without_a_valid_certificate_are_refused_at_the_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let tls = ServerTls::load(mtls_files(dir.path(), &pki)).unwrap();
        let (addr, mut results) = serve(Arc::new(tls)).await;

        let other_ca = Pki::new();
        let cases = [
            ("no certificate", None),
            ("wrong CA", Some(other_ca.workload("frontend"))),
            ("expired", Some(pki.expired_workload("frontend"))),
        ];
        for (case, cert) in cases {
            let answer = exchange(addr, client_config(&pki, cert.as_ref())).await;
            assert!(answer.is_err(), "{case}: served {answer:?}");
            let server_side = results.recv().await.unwrap();
            let err = server_side.expect_err(case);
            let expected = match case {
                "no certificate" => "peer sent no certificates",
                "wrong CA" => "UnknownIssuer",
                _ => "certificate expired",
            };
            assert!(err.contains(expected), "{case}: {err}");
        }
    }

    #[tokio::test]
    async fn identities_not_on_the_allow_list_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let mut files = mtls_files(dir.path(), &pki);
        files.allowed_identities = vec![
            "spiffe://cluster.local/ns/default/sa/frontend"
                .parse()
                .unwrap(),
        ];
        let tls = ServerTls::load(files).unwrap();
        let (addr, mut results) = serve(Arc::new(tls)).await;

        let allowed = pki.workload("frontend");
        assert!(
            exchange(addr, client_config(&pki, Some(&allowed)))
                .await
                .unwrap()
                .starts_with("mutual_tls spiffe://cluster.local/ns/default/sa/frontend")
        );
        assert!(results.recv().await.unwrap().is_ok());

        let intruder = pki.workload("batch");
        let answer = exchange(addr, client_config(&pki, Some(&intruder))).await;
        assert!(answer.is_err(), "served {answer:?}");
        let err = results.recv().await.unwrap().unwrap_err();
        assert!(err.contains("ApplicationVerificationFailure"), "{err}");
    }

    #[tokio::test]
    async fn plain_http_to_a_tls_port_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let tls = ServerTls::load(mtls_files(dir.path(), &pki)).unwrap();
        let (addr, mut results) = serve(Arc::new(tls)).await;

        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut out)).await;
        assert!(!out.starts_with(b"HTTP/"), "answered plain HTTP: {out:?}");
        assert!(results.recv().await.unwrap().is_err());
    }

    #[test]
    fn an_allow_list_needs_a_client_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (cert, key) = pki.workload("server").write(dir.path(), "server");
        let err = ServerTls::load(ServerTlsFiles {
            cert,
            key,
            client_ca: None,
            allowed_identities: vec!["spiffe://cluster.local/ns/a/sa/b".parse().unwrap()],
        })
        .unwrap_err();
        assert!(err.to_string().contains("needs --tls-client-ca"), "{err}");
    }

    #[tokio::test]
    async fn rotation_serves_the_new_certificate_and_keeps_the_old_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let files = mtls_files(dir.path(), &pki);
        let tls = Arc::new(ServerTls::load(files.clone()).unwrap());
        let (addr, _results) = serve(tls.clone()).await;
        let client = pki.workload("frontend");
        let served_leaf = || async {
            let connector =
                tokio_rustls::TlsConnector::from(Arc::new(client_config(&pki, Some(&client))));
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let stream = connector.connect(name, tcp).await.unwrap();
            stream.get_ref().1.peer_certificates().unwrap()[0].clone()
        };
        let before = served_leaf().await;

        // A new key without its certificate: rejected, the old pair serves.
        let next = pki.workload("server");
        std::fs::write(&files.key, next.key_pem()).unwrap();
        assert!(matches!(
            tls.reloadable().reload(),
            crate::tls::Reload::Rejected(TlsError::KeyMismatch { .. })
        ));
        assert_eq!(served_leaf().await, before);

        // Its certificate arrives: the watcher picks the pair up.
        std::fs::write(&files.cert, next.cert_pem()).unwrap();
        let watcher = crate::tls::spawn_watcher(tls.reloadable(), Duration::from_millis(20));
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while tls.reloadable().generation() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "not reloaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watcher.abort();
        assert_eq!(served_leaf().await, next.cert_der());
    }
}

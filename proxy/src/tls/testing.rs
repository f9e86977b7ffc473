//! Test support: a throw-away CA issuing workload certificates shaped like
//! `meshctl certs`' (ECDSA P-256, SPIFFE URI, DNS name, localhost, 127.0.0.1).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
};
use rustls::pki_types::CertificateDer;

use super::provider;

/// A CA.
pub(crate) struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

/// A certificate and its key.
pub(crate) struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

// === impl Pki ===

impl Pki {
    pub(crate) fn new() -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        // A distinct name per CA, as separate real CAs have.
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("test mesh CA {serial}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            ca_pem: cert.pem(),
        }
    }

    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes `DIR/ca.crt`.
    pub(crate) fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.crt");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }

    /// A workload certificate valid now.
    pub(crate) fn workload(&self, name: &str) -> Issued {
        self.issue(name, 2000, 4000)
    }

    /// A workload certificate that expired in 2001.
    pub(crate) fn expired_workload(&self, name: &str) -> Issued {
        self.issue(name, 2000, 2001)
    }

    /// A workload certificate valid from 3000.
    pub(crate) fn future_workload(&self, name: &str) -> Issued {
        self.issue(name, 3000, 4000)
    }

    /// A workload certificate valid from 1 January `from` to 1 January `to`.
    fn issue(&self, name: &str, from: i32, to: i32) -> Issued {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = vec![
            SanType::URI(
                format!("spiffe://cluster.local/ns/default/sa/{name}")
                    .try_into()
                    .unwrap(),
            ),
            SanType::DnsName(name.try_into().unwrap()),
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(to, 1, 1);
        Issued {
            cert: params.signed_by(&key, &self.issuer).unwrap(),
            key,
        }
    }
}

// === impl Issued ===

impl Issued {
    pub(crate) fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub(crate) fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub(crate) fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Writes `DIR/NAME.crt` and `DIR/NAME.key` (mode 0600).
    pub(crate) fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, self.cert_pem()).unwrap();
        write_key(&key, self.key_pem().as_bytes());
        (cert, key)
    }
}

/// Writes a key file with mode 0600.
pub(crate) fn write_key(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A client config trusting `pki`'s CA, presenting `cert` when given.
pub(crate) fn client_config(pki: &Pki, cert: Option<&Issued>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for ca in super::pem_certificates(pki.ca_pem().as_bytes()).unwrap() {
        roots.add(ca).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match cert {
        None => builder.with_no_client_auth(),
        Some(issued) => builder
            .with_client_auth_cert(
                vec![issued.cert_der()],
                rustls::pki_types::PrivateKeyDer::try_from(issued.key.serialize_der()).unwrap(),
            )
            .unwrap(),
    }
}

/// A TLS server on 127.0.0.1 that answers every connection with one line:
/// the client's SPIFFE ID (or `anonymous`) and the SNI it sent (or `-`).
pub(crate) async fn upstream(config: rustls::ServerConfig) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let conn = stream.get_ref().1;
                let who = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(super::spiffe_id_of)
                    .map_or("anonymous".to_string(), |id| id.to_string());
                let sni = conn.server_name().unwrap_or("-").to_string();
                let _ = stream.write_all(format!("{who} {sni}\n").as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// A server config presenting `cert`, requiring client certificates from
/// `client_ca` when given.
pub(crate) fn server_config(cert: &Issued, client_ca: Option<&Pki>) -> rustls::ServerConfig {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pki) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in super::pem_certificates(pki.ca_pem().as_bytes()).unwrap() {
                roots.add(ca).unwrap();
            }
            builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .unwrap(),
            )
        }
    };
    builder
        .with_single_cert(
            vec![cert.cert_der()],
            rustls::pki_types::PrivateKeyDer::try_from(cert.key.serialize_der()).unwrap(),
        )
        .unwrap()
}

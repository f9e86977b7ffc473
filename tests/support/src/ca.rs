//! The one test certificate authority: a throw-away CA issuing workload
//! certificates shaped like `meshctl certs`' (ECDSA P-256, a SPIFFE URI, the
//! workload's DNS name, `localhost` and 127.0.0.1).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A test CA.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_path: Option<PathBuf>,
}

/// A certificate and its key.
pub struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

// === impl TestCa ===

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A CA named `mesh`.
    #[must_use]
    pub fn new() -> Self {
        Self::named("mesh")
    }

    /// A CA whose common name starts with `name`; each CA's name is distinct,
    /// as separate real CAs' are.
    ///
    /// # Panics
    /// When rcgen cannot generate the key or certificate.
    #[must_use]
    pub fn named(name: &str) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a CA key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA {serial}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        Self {
            issuer: Issuer::new(params, key),
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            ca_path: None,
        }
    }

    /// A CA named `name` with its certificate written to `DIR/<name>-ca.crt`
    /// (see [`TestCa::ca_path`]).
    ///
    /// # Panics
    /// When the file cannot be written.
    #[must_use]
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        let mut ca = Self::named(name);
        let path = dir.join(format!("{name}-ca.crt"));
        std::fs::write(&path, &ca.ca_pem).expect("writing the CA certificate");
        ca.ca_path = Some(path);
        ca
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER.
    #[must_use]
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// Where [`TestCa::in_dir`] wrote the CA certificate.
    ///
    /// # Panics
    /// When the CA was not made with [`TestCa::in_dir`].
    #[must_use]
    pub fn ca_path(&self) -> &Path {
        self.ca_path
            .as_deref()
            .expect("TestCa::in_dir writes the CA certificate")
    }

    /// Writes `DIR/ca.crt`.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.crt");
        std::fs::write(&path, &self.ca_pem).expect("writing ca.crt");
        path
    }

    /// A root store trusting this CA.
    ///
    /// # Panics
    /// When rustls refuses the CA certificate.
    #[must_use]
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der()).expect("the CA certificate");
        roots
    }

    /// A workload certificate valid now.
    #[must_use]
    pub fn workload(&self, name: &str) -> Issued {
        self.issue(name, 2000, 4000)
    }

    /// A workload certificate that expired in 2001.
    #[must_use]
    pub fn expired_workload(&self, name: &str) -> Issued {
        self.issue(name, 2000, 2001)
    }

    /// A workload certificate valid from 3000.
    #[must_use]
    pub fn future_workload(&self, name: &str) -> Issued {
        self.issue(name, 3000, 4000)
    }

    /// A workload certificate valid from 1 January `from` to 1 January `to`.
    ///
    /// # Panics
    /// When `name` is not a valid DNS name or rcgen fails.
    #[must_use]
    pub fn issue(&self, name: &str, from: i32, to: i32) -> Issued {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a workload key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = vec![
            SanType::URI(
                format!("spiffe://cluster.local/ns/default/sa/{name}")
                    .try_into()
                    .expect("a SPIFFE URI"),
            ),
            SanType::DnsName(name.try_into().expect("a DNS name")),
            SanType::DnsName("localhost".try_into().expect("a DNS name")),
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
            cert: params
                .signed_by(&key, &self.issuer)
                .expect("a signed certificate"),
            key,
        }
    }
}

// === impl Issued ===

impl Issued {
    /// The certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The private key, PEM.
    #[must_use]
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The certificate, DER.
    #[must_use]
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The private key, DER.
    ///
    /// # Panics
    /// Never for the keys rcgen generates.
    #[must_use]
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.key.serialize_der()).expect("a PKCS#8 key")
    }

    /// Writes `DIR/STEM.crt` and `DIR/STEM.key` (mode 0600) in place.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, self.cert_pem()).expect("writing the certificate");
        write_key(&key, self.key_pem().as_bytes());
        (cert, key)
    }

    /// Writes `DIR/STEM.crt` and `DIR/STEM.key` (mode 0600), each atomically
    /// (temp file and rename, key first), as a secret mount is updated.
    pub fn write_atomic(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        let tmp = dir.join(format!(".{stem}.key.tmp"));
        write_key(&tmp, self.key_pem().as_bytes());
        std::fs::rename(&tmp, &key).expect("renaming the key");
        let tmp = dir.join(format!(".{stem}.crt.tmp"));
        std::fs::write(&tmp, self.cert_pem()).expect("writing the certificate");
        std::fs::rename(&tmp, &cert).expect("renaming the certificate");
        (cert, key)
    }
}

/// Writes a key file with mode 0600.
///
/// # Panics
/// When the file cannot be written.
pub fn write_key(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).expect("writing the key");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("setting the key's mode");
}

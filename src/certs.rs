//! A development certificate authority for mesh mTLS (`meshctl certs`).
//!
//! Creates (or reuses) a CA in a directory and issues one workload
//! certificate per name, shaped like Istio's: ECDSA P-256, a SPIFFE URI SAN
//! `spiffe://cluster.local/ns/<ns>/sa/<name>` that meshproxy reports as the
//! peer's `source_principal`, and DNS SAN `<name>` so a DestinationRule's
//! `SIMPLE`/`MUTUAL` name check works against the service's short name.
//!
//! Every workload certificate also carries `localhost` and `127.0.0.1`. That
//! is deliberate and only acceptable because this CA is for development: it
//! lets `curl https://localhost:PORT` and `openssl s_client -verify_hostname`
//! check a local proxy without extra flags. Identity is the SPIFFE URI, which
//! stays unique per workload.
//!
//! Files are written atomically (`.NAME.tmp`, fsync, rename). Private keys
//! are created with mode 0600 from the first byte, never widened later.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};

/// SPIFFE trust domain of every identity this CA issues (Istio's default).
pub const TRUST_DOMAIN: &str = "cluster.local";

/// How long the development CA is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a workload certificate is valid.
const WORKLOAD_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Backdating of `notBefore`, so a peer whose clock is a little behind still
/// accepts a certificate issued a moment ago.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why `meshctl certs` failed.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A `--name` is not usable as a service account name and file name.
    #[error(
        "--name {name:?}: {reason}; use a Kubernetes service account name \
         (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
    )]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--identity-namespace` is not a Kubernetes namespace name.
    #[error(
        "--identity-namespace {namespace:?}: not a Kubernetes namespace name; \
         use lowercase letters, digits and '-' (at most 63), starting and ending with a letter or digit"
    )]
    InvalidNamespace {
        /// The namespace as given.
        namespace: String,
    },
    /// Only one of `ca.crt` / `ca.key` exists, so the CA can be neither reused nor replaced safely.
    #[error(
        "{present} exists but {missing} does not; restore {missing}, or remove {present} \
         to create a new CA (certificates issued by the old CA will stop being trusted)"
    )]
    HalfCa {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The existing CA could not be loaded.
    #[error(
        "{path} cannot be used as the CA; fix the file, \
         or remove ca.crt and ca.key to create a new CA"
    )]
    BadCa {
        /// `ca.crt` or `ca.key`.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: rcgen::Error,
    },
    /// The existing CA certificate and key do not form a usable pair.
    #[error("the CA in the output directory is unusable")]
    CaPair(#[source] meshproxy::tls::TlsError),
    /// Key generation or signing failed.
    #[error("generating the {what}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`reading`, `writing`, `creating directory`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// A validated workload name (a Kubernetes service account name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadName(String);

// === impl WorkloadName ===

impl WorkloadName {
    /// Validates `name`: a DNS-1123 subdomain (what Kubernetes accepts for a
    /// service account) that is also a safe file name, and not `ca`.
    pub fn new(name: &str) -> Result<Self, CertsError> {
        let invalid = |reason| CertsError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("empty"));
        }
        if name.len() > 253 {
            return Err(invalid("longer than 253 characters"));
        }
        if name == "ca" {
            return Err(invalid("`ca` is reserved for the CA's own ca.crt/ca.key"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(invalid(
                "contains a character other than a-z, 0-9, '-' or '.'",
            ));
        }
        let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !alnum(name.bytes().next()) || !alnum(name.bytes().last()) {
            return Err(invalid("must start and end with a letter or digit"));
        }
        Ok(Self(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated namespace for SPIFFE identities (a DNS-1123 label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityNamespace(String);

// === impl IdentityNamespace ===

impl IdentityNamespace {
    /// Validates `namespace` as a Kubernetes namespace name.
    pub fn new(namespace: &str) -> Result<Self, CertsError> {
        let ok = !namespace.is_empty()
            && namespace.len() <= 63
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !namespace.starts_with('-')
            && !namespace.ends_with('-');
        if ok {
            Ok(Self(namespace.to_string()))
        } else {
            Err(CertsError::InvalidNamespace {
                namespace: namespace.to_string(),
            })
        }
    }

    /// The namespace.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SPIFFE identity of workload `name` in `namespace`.
pub fn spiffe_id(namespace: &IdentityNamespace, name: &WorkloadName) -> String {
    format!(
        "spiffe://{TRUST_DOMAIN}/ns/{}/sa/{}",
        namespace.as_str(),
        name.as_str()
    )
}

/// Whether the CA was created by this run or reused from the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaOrigin {
    /// `ca.crt`/`ca.key` were created now.
    Created,
    /// `ca.crt`/`ca.key` already existed and signed the new certificates.
    Reused,
}

/// One issued workload certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedWorkload {
    /// The workload name.
    pub name: String,
    /// Its SPIFFE identity (URI SAN).
    pub identity: String,
    /// `DIR/NAME.crt`.
    pub cert: PathBuf,
    /// `DIR/NAME.key` (mode 0600).
    pub key: PathBuf,
}

/// What [`issue`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// `DIR/ca.crt`.
    pub ca_cert: PathBuf,
    /// `DIR/ca.key` (mode 0600).
    pub ca_key: PathBuf,
    /// Whether the CA is new.
    pub ca: CaOrigin,
    /// One entry per `--name`, in order.
    pub workloads: Vec<IssuedWorkload>,
}

/// Creates `out` if needed, creates or reuses the CA there, and issues a
/// certificate and key for every name (overwriting existing ones).
pub fn issue(
    out: &Path,
    names: &[WorkloadName],
    namespace: &IdentityNamespace,
) -> Result<Issued, CertsError> {
    fs::create_dir_all(out).map_err(|source| CertsError::Io {
        action: "creating directory",
        path: out.to_path_buf(),
        source,
    })?;
    let ca_cert = out.join("ca.crt");
    let ca_key = out.join("ca.key");
    let (issuer, ca) = match (ca_cert.exists(), ca_key.exists()) {
        (true, true) => (load_ca(&ca_cert, &ca_key)?, CaOrigin::Reused),
        (false, false) => (create_ca(&ca_cert, &ca_key)?, CaOrigin::Created),
        (true, false) => {
            return Err(CertsError::HalfCa {
                present: ca_cert,
                missing: ca_key,
            });
        }
        (false, true) => {
            return Err(CertsError::HalfCa {
                present: ca_key,
                missing: ca_cert,
            });
        }
    };

    let mut workloads = Vec::with_capacity(names.len());
    for name in names {
        let identity = spiffe_id(namespace, name);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| {
            CertsError::Generate {
                what: format!("key for {}", name.as_str()),
                source,
            }
        })?;
        let params = workload_params(name, &identity)?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|source| CertsError::Generate {
                what: format!("certificate for {}", name.as_str()),
                source,
            })?;
        let cert_path = out.join(format!("{}.crt", name.as_str()));
        let key_path = out.join(format!("{}.key", name.as_str()));
        // Key first: a crash in between leaves an unused key, never a
        // certificate whose key is missing.
        write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
        workloads.push(IssuedWorkload {
            name: name.as_str().to_string(),
            identity,
            cert: cert_path,
            key: key_path,
        });
    }
    Ok(Issued {
        ca_cert,
        ca_key,
        ca,
        workloads,
    })
}

fn create_ca(cert_path: &Path, key_path: &Path) -> Result<Issuer<'static, KeyPair>, CertsError> {
    let generate = |source| CertsError::Generate {
        what: "CA".to_string(),
        source,
    };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "meshctl");
    dn.push(DnType::CommonName, "meshctl development CA");
    params.distinguished_name = dn;
    // Path length 0: this CA signs workload certificates only, no intermediates.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + CA_VALIDITY).into();
    let cert = params.self_signed(&key).map_err(generate)?;
    write_atomic(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(Issuer::new(params, key))
}

fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Issuer<'static, KeyPair>, CertsError> {
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let key = KeyPair::from_pem(&key_pem).map_err(|source| CertsError::BadCa {
        path: key_path.to_path_buf(),
        source,
    })?;
    // A signature by the wrong key would produce certificates nobody trusts:
    // check that the key belongs to the certificate before issuing anything.
    meshproxy::tls::CertKeyPair::load(cert_path, key_path).map_err(CertsError::CaPair)?;
    Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|source| CertsError::BadCa {
        path: cert_path.to_path_buf(),
        source,
    })
}

fn workload_params(name: &WorkloadName, identity: &str) -> Result<CertificateParams, CertsError> {
    let san_error = |source| CertsError::Generate {
        what: format!("SANs for {}", name.as_str()),
        source,
    };
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "meshctl");
    dn.push(DnType::CommonName, name.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = vec![
        SanType::URI(identity.try_into().map_err(san_error)?),
        SanType::DnsName(name.as_str().try_into().map_err(san_error)?),
        SanType::DnsName("localhost".try_into().map_err(san_error)?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Workloads are servers to their callers and clients to their upstreams.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + WORKLOAD_VALIDITY).into();
    Ok(params)
}

fn read(path: &Path) -> Result<String, CertsError> {
    fs::read_to_string(path).map_err(|source| CertsError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `contents` to `path` atomically, the file created with `mode`.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertsError> {
    use std::os::unix::fs::OpenOptionsExt;

    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| CertsError::Io {
            action,
            path,
            source,
        }
    };
    // A stale temp file from a crashed run may have other permissions.
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("writing", &tmp))?;
    file.write_all(contents).map_err(io("writing", &tmp))?;
    file.sync_all().map_err(io("writing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io("writing", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes_rules() {
        for ok in ["a", "reviews", "reviews-v2", "my.sa", "x1"] {
            assert_eq!(WorkloadName::new(ok).unwrap().as_str(), ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("ca", "reserved"),
            ("Reviews", "a-z, 0-9"),
            ("../etc", "a-z, 0-9"),
            ("a/b", "a-z, 0-9"),
            ("-a", "start and end"),
            ("a.", "start and end"),
        ] {
            let err = WorkloadName::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains("--name"), "{err}");
        }
    }

    #[test]
    fn namespaces_are_labels() {
        assert!(IdentityNamespace::new("default").is_ok());
        assert!(IdentityNamespace::new("team-a").is_ok());
        for bad in ["", "a.b", "A", "-a", &"x".repeat(64)] {
            let err = IdentityNamespace::new(bad).unwrap_err().to_string();
            assert!(err.contains("--identity-namespace"), "{err}");
        }
    }

    #[test]
    fn spiffe_ids_use_the_cluster_trust_domain() {
        let ns = IdentityNamespace::new("shop").unwrap();
        let name = WorkloadName::new("cart").unwrap();
        assert_eq!(
            spiffe_id(&ns, &name),
            "spiffe://cluster.local/ns/shop/sa/cart"
        );
    }
}

//! Certificate, key and CA files: PEM loading with errors that name the
//! file, and [`Reloadable`], a value rebuilt when its files change.
//!
//! Rotation polls the files' *contents* rather than using inotify or
//! mtimes: Kubernetes rotates mounted secrets by swapping a symlink (which
//! inotify watches on the old target miss), editors and `cp` rewrite in place,
//! and two rewrites within one mtime tick are invisible to mtime checks.
//! Reading three small files every interval is cheap and sees all of these.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{TlsError, error_chain, identity, provider};

/// Parses every PEM certificate in `pem` (other sections are skipped).
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, pem::Error> {
    CertificateDer::pem_slice_iter(pem).collect()
}

/// The contents of a set of files, read together for one (re)build.
pub(crate) struct Files {
    contents: Vec<(PathBuf, Vec<u8>)>,
    fingerprint: u64,
}

// === impl Files ===

impl Files {
    /// Reads every file in `paths`.
    pub(crate) fn read(paths: &[PathBuf]) -> Result<Self, TlsError> {
        let mut hasher = DefaultHasher::new();
        let mut contents = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.clone(),
                source,
            })?;
            path.hash(&mut hasher);
            bytes.hash(&mut hasher);
            contents.push((path.clone(), bytes));
        }
        Ok(Self {
            contents,
            fingerprint: hasher.finish(),
        })
    }

    /// A hash of all paths and contents.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The contents of `path`, which must be one of the paths read.
    pub(crate) fn get(&self, path: &Path) -> &[u8] {
        self.contents
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, bytes)| bytes.as_slice())
            .unwrap_or_default()
    }
}

/// The certificate chain in `bytes` (from `path`), leaf first.
pub(crate) fn certificates(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = pem_certificates(bytes).map_err(|source| TlsError::CertificatePem {
        path: path.to_path_buf(),
        source,
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    for (i, cert) in certs.iter().enumerate() {
        if identity::parse(cert).is_none() {
            return Err(TlsError::BadCertificate {
                path: path.to_path_buf(),
                index: i + 1,
            });
        }
    }
    Ok(certs)
}

/// The private key in `bytes` (from `path`).
pub(crate) fn private_key(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| TlsError::NoPrivateKey {
        path: path.to_path_buf(),
        reason: match e {
            pem::Error::NoItemsFound => "no `PRIVATE KEY` section",
            pem::Error::MissingSectionEnd { .. } => "a section has no END line",
            pem::Error::IllegalSectionStart { .. } => "malformed BEGIN line",
            pem::Error::Base64Decode(_) => "invalid base64",
            pem::Error::SectionTooLarge => "section too large",
            _ => "unreadable PEM",
        },
    })
}

/// A trust store with every certificate in the CA file `path`.
pub(crate) fn roots(path: &Path, bytes: &[u8]) -> Result<Arc<RootCertStore>, TlsError> {
    let certs = certificates(path, bytes).map_err(|e| match e {
        TlsError::NoCertificate { path } => TlsError::BadCa {
            path,
            reason: "no `CERTIFICATE` section".to_string(),
        },
        other => other,
    })?;
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        store.add(cert).map_err(|e| TlsError::BadCa {
            path: path.to_path_buf(),
            reason: format!("certificate number {} is not a trust anchor: {e}", i + 1),
        })?;
    }
    Ok(Arc::new(store))
}

/// Warns when a key file can be read by group or others.
pub(crate) fn warn_if_key_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;

    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "private key file is readable by group or others; run `chmod 600 {}`",
                path.display()
            );
        }
    }
}

/// A certificate chain and its private key, checked to belong together and
/// to be valid now. `Debug` shows the file names only.
#[derive(Clone)]
pub struct CertKeyPair {
    cert_path: PathBuf,
    key_path: PathBuf,
    certified: Arc<CertifiedKey>,
}

// === impl CertKeyPair ===

impl CertKeyPair {
    /// Loads `cert` (PEM chain, leaf first) and `key` (PEM private key).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let files = Files::read(&[cert.to_path_buf(), key.to_path_buf()])?;
        Self::from_files(&files, cert, key)
    }

    pub(crate) fn from_files(files: &Files, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        warn_if_key_readable_by_others(key);
        let chain = certificates(cert, files.get(cert))?;
        let key_der = private_key(key, files.get(key))?;
        check_validity(cert, &chain[0])?;
        let signing_key = provider()
            .key_provider
            .load_private_key(key_der)
            .map_err(|_| TlsError::UnsupportedKey {
                path: key.to_path_buf(),
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        if certified.keys_match().is_err() {
            return Err(TlsError::KeyMismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            });
        }
        Ok(Self {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            certified: Arc::new(certified),
        })
    }

    /// The chain and signing key, for rustls' certificate resolvers.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.certified.clone()
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.certified.cert[0]
    }
}

impl fmt::Debug for CertKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertKeyPair")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// Refuses a leaf certificate that is expired or not yet valid: serving it
/// would fail every handshake, so a rotation to it must not happen.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>) -> Result<(), TlsError> {
    let Some((not_before, not_after)) = identity::validity(leaf) else {
        return Err(TlsError::BadCertificate {
            path: path.to_path_buf(),
            index: 1,
        });
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let state = if now > not_after {
        "expired"
    } else if now < not_before {
        "not yet valid"
    } else {
        return Ok(());
    };
    Err(TlsError::NotValidNow {
        path: path.to_path_buf(),
        state,
        not_before,
        not_after,
    })
}

type Build<T> = Box<dyn Fn(&Files) -> Result<T, TlsError> + Send + Sync>;

/// A value built from files (a rustls config, a workload identity) that is
/// rebuilt when the files' contents change. Readers get the current value
/// with one atomic load; a failed rebuild keeps the previous value.
pub struct Reloadable<T> {
    what: String,
    paths: Vec<PathBuf>,
    build: Build<T>,
    current: ArcSwap<T>,
    /// Fingerprint of the contents last tried, successfully or not, so a
    /// broken file is reported once, not on every poll.
    tried: Mutex<u64>,
    generation: AtomicU64,
}

/// The result of one [`Reloadable::reload`].
#[derive(Debug)]
pub enum Reload {
    /// The files have not changed since the last attempt.
    Unchanged,
    /// The files changed and the new value is in use.
    Reloaded,
    /// The files changed but are unusable; the previous value stays.
    Rejected(TlsError),
}

// === impl Reloadable ===

impl<T> Reloadable<T> {
    /// Builds the first value from `paths`; an error here is fatal to the
    /// caller (there is no previous value to keep).
    pub(crate) fn new(
        what: impl Into<String>,
        paths: Vec<PathBuf>,
        build: impl Fn(&Files) -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let files = Files::read(&paths)?;
        let first = build(&files)?;
        Ok(Self {
            what: what.into(),
            paths,
            build: Box::new(build),
            current: ArcSwap::from_pointee(first),
            tried: Mutex::new(files.fingerprint()),
            generation: AtomicU64::new(0),
        })
    }

    /// The value in use.
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Incremented on every successful reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The files this value is built from.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Re-reads the files and rebuilds when they changed. Logs the outcome:
    /// info on success, error (naming the file, never its contents) on
    /// rejection. Blocking file IO: call from a blocking context.
    pub fn reload(&self) -> Reload {
        let result = Files::read(&self.paths).map(|files| (files.fingerprint(), files));
        let (fingerprint, outcome) = match result {
            Ok((fingerprint, files)) => {
                if *self.tried.lock().unwrap_or_else(|e| e.into_inner()) == fingerprint {
                    return Reload::Unchanged;
                }
                (fingerprint, (self.build)(&files))
            }
            Err(e) => {
                // Unreadable (e.g. deleted mid-rotation): fingerprint the
                // error so it is logged once until something changes.
                let mut hasher = DefaultHasher::new();
                e.to_string().hash(&mut hasher);
                let fingerprint = hasher.finish();
                if *self.tried.lock().unwrap_or_else(|e| e.into_inner()) == fingerprint {
                    return Reload::Unchanged;
                }
                (fingerprint, Err(e))
            }
        };
        *self.tried.lock().unwrap_or_else(|e| e.into_inner()) = fingerprint;
        match outcome {
            Ok(value) => {
                self.current.store(Arc::new(value));
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(files = ?self.paths, "reloaded {}", self.what);
                Reload::Reloaded
            }
            Err(e) => {
                tracing::error!(
                    files = ?self.paths,
                    "rejected new {}: {}; still using the previous one",
                    self.what,
                    error_chain(&e)
                );
                Reload::Rejected(e)
            }
        }
    }
}

impl<T> fmt::Debug for Reloadable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloadable")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// Anything with files to poll: [`Reloadable`] values and the outbound
/// connector cache.
pub trait Poll: Send + Sync + 'static {
    /// Re-read the files; rebuild what changed. Blocking.
    fn poll(&self);
}

impl<T: Send + Sync + 'static> Poll for Reloadable<T> {
    fn poll(&self) {
        let _ = self.reload();
    }
}

/// Polls `target` every `every` until the returned task is aborted. Each
/// poll runs on the blocking pool (it reads files).
pub fn spawn_watcher<P: Poll + ?Sized>(
    target: Arc<P>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let target = target.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || target.poll()).await {
                tracing::error!("TLS file watcher poll failed: {e}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Pki, write_key};
    use super::*;

    #[test]
    fn loads_a_matching_pair() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (cert, key) = pki.workload("web").write(dir.path(), "web");
        let pair = CertKeyPair::load(&cert, &key).unwrap();
        assert_eq!(pair.certified_key().cert.len(), 1);
        let debug = format!("{pair:?}");
        assert!(
            debug.contains("web.key") && !debug.contains("PRIVATE"),
            "{debug}"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (cert, key) = pki.workload("a").write(dir.path(), "a");
        let (_, other_key) = pki.workload("b").write(dir.path(), "b");

        let missing = dir.path().join("missing.crt");
        let err = CertKeyPair::load(&missing, &key).unwrap_err();
        assert!(err.to_string().contains("missing.crt"), "{err}");
        assert!(err.to_string().contains("check the path"), "{err}");

        let err = CertKeyPair::load(&key, &key).unwrap_err().to_string();
        assert!(err.contains("a.key contains no PEM certificate"), "{err}");

        let err = CertKeyPair::load(&cert, &cert).unwrap_err().to_string();
        assert!(
            err.contains("a.crt contains no usable PEM private key"),
            "{err}"
        );

        let err = CertKeyPair::load(&cert, &other_key)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.key is not the private key of the certificate in"),
            "{err}"
        );
        assert!(err.contains("replace both files together"), "{err}");

        let garbage = dir.path().join("garbage.key");
        write_key(
            &garbage,
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0c2VjcmV0!!!\n-----END PRIVATE KEY-----\n",
        );
        let err = CertKeyPair::load(&cert, &garbage).unwrap_err();
        let chain = error_chain(&err);
        assert!(chain.contains("garbage.key"), "{chain}");
        assert!(!chain.contains("c2VjcmV0"), "key bytes leaked: {chain}");
    }

    #[test]
    fn expired_and_future_certificates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (cert, key) = pki.expired_workload("old").write(dir.path(), "old");
        let err = CertKeyPair::load(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("old.crt is expired"), "{err}");
        assert!(err.contains("issue a new one"), "{err}");

        let (cert, key) = pki.future_workload("new").write(dir.path(), "new");
        let err = CertKeyPair::load(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("new.crt is not yet valid"), "{err}");
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        let err = roots(&path, b"nothing here").unwrap_err().to_string();
        assert!(err.contains("ca.crt: no usable CA certificate"), "{err}");
        let pki = Pki::new();
        assert_eq!(roots(&path, pki.ca_pem().as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn reload_keeps_the_old_value_when_the_new_one_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (cert, key) = pki.workload("a").write(dir.path(), "svc");
        let (c, k) = (cert.clone(), key.clone());
        let value = Reloadable::new("test pair", vec![cert.clone(), key.clone()], move |files| {
            CertKeyPair::from_files(files, &c, &k)
        })
        .unwrap();
        let first = value.current().leaf().clone();
        assert!(matches!(value.reload(), Reload::Unchanged));

        // A certificate without its key: rejected, the old pair stays.
        let other = pki.workload("b");
        std::fs::write(&cert, other.cert_pem()).unwrap();
        match value.reload() {
            Reload::Rejected(TlsError::KeyMismatch { .. }) => {}
            other => panic!("expected a key mismatch, got {other:?}"),
        }
        assert_eq!(value.current().leaf(), &first);
        assert_eq!(value.generation(), 0);
        // Reported once, not on every poll.
        assert!(matches!(value.reload(), Reload::Unchanged));

        // The key arrives: the new pair is used.
        other.write(dir.path(), "svc");
        assert!(matches!(value.reload(), Reload::Reloaded));
        assert_ne!(value.current().leaf(), &first);
        assert_eq!(value.generation(), 1);

        // A deleted file is an error, reported once.
        std::fs::remove_file(&key).unwrap();
        assert!(matches!(
            value.reload(),
            Reload::Rejected(TlsError::Read { .. })
        ));
        assert!(matches!(value.reload(), Reload::Unchanged));
        assert_eq!(value.generation(), 1);
    }
}

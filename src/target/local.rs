//! The local directory target (`--target local:DIR`), watched by `meshproxy --config DIR`.
//!
//! Format (shared with meshproxy): every `DIR/*.yaml` except `endpoints.yaml`
//! holds multi-document Istio resources, one file per service
//! (`DIR/<service>.yaml`); names starting with `.` are ignored. Every write
//! goes to `DIR/.<name>.tmp`, is fsynced and renamed over the file, so the
//! proxy never sees half a file.
//!
//! Kubernetes semantics are emulated where the rollout relies on them:
//! `metadata.resourceVersion` is a counter stored in the file and checked
//! under a lock (`DIR/.meshctl/lock`), so concurrent writers get
//! [`TargetError::Conflict`]; leases are files `DIR/.meshctl/lease-<service>.json`
//! with holder and expiry; events are appended to `DIR/.meshctl/events.jsonl`.
//!
//! The files are small, so IO is done inline rather than on a blocking pool.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshproxy::endpoints::EndpointsFile;
use meshproxy::istio::validate::short_host;
use meshproxy::istio::{DestinationRule, Resource, VirtualService, yaml};

use super::{Applied, ApplyAction, ApplyOptions, EventType, STATE_ANNOTATION, Target, TargetError};

/// How long to wait for the directory lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// A lock older than this was left by a crashed process and is broken.
const LOCK_STALE: Duration = Duration::from_secs(30);

/// A directory of Istio YAML files.
#[derive(Clone, Debug)]
pub struct LocalTarget {
    dir: PathBuf,
}

/// Holds `DIR/.meshctl/lock` until dropped.
struct DirLock {
    path: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LeaseFile {
    holder: String,
    expires_ms: u64,
}

fn other(message: String, source: Option<std::io::Error>) -> TargetError {
    TargetError::Other {
        message,
        source: source.map(|e| Box::new(e) as _),
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// Writes `path` atomically: `.name.tmp`, fsync, rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

// === impl DirLock ===

impl DirLock {
    fn acquire(dir: &Path) -> Result<Self, TargetError> {
        let state = dir.join(".meshctl");
        fs::create_dir_all(&state)
            .map_err(|e| other(format!("creating {}", state.display()), Some(e)))?;
        let path = state.join("lock");
        let deadline = std::time::SystemTime::now() + LOCK_WAIT;
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age > LOCK_STALE);
                    if stale {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if SystemTime::now() > deadline {
                        return Err(other(
                            format!(
                                "{} is held by another meshctl process for more than {LOCK_WAIT:?}; if none is running, remove the file",
                                path.display()
                            ),
                            None,
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(other(format!("creating {}", path.display()), Some(e))),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

// === impl LocalTarget ===

impl LocalTarget {
    /// A target for `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The YAML files holding resources, sorted.
    fn files(&self) -> Result<Vec<PathBuf>, TargetError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(other(
                    format!("reading directory {}", self.dir.display()),
                    Some(e),
                ));
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                !name.starts_with('.')
                    && name != "endpoints.yaml"
                    && (name.ends_with(".yaml") || name.ends_with(".yml"))
                    && p.is_file()
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn read_file(path: &Path) -> Result<Vec<Resource>, TargetError> {
        let text = fs::read_to_string(path)
            .map_err(|e| other(format!("reading {}", path.display()), Some(e)))?;
        yaml::parse_resources(&text).map_err(|e| {
            other(
                format!("{}: {e}; fix or remove the file", path.display()),
                None,
            )
        })
    }

    fn write_file(path: &Path, resources: &[Resource]) -> Result<(), TargetError> {
        let text = yaml::print_resources(resources)
            .map_err(|e| other(format!("printing {}: {e}", path.display()), None))?;
        write_atomic(path, text.as_bytes())
            .map_err(|e| other(format!("writing {}", path.display()), Some(e)))
    }

    /// Finds an object by kind and name: (file, its resources, index).
    fn find(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<Option<(PathBuf, Vec<Resource>, usize)>, TargetError> {
        for f in self.files()? {
            let resources = Self::read_file(&f)?;
            if let Some(i) = resources
                .iter()
                .position(|r| r.kind() == kind && r.metadata().name == name)
            {
                return Ok(Some((f, resources, i)));
            }
        }
        Ok(None)
    }

    fn not_found(&self, kind: &str, name: &str) -> TargetError {
        TargetError::NotFound {
            kind: kind.to_owned(),
            name: name.to_owned(),
            hint: format!(
                " in {}: run `meshctl apply --target local:{}` first",
                self.dir.display(),
                self.dir.display()
            ),
        }
    }

    fn lease_path(&self, service: &str) -> PathBuf {
        self.dir
            .join(".meshctl")
            .join(format!("lease-{service}.json"))
    }
}

fn meta_mut(r: &mut Resource) -> &mut meshproxy::istio::ObjectMeta {
    match r {
        Resource::Gateway(x) => &mut x.metadata,
        Resource::VirtualService(x) => &mut x.metadata,
        Resource::DestinationRule(x) => &mut x.metadata,
    }
}

fn rv(r: &Resource) -> u64 {
    r.metadata()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The file a group of resources goes to: named after its VirtualService (or first resource).
fn service_file_stem(resources: &[Resource]) -> String {
    resources
        .iter()
        .find(|r| matches!(r, Resource::VirtualService(_)))
        .or_else(|| resources.first())
        .map(|r| r.metadata().name.clone())
        .unwrap_or_else(|| "resources".to_owned())
}

// === impl LocalTarget (endpoints.yaml) ===

impl LocalTarget {
    /// `endpoints.yaml`, read and validated as meshproxy reads it, so
    /// doctor sees what the proxy sees.
    fn endpoints_file(&self, host: &str) -> Result<EndpointsFile, TargetError> {
        let path = self.dir.join("endpoints.yaml");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(other(
                    format!(
                        "{} does not exist: create it with the service's endpoints (services: {{{}: {{endpoints: [{{address: 127.0.0.1:8081, labels: {{version: v1}}}}]}}}})",
                        path.display(),
                        short_host(host)
                    ),
                    None,
                ));
            }
            Err(e) => return Err(other(format!("reading {}", path.display()), Some(e))),
        };
        // meshproxy's own reading of the file, so doctor sees what the proxy sees.
        let file: EndpointsFile = yaml::from_str(&text)
            .map_err(|e| other(format!("{}: {e}; fix the file", path.display()), None))?;
        file.validate()
            .map_err(|e| other(format!("{}: {e}", path.display()), None))?;
        Ok(file)
    }
}

impl Target for LocalTarget {
    fn describe(&self) -> String {
        format!("local:{}", self.dir.display())
    }

    async fn apply(
        &self,
        resources: &[Resource],
        options: ApplyOptions,
    ) -> Result<Vec<Applied>, TargetError> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| other(format!("creating {}", self.dir.display()), Some(e)))?;
        let _lock = DirLock::acquire(&self.dir)?;
        let default_file = self
            .dir
            .join(format!("{}.yaml", service_file_stem(resources)));
        let mut out = Vec::new();
        for r in resources {
            let (kind, name) = (r.kind(), r.metadata().name.clone());
            let (file, mut existing, index) = match self.find(kind, &name)? {
                Some((f, res, i)) => (f, res, Some(i)),
                None => {
                    let res = if default_file.exists() {
                        Self::read_file(&default_file)?
                    } else {
                        Vec::new()
                    };
                    (default_file.clone(), res, None)
                }
            };
            let mut new = r.clone();
            let action = match index {
                Some(i) => {
                    let old = &existing[i];
                    // Keep annotations the applied object does not mention (the rollout state).
                    let mut merged = old.metadata().annotations.clone();
                    merged.extend(new.metadata().annotations.clone());
                    meta_mut(&mut new).annotations = merged;
                    meta_mut(&mut new).resource_version = old.metadata().resource_version.clone();
                    if new == *old {
                        ApplyAction::Unchanged
                    } else {
                        meta_mut(&mut new).resource_version = Some((rv(old) + 1).to_string());
                        existing[i] = new;
                        ApplyAction::Configured
                    }
                }
                None => {
                    meta_mut(&mut new).resource_version = Some("1".to_owned());
                    existing.push(new);
                    ApplyAction::Created
                }
            };
            if action != ApplyAction::Unchanged && !options.dry_run {
                Self::write_file(&file, &existing)?;
            }
            out.push(Applied {
                kind: kind.to_owned(),
                name,
                action,
            });
        }
        Ok(out)
    }

    async fn virtual_service(&self, name: &str) -> Result<VirtualService, TargetError> {
        match self.find("VirtualService", name)? {
            Some((_, mut res, i)) => match res.swap_remove(i) {
                Resource::VirtualService(mut vs) => {
                    vs.metadata
                        .resource_version
                        .get_or_insert_with(|| "0".to_owned());
                    Ok(vs)
                }
                _ => Err(self.not_found("VirtualService", name)),
            },
            None => Err(self.not_found("VirtualService", name)),
        }
    }

    async fn destination_rule(&self, name: &str) -> Result<DestinationRule, TargetError> {
        match self.find("DestinationRule", name)? {
            Some((_, mut res, i)) => match res.swap_remove(i) {
                Resource::DestinationRule(dr) => Ok(dr),
                _ => Err(self.not_found("DestinationRule", name)),
            },
            None => Err(self.not_found("DestinationRule", name)),
        }
    }

    async fn replace_virtual_service(
        &self,
        vs: &VirtualService,
    ) -> Result<VirtualService, TargetError> {
        let name = &vs.metadata.name;
        let _lock = DirLock::acquire(&self.dir)?;
        let (file, mut resources, i) = self
            .find("VirtualService", name)?
            .ok_or_else(|| self.not_found("VirtualService", name))?;
        let current = rv(&resources[i]);
        let expected = vs
            .metadata
            .resource_version
            .clone()
            .unwrap_or_else(|| "0".to_owned());
        if expected != current.to_string() {
            return Err(TargetError::Conflict {
                kind: "VirtualService".to_owned(),
                name: name.clone(),
                expected,
            });
        }
        let mut stored = vs.clone();
        stored.metadata.resource_version = Some((current + 1).to_string());
        resources[i] = Resource::VirtualService(stored.clone());
        Self::write_file(&file, &resources)?;
        Ok(stored)
    }

    async fn rollouts(&self) -> Result<Vec<VirtualService>, TargetError> {
        let mut out = Vec::new();
        for f in self.files()? {
            for r in Self::read_file(&f)? {
                if let Resource::VirtualService(vs) = r
                    && vs.metadata.annotations.contains_key(STATE_ANNOTATION)
                {
                    out.push(vs);
                }
            }
        }
        Ok(out)
    }

    async fn get(&self, kind: &str, name: &str) -> Result<Option<Resource>, TargetError> {
        Ok(self
            .find(kind, name)?
            .map(|(_, mut res, i)| res.swap_remove(i)))
    }

    async fn endpoints(
        &self,
        host: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<String>, TargetError> {
        let file = self.endpoints_file(host)?;
        Ok(file
            .select(short_host(host), labels)
            .into_iter()
            .map(|a| a.to_string())
            .collect())
    }

    async fn service_port(
        &self,
        host: &str,
    ) -> Result<Option<meshproxy::endpoints::ServicePort>, TargetError> {
        let file = self.endpoints_file(host)?;
        Ok(file
            .services
            .get(short_host(host))
            .and_then(|s| s.port.clone()))
    }

    async fn acquire_lease(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), TargetError> {
        let _lock = DirLock::acquire(&self.dir)?;
        let path = self.lease_path(service);
        let now = now_ms();
        if let Ok(text) = fs::read_to_string(&path)
            && let Ok(lease) = serde_json::from_str::<LeaseFile>(&text)
            && lease.holder != holder
            && lease.expires_ms > now
        {
            return Err(TargetError::LeaseHeld {
                service: service.to_owned(),
                holder: lease.holder,
                expires_in: Duration::from_millis(lease.expires_ms - now),
            });
        }
        let lease = LeaseFile {
            holder: holder.to_owned(),
            expires_ms: now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        };
        let json = serde_json::to_vec(&lease).unwrap_or_default();
        write_atomic(&path, &json)
            .map_err(|e| other(format!("writing {}", path.display()), Some(e)))
    }

    async fn release_lease(&self, service: &str, holder: &str) -> Result<(), TargetError> {
        let _lock = DirLock::acquire(&self.dir)?;
        let path = self.lease_path(service);
        if let Ok(text) = fs::read_to_string(&path)
            && serde_json::from_str::<LeaseFile>(&text).is_ok_and(|l| l.holder == holder)
        {
            fs::remove_file(&path)
                .map_err(|e| other(format!("removing {}", path.display()), Some(e)))?;
        }
        Ok(())
    }

    async fn record_event(
        &self,
        service: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), TargetError> {
        let dir = self.dir.join(".meshctl");
        fs::create_dir_all(&dir)
            .map_err(|e| other(format!("creating {}", dir.display()), Some(e)))?;
        let path = dir.join("events.jsonl");
        let line = serde_json::json!({
            "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            "service": service,
            "type": match kind { EventType::Normal => "Normal", EventType::Warning => "Warning" },
            "reason": reason,
            "message": message,
        });
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| other(format!("opening {}", path.display()), Some(e)))?;
        writeln!(f, "{line}")
            .map_err(|e| other(format!("appending to {}", path.display()), Some(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> String {
        crate::testing::discounts_vs_and_dr(crate::testing::TO_V1)
    }

    #[tokio::test]
    async fn apply_read_replace_with_resource_versions() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTarget::new(dir.path());
        let res = yaml::parse_resources(&resources()).unwrap();
        let applied = t.apply(&res, ApplyOptions::default()).await.unwrap();
        assert!(applied.iter().all(|a| a.action == ApplyAction::Created));
        assert!(dir.path().join("discounts.yaml").exists());
        let applied = t.apply(&res, ApplyOptions::default()).await.unwrap();
        assert!(applied.iter().all(|a| a.action == ApplyAction::Unchanged));

        let mut vs = t.virtual_service("discounts").await.unwrap();
        assert_eq!(vs.metadata.resource_version.as_deref(), Some("1"));
        vs.metadata
            .annotations
            .insert(STATE_ANNOTATION.into(), "{}".into());
        let stored = t.replace_virtual_service(&vs).await.unwrap();
        assert_eq!(stored.metadata.resource_version.as_deref(), Some("2"));
        // A second writer with the old resourceVersion conflicts.
        let e = t.replace_virtual_service(&vs).await.unwrap_err();
        assert!(matches!(e, TargetError::Conflict { .. }), "{e}");
        assert!(e.to_string().contains("resourceVersion 1 is stale"), "{e}");
        // Re-applying keeps the rollout state annotation.
        t.apply(&res, ApplyOptions::default()).await.unwrap();
        assert_eq!(t.rollouts().await.unwrap().len(), 1);
        assert_eq!(
            t.destination_rule("discounts")
                .await
                .unwrap()
                .spec
                .subsets
                .len(),
            1
        );
        let e = t.virtual_service("nope").await.unwrap_err().to_string();
        assert!(e.contains("run `meshctl apply --target local:"), "{e}");
        // No temp files or locks are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        assert!(!dir.path().join(".meshctl/lock").exists());
    }

    #[tokio::test]
    async fn leases_exclude_other_holders_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTarget::new(dir.path());
        t.acquire_lease("discounts", "a", Duration::from_secs(60))
            .await
            .unwrap();
        t.acquire_lease("discounts", "a", Duration::from_secs(60))
            .await
            .unwrap();
        let e = t
            .acquire_lease("discounts", "b", Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already being driven by a"), "{e}");
        t.release_lease("discounts", "b").await.unwrap();
        assert!(
            t.acquire_lease("discounts", "b", Duration::from_secs(60))
                .await
                .is_err()
        );
        t.release_lease("discounts", "a").await.unwrap();
        t.acquire_lease("discounts", "b", Duration::from_secs(60))
            .await
            .unwrap();
        // An expired lease is taken over.
        t.acquire_lease("x", "a", Duration::ZERO).await.unwrap();
        t.acquire_lease("x", "b", Duration::from_secs(1))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn events_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTarget::new(dir.path());
        t.record_event("discounts", EventType::Normal, "Started", "a")
            .await
            .unwrap();
        t.record_event("discounts", EventType::Warning, "RolledBack", "b")
            .await
            .unwrap();
        let text = fs::read_to_string(dir.path().join(".meshctl/events.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["type"], "Warning");
        assert_eq!(lines[1]["reason"], "RolledBack");
    }
}

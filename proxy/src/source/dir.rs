//! The local directory source (`meshproxy --config DIR`).
//!
//! Format (shared with `meshctl --target local:DIR`): every `DIR/*.yaml`
//! except `endpoints.yaml` holds multi-document Istio resources; names
//! starting with `.` are ignored (writers write `.name.tmp` and rename);
//! `DIR/endpoints.yaml` maps services to endpoints (see
//! [`crate::endpoints`]). The directory is watched with `notify`; bursts of
//! events are debounced, unchanged content is not reloaded, and a load that
//! fails leaves the live configuration untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{ConfigError, Live};
use crate::endpoints::EndpointsFile;
use crate::istio::{self, Resource};
use crate::routes::{ConfigFile, ConfigSnapshot};

/// The endpoints file's name inside the directory.
pub const ENDPOINTS_FILE: &str = "endpoints.yaml";

/// A configuration directory that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory or a file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML or holds an unknown kind or field type.
    #[error("{}: {source}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Line, column and field of the problem.
        #[source]
        source: Box<istio::yaml::YamlError>,
    },
    /// Resources are well-formed but semantically invalid.
    #[error("{}", problems.join("; "))]
    Invalid {
        /// `FILE: Kind/name field: message`, one per problem.
        problems: Vec<String>,
    },
}

/// The raw bytes of a directory's relevant files, to skip no-op reloads.
pub type Fingerprint = Vec<(String, Vec<u8>)>;

/// Reads, parses and validates the directory.
pub fn load(dir: &Path) -> Result<(ConfigSnapshot, Fingerprint), LoadError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LoadError::Io { path, source }
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".yaml") {
            continue;
        }
        names.push(name);
    }
    names.sort();
    let mut fingerprint = Vec::new();
    let mut files = Vec::new();
    let mut endpoints = EndpointsFile::default();
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        fingerprint.push((name.clone(), bytes));
        if name == ENDPOINTS_FILE {
            endpoints = if text.trim().is_empty() {
                EndpointsFile::default()
            } else {
                istio::yaml::from_str(&text).map_err(|source| LoadError::Yaml {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            };
            endpoints.validate().map_err(|e| LoadError::Invalid {
                problems: vec![format!("{}: {e}", path.display())],
            })?;
            continue;
        }
        let resources = istio::yaml::parse_resources(&text).map_err(|source| LoadError::Yaml {
            path: path.clone(),
            source: Box::new(source),
        })?;
        files.push(ConfigFile { name, resources });
    }
    let all: Vec<Resource> = files.iter().flat_map(|f| f.resources.clone()).collect();
    if let Err(e) = istio::validate::validate(&all) {
        let problems = e
            .problems
            .iter()
            .map(|p| {
                let file = files
                    .iter()
                    .find(|f| {
                        f.resources
                            .iter()
                            .any(|r| format!("{}/{}", r.kind(), r.metadata().name) == p.object)
                    })
                    .map_or_else(
                        || dir.display().to_string(),
                        |f| dir.join(&f.name).display().to_string(),
                    );
                format!("{file}: {p}")
            })
            .collect();
        return Err(LoadError::Invalid { problems });
    }
    // Compile errors name files by their name inside the directory; give them the full path.
    for f in &mut files {
        f.name = dir.join(&f.name).display().to_string();
    }
    Ok((
        ConfigSnapshot {
            generation: 0,
            source: dir.display().to_string(),
            files,
            endpoints,
        },
        fingerprint,
    ))
}

/// Loads the directory into `live`. Used at start-up, where failure is fatal.
pub fn load_into(live: &Live, dir: &Path) -> Result<(u64, Fingerprint), ConfigError> {
    let (snapshot, fp) = load(dir)?;
    let generation = live.apply(snapshot)?;
    Ok((generation, fp))
}

/// Watches `dir` and reloads `live` on changes until `shutdown` flips.
///
/// Events are debounced by `debounce`; when the OS watcher cannot be set up
/// (e.g. inotify limits), the directory is polled every `debounce * 10`.
pub async fn watch(
    live: Arc<Live>,
    dir: PathBuf,
    mut fingerprint: Fingerprint,
    debounce: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher = {
        use notify::Watcher;
        let tx = tx.clone();
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let relevant = match &res {
                Ok(ev) => {
                    !matches!(ev.kind, notify::EventKind::Access(_))
                        && (ev.paths.is_empty()
                            || ev.paths.iter().any(|p| {
                                p.file_name()
                                    .and_then(|n| n.to_str())
                                    .is_some_and(|n| !n.starts_with('.') && n.ends_with(".yaml"))
                            }))
                }
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(());
            }
        })
        .and_then(|mut w| {
            w.watch(&dir, notify::RecursiveMode::NonRecursive)
                .map(|()| w)
        })
    };
    // A write between the first load and the watcher's registration would
    // otherwise go unnoticed until the next change: check once now.
    let _ = tx.send(());
    let poll = match &watcher {
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the config directory; polling instead");
            Some(debounce * 10)
        }
    };
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            ev = rx.recv() => if ev.is_none() { return },
            () = async {
                match poll {
                    Some(p) => tokio::time::sleep(p).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        // Debounce: wait until the directory has been quiet for `debounce`.
        loop {
            tokio::select! {
                ev = rx.recv() => if ev.is_none() { return },
                () = tokio::time::sleep(debounce) => break,
            }
        }
        match load(&dir) {
            Ok((_, fp)) if fp == fingerprint => {}
            Ok((snapshot, fp)) => match live.apply(snapshot) {
                Ok(generation) => {
                    fingerprint = fp;
                    tracing::info!(dir = %dir.display(), generation, "configuration reloaded");
                }
                Err(e) => {
                    fingerprint = fp;
                    tracing::error!(dir = %dir.display(), "configuration rejected, keeping generation {}: {e}", live.generation());
                }
            },
            Err(e) => {
                live.reject();
                tracing::error!(dir = %dir.display(), "configuration rejected, keeping generation {}: {e}", live.generation());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: discounts}\nspec:\n  hosts: [discounts]\n  http:\n  - route:\n    - {destination: {host: discounts, subset: v1}}\n";
    const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: discounts}\nspec:\n  host: discounts\n  subsets:\n  - {name: v1, labels: {version: v1}}\n";

    #[test]
    fn loads_files_and_ignores_dotfiles() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("discounts.yaml"), format!("{DR}---\n{VS}")).unwrap();
        std::fs::write(d.path().join(".discounts.yaml.tmp"), "not: [valid").unwrap();
        std::fs::write(d.path().join("notes.txt"), "ignored").unwrap();
        std::fs::write(
            d.path().join(ENDPOINTS_FILE),
            "services:\n  discounts:\n    endpoints:\n    - {address: 127.0.0.1:8081, labels: {version: v1}}\n",
        )
        .unwrap();
        let (snap, fp) = load(d.path()).unwrap();
        assert_eq!(snap.files.len(), 1);
        assert_eq!(snap.files[0].resources.len(), 2);
        assert_eq!(snap.endpoints.services["discounts"].endpoints.len(), 1);
        assert_eq!(fp.len(), 2);
    }

    #[test]
    fn yaml_errors_name_the_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("discounts.yaml"),
            VS.replace("hosts: [discounts]", "hosts: 7: 8"),
        )
        .unwrap();
        let msg = load(d.path()).unwrap_err().to_string();
        let want = format!("{}: line 5", d.path().join("discounts.yaml").display());
        assert!(msg.starts_with(&want), "{msg}");
    }

    #[test]
    fn semantic_problems_name_the_file_object_and_field() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.yaml"), DR).unwrap();
        std::fs::write(
            d.path().join("b.yaml"),
            VS.replace("subset: v1", "subset: v9"),
        )
        .unwrap();
        let msg = load(d.path()).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "{}: VirtualService/discounts spec.http[0].route[0].destination.subset: subset \"v9\" of host \"discounts\" is not defined in its DestinationRule (defined: v1)",
                d.path().join("b.yaml").display()
            )
        );
    }

    #[test]
    fn bad_endpoint_names_the_endpoints_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(ENDPOINTS_FILE),
            "services:\n  discounts:\n    endpoints:\n    - {address: nowhere}\n",
        )
        .unwrap();
        let msg = load(d.path()).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "{}: services.discounts.endpoints[0].address: \"nowhere\" has no port: write host:port, e.g. 127.0.0.1:8081",
                d.path().join(ENDPOINTS_FILE).display()
            )
        );
    }

    #[test]
    fn missing_directory_is_named() {
        let msg = load(Path::new("/nonexistent/meshproxy-config"))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("/nonexistent/meshproxy-config: "), "{msg}");
    }
}

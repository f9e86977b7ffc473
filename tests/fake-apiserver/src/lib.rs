//! A fake Kubernetes API server for tests: a real HTTP server on
//! `127.0.0.1:0` that answers the way kube-apiserver does for the resources
//! meshctl and meshproxy use (see `README.md` for what is and is not
//! reproduced, and `REAL-APISERVER.md` for the behaviours it is held to).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = fake_apiserver::FakeApiServer::start().await?;
//! let dir = std::env::temp_dir();
//! let kubeconfig = server.write_kubeconfig(&dir, "default")?;
//! server.deny("patch", "virtualservices");
//! # let _ = kubeconfig; Ok(()) }
//! ```

mod fields;
mod registry;
mod server;
mod status;
mod store;
mod validation;

/// Istio CRD structural-schema validation (also used by the render schema tests).
pub mod schema;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

pub use registry::{ISTIO_GROUP, RESOURCES, ResourceType};

use server::{Shared, State};
use store::{Key, Store};

/// How unknown fields are treated (`fieldValidation` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop silently.
    Ignore,
    /// Drop, with a `Warning` header (the server's default).
    #[default]
    Warn,
    /// Reject with 400 BadRequest.
    Strict,
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// RBAC verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`);
    /// `get` for discovery and unknown paths.
    pub verb: String,
    /// API group of a resource request (`""` for core), `None` for discovery.
    pub group: Option<String>,
    /// API version of a resource request.
    pub version: Option<String>,
    /// Plural resource of a resource request.
    pub resource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// URL path.
    pub path: String,
    /// Decoded query string.
    pub query: String,
    /// `Content-Type` header.
    pub content_type: String,
    /// The response's HTTP status (200 for a watch stream).
    pub status: u16,
}

/// A running fake API server; stops when dropped.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn resource_type(group: &str, plural: &str) -> &'static ResourceType {
    match RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
    {
        Some(rt) => rt,
        None => panic!("the fake API server does not serve {plural}.{group}"),
    }
}

// === impl FakeApiServer ===

impl FakeApiServer {
    /// Starts a server on `127.0.0.1:0` with the Istio CRDs installed.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (changed, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store: Store::default(),
                istio: ["v1", "v1beta1", "v1alpha3"].map(String::from).to_vec(),
                denied: BTreeSet::new(),
                user: "system:serviceaccount:ci:meshctl".to_owned(),
                requests: Vec::new(),
                schemas: None,
                races: Vec::new(),
            }),
            changed,
            url: format!("http://{addr}"),
        });
        let accept = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&accept);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move {
                            Ok::<_, std::convert::Infallible>(server::handle(shared, req).await)
                        }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    if let Err(e) = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!("fake apiserver connection ended: {e}");
                    }
                });
            }
        });
        Ok(Self { shared, addr, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (context `fake`, cluster `fake`, token auth) pointing here.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: ci\n    namespace: {namespace}\ncurrent-context: fake\nusers:\n- name: ci\n  user:\n    token: fake-token\n",
            url = self.url()
        )
    }

    /// Writes [`Self::kubeconfig`] to `DIR/kubeconfig` and returns the path.
    pub fn write_kubeconfig(&self, dir: &Path, namespace: &str) -> std::io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig(namespace))?;
        Ok(path)
    }

    /// Installs or removes the Istio CRDs (removed: discovery and resource paths 404).
    pub fn set_istio_installed(&self, installed: bool) {
        let versions: &[&str] = if installed {
            &["v1", "v1beta1", "v1alpha3"]
        } else {
            &[]
        };
        self.set_istio_versions(versions);
    }

    /// Serves only these Istio CRD versions (an older Istio serves
    /// `v1beta1` and `v1alpha3` but not `v1`); the others 404.
    pub fn set_istio_versions(&self, versions: &[&str]) {
        self.shared.lock().istio = versions.iter().map(|v| (*v).to_owned()).collect();
    }

    /// Answers `verb` on `resource` (plural; `*` for every verb) with 403 Forbidden.
    pub fn deny(&self, verb: &str, resource: &str) {
        self.shared
            .lock()
            .denied
            .insert((verb.to_owned(), resource.to_owned()));
    }

    /// The user named in 403 messages.
    pub fn set_user(&self, user: &str) {
        user.clone_into(&mut self.shared.lock().user);
    }

    /// Validates custom resources against these CRD schemas, as the API
    /// server does (422 Invalid; unknown fields by `fieldValidation`).
    pub fn set_crd_schemas(&self, schemas: schema::CrdSchemas) {
        self.shared.lock().schemas = Some(Arc::new(schemas));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The stored object as served at its storage version, with managedFields.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = resource_type(group, plural);
        let state = self.shared.lock();
        state
            .store
            .get(&Key {
                group: rt.group,
                plural: rt.plural,
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
            .map(|s| s.render(rt.kind, &rt.api_version(rt.versions[0])))
    }

    /// Every stored object of a type in a namespace.
    pub fn objects(&self, group: &str, plural: &str, namespace: &str) -> Vec<Value> {
        let rt = resource_type(group, plural);
        let state = self.shared.lock();
        state
            .store
            .list(rt, Some(namespace))
            .into_iter()
            .map(|(_, s)| s.render(rt.kind, &rt.api_version(rt.versions[0])))
            .collect()
    }

    /// Edits a stored object out of band, as another client's update would
    /// (`kubectl edit` by field manager `manager`): bumps the resourceVersion,
    /// moves ownership of changed fields to `manager` and notifies watches.
    pub fn edit(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        manager: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, String> {
        let rt = resource_type(group, plural);
        let mut state = self.shared.lock();
        let written = state
            .store
            .edit(
                rt,
                Key {
                    group: rt.group,
                    plural: rt.plural,
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                },
                manager,
                f,
            )
            .map_err(|e| e.body.to_string())?;
        let rv = state.store.revision();
        drop(state);
        self.shared.notify(rv);
        Ok(written
            .object
            .render(rt.kind, &rt.api_version(rt.versions[0])))
    }

    /// Creates an object out of band (as `kubectl create` would), e.g. Pods.
    pub fn insert(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        obj: Value,
    ) -> Result<Value, String> {
        let rt = resource_type(group, plural);
        let name = obj["metadata"]["name"]
            .as_str()
            .ok_or("metadata.name is required")?
            .to_owned();
        let mut state = self.shared.lock();
        let api_version = rt.api_version(rt.versions[0]);
        let written = state
            .store
            .create(
                rt,
                Key {
                    group: rt.group,
                    plural: rt.plural,
                    namespace: namespace.to_owned(),
                    name,
                },
                obj,
                store::Writer {
                    manager: "kubectl-create",
                    api_version: &api_version,
                    dry_run: false,
                },
            )
            .map_err(|e| e.body.to_string())?;
        let rv = state.store.revision();
        drop(state);
        self.shared.notify(rv);
        Ok(written.object.render(rt.kind, &api_version))
    }

    /// Makes the next `update` (PUT) of `plural` race with another writer:
    /// just before it is handled, a `racing-controller` bumps the object's
    /// annotation `example.com/raced`, so the PUT's resourceVersion is stale
    /// and it gets 409 Conflict, as it would in a real race.
    pub fn race_next_update(&self, plural: &str) {
        self.shared.lock().races.push(plural.to_owned());
    }

    /// Forgets the change history: watches from an older resourceVersion get 410 Gone.
    pub fn compact(&self) {
        let mut state = self.shared.lock();
        state.store.compacted = state.store.revision();
        state.store.log.clear();
    }
}

#[cfg(test)]
mod tests;

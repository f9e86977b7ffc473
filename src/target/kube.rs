//! The Kubernetes target: kube-rs against the cluster of the current (or
//! chosen) kubeconfig context.
//!
//! - Istio resources are written with server-side apply under field manager
//!   [`FIELD_MANAGER`] as `DynamicObject`s of the `networking.istio.io`
//!   version that discovery finds (`v1`, else `v1beta1`), once per run.
//! - Rollout state writes (`replace_virtual_service`) are `PUT`s carrying the
//!   `resourceVersion` that was read, under field manager
//!   [`ROLLOUT_FIELD_MANAGER`], so a concurrent writer gets a 409 instead of
//!   a silent overwrite, and a later `meshctl apply` that would undo a
//!   rollout's weights conflicts instead of silently reverting traffic.
//! - The rollout lease is a `coordination.k8s.io/v1` Lease `meshctl-SERVICE`.
//! - State transitions are `events.k8s.io/v1` Events regarding the VirtualService.
//!
//! Errors are classified from their structure (`kube::Error::Api` status
//! code and reason, `Status.details`, the `source()` chain), never from text.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ::kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Preconditions,
};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::core::{ApiResource, Status};
use ::kube::{Client, Config};
use http::StatusCode;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIResourceList, MicroTime, ObjectMeta,
};
use k8s_openapi::jiff::Timestamp;
use meshproxy::istio::{ApiVersion, DestinationRule, GROUP, Resource, VirtualService};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{
    Applied, ApplyAction, ApplyOptions, EventType, FIELD_MANAGER, KubeArgs, STATE_ANNOTATION,
    Target, TargetError,
};

/// The field manager of rollout state writes (weights + state annotation).
pub const ROLLOUT_FIELD_MANAGER: &str = "meshctl-rollout";

/// The `reportingController` of meshctl's Events.
pub const EVENT_CONTROLLER: &str = "meshctl.io/rollout";

/// The Lease guarding a service's rollout.
pub fn lease_name(service: &str) -> String {
    format!("meshctl-{service}")
}

/// The three Istio kinds as (kind, plural).
const ISTIO_KINDS: [(&str, &str); 3] = [
    ("Gateway", "gateways"),
    ("VirtualService", "virtualservices"),
    ("DestinationRule", "destinationrules"),
];

/// A connection to one namespace of one cluster.
pub struct KubeTarget {
    client: Client,
    namespace: String,
    context: String,
    server: String,
    requested: Option<ApiVersion>,
    discovered: OnceCell<ApiVersion>,
    /// Raw VirtualServices as last read, by name, so a replace keeps the
    /// fields meshproxy's model does not know.
    raw: Mutex<HashMap<String, Value>>,
}

impl std::fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("context", &self.context)
            .field("namespace", &self.namespace)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// What a request was doing, for error messages.
#[derive(Clone, Copy, Debug)]
struct Op<'a> {
    /// RBAC verb.
    verb: &'static str,
    /// Kind (`VirtualService`).
    kind: &'a str,
    /// Plural resource.
    plural: &'a str,
    /// API group (`""` for core).
    group: &'a str,
    /// Object name.
    name: Option<&'a str>,
}

impl Op<'_> {
    fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn object(&self) -> String {
        match self.name {
            Some(n) => format!("{} {n:?}", self.kind),
            None => self.kind.to_owned(),
        }
    }
}

fn other(message: String, source: impl std::error::Error + Send + Sync + 'static) -> TargetError {
    TargetError::Other {
        message,
        source: Some(Box::new(source)),
    }
}

/// `obj` (`kind` `name`) as raw JSON.
fn to_json(kind: &str, name: &str, obj: &DynamicObject) -> Result<Value, TargetError> {
    serde_json::to_value(obj).map_err(|e| other(format!("serialising {kind} {name:?}: {e}"), e))
}

fn plain(message: String) -> TargetError {
    TargetError::Other {
        message,
        source: None,
    }
}

/// Is this error a failure to reach the server (connect, TLS, I/O)?
fn is_unreachable(e: &::kube::Error) -> bool {
    match e {
        ::kube::Error::HyperError(_) | ::kube::Error::Service(_) => true,
        _ => {
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
            while let Some(err) = cur {
                if err.downcast_ref::<std::io::Error>().is_some() {
                    return true;
                }
                cur = err.source();
            }
            false
        }
    }
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn api_resource(version: ApiVersion, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.to_owned(),
        version: version.version().to_owned(),
        api_version: version.as_str().to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

/// The parts of an object an apply can change (for dry-run comparisons).
fn content(obj: &Value) -> Value {
    serde_json::json!({
        "labels": obj["metadata"]["labels"],
        "annotations": obj["metadata"]["annotations"],
        "spec": obj["spec"],
    })
}

// === impl KubeTarget ===

impl KubeTarget {
    /// Connects with standard kubeconfig inference: `--kubeconfig`, else
    /// `KUBECONFIG`, else `~/.kube/config`, else the in-cluster service
    /// account; `--context` picks a context, `-n` the namespace (default: the
    /// context's namespace, else `default`). `istio_api` pins the Istio API
    /// version instead of discovering it.
    pub async fn connect(
        args: &KubeArgs,
        istio_api: Option<ApiVersion>,
    ) -> Result<Self, TargetError> {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            cluster: None,
            user: None,
        };
        let from_file = |kc: Kubeconfig, origin: String| async move {
            let context = args
                .context
                .clone()
                .or_else(|| kc.current_context.clone())
                .unwrap_or_default();
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map(|c| (c, context))
                .map_err(|e| {
                    other(
                        format!(
                            "cannot use kubeconfig {origin}: {e}; check the file, or pick a context with --context"
                        ),
                        e,
                    )
                })
        };
        let (config, context) = match &args.kubeconfig {
            Some(path) => {
                let kc = read_kubeconfig(path)?;
                from_file(kc, path.display().to_string()).await?
            }
            None => match Kubeconfig::read() {
                Ok(kc) => from_file(kc, "from KUBECONFIG / ~/.kube/config".to_owned()).await?,
                Err(file_err) if args.context.is_none() => match Config::incluster() {
                    Ok(c) => (c, "in-cluster".to_owned()),
                    Err(_) => {
                        return Err(other(
                            format!(
                                "no Kubernetes configuration found ({file_err}): set KUBECONFIG or --kubeconfig, or use --target local:DIR"
                            ),
                            file_err,
                        ));
                    }
                },
                Err(e) => {
                    return Err(other(
                        format!(
                            "--context {:?} needs a kubeconfig, but none could be read ({e}); set KUBECONFIG or --kubeconfig",
                            args.context.as_deref().unwrap_or_default()
                        ),
                        e,
                    ));
                }
            },
        };
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let client = Client::try_from(config).map_err(|e| {
            other(
                format!("cannot build a Kubernetes client for {server} (context {context:?}): {e}"),
                e,
            )
        })?;
        Ok(Self {
            client,
            namespace,
            context,
            server,
            requested: istio_api,
            discovered: OnceCell::new(),
            raw: Mutex::new(HashMap::new()),
        })
    }

    /// The namespace this target works in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Turns a client error into a message that names what failed and the fix.
    fn map_err(&self, e: ::kube::Error, op: Op<'_>) -> TargetError {
        let ns = &self.namespace;
        let ctx = &self.context;
        let status = match &e {
            ::kube::Error::Api(s) => s.clone(),
            ::kube::Error::Auth(_) => {
                return other(
                    format!(
                        "cannot authenticate to the Kubernetes API server at {} (context {ctx:?}): {e}; refresh the credentials of that context",
                        self.server
                    ),
                    e,
                );
            }
            _ if is_unreachable(&e) => {
                let mut cause = e.to_string();
                let mut cur = std::error::Error::source(&e);
                while let Some(c) = cur {
                    cause = c.to_string();
                    cur = c.source();
                }
                return plain(format!(
                    "cannot reach the Kubernetes API server at {} (context {ctx:?}): {cause}; check that the cluster is running and that --context / --kubeconfig point at it",
                    self.server
                ));
            }
            _ => {
                return other(
                    format!(
                        "{} {} in namespace {ns:?} failed: {e}",
                        op.verb,
                        op.object()
                    ),
                    e,
                );
            }
        };
        let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let causes = status
            .details
            .as_ref()
            .map(|d| d.causes.clone())
            .unwrap_or_default();
        // The causes, one `  - FIELD: MESSAGE` line each.
        let field_lines = || -> Vec<String> {
            causes
                .iter()
                .map(|c| format!("  - {}: {}", c.field, c.message))
                .collect()
        };
        let names_object = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
        let message = match code {
            StatusCode::FORBIDDEN => format!(
                "forbidden: the account of context {ctx:?} may not {verb} {resource} in namespace {ns:?}; grant the verb {verb:?} on {resource:?} (see the Role in deploy/rbac.yaml). The API server said: {msg}",
                verb = op.verb,
                resource = op.resource(),
                msg = status.message,
            ),
            StatusCode::UNAUTHORIZED => format!(
                "unauthorized: the API server at {} rejected the credentials of context {ctx:?}; refresh them (e.g. log in again)",
                self.server
            ),
            StatusCode::NOT_FOUND if op.group == GROUP && !names_object => {
                return self.istio_missing(op.plural);
            }
            StatusCode::NOT_FOUND => {
                return TargetError::NotFound {
                    kind: op.kind.to_owned(),
                    name: op.name.unwrap_or_default().to_owned(),
                    hint: format!(" in namespace {ns:?}"),
                };
            }
            StatusCode::CONFLICT if causes.iter().any(|c| c.reason == "FieldManagerConflict") => {
                let fields = field_lines();
                format!(
                    "apply conflict on {} in namespace {ns:?}: fields are owned by another field manager:\n{}\nmeshctl changed nothing. Re-run with --force-conflicts to take ownership of these fields (this overwrites the other manager's values), or make the rendered values match",
                    op.object(),
                    fields.join("\n")
                )
            }
            StatusCode::CONFLICT => {
                return TargetError::Conflict {
                    kind: op.kind.to_owned(),
                    name: op.name.unwrap_or_default().to_owned(),
                    expected: String::new(),
                };
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                let fields = field_lines();
                format!(
                    "the API server rejected {} as invalid:\n{}\nfix these fields in the rendered resource (templates or spec) and apply again",
                    op.object(),
                    if fields.is_empty() {
                        format!("  {}", status.message)
                    } else {
                        fields.join("\n")
                    }
                )
            }
            StatusCode::BAD_REQUEST => format!(
                "the API server rejected {}: {}",
                op.object(),
                status.message
            ),
            _ => format!(
                "{} {} in namespace {ns:?} failed with HTTP {}: {} ({})",
                op.verb,
                op.object(),
                status.code,
                status.message,
                status.reason
            ),
        };
        // The message already carries the server's words; kube's Display of
        // the same Status would only repeat them.
        plain(message)
    }

    fn istio_missing(&self, plural: &str) -> TargetError {
        let version = self.requested.map_or("v1 or v1beta1", ApiVersion::version);
        plain(format!(
            "the Istio CRDs are not installed: the API server at {} (context {:?}) does not serve {plural}.{GROUP} ({GROUP}/{version}); install Istio's CRDs (`istioctl install`, or `helm install istio-base istio/base -n istio-system`), or use --target local:DIR",
            self.server, self.context
        ))
    }

    /// The Istio API version to use: discovered once per target (two
    /// requests: the group, then its resource list), or the pinned one.
    pub async fn istio_version(&self) -> Result<ApiVersion, TargetError> {
        self.discovered
            .get_or_try_init(|| async {
                let discovery = Op {
                    verb: "get",
                    kind: "APIGroup",
                    plural: "virtualservices",
                    group: GROUP,
                    name: None,
                };
                let group: APIGroup = self.discover(format!("/apis/{GROUP}"), discovery).await?;
                let served: Vec<String> = group.versions.iter().map(|v| v.version.clone()).collect();
                let chosen = match self.requested {
                    Some(v) if served.iter().any(|s| s == v.version()) => v,
                    Some(v) => {
                        return Err(plain(format!(
                            "--istio-api {}: the API server at {} (context {:?}) does not serve {}; it serves {GROUP} versions {}; pick one of those",
                            v.version(),
                            self.server,
                            self.context,
                            v.as_str(),
                            served.join(", ")
                        )));
                    }
                    None if served.iter().any(|s| s == "v1") => ApiVersion::V1,
                    None if served.iter().any(|s| s == "v1beta1") => ApiVersion::V1beta1,
                    None => {
                        return Err(plain(format!(
                            "the Istio CRDs are too old: the API server at {} (context {:?}) serves {GROUP} versions {} but meshctl needs v1 or v1beta1; upgrade Istio (1.22+ serves v1)",
                            self.server,
                            self.context,
                            served.join(", ")
                        )));
                    }
                };
                let list: APIResourceList = self
                    .discover(format!("/apis/{}", chosen.as_str()), discovery)
                    .await?;
                let missing: Vec<&str> = ISTIO_KINDS
                    .iter()
                    .filter(|(_, plural)| !list.resources.iter().any(|r| r.name == *plural))
                    .map(|(_, plural)| *plural)
                    .collect();
                if !missing.is_empty() {
                    return Err(self.istio_missing(&missing.join(", ")));
                }
                Ok(chosen)
            })
            .await
            .copied()
    }

    async fn istio_api(
        &self,
        kind: &str,
    ) -> Result<(Api<DynamicObject>, ApiResource), TargetError> {
        let version = self.istio_version().await?;
        let plural = ISTIO_KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("virtualservices", |(_, p)| p);
        let ar = api_resource(version, kind, plural);
        Ok((
            Api::namespaced_with(self.client.clone(), &self.namespace, &ar),
            ar,
        ))
    }

    fn op<'a>(verb: &'static str, ar: &'a ApiResource, name: Option<&'a str>) -> Op<'a> {
        Op {
            verb,
            kind: &ar.kind,
            plural: &ar.plural,
            group: &ar.group,
            name,
        }
    }

    /// Sends a request, returning the HTTP status and the JSON body, or the
    /// API error as `kube::Error::Api` (as `Client::request` would).
    async fn send_raw(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<(StatusCode, Value), ::kube::Error> {
        let resp = self
            .client
            .send(req.map(::kube::client::Body::from))
            .await?;
        let code = resp.status();
        let bytes = resp.into_body().collect_bytes().await?;
        if code.is_client_error() || code.is_server_error() {
            let status = serde_json::from_slice::<Status>(&bytes).unwrap_or_else(|_| {
                Status::failure(
                    &String::from_utf8_lossy(&bytes),
                    "Failed to parse error data",
                )
                .with_code(code.as_u16())
            });
            return Err(::kube::Error::Api(Box::new(status)));
        }
        let value = serde_json::from_slice(&bytes).map_err(::kube::Error::SerdeError)?;
        Ok((code, value))
    }

    fn body_for(&self, resource: &Resource, version: ApiVersion) -> Result<Value, TargetError> {
        self.check_namespace(resource)?;
        let mut value = serde_json::to_value(resource).map_err(|e| {
            other(
                format!(
                    "serialising {} {:?}: {e}",
                    resource.kind(),
                    resource.metadata().name
                ),
                e,
            )
        })?;
        value["apiVersion"] = Value::String(version.as_str().to_owned());
        value["kind"] = Value::String(resource.kind().to_owned());
        value["metadata"]["namespace"] = Value::String(self.namespace.clone());
        if let Some(m) = value["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            m.remove("generation");
        }
        Ok(value)
    }

    /// Refuses a resource that names a namespace other than the target's.
    fn check_namespace(&self, resource: &Resource) -> Result<(), TargetError> {
        if let Some(ns) = resource.metadata().namespace.as_deref()
            && ns != self.namespace
        {
            return Err(plain(format!(
                "{} {:?} says namespace {ns:?} but the target namespace is {:?}; pass -n {ns} or remove metadata.namespace",
                resource.kind(),
                resource.metadata().name,
                self.namespace
            )));
        }
        Ok(())
    }

    /// GETs the discovery document at `path` (`op` names it in errors).
    async fn discover<T: serde::de::DeserializeOwned>(
        &self,
        path: String,
        op: Op<'_>,
    ) -> Result<T, TargetError> {
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| other(format!("building discovery request: {e}"), e))?;
        self.client
            .request(req)
            .await
            .map_err(|e| self.map_err(e, op))
    }

    /// Reads `kind` `name` from the cluster as raw JSON.
    async fn get_value(&self, kind: &str, name: &str) -> Result<Value, TargetError> {
        let (api, ar) = self.istio_api(kind).await?;
        let obj = api
            .get(name)
            .await
            .map_err(|e| self.map_err(e, Self::op("get", &ar, Some(name))))?;
        to_json(kind, name, &obj)
    }

    /// Reads a VirtualService as raw JSON (and remembers it for replace).
    async fn get_raw_vs(&self, name: &str) -> Result<Value, TargetError> {
        let value = self.get_value("VirtualService", name).await?;
        self.remember(name, &value);
        Ok(value)
    }

    fn remember(&self, name: &str, value: &Value) {
        if let Ok(mut raw) = self.raw.lock() {
            raw.insert(name.to_owned(), value.clone());
        }
    }

    fn remembered(&self, name: &str) -> Option<Value> {
        self.raw.lock().ok().and_then(|r| r.get(name).cloned())
    }

    fn typed_vs(name: &str, value: &Value) -> Result<VirtualService, TargetError> {
        serde_json::from_value(value.clone()).map_err(|e| {
            other(
                format!("VirtualService {name:?} in the cluster does not parse as an Istio VirtualService: {e}"),
                e,
            )
        })
    }

    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn lease_op<'a>(verb: &'static str, name: &'a str) -> Op<'a> {
        Op {
            verb,
            kind: "Lease",
            plural: "leases",
            group: "coordination.k8s.io",
            name: Some(name),
        }
    }
}

fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, TargetError> {
    Kubeconfig::read_from(path).map_err(|e| {
        other(
            format!(
                "--kubeconfig {}: cannot read the kubeconfig: {e}; check the path",
                path.display()
            ),
            e,
        )
    })
}

fn lease_expiry(spec: &LeaseSpec) -> Option<Timestamp> {
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    renewed
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
        .ok()
}

impl Target for KubeTarget {
    fn describe(&self) -> String {
        format!("kube:{}/{}", self.context, self.namespace)
    }

    async fn apply(
        &self,
        resources: &[Resource],
        options: ApplyOptions,
    ) -> Result<Vec<Applied>, TargetError> {
        for r in resources {
            self.check_namespace(r)?;
        }
        let version = self.istio_version().await?;
        // Strict field validation, as `kubectl apply` sends: a field the
        // cluster's CRD version does not know is an error, not silently dropped.
        let mut params = PatchParams::apply(FIELD_MANAGER).validation_strict();
        if options.force_conflicts {
            params = params.force();
        }
        if options.dry_run {
            params = params.dry_run();
        }
        // The global revision before applying: an object whose resourceVersion
        // is newer afterwards was written by this apply (resourceVersions are
        // etcd revisions, comparable since Kubernetes 1.35). One LIST instead
        // of a GET per object keeps `apply` at 1 + N round trips.
        let baseline: Option<u64> = if options.dry_run {
            None
        } else {
            let (api, ar) = self.istio_api("VirtualService").await?;
            let list = api
                .list_metadata(&ListParams::default().limit(1))
                .await
                .map_err(|e| self.map_err(e, Self::op("list", &ar, None)))?;
            list.metadata
                .resource_version
                .and_then(|rv| rv.parse().ok())
        };
        let mut out = Vec::with_capacity(resources.len());
        for resource in resources {
            let name = resource.metadata().name.as_str();
            let (api, ar) = self.istio_api(resource.kind()).await?;
            let body = self.body_for(resource, version)?;
            // A dry run cannot be told apart by resourceVersion: compare with a read.
            let before = if options.dry_run {
                match api.get_opt(name).await {
                    Ok(obj) => obj.map(|o| serde_json::to_value(&o).unwrap_or_default()),
                    Err(e) => return Err(self.map_err(e, Self::op("get", &ar, Some(name)))),
                }
            } else {
                None
            };
            let url = <DynamicObject as ::kube::Resource>::url_path(&ar, Some(&self.namespace));
            let req = ::kube::core::Request::new(url)
                .patch(name, &params, &Patch::Apply(&body))
                .map_err(|e| {
                    other(
                        format!("building the apply request for {} {name:?}: {e}", ar.kind),
                        e,
                    )
                })?;
            let (code, applied) = self
                .send_raw(req)
                .await
                .map_err(|e| self.map_err(e, Self::op("patch", &ar, Some(name))))?;
            let action = if code == StatusCode::CREATED {
                ApplyAction::Created
            } else if options.dry_run {
                match &before {
                    None => ApplyAction::Created,
                    Some(b) if content(b) == content(&applied) => ApplyAction::Unchanged,
                    Some(_) => ApplyAction::Configured,
                }
            } else {
                let rv = applied["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|rv| rv.parse::<u64>().ok());
                match (rv, baseline) {
                    (Some(rv), Some(base)) if rv <= base => ApplyAction::Unchanged,
                    _ => ApplyAction::Configured,
                }
            };
            if resource.kind() == "VirtualService" && !options.dry_run {
                self.remember(name, &applied);
            }
            out.push(Applied {
                kind: resource.kind().to_owned(),
                name: name.to_owned(),
                action,
            });
        }
        Ok(out)
    }

    async fn virtual_service(&self, name: &str) -> Result<VirtualService, TargetError> {
        let value = self.get_raw_vs(name).await.map_err(|e| match e {
            TargetError::NotFound { kind, name, hint } => TargetError::NotFound {
                kind,
                name,
                hint: format!("{hint}: run `meshctl apply` first"),
            },
            e => e,
        })?;
        Self::typed_vs(name, &value)
    }

    async fn destination_rule(&self, name: &str) -> Result<DestinationRule, TargetError> {
        let value = self.get_value("DestinationRule", name).await?;
        serde_json::from_value(value).map_err(|e| {
            other(
                format!("DestinationRule {name:?} in the cluster does not parse as an Istio DestinationRule: {e}"),
                e,
            )
        })
    }

    async fn replace_virtual_service(
        &self,
        vs: &VirtualService,
    ) -> Result<VirtualService, TargetError> {
        let name = vs.metadata.name.as_str();
        let expected = vs.metadata.resource_version.clone().unwrap_or_default();
        if expected.is_empty() {
            return Err(plain(format!(
                "VirtualService {name:?} has no resourceVersion: read it with `virtual_service` before replacing it"
            )));
        }
        let (api, ar) = self.istio_api("VirtualService").await?;
        let version = self.istio_version().await?;
        let typed = self.body_for(&Resource::VirtualService(vs.clone()), version)?;
        // Start from the object as read so fields outside the model survive;
        // overlay what the model owns.
        let mut body = match self.remembered(name) {
            Some(raw) if raw["metadata"]["resourceVersion"].as_str() == Some(expected.as_str()) => {
                raw
            }
            _ => typed.clone(),
        };
        body["apiVersion"] = typed["apiVersion"].clone();
        body["kind"] = typed["kind"].clone();
        for key in ["labels", "annotations"] {
            match typed["metadata"].get(key) {
                Some(v) => body["metadata"][key] = v.clone(),
                None => {
                    if let Some(m) = body["metadata"].as_object_mut() {
                        m.remove(key);
                    }
                }
            }
        }
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        body["metadata"]["resourceVersion"] = Value::String(expected.clone());
        for key in ["hosts", "gateways", "http"] {
            match typed["spec"].get(key) {
                Some(v) => body["spec"][key] = v.clone(),
                None => {
                    if let Some(m) = body["spec"].as_object_mut() {
                        m.remove(key);
                    }
                }
            }
        }
        let obj: DynamicObject = serde_json::from_value(body)
            .map_err(|e| other(format!("serialising VirtualService {name:?}: {e}"), e))?;
        let params = PostParams {
            dry_run: false,
            field_manager: Some(ROLLOUT_FIELD_MANAGER.to_owned()),
        };
        let stored = api.replace(name, &params, &obj).await.map_err(|e| {
            match self.map_err(e, Self::op("update", &ar, Some(name))) {
                TargetError::Conflict { kind, name, .. } => TargetError::Conflict {
                    kind,
                    name,
                    expected: expected.clone(),
                },
                other => other,
            }
        })?;
        let value = to_json("VirtualService", name, &stored)?;
        self.remember(name, &value);
        Self::typed_vs(name, &value)
    }

    async fn rollouts(&self) -> Result<Vec<VirtualService>, TargetError> {
        let (api, ar) = self.istio_api("VirtualService").await?;
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.map_err(e, Self::op("list", &ar, None)))?;
        let mut out = Vec::new();
        for obj in list.items {
            if !obj
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(STATE_ANNOTATION))
            {
                continue;
            }
            let name = obj.metadata.name.clone().unwrap_or_default();
            let value = to_json("VirtualService", &name, &obj)?;
            self.remember(&name, &value);
            out.push(Self::typed_vs(&name, &value)?);
        }
        Ok(out)
    }

    async fn get(&self, kind: &str, name: &str) -> Result<Option<Resource>, TargetError> {
        let (api, ar) = self.istio_api(kind).await?;
        let Some(obj) = api
            .get_opt(name)
            .await
            .map_err(|e| self.map_err(e, Self::op("get", &ar, Some(name))))?
        else {
            return Ok(None);
        };
        let mut value = to_json(kind, name, &obj)?;
        value["kind"] = Value::String(kind.to_owned());
        serde_json::from_value(value).map(Some).map_err(|e| {
            other(
                format!("{kind} {name:?} in the cluster does not parse as an Istio {kind}: {e}"),
                e,
            )
        })
    }

    async fn endpoints(
        &self,
        _host: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<String>, TargetError> {
        // A subset selects the Pods carrying its labels (in the target
        // namespace; Istio also needs them to back the Service, which the
        // subset's `version`-style labels do not say).
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let pods = api
            .list(&ListParams::default().labels(&selector.join(",")))
            .await
            .map_err(|e| {
                self.map_err(
                    e,
                    Op {
                        verb: "list",
                        kind: "Pod",
                        plural: "pods",
                        group: "",
                        name: None,
                    },
                )
            })?;
        Ok(pods
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.metadata.name.unwrap_or_default())
            .collect())
    }

    async fn service_port(
        &self,
        host: &str,
    ) -> Result<Option<meshproxy::endpoints::ServicePort>, TargetError> {
        // The Service's first port: the one meshproxy --kube routes to
        // (through the EndpointSlices, which copy its name and appProtocol).
        let name = meshproxy::istio::validate::short_host(host);
        let api: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let service = api.get(name).await.map_err(|e| {
            self.map_err(
                e,
                Op {
                    verb: "get",
                    kind: "Service",
                    plural: "services",
                    group: "",
                    name: Some(name),
                },
            )
        })?;
        Ok(service
            .spec
            .and_then(|s| s.ports)
            .and_then(|ports| ports.into_iter().next())
            .map(|p| meshproxy::endpoints::ServicePort {
                name: p.name.filter(|n| !n.is_empty()),
                app_protocol: p.app_protocol,
            })
            .filter(|p| p.name.is_some() || p.app_protocol.is_some()))
    }

    async fn acquire_lease(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), TargetError> {
        let name = lease_name(service);
        let api = self.leases();
        let seconds = i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX);
        // A lost race (409) is retried with a fresh read, a few times.
        for _ in 0..5 {
            let current = api
                .get_opt(&name)
                .await
                .map_err(|e| self.map_err(e, Self::lease_op("get", &name)))?;
            let now = now();
            let Some(mut lease) = current else {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.namespace.clone()),
                        labels: Some(
                            [(
                                "app.kubernetes.io/managed-by".to_owned(),
                                "meshctl".to_owned(),
                            )]
                            .into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(holder.to_owned()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => return Ok(()),
                    Err(e) => match self.map_err(e, Self::lease_op("create", &name)) {
                        TargetError::Conflict { .. } => continue,
                        e => return Err(e),
                    },
                }
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            let current_holder = spec.holder_identity.clone().unwrap_or_default();
            let expired = lease_expiry(&spec).is_none_or(|t| t <= now.0);
            if current_holder != holder && !current_holder.is_empty() && !expired {
                let expires_in = lease_expiry(&spec)
                    .and_then(|t| t.duration_since(now.0).try_into().ok())
                    .unwrap_or_default();
                return Err(TargetError::LeaseHeld {
                    service: service.to_owned(),
                    holder: current_holder,
                    expires_in,
                });
            }
            if current_holder != holder {
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                spec.holder_identity = Some(holder.to_owned());
            }
            spec.renew_time = Some(now);
            spec.lease_duration_seconds = Some(seconds);
            lease.spec = Some(spec);
            match api.replace(&name, &PostParams::default(), &lease).await {
                Ok(_) => return Ok(()),
                Err(e) => match self.map_err(e, Self::lease_op("update", &name)) {
                    TargetError::Conflict { .. } => continue,
                    e => return Err(e),
                },
            }
        }
        Err(plain(format!(
            "Lease {name:?} in namespace {:?} kept changing while meshctl tried to take it; another driver is racing for service {service:?}",
            self.namespace
        )))
    }

    async fn release_lease(&self, service: &str, holder: &str) -> Result<(), TargetError> {
        let name = lease_name(service);
        let api = self.leases();
        let Some(lease) = api
            .get_opt(&name)
            .await
            .map_err(|e| self.map_err(e, Self::lease_op("get", &name)))?
        else {
            return Ok(());
        };
        let held_by = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        if held_by != Some(holder) {
            return Ok(());
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            Err(e) => match self.map_err(e, Self::lease_op("delete", &name)) {
                // Someone renewed or took it since: it is no longer ours to release.
                TargetError::Conflict { .. } | TargetError::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn record_event(
        &self,
        service: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), TargetError> {
        let version = self.istio_version().await?;
        let uid = match self.remembered(service) {
            Some(v) => v["metadata"]["uid"].as_str().map(str::to_owned),
            None => self.get_raw_vs(service).await?["metadata"]["uid"]
                .as_str()
                .map(str::to_owned),
        };
        let now = Timestamp::now();
        let name = format!("{service}.{:x}", now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some("Rollout".to_owned()),
            reason: Some(reason.to_owned()),
            note: Some(message.chars().take(1024).collect()),
            type_: Some(
                match kind {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            reporting_controller: Some(EVENT_CONTROLLER.to_owned()),
            reporting_instance: Some(format!("meshctl-{}", std::process::id())),
            regarding: Some(ObjectReference {
                api_version: Some(version.as_str().to_owned()),
                kind: Some("VirtualService".to_owned()),
                name: Some(service.to_owned()),
                namespace: Some(self.namespace.clone()),
                uid,
                ..ObjectReference::default()
            }),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        api.create(&PostParams::default(), &event)
            .await
            .map_err(|e| {
                self.map_err(
                    e,
                    Op {
                        verb: "create",
                        kind: "Event",
                        plural: "events",
                        group: "events.k8s.io",
                        name: Some(&name),
                    },
                )
            })?;
        Ok(())
    }
}

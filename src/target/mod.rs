//! Where resources and rollout state live. One trait, two implementations
//! (Kubernetes and a local directory); the rollout engine never knows which.
//!
//! Rollout state is stored on the VirtualService itself (annotation
//! [`STATE_ANNOTATION`]), so weights and the state that describes them change
//! in one write: a failed write can never leave the recorded state claiming
//! weights that are not applied.

pub mod any;
pub mod kube;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use meshproxy::istio::{DestinationRule, Resource, VirtualService};

/// Kubernetes connection options (standard kubeconfig inference
/// otherwise), declared for clap here and flattened into `meshctl`'s
/// global options.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct KubeArgs {
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "MESHCTL_CONTEXT")]
    pub context: Option<String>,
    /// Namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, env = "MESHCTL_NAMESPACE")]
    pub namespace: Option<String>,
    /// Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
}

/// The annotation on the VirtualService holding the rollout state (JSON).
pub const STATE_ANNOTATION: &str = "meshctl.io/rollout";

/// The field manager used for server-side apply.
pub const FIELD_MANAGER: &str = "meshctl";

/// Options for [`Target::apply`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyOptions {
    /// Validate on the server without persisting.
    pub dry_run: bool,
    /// Take over fields owned by another field manager.
    pub force_conflicts: bool,
}

/// What applying one object did, as kubectl reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyAction {
    /// The object did not exist.
    Created,
    /// The object changed.
    Configured,
    /// The object was already as desired.
    Unchanged,
}

/// The result of applying one object.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// `VirtualService`.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// What happened.
    pub action: ApplyAction,
}

/// A Kubernetes-style event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Normal progress.
    Normal,
    /// Something went wrong (rollback, failed check).
    Warning,
}

/// Errors from a target. Variants are what callers branch on; details are
/// in the message.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The object does not exist.
    #[error("{kind} {name:?} not found{hint}")]
    NotFound {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
        /// Extra help (`: run meshctl apply first`), may be empty.
        hint: String,
    },
    /// The object changed since it was read (optimistic concurrency).
    #[error("{kind} {name:?} was modified concurrently (resourceVersion {expected} is stale)")]
    Conflict {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
        /// The resourceVersion the write was based on.
        expected: String,
    },
    /// Another driver holds the rollout lease.
    #[error(
        "a rollout of {service:?} is already being driven by {holder} (lease expires in {expires_in:?}); wait, or run `meshctl rollback {service}`"
    )]
    LeaseHeld {
        /// Service.
        service: String,
        /// Holder identity.
        holder: String,
        /// Time until the lease may be taken over.
        expires_in: Duration,
    },
    /// Anything else, with a message that names the object and the fix.
    #[error("{message}")]
    Other {
        /// What went wrong.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Where resources and rollout state live.
pub trait Target: Send + Sync {
    /// A short description for messages (`local:/tmp/demo`, `kube:context/ns`).
    fn describe(&self) -> String;

    /// Applies rendered resources (server-side apply under [`FIELD_MANAGER`]).
    fn apply(
        &self,
        resources: &[Resource],
        options: ApplyOptions,
    ) -> impl Future<Output = Result<Vec<Applied>, TargetError>> + Send;

    /// Reads a VirtualService, with `metadata.resourceVersion` set.
    fn virtual_service(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<VirtualService, TargetError>> + Send;

    /// Reads a DestinationRule.
    fn destination_rule(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<DestinationRule, TargetError>> + Send;

    /// Replaces a VirtualService (spec and annotations) if its
    /// `metadata.resourceVersion` is still current, else [`TargetError::Conflict`].
    /// Returns the stored object with its new resourceVersion.
    fn replace_virtual_service(
        &self,
        vs: &VirtualService,
    ) -> impl Future<Output = Result<VirtualService, TargetError>> + Send;

    /// Lists VirtualServices carrying [`STATE_ANNOTATION`] (for commands whose
    /// SERVICE argument is optional).
    fn rollouts(&self) -> impl Future<Output = Result<Vec<VirtualService>, TargetError>> + Send;

    /// Takes (or renews) the rollout lease for `service` as `holder`, failing
    /// with [`TargetError::LeaseHeld`] while another holder's lease is live.
    fn acquire_lease(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Gives the lease up (only if `holder` holds it).
    fn release_lease(
        &self,
        service: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Records a state transition (a Kubernetes Event on the VirtualService;
    /// an event log line in the local directory).
    fn record_event(
        &self,
        service: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Reads any of the three kinds by name as stored (for `meshctl diff`);
    /// `None` when it does not exist. The default covers the kinds the
    /// trait reads already; targets override it to read Gateways too.
    fn get(
        &self,
        kind: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Resource>, TargetError>> + Send {
        async move {
            let found = match kind {
                "VirtualService" => self.virtual_service(name).await.map(Resource::from),
                "DestinationRule" => self.destination_rule(name).await.map(Resource::from),
                _ => {
                    return Err(TargetError::Other {
                        message: format!("{} cannot read {kind} objects", self.describe()),
                        source: None,
                    });
                }
            };
            match found {
                Ok(r) => Ok(Some(r)),
                Err(TargetError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }

    /// The endpoints (addresses or Pod names) of service `host` whose labels
    /// include all of `labels`, i.e. what a DestinationRule subset with those
    /// labels selects (for `meshctl doctor`).
    fn endpoints(
        &self,
        host: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Vec<String>, TargetError>> + Send {
        let _ = labels;
        let message = format!("{} cannot list the endpoints of {host:?}", self.describe());
        async move {
            Err(TargetError::Other {
                message,
                source: None,
            })
        }
    }

    /// The port of service `host` as declared, whose name or `appProtocol`
    /// says its protocol (for `meshctl doctor`); `None` when the service
    /// declares none (HTTP/1.1). meshproxy reads the same declaration.
    fn service_port(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Option<meshproxy::endpoints::ServicePort>, TargetError>> + Send
    {
        let message = format!("{} cannot read the port of {host:?}", self.describe());
        async move {
            Err(TargetError::Other {
                message,
                source: None,
            })
        }
    }
}

pub mod local;

//! The target chosen by `--target`: one of the implementations behind one
//! type, so commands stay generic over [`Target`] without trait objects
//! (the trait's methods return `impl Future`).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use meshproxy::istio::{ApiVersion, DestinationRule, Resource, VirtualService};

use super::KubeArgs;

use super::kube::KubeTarget;
use super::local::LocalTarget;
use super::{Applied, ApplyOptions, EventType, Target, TargetError};

/// A `--target` value that names no target.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("--target {0:?} is not valid: use `kube` or `local:DIR` (e.g. local:./mesh)")]
pub struct TargetChoiceError(pub String);

/// Where `--target` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetChoice {
    /// `local:DIR`.
    Local(PathBuf),
    /// `kube`.
    Kube,
}

impl FromStr for TargetChoice {
    type Err = TargetChoiceError;

    fn from_str(s: &str) -> Result<Self, TargetChoiceError> {
        if s == "kube" {
            return Ok(Self::Kube);
        }
        match s.strip_prefix("local:") {
            Some(dir) if !dir.is_empty() => Ok(Self::Local(PathBuf::from(dir))),
            _ => Err(TargetChoiceError(s.to_owned())),
        }
    }
}

/// Either target.
#[derive(Debug)]
pub enum AnyTarget {
    /// `--target local:DIR`.
    Local(LocalTarget),
    /// `--target kube`.
    Kube(Box<KubeTarget>),
}

// === impl AnyTarget ===

impl AnyTarget {
    /// Opens the target `--target` names: a directory, or the cluster of
    /// the kubeconfig with `kube` (its Istio API version discovered, or
    /// pinned by `istio_api`).
    pub async fn open(
        choice: &TargetChoice,
        kube: &KubeArgs,
        istio_api: Option<ApiVersion>,
    ) -> Result<Self, TargetError> {
        Ok(match choice {
            TargetChoice::Local(dir) => Self::Local(LocalTarget::new(dir)),
            TargetChoice::Kube => Self::Kube(Box::new(KubeTarget::connect(kube, istio_api).await?)),
        })
    }

    /// The Istio apiVersion this target writes whatever a rendered object
    /// says: the cluster's served version for `kube`; `None` for a
    /// directory, which stores objects as given.
    pub async fn written_api_version(&self) -> Result<Option<ApiVersion>, TargetError> {
        Ok(match self {
            Self::Kube(k) => Some(k.istio_version().await?),
            Self::Local(_) => None,
        })
    }
}

macro_rules! delegate {
    ($self:ident, $t:ident => $e:expr) => {
        match $self {
            AnyTarget::Local($t) => $e,
            AnyTarget::Kube($t) => $e,
        }
    };
}

impl Target for AnyTarget {
    fn describe(&self) -> String {
        delegate!(self, t => t.describe())
    }

    async fn apply(
        &self,
        resources: &[Resource],
        options: ApplyOptions,
    ) -> Result<Vec<Applied>, TargetError> {
        delegate!(self, t => t.apply(resources, options).await)
    }

    async fn virtual_service(&self, name: &str) -> Result<VirtualService, TargetError> {
        delegate!(self, t => t.virtual_service(name).await)
    }

    async fn destination_rule(&self, name: &str) -> Result<DestinationRule, TargetError> {
        delegate!(self, t => t.destination_rule(name).await)
    }

    async fn replace_virtual_service(
        &self,
        vs: &VirtualService,
    ) -> Result<VirtualService, TargetError> {
        delegate!(self, t => t.replace_virtual_service(vs).await)
    }

    async fn rollouts(&self) -> Result<Vec<VirtualService>, TargetError> {
        delegate!(self, t => t.rollouts().await)
    }

    async fn acquire_lease(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), TargetError> {
        delegate!(self, t => t.acquire_lease(service, holder, ttl).await)
    }

    async fn release_lease(&self, service: &str, holder: &str) -> Result<(), TargetError> {
        delegate!(self, t => t.release_lease(service, holder).await)
    }

    async fn record_event(
        &self,
        service: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), TargetError> {
        delegate!(self, t => t.record_event(service, kind, reason, message).await)
    }

    async fn get(&self, kind: &str, name: &str) -> Result<Option<Resource>, TargetError> {
        delegate!(self, t => t.get(kind, name).await)
    }

    async fn endpoints(
        &self,
        host: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<String>, TargetError> {
        delegate!(self, t => t.endpoints(host, labels).await)
    }

    async fn service_port(
        &self,
        host: &str,
    ) -> Result<Option<meshproxy::endpoints::ServicePort>, TargetError> {
        delegate!(self, t => t.service_port(host).await)
    }
}

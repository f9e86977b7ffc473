//! meshproxy: meshctl's data plane.
//!
//! A lightweight HTTP proxy that routes by Istio's `VirtualService` and
//! `DestinationRule`, and exports Istio's standard metrics. This crate is the
//! bottom layer of the workspace: it owns the Istio resource model
//! ([`istio`]) that `meshctl` renders and applies.

#[cfg(feature = "kube")]
pub mod cluster;
pub mod istio;

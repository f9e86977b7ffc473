//! meshctl's end-to-end tests: one binary (see `[[test]]` in Cargo.toml) so
//! CI links a single executable. Only `mod` lines live here.

// Shared harness: run the real binaries, temp dirs, loopback servers.
mod util;
// `meshctl completions` and the man page match the committed files.
mod completions;
// Kubernetes target: shared fake-cluster setup.
mod kube_support;
// Kubernetes target in process against the fake API server.
mod kube_target;
// deploy/rbac.yaml grants exactly the verbs meshctl uses.
mod kube_rbac;

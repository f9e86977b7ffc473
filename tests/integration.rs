//! meshctl's end-to-end tests: one binary (see `[[test]]` in Cargo.toml) so
//! CI links a single executable. Only `mod` lines live here.

// Shared harness: run the real binaries, temp dirs, loopback servers.
mod util;
// `meshctl completions` and the man page match the committed files.
mod completions;
// Harness for the rollout tests: local target, traffic simulator, metrics server,
// meshproxy in front of real upstreams, `on_both_targets!`.
#[macro_use]
mod rollout_harness;
// `meshctl rollout start/status`, `promote`, `rollback` end to end (issue 5).
mod rollout;
// The rollout driver in-process: paused clock, webhooks against loopback servers.
mod rollout_driver;
// `ab`, `mirror` and `bluegreen` through a real meshproxy and upstreams (issue 7).
mod rollout_proxy;
// `--analysis sequential` end to end through meshproxy, local and fake cluster (issue 14).
mod rollout_sequential;
// `--interval auto` per strategy: mirror percent, measured match share (issue 7).
mod rollout_auto;
// `meshctl render`: golden files for a broad set of specs.
mod render;
// `meshctl render` error paths, each with its exact message.
mod render_errors;
// Rendered resources against Istio's CRD schemas.
mod render_schema;
// The Prometheus metrics source against a real Prometheus server.
mod rollout_prometheus;
// meshctl judges gRPC: failure rule, sources alike, gRPC canaries (issue 13).
mod rollout_grpc;
// Kubernetes target: shared fake-cluster setup.
mod kube_support;
// Kubernetes target in process against the fake API server.
mod kube_target;
// deploy/rbac.yaml grants exactly the verbs meshctl uses.
mod kube_rbac;
// Rollouts on the Kubernetes target through the binary (state, lease, events).
mod kube_rollout;
// `meshctl apply` on the Kubernetes target through the binary.
mod kube_apply;
// meshproxy --kube follows the weights `meshctl apply` writes to the cluster.
mod kube_proxy;
// `meshctl diff` against local and fake-cluster targets (issue 7).
mod diff;
// `meshctl doctor`: each preflight check fails on a crafted broken setup (issue 7).
mod doctor;
// examples/ci pipelines reference only real subcommands and flags (issue 7).
mod ci_examples;
// `meshctl demo` end to end: in-process meshproxy, upstreams, load, rollout.
mod demo;
// `meshctl certs`: development CA and workload certificates for mTLS.
mod certs;
// Sticky sessions through meshctl and meshproxy: one version per client across weight changes (issue 7).
mod sticky;

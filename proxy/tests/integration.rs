//! meshproxy's integration tests: real upstreams, the proxy in-process and
//! the real binary, all on 127.0.0.1.

// Harness: upstream builders, config directories, clients.
mod util;

// Host and match rules, weighted split, HTTP/2, forwarded headers.
mod routing;
// Timeouts, retries, upstream failures and fault injection.
mod resilience;
// Hot reload under load and rejected configurations.
mod reload;
// Header size, slow clients, idle connections, connection limit.
mod limits;
// /metrics (and promtool), /ready, /config.
mod admin;
// The real binary: SIGTERM drain, start-up errors.
mod binary;
// Issue 7: VirtualService mirroring and sticky-session cookies.
mod mirror;
// VirtualService header operations and the sticky-session routes meshctl renders.
mod headers;
// Cluster mode (`--kube`) against the fake API server (needs the `kube` feature).
#[cfg(feature = "kube")]
mod cluster;
// The lean HTTP/1.1 lane: framings, pipelining, pooled connections, hand-over to hyper.
mod lean;
// mTLS: inbound refusals, ALPN, outbound DestinationRule modes, rotation, curl/openssl.
mod tls;
// Issue 13: gRPC through the proxy with tonic (harness in grpc_support).
mod grpc;
mod grpc_support;
// Upstream HTTP version rules (port protocol, h2UpgradePolicy, useClientProtocol) and mismatches.
mod h2;

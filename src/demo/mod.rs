//! Workloads of `meshctl demo`: small upstreams and load generators that
//! run on loopback next to an in-process meshproxy.

pub mod grpc;

//! Test support shared by the tests of `meshctl` and `meshproxy`: one way to
//! run the `meshctl` binary, fake upstreams and an HTTP client, one test
//! certificate authority, the `discounts` fixture and the fake cluster.
//!
//! It depends on neither `meshctl` nor `meshproxy`, so both crates' tests
//! (meshproxy's unit tests included) can use it without a dependency cycle.
//! Everything binds 127.0.0.1 on port 0 and every wait is bounded.

pub mod ca;
pub mod cluster;
pub mod fixture;
pub mod meshctl;
pub mod upstream;

pub use ca::{Issued, TestCa};
pub use cluster::{Cluster, NS, blocking_cluster};
pub use fixture::{DISCOUNTS, discounts_at, discounts_endpoints};
pub use meshctl::{Meshctl, wait_exit};
pub use upstream::{Upstream, UpstreamBuilder, WAIT, eventually, upstream};

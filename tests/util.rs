//! Test harness shared by the end-to-end tests: the `meshctl` binary under
//! test, through the support crate's runner.

pub use mesh_test_support::meshctl::Meshctl;

/// A `meshctl` invocation of the binary under test, with no ambient
/// configuration leaking in from the developer's environment.
pub fn meshctl() -> Meshctl {
    Meshctl::new(env!("CARGO_BIN_EXE_meshctl"))
}

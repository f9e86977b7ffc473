//! Test harness shared by the end-to-end tests.

use std::process::Command;

/// A `meshctl` command for the binary under test, with no ambient
/// configuration leaking in from the developer's environment.
#[must_use]
pub fn meshctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshctl"));
    for var in [
        "MESHCTL_TARGET",
        "MESHCTL_FILE",
        "MESHCTL_CONTEXT",
        "MESHCTL_NAMESPACE",
        "MESHCTL_TEMPLATES",
        "KUBECONFIG",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

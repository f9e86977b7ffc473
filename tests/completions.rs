//! The committed completion scripts are what the binary generates now, so a
//! new flag cannot ship without its completion. Re-bless with
//! `MESHCTL_BLESS=1 cargo test --test integration completions`.

use std::path::Path;

use crate::util::meshctl;

fn check(args: &[&str], file: &str) {
    let out = meshctl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(file);
    if std::env::var_os("MESHCTL_BLESS").is_some() {
        std::fs::write(&path, &out.stdout).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "{} is out of date: run `MESHCTL_BLESS=1 cargo test --test integration completions` and commit it",
        path.display()
    );
}

#[test]
fn bash() {
    check(&["completions", "bash"], "meshctl.bash");
}

#[test]
fn zsh() {
    check(&["completions", "zsh"], "_meshctl");
}

#[test]
fn fish() {
    check(&["completions", "fish"], "meshctl.fish");
}

#[test]
fn powershell() {
    check(&["completions", "powershell"], "_meshctl.ps1");
}

#[test]
fn elvish() {
    check(&["completions", "elvish"], "meshctl.elv");
}

#[test]
fn man_page() {
    check(&["man"], "meshctl.1");
}

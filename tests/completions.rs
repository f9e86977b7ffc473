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

/// One test per committed file: `name: [ARGS of meshctl] => FILE;`.
macro_rules! committed {
    ($($name:ident: [$($arg:literal),+] => $file:literal;)+) => {$(
        #[test]
        fn $name() {
            check(&[$($arg),+], $file);
        }
    )+};
}

committed! {
    bash: ["completions", "bash"] => "meshctl.bash";
    zsh: ["completions", "zsh"] => "_meshctl";
    fish: ["completions", "fish"] => "meshctl.fish";
    powershell: ["completions", "powershell"] => "_meshctl.ps1";
    elvish: ["completions", "elvish"] => "meshctl.elv";
    man_page: ["man"] => "meshctl.1";
}

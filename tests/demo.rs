//! `meshctl demo` end to end: the real binary starts meshproxy in-process,
//! two upstreams and a bounded load generator, and runs a real rollout.

use std::io::{BufReader, Lines};
use std::process::{Child, ChildStdout};
use std::time::Duration;

use mesh_test_support::meshctl::words;

use crate::rollout_harness::wait_exit;

/// `meshctl demo ARGS` to completion; it must exit `code`. Stdout, stderr.
pub(crate) fn demo(args: &str, code: i32) -> (String, String) {
    crate::util::meshctl()
        .arg("demo")
        .args(words(args))
        .run_code(code)
}

/// `meshctl demo ARGS` promotes v2 (exit 0) and prints each of `shows`;
/// its stdout.
pub(crate) fn promoted(args: &str, shows: &[&str]) -> String {
    let (out, _) = demo(args, 0);
    for text in std::iter::once(&"PROMOTED v1=0 v2=100").chain(shows) {
        assert!(out.contains(text), "{out}");
    }
    out
}

/// `ARGS --dir DIR`: the demo keeps its files in `dir`.
pub(crate) fn in_dir(dir: &tempfile::TempDir, args: &str) -> String {
    format!("{args} --dir {}", dir.path().display())
}

/// `meshctl demo ARGS` rolls back to v1 (exit 3); its stdout.
pub(crate) fn rolled_back(args: &str) -> String {
    let (out, _) = demo(args, 3);
    assert!(out.contains("ROLLED BACK v1=100 v2=0"), "{out}");
    out
}

/// `meshctl demo ARGS` refuses its flags (exit 1) with `message` on stderr.
pub(crate) fn refused(args: &str, message: &str) {
    let (_, err) = demo(args, 1);
    assert!(err.contains(message), "{err}");
}

/// `meshctl demo ARGS` in the background, stderr discarded: the child, the
/// lines it printed up to step 1 (bounded: 20 lines), and the rest to come.
pub(crate) fn until_step_one(args: &str) -> (Child, Vec<String>, Lines<BufReader<ChildStdout>>) {
    let (child, mut lines) = crate::util::meshctl()
        .arg("demo")
        .args(words(args))
        .spawn_lines();
    let mut head = Vec::new();
    for _ in 0..20 {
        let Some(Ok(line)) = lines.next() else { break };
        let step_one = line.contains("step 1/4");
        head.push(line);
        if step_one {
            break;
        }
    }
    (child, head, lines)
}

/// The load generator's closing line in the demo's output.
pub(crate) fn load_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("demo: load generator:"))
        .unwrap_or_else(|| panic!("no load generator line in: {out}"))
}

#[test]
fn demo_promotes_a_healthy_canary() {
    promoted("--interval 500ms", &["demo: load generator:"]);
}

#[test]
fn demo_mirror_bad_canary_rolls_back_while_clients_only_saw_v1() {
    let out = rolled_back("--strategy mirror --bad-canary --interval 500ms");
    // v2 failed on mirrored copies only: no client was ever answered by it.
    let line = load_line(&out);
    assert!(line.ends_with(", v2 0"), "{line}");
    assert!(line.contains(" 0 failed"), "{line}");
}

#[test]
fn demo_ab_sends_only_marked_requests_to_v2_and_promotes() {
    promoted(
        "--strategy ab --interval 500ms",
        &["every 4th with x-canary: true"],
    );
}

#[test]
fn demo_bad_canary_rolls_back_to_v1() {
    let dir = tempfile::tempdir().unwrap();
    rolled_back(&in_dir(&dir, "--bad-canary --interval 500ms"));
    // The directory keeps the final state: v1 at 100, readable by status.
    let mut status = crate::util::meshctl();
    status.local(dir.path());
    status.args(["rollout", "status", "-o", "json"]);
    let (out, _) = status.run_code(3);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        json["state"]["weights"],
        serde_json::json!({"v1": 100, "v2": 0})
    );
    assert!(dir.path().join("endpoints.yaml").exists());
}

#[test]
fn demo_ctrl_c_rolls_back_and_stops_everything() {
    let (mut child, head, lines) = until_step_one("--interval 5s");
    let proxy = head
        .iter()
        .find_map(|l| l.strip_prefix("demo: meshproxy on "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .expect("the demo names its proxy address");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("running kill");
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(3), "Ctrl-C rolls back (exit 3)");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("ROLLED BACK") && l.contains("interrupted")),
        "{rest:?}"
    );
    assert!(
        std::net::TcpStream::connect(&proxy).is_err(),
        "meshproxy still listens on {proxy}"
    );
}

#[test]
fn demo_flag_errors_name_the_flag() {
    refused(
        "--interval soon",
        "--interval \"soon\" is not a duration: use e.g. 2s or 500ms",
    );
}

#[test]
fn demo_mtls_promotes_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    promoted(
        &in_dir(&dir, "--mtls --interval 500ms"),
        &[
            "over mutual TLS (DestinationRule ISTIO_MUTUAL)",
            ", 0 failed;",
        ],
    );
    let pki = dir.path().join(".meshctl").join("pki");
    for file in ["ca.crt", "meshproxy.crt", "meshproxy.key", "discounts.crt"] {
        assert!(pki.join(file).exists(), "{file}");
    }
    let rule = std::fs::read_to_string(dir.path().join("discounts.yaml")).unwrap();
    assert!(rule.contains("mode: ISTIO_MUTUAL"), "{rule}");
}

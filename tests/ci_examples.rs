//! The pipeline definitions under `examples/ci/` (issue 7) parse as YAML,
//! call only meshctl subcommands and flags that exist (checked against
//! `meshctl <command> --help`), and branch on the rollout exit codes.

use std::path::Path;

use crate::util::meshctl;

const FILES: [&str; 2] = ["github-actions.yml", "gitlab-ci.yml"];

/// Every string in a YAML value.
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(m) => m.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The shell scripts of a pipeline: GitHub's `run`, GitLab's `script`,
/// `before_script` and `after_script`, wherever they are nested.
fn scripts(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Array(a) => a.iter().for_each(|v| scripts(v, out)),
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if matches!(
                    k.as_str(),
                    "run" | "script" | "before_script" | "after_script"
                ) {
                    strings(v, out);
                } else {
                    scripts(v, out);
                }
            }
        }
        _ => {}
    }
}

/// The meshctl invocations in a script, as argument lists (line
/// continuations joined, stopping at shell operators and redirections).
fn invocations(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = line.split(" #").next().unwrap_or(line);
        // Installing meshctl is not calling it.
        if line.trim_start().starts_with('#') || line.contains("cargo install") {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for (i, t) in tokens.iter().enumerate() {
            if *t != "meshctl" {
                continue;
            }
            let args: Vec<String> = tokens[i + 1..]
                .iter()
                .take_while(|a| {
                    !matches!(**a, "|" | "||" | "&&" | ";" | ">" | ">>" | "2>")
                        && !a.starts_with('>')
                        && !a.starts_with("2>")
                })
                .map(|a| (*a).to_owned())
                .collect();
            out.push(args);
        }
    }
    out
}

/// Does `help` list `flag` (`--to`, `-o`) as an option?
fn lists(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().last();
        let after = help[i + flag.len()..].chars().next();
        before.is_none_or(|c| c == ' ' || c == '[')
            && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    })
}

fn help(path: &[&str]) -> String {
    let out = meshctl().args(path).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "`meshctl {} --help` failed: {}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pipelines_use_only_existing_commands_and_flags() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci");
    let mut commands = std::collections::BTreeSet::new();
    for file in FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = meshproxy::istio::yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut found = Vec::new();
        scripts(&doc, &mut found);
        let calls: Vec<Vec<String>> = found.iter().flat_map(|s| invocations(s)).collect();
        assert!(calls.len() >= 5, "{file}: only {calls:?}");
        for args in &calls {
            // The command path: a subcommand, and a nested one when the
            // subcommand has subcommands of its own (`rollout start`).
            let first = args
                .first()
                .unwrap_or_else(|| panic!("{file}: bare meshctl"));
            let mut path = vec![first.as_str()];
            if help(&path).contains("\nCommands:\n") {
                path.push(args[1].as_str());
            }
            let text = help(&path);
            for flag in args.iter().filter(|a| a.starts_with('-')) {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    lists(&text, flag),
                    "{file}: `meshctl {}` has no flag {flag}",
                    path.join(" ")
                );
            }
            commands.insert(path.join(" "));
        }
        // The rollout step branches on each rollout exit code.
        for code in ["0)", "3)", "4)", "5)"] {
            assert!(
                text.contains(code),
                "{file} does not handle exit code {code}"
            );
        }
    }
    let expected = [
        "apply",
        "diff",
        "doctor",
        "promote",
        "rollback",
        "rollout start",
        "rollout status",
    ];
    let used: Vec<&str> = commands.iter().map(String::as_str).collect();
    assert!(
        expected.iter().all(|c| used.contains(c)),
        "expected {expected:?}, found {used:?}"
    );
}

#[test]
fn the_flag_check_rejects_an_unknown_flag() {
    let calls =
        invocations("rc=0; meshctl doctor \"$SERVICE\" --to v2 \\\n  --frobnicate > out.txt");
    assert_eq!(
        calls,
        [["doctor", "\"$SERVICE\"", "--to", "v2", "--frobnicate"]]
    );
    let text = help(&["doctor"]);
    assert!(lists(&text, "--to"));
    assert!(!lists(&text, "--frobnicate"));
    assert!(!lists(&text, "--t"));
}

/// The jobs of a pipeline: GitHub's `jobs.*`, GitLab's top-level mappings
/// with a `script`.
fn jobs(doc: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let Some(top) = doc.as_object() else {
        return Vec::new();
    };
    match top.get("jobs").and_then(|j| j.as_object()) {
        Some(jobs) => jobs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        None => top
            .iter()
            .filter(|(_, v)| v.get("script").is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

#[test]
fn pipelines_run_a_bluegreen_release_on_the_exit_code_contract() {
    // The flags the blue/green jobs rely on exist, with the values they use.
    let help = help(&["rollout", "start"]);
    for flag in [
        "--strategy",
        "--mirror-percent",
        "--match",
        "--iterations",
        "--interval",
        "--summary",
        "--junit",
    ] {
        assert!(lists(&help, flag), "`meshctl rollout start` has no {flag}");
    }
    for value in ["bluegreen", "mirror", "auto"] {
        assert!(
            help.contains(value),
            "`meshctl rollout start --help` does not mention {value}:\n{help}"
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci");
    for file in FILES {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let doc: serde_json::Value = meshproxy::istio::yaml::from_str(&text).unwrap();
        let mut found = Vec::new();
        for (name, job) in jobs(&doc) {
            let mut found_scripts = Vec::new();
            scripts(&job, &mut found_scripts);
            let all = found_scripts.join("\n");
            let calls: Vec<Vec<String>> =
                found_scripts.iter().flat_map(|s| invocations(s)).collect();
            let Some(call) = calls.iter().find(|a| {
                a.starts_with(&["rollout".to_owned(), "start".to_owned()])
                    && a.windows(2).any(|w| {
                        w[0] == "--strategy" && matches!(w[1].as_str(), "bluegreen" | "mirror")
                    })
            }) else {
                continue;
            };
            // Traffic-aware bake times, with a progress deadline to warn against.
            for (flag, value) in [("--interval", "auto"), ("--mirror-percent", "50")] {
                assert!(
                    call.windows(2).any(|w| w[0] == flag && w[1] == value),
                    "{file}: job {name}: {call:?} lacks {flag} {value}"
                );
            }
            assert!(call.iter().any(|a| a == "--timeout"), "{file}: job {name}");
            // The job branches on the exit codes a bluegreen run can end with
            // (no --manual-promotion: it never pauses).
            for code in ["0)", "3)", "4)", "*)"] {
                assert!(
                    all.contains(code),
                    "{file}: job {name} does not handle exit code {code}:\n{all}"
                );
            }
            found.push(name);
        }
        assert_eq!(found, ["bluegreen"], "{file}: one bluegreen job expected");
    }
}

//! `meshctl render` end to end: a broad set of specs (file and flags) through
//! the real binary, compared with golden files in `tests/golden/render/`.
//! Re-bless with `MESHCTL_BLESS=1 cargo test --test integration render::`.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::meshctl;

/// One rendering scenario: flags, and optionally a spec file written to a
/// temporary directory and passed with `-f`.
pub struct Case {
    /// Golden file stem (`tests/golden/render/NAME.yaml`).
    pub name: &'static str,
    /// Arguments after `meshctl render`.
    pub args: &'static [&'static str],
    /// A spec file's content, passed as `-f FILE` when set.
    pub spec: Option<&'static str>,
}

/// The scenarios: one, two and three versions; with and without a gateway;
/// TLS; custom weights from the file and from flags; v1beta1; JSON output.
pub const CASES: &[Case] = &[
    Case {
        name: "example",
        args: &["-f", "examples/meshctl.yaml"],
        spec: None,
    },
    Case {
        name: "example-json",
        args: &["-f", "examples/meshctl.yaml", "-o", "json"],
        spec: None,
    },
    Case {
        name: "example-promoted",
        args: &["-f", "examples/meshctl.yaml", "--promoted"],
        spec: None,
    },
    Case {
        name: "one-version",
        args: &["discounts", "--versions", "v1"],
        spec: None,
    },
    Case {
        name: "flags-gateway",
        args: &[
            "discounts",
            "--host",
            "discounts.example.com",
            "--versions",
            "v1,v2",
        ],
        spec: None,
    },
    Case {
        name: "flags-weights",
        args: &[
            "discounts",
            "--host",
            "shop.example.com",
            "--host",
            "*.discounts.example.com",
            "--gateway",
            "edge",
            "--port",
            "9080",
            "--versions",
            "v1,v2",
            "--weight",
            "v1=90",
            "--weight",
            "v2=10",
            "-n",
            "shop",
        ],
        spec: None,
    },
    Case {
        name: "three-versions",
        args: &[],
        spec: Some(
            "service: reviews\nport: 9080\nversions:\n  v1: {app: reviews, track: stable}\n  v2: {app: reviews, track: canary}\n  v3: {app: reviews, track: experimental}\nweights: {v1: 80, v2: 15, v3: 5}\n",
        ),
    },
    Case {
        name: "tls-gateway",
        args: &[],
        spec: Some(
            "service: checkout\nnamespace: store\nhosts: [checkout.example.com, pay.example.com]\ngateway:\n  port: 8443\n  tls: {credentialName: checkout-cert}\n  selector: {app: edge-gateway}\nversions: [v1, v2]\nweights: {v1: 50, v2: 50}\n",
        ),
    },
    Case {
        name: "v1beta1",
        args: &["--istio-api", "v1beta1"],
        spec: Some(
            "service: ratings\nhosts: [ratings.example.com]\nversions: [v1, v2]\nweights: {v2: 100}\n",
        ),
    },
    Case {
        name: "file-and-flags",
        args: &[
            "--versions",
            "v2,v3",
            "--weight",
            "v2=75",
            "--weight",
            "v3=25",
            "-n",
            "prod",
        ],
        spec: Some(
            "service: search\nnamespace: staging\nversions:\n  v2: {version: v2, tier: gold}\n  v9: {version: v9}\n",
        ),
    },
    Case {
        name: "sticky",
        args: &["--weight", "v1=90", "--weight", "v2=10"],
        spec: Some(
            "service: discounts\nport: 8080\nversions: [v1, v2]\nstickyCookie: meshctl-version\n",
        ),
    },
    Case {
        name: "sticky-promoted",
        args: &["--sticky-cookie", "meshctl-version", "--promoted"],
        spec: Some("service: discounts\nversions: [v1, v2]\n"),
    },
];

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `meshctl render` for a case from the repository root.
pub fn run_case(case: &Case) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = meshctl();
    cmd.current_dir(root()).arg("render").args(case.args);
    if let Some(spec) = case.spec {
        let file = dir.path().join("meshctl.yaml");
        std::fs::write(&file, spec).unwrap();
        cmd.arg("-f").arg(&file);
    }
    cmd.output().unwrap()
}

/// Asserts `actual` equals the golden file, printing a unified diff when
/// not; with `MESHCTL_BLESS=1` writes the file instead.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var_os("MESHCTL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header(&path.display().to_string(), "actual")
            .to_string();
        panic!(
            "output differs from {} (re-bless with MESHCTL_BLESS=1 if intended):\n{diff}",
            path.display()
        );
    }
}

fn golden_path(case: &Case) -> PathBuf {
    let ext = if case.args.contains(&"json") {
        "json"
    } else {
        "yaml"
    };
    root()
        .join("tests/golden/render")
        .join(format!("{}.{ext}", case.name))
}

fn check(name: &str) {
    let case = CASES.iter().find(|c| c.name == name).unwrap();
    let out = run_case(case);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {stderr}");
    assert_eq!(stderr, "", "{name}: nothing on stderr");
    assert_golden(&golden_path(case), &String::from_utf8(out.stdout).unwrap());
}

#[test]
fn example() {
    check("example");
}

#[test]
fn example_json() {
    check("example-json");
}

#[test]
fn example_promoted() {
    check("example-promoted");
}

#[test]
fn sticky() {
    check("sticky");
}

#[test]
fn sticky_promoted() {
    check("sticky-promoted");
}

#[test]
fn promoted_sends_everything_to_the_last_version() {
    let out = meshctl()
        .args([
            "render",
            "reviews",
            "--versions",
            "v1,v2,v3",
            "--promoted",
            "-o",
            "json",
        ])
        .output_ok();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vs = &list["items"][1];
    assert_eq!(vs["kind"], "VirtualService");
    assert_eq!(
        vs["spec"]["http"][0]["route"],
        serde_json::json!([{"destination": {"host": "reviews", "subset": "v3"}, "weight": 100}])
    );
    assert_eq!(
        list["items"][0]["spec"]["subsets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // --promoted states the weights; --weight would contradict it.
    let out = meshctl()
        .args([
            "render",
            "reviews",
            "--versions",
            "v1,v2",
            "--promoted",
            "--weight",
            "v1=100",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "error: the argument '--promoted' cannot be used with '--weight <WEIGHTS>'"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_version() {
    check("one-version");
}

#[test]
fn flags_gateway() {
    check("flags-gateway");
}

#[test]
fn flags_weights() {
    check("flags-weights");
}

#[test]
fn three_versions() {
    check("three-versions");
}

#[test]
fn tls_gateway() {
    check("tls-gateway");
}

#[test]
fn v1beta1() {
    check("v1beta1");
}

#[test]
fn file_and_flags() {
    check("file-and-flags");
}

#[test]
fn json_is_the_same_list_as_yaml() {
    let yaml = run_case(&CASES[0]);
    let json = run_case(&CASES[1]);
    assert!(yaml.status.success() && json.status.success());
    let docs =
        meshproxy::istio::yaml::parse_resources(&String::from_utf8(yaml.stdout).unwrap()).unwrap();
    let list: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let items: Vec<meshproxy::istio::Resource> =
        serde_json::from_value(list["items"].clone()).unwrap();
    assert_eq!(items, docs);
}

#[test]
fn default_spec_file_is_used_only_when_present() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/meshctl.yaml"),
        dir.path().join("meshctl.yaml"),
    )
    .unwrap();
    let implicit = meshctl().current_dir(dir.path()).arg("render").output_ok();
    let explicit = run_case(&CASES[0]);
    assert_eq!(implicit.stdout, explicit.stdout);

    // `-f` wins over ./meshctl.yaml.
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, "service: other\nversions: [v7]\n").unwrap();
    let out = meshctl()
        .current_dir(dir.path())
        .args(["render", "-o", "json", "-f"])
        .arg(&other)
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"][0]["metadata"]["name"], "other");

    // Without the file, flags alone must carry the service.
    let empty = tempfile::tempdir().unwrap();
    let out = meshctl()
        .current_dir(empty.path())
        .args(["render", "solo", "--versions", "v1", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"][1]["spec"]["hosts"][0], "solo");
}

#[test]
fn custom_templates_replace_embedded_ones_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let dr = std::fs::read_to_string(root().join("templates/destinationrule.yaml.j2"))
        .unwrap()
        .replace(
            "  host: {{ service }}\n",
            "  host: {{ service }}\n  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n",
        );
    std::fs::write(dir.path().join("destinationrule.yaml.j2"), dr).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a template").unwrap();
    let out = meshctl()
        .current_dir(root())
        .args(["render", "discounts", "--versions", "v1,v2", "--templates"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resources = meshproxy::istio::yaml::parse_resources(&stdout).unwrap();
    let meshproxy::istio::Resource::DestinationRule(dr) = &resources[0] else {
        panic!("expected the DestinationRule first: {stdout}");
    };
    assert_eq!(
        dr.spec
            .traffic_policy
            .as_ref()
            .unwrap()
            .tls
            .as_ref()
            .unwrap()
            .mode,
        meshproxy::istio::TlsMode::IstioMutual
    );
    // The VirtualService still comes from the embedded template.
    assert!(
        matches!(&resources[1], meshproxy::istio::Resource::VirtualService(vs) if vs.spec.http[0].name.as_deref() == Some("primary"))
    );
}

#[test]
fn broken_pipe_is_success() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = meshctl()
        .current_dir(root())
        .args(["render", "-f", "examples/meshctl.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end at once, like `meshctl render | head -0`.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
}

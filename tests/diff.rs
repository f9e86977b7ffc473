//! `meshctl diff` through the binary (issue 7): against a local directory
//! and against the fake API server; output and `--exit-code` semantics.

use std::path::Path;
use std::process::Output;

use meshctl::target::local::LocalTarget;
use meshctl::target::{ApplyOptions, STATE_ANNOTATION, Target};
use meshproxy::istio::{Resource, yaml};

use crate::kube_support::{Cluster, ClusterTarget};
use crate::util::meshctl;

const SPEC: [&str; 3] = ["discounts", "--versions", "v1,v2"];

/// The resources `meshctl render` prints for `SPEC` plus `extra` flags.
fn rendered(extra: &[&str]) -> Vec<Resource> {
    let out = meshctl().arg("render").args(SPEC).args(extra).output_ok();
    yaml::parse_resources(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn diff(target: &str, extra: &[&str]) -> Output {
    meshctl()
        .args(["diff", "--target", target])
        .args(SPEC)
        .args(extra)
        .output()
        .unwrap()
}

fn local(dir: &Path) -> String {
    format!("local:{}", dir.display())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn apply_local(dir: &Path, resources: &[Resource]) {
    LocalTarget::new(dir)
        .apply(resources, ApplyOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn no_change_exits_zero_with_exit_code_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    apply_local(dir.path(), &rendered(&[])).await;
    let out = diff(&local(dir.path()), &["--exit-code"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
}

#[tokio::test]
async fn rollout_state_and_resource_version_are_not_changes() {
    let dir = tempfile::tempdir().unwrap();
    apply_local(dir.path(), &rendered(&[])).await;
    // What a rollout writes: the state annotation, a new resourceVersion.
    let target = LocalTarget::new(dir.path());
    let mut vs = target.virtual_service("discounts").await.unwrap();
    vs.metadata
        .annotations
        .insert(STATE_ANNOTATION.into(), r#"{"phase":"Promoted"}"#.into());
    target.replace_virtual_service(&vs).await.unwrap();
    let out = diff(&local(dir.path()), &["--exit-code"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let shown = diff(&local(dir.path()), &["--exit-code", "--show-rollout-state"]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stdout));
}

#[tokio::test]
async fn weight_change_shows_the_weight_lines_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    apply_local(dir.path(), &rendered(&[])).await;
    let out = diff(
        &local(dir.path()),
        &["--weight", "v1=90", "--weight", "v2=10", "--exit-code"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "changes are not errors");
    let stdout = text(&out.stdout);
    // The rendered VirtualService routes to v1 alone; the new one adds v2.
    let expected = "\
--- live/VirtualService/discounts
+++ rendered/VirtualService/discounts
@@ -14,4 +14,8 @@
     - destination:
         host: discounts
         subset: v1
-      weight: 100
+      weight: 90
+    - destination:
+        host: discounts
+        subset: v2
+      weight: 10
";
    assert_eq!(stdout, expected, "unchanged objects are not shown");
    // Without --exit-code a diff is not a failure, as with git.
    let plain = diff(
        &local(dir.path()),
        &["--weight", "v1=90", "--weight", "v2=10"],
    );
    assert_eq!(plain.status.code(), Some(0));
    assert_eq!(plain.stdout, out.stdout);
}

#[tokio::test]
async fn new_objects_are_shown_all_added() {
    let dir = tempfile::tempdir().unwrap();
    let out = diff(&local(dir.path()), &["--exit-code"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("--- /dev/null\n").count(), 2, "{stdout}");
    assert!(stdout.contains("+++ rendered/DestinationRule/discounts\n@@ -0,0 +1,"));
    assert!(stdout.contains("+++ rendered/VirtualService/discounts\n@@ -0,0 +1,"));
    for line in stdout
        .lines()
        .filter(|l| !l.starts_with("---") && !l.starts_with("@@"))
    {
        assert!(line.starts_with('+'), "{line:?} in\n{stdout}");
    }
    assert!(
        !dir.path().join("discounts.yaml").exists(),
        "diff writes nothing"
    );
}

#[tokio::test]
async fn errors_exit_one_with_error_on_stderr_and_no_diff() {
    let out = diff("local:", &["--exit-code"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: --target \"local:\" is not valid: use `kube` or `local:DIR`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_fake_api_server() {
    let cluster = Cluster::start().await;
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let run = move |extra: &'static [&'static str]| {
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            diff(
                "kube",
                &[&["--kubeconfig", kubeconfig.as_str()], extra].concat(),
            )
        })
    };
    // Nothing applied yet: everything is new.
    let out = run(&["--exit-code", "-o", "json"]).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changed"], true);
    assert_eq!(report["target"], "kube:fake/shop");
    let actions: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "created"]);

    let target = cluster.target().await;
    target
        .apply(&rendered(&[]), ApplyOptions::default())
        .await
        .unwrap();
    // Stored objects carry namespace, uid, managedFields, resourceVersion,
    // generation, creationTimestamp: none of them is a change.
    let out = run(&["--exit-code"]).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");

    let out = run(&["--weight", "v1=75", "--weight", "v2=25", "--exit-code"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("--- live/VirtualService/discounts\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "-      weight: 100\n+      weight: 75\n+    - destination:\n+        host: discounts\n+        subset: v2\n+      weight: 25\n"
        ),
        "{stdout}"
    );
    // diff only reads.
    assert!(
        cluster
            .server
            .requests()
            .iter()
            .filter(|r| r.resource.as_deref() == Some("virtualservices"))
            .all(|r| r.verb == "get" || r.verb == "patch" || r.verb == "list"),
    );
    crate::kube_support::assert_rbac_allows(&cluster.server);
}

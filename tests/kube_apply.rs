//! `meshctl apply` on the Kubernetes target, end to end through the binary
//! against the fake API server: created / configured / unchanged, dry run,
//! JSON output, the round-trip budget, and each error with its message.

use serde_json::json;

use crate::kube_support::{ClusterTarget, NS, assert_rbac_allows, blocking_cluster};
use crate::util::meshctl;

const SERVICE: &[&str] = &[
    "apply",
    "discounts",
    "--host",
    "discounts.example.com",
    "--versions",
    "v1,v2",
];

fn args(extra: &[&str]) -> Vec<String> {
    SERVICE
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect()
}

fn apply(cluster: &crate::kube_support::Cluster, extra: &[&str]) -> crate::util::Meshctl {
    let mut cmd = meshctl();
    cmd.kubeconfig(&cluster.kubeconfig).args(args(extra));
    cmd
}

fn sorted_lines(out: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn apply_prints_created_unchanged_configured_like_kubectl() {
    let (_rt, cluster) = blocking_cluster();
    let (out, _) = apply(&cluster, &[]).run_code(0);
    assert_eq!(
        sorted_lines(&out),
        [
            "destinationrule.networking.istio.io/discounts created",
            "gateway.networking.istio.io/discounts-gateway created",
            "virtualservice.networking.istio.io/discounts created",
        ]
    );
    let (out, _) = apply(&cluster, &[]).run_code(0);
    assert_eq!(
        sorted_lines(&out),
        [
            "destinationrule.networking.istio.io/discounts unchanged",
            "gateway.networking.istio.io/discounts-gateway unchanged",
            "virtualservice.networking.istio.io/discounts unchanged",
        ]
    );
    let (out, _) = apply(&cluster, &["--weight", "v1=90", "--weight", "v2=10"]).run_code(0);
    assert_eq!(
        sorted_lines(&out),
        [
            "destinationrule.networking.istio.io/discounts unchanged",
            "gateway.networking.istio.io/discounts-gateway unchanged",
            "virtualservice.networking.istio.io/discounts configured",
        ]
    );
    let vs = cluster
        .istio("virtualservices", "discounts")
        .expect("stored");
    assert_eq!(vs["metadata"]["namespace"], NS);
    assert!(
        vs["spec"]["http"][0]["route"]
            .as_array()
            .expect("route")
            .iter()
            .any(|r| r["weight"] == 10)
    );
    assert_rbac_allows(&cluster.server);
}

#[test]
fn apply_uses_at_most_four_round_trips_after_discovery() {
    let (_rt, cluster) = blocking_cluster();
    apply(&cluster, &[]).run_code(0);
    let requests = cluster.server.requests();
    let discovery = requests.iter().filter(|r| r.resource.is_none()).count();
    let round_trips = requests.iter().filter(|r| r.resource.is_some()).count();
    assert_eq!(discovery, 2, "{requests:#?}");
    assert!(round_trips <= 4, "{round_trips} round trips: {requests:#?}");
    println!("meshctl apply: {discovery} discovery requests + {round_trips} round trips");
}

#[test]
fn dry_run_changes_nothing_and_says_so() {
    let (_rt, cluster) = blocking_cluster();
    let (out, _) = apply(&cluster, &["--dry-run"]).run_code(0);
    assert!(
        out.lines()
            .all(|l| l.ends_with(" created (server dry run)"))
            && out.lines().count() == 3,
        "{out}"
    );
    assert!(cluster.istio("virtualservices", "discounts").is_none());
    apply(&cluster, &[]).run();
    let before = cluster.istio("virtualservices", "discounts");
    let (out, _) = apply(
        &cluster,
        &["--dry-run", "--weight", "v1=50", "--weight", "v2=50"],
    )
    .run_code(0);
    assert!(
        out.contains("virtualservice.networking.istio.io/discounts configured (server dry run)"),
        "{out}"
    );
    assert_eq!(cluster.istio("virtualservices", "discounts"), before);
}

#[test]
fn json_output_lists_each_object() {
    let (_rt, cluster) = blocking_cluster();
    let (out, _) = apply(&cluster, &["-o", "json"]).run_code(0);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(report["target"], format!("kube:fake/{NS}"));
    assert_eq!(report["dryRun"], false);
    let objects = report["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 3);
    assert!(
        objects
            .contains(&json!({"kind": "VirtualService", "name": "discounts", "action": "created"}))
    );
}

#[test]
fn namespace_comes_from_the_spec_unless_n_overrides_it() {
    let (_rt, cluster) = blocking_cluster();
    let root = env!("CARGO_MANIFEST_DIR");
    let spec = format!("{root}/examples/meshctl.yaml");
    meshctl()
        .kubeconfig(&cluster.kubeconfig)
        .args(["apply", "-f", &spec])
        .run_code(0);
    assert!(
        cluster
            .istio_in("shop", "virtualservices", "discounts")
            .is_some()
    );
    meshctl()
        .kubeconfig(&cluster.kubeconfig)
        .args(["-n", "staging", "apply", "-f", &spec])
        .run_code(0);
    assert!(
        cluster
            .istio_in("staging", "virtualservices", "discounts")
            .is_some()
    );
}

#[test]
fn unreachable_cluster_exits_1_naming_server_and_context() {
    let (_rt, cluster) = blocking_cluster();
    let port = cluster.unreachable().port();
    let (_, err) = apply(&cluster, &[]).run_code(1);
    assert!(
        err.contains(&format!(
            "cannot reach the Kubernetes API server at http://127.0.0.1:{port} (context \"fake\")"
        )),
        "{err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "one error line, no client log noise: {err}"
    );
}

#[test]
fn missing_istio_crds_exit_1_saying_what_to_install() {
    let (_rt, cluster) = blocking_cluster();
    cluster.server.set_istio_installed(false);
    let (_, err) = apply(&cluster, &[]).run_code(1);
    assert!(err.contains("the Istio CRDs are not installed"), "{err}");
    assert!(err.contains("networking.istio.io/v1 or v1beta1"), "{err}");
    assert!(err.contains("helm install istio-base istio/base"), "{err}");
}

#[test]
fn forbidden_exits_1_naming_verb_and_resource() {
    let (_rt, cluster) = blocking_cluster();
    cluster.server.deny("patch", "destinationrules");
    let (_, err) = apply(&cluster, &[]).run_code(1);
    let denied = "may not patch destinationrules.networking.istio.io in namespace \"shop\"";
    assert!(err.contains(denied), "{err}");
}

#[test]
fn apply_conflict_exits_1_naming_the_manager_and_force_conflicts_resolves_it() {
    let (_rt, cluster) = blocking_cluster();
    apply(&cluster, &[]).run();
    cluster.edit_virtual_service("discounts", "kubectl-edit", |vs| {
        vs["spec"]["http"][0]["route"] = json!([
            {"destination": {"host": "discounts", "subset": "v1"}, "weight": 60},
            {"destination": {"host": "discounts", "subset": "v2"}, "weight": 40}
        ]);
    });
    let (_, err) = apply(&cluster, &[]).run_code(1);
    assert!(
        err.contains("conflict with \"kubectl-edit\" using networking.istio.io/v1"),
        "{err}"
    );
    assert!(err.contains(".spec.http"), "{err}");
    assert!(err.contains("--force-conflicts"), "{err}");
    let (out, _) = apply(&cluster, &["--force-conflicts"]).run_code(0);
    assert!(
        out.contains("virtualservice.networking.istio.io/discounts configured"),
        "{out}"
    );
}

#[test]
fn apply_after_a_rollout_conflicts_with_the_rollout_manager() {
    let (rt, cluster) = blocking_cluster();
    apply(&cluster, &[]).run();
    // A rollout step wrote the weights (as `meshctl rollout` does).
    rt.block_on(async {
        use meshctl::target::Target;
        let target = cluster.target().await;
        let mut vs = target.virtual_service("discounts").await.expect("vs");
        for r in &mut vs.spec.http[0].route {
            r.weight = Some(50);
        }
        target.replace_virtual_service(&vs).await.expect("step");
    });
    let (_, err) = apply(&cluster, &[]).run_code(1);
    assert!(err.contains("conflict with \"meshctl-rollout\""), "{err}");
}

#[test]
fn apply_to_a_local_directory_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = format!("local:{}", dir.path().display());
    let a = args(&[]);
    let mut cmd = crate::util::meshctl();
    cmd.args(["--target", &target]).args(&a);
    let (out, _) = cmd.run_code(0);
    assert!(
        out.contains("virtualservice.networking.istio.io/discounts"),
        "{out}"
    );
    assert!(dir.path().join("discounts.yaml").is_file());
}

#[test]
fn invalid_objects_exit_1_with_the_servers_field_errors() {
    let (_rt, cluster) = blocking_cluster();
    if crate::kube_support::crds().is_none() {
        return; // said why; MESHCTL_REQUIRE_CRDS=1 makes this a failure
    }
    // A custom template the client accepts but Istio's CRD rejects:
    // `retries.attempts` is an int32 on the server, an unsigned 32-bit
    // number in meshctl's model.
    let templates = tempfile::tempdir().expect("tempdir");
    let embedded = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/virtualservice.yaml.j2"
    ))
    .expect("template");
    let custom = embedded.replace(
        "  - name: primary\n",
        "  - name: primary\n    retries:\n      attempts: 3000000000\n",
    );
    assert_ne!(custom, embedded, "the template still has the primary route");
    std::fs::write(templates.path().join("virtualservice.yaml.j2"), custom).expect("write");
    let dir = templates.path().display().to_string();
    let (_, err) = apply(&cluster, &["--templates", &dir]).run_code(1);
    assert!(
        err.contains("the API server rejected VirtualService \"discounts\" as invalid"),
        "{err}"
    );
    assert!(
        err.contains("spec.http[0].retries.attempts: Invalid value: 3000000000"),
        "{err}"
    );
    assert!(cluster.istio("virtualservices", "discounts").is_none());
}

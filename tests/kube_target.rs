//! The Kubernetes target (`meshctl::target::kube::KubeTarget`) in process,
//! against the fake API server: apply outcomes and round-trip budget, dry
//! run, error messages, rollout state with optimistic concurrency, the
//! rollout Lease and Events.

use std::time::Duration;

use meshctl::target::kube::{KubeTarget, ROLLOUT_FIELD_MANAGER, lease_name};
use meshctl::target::{
    ApplyAction, ApplyOptions, EventType, STATE_ANNOTATION, Target, TargetError,
};
use meshproxy::istio::Resource;
use serde_json::json;

use crate::kube_support::{Cluster, ClusterTarget, DRY_RUN, NS, discounts, discounts_at};

fn actions(applied: &[meshctl::target::Applied]) -> Vec<(String, ApplyAction)> {
    applied.iter().map(|a| (a.kind.clone(), a.action)).collect()
}

fn all(action: ApplyAction) -> Vec<(String, ApplyAction)> {
    ["Gateway", "VirtualService", "DestinationRule"]
        .iter()
        .map(|k| ((*k).to_owned(), action))
        .collect()
}

#[tokio::test]
async fn apply_reports_created_then_unchanged_then_configured() {
    let (cluster, target) = connected().await;

    let first = apply_ok(&target, &discounts()).await;
    assert_eq!(actions(&first), all(ApplyAction::Created));
    let vs = stored_vs(&cluster);
    let rv = vs["metadata"]["resourceVersion"].clone();
    assert_eq!(vs["metadata"]["managedFields"][0]["manager"], "meshctl");
    assert_eq!(vs["metadata"]["managedFields"][0]["operation"], "Apply");

    let again = apply_ok(&target, &discounts()).await;
    assert_eq!(actions(&again), all(ApplyAction::Unchanged));
    let vs = stored_vs(&cluster);
    assert_eq!(
        vs["metadata"]["resourceVersion"], rv,
        "a no-op apply keeps the resourceVersion"
    );

    let changed = apply_ok(&target, &discounts_at(10)).await;
    assert_eq!(
        actions(&changed),
        vec![
            ("Gateway".to_owned(), ApplyAction::Unchanged),
            ("VirtualService".to_owned(), ApplyAction::Configured),
            ("DestinationRule".to_owned(), ApplyAction::Unchanged),
        ]
    );
    let vs = stored_vs(&cluster);
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 10);
    assert_eq!(vs["metadata"]["generation"], 2);
}

#[tokio::test]
async fn apply_takes_at_most_four_round_trips_after_discovery_and_discovers_once() {
    let (cluster, target) = applied().await;
    let requests = cluster.server.requests();
    let discovery: Vec<_> = requests.iter().filter(|r| r.resource.is_none()).collect();
    let resources: Vec<_> = requests.iter().filter(|r| r.resource.is_some()).collect();
    assert_eq!(
        discovery
            .iter()
            .map(|r| r.path.as_str())
            .collect::<Vec<_>>(),
        ["/apis/networking.istio.io", "/apis/networking.istio.io/v1"]
    );
    assert!(
        resources.len() <= 4,
        "apply used {} round trips: {resources:#?}",
        resources.len()
    );
    assert!(
        resources
            .iter()
            .filter(|r| r.verb == "patch")
            .all(|r| r.content_type == "application/apply-patch+yaml"
                && r.query.contains("fieldManager=meshctl")
                && r.version.as_deref() == Some("v1")),
        "{resources:#?}"
    );

    // Discovery is cached for the rest of the run.
    cluster.server.clear_requests();
    apply_ok(&target, &discounts_at(25)).await;
    target.virtual_service("discounts").await.expect("read");
    let requests = cluster.server.requests();
    assert!(
        requests.iter().all(|r| r.resource.is_some()),
        "{requests:#?}"
    );
    assert!(requests.len() <= 5, "{requests:#?}");
}

#[tokio::test]
async fn pinned_istio_api_version_is_used() {
    let cluster = Cluster::start().await;
    let target = pinned_to(&cluster, meshproxy::istio::ApiVersion::V1beta1).await;
    apply_ok(&target, &discounts()).await;
    let patches = patches(&cluster);
    assert_eq!(patches.len(), 3);
    assert!(
        patches
            .iter()
            .all(|r| r.path.starts_with("/apis/networking.istio.io/v1beta1/")),
        "{patches:#?}"
    );
}

#[tokio::test]
async fn dry_run_reports_but_changes_nothing() {
    let (cluster, target) = connected().await;
    let applied = target.apply(&discounts(), DRY_RUN).await.expect("dry run");
    assert_eq!(actions(&applied), all(ApplyAction::Created));
    assert!(cluster.istio("virtualservices", "discounts").is_none());
    assert!(
        cluster
            .server
            .requests()
            .iter()
            .filter(|r| r.verb == "patch")
            .all(|r| r.query.contains("dryRun=All"))
    );

    apply_ok(&target, &discounts()).await;
    let before = stored_vs(&cluster);
    let applied = target
        .apply(&discounts_at(50), DRY_RUN)
        .await
        .expect("dry run");
    assert_eq!(applied[1].action, ApplyAction::Configured);
    assert_eq!(applied[0].action, ApplyAction::Unchanged);
    assert_eq!(stored_vs(&cluster), before);
}

/// A fake cluster and meshctl's target connected to it.
async fn connected() -> (Cluster, KubeTarget) {
    let cluster = Cluster::start().await;
    let target = cluster.target().await;
    (cluster, target)
}

/// A fake cluster with the discounts fixture applied, and meshctl's target.
async fn applied() -> (Cluster, KubeTarget) {
    let (cluster, target) = connected().await;
    apply_ok(&target, &discounts()).await;
    (cluster, target)
}

/// meshctl's target on the cluster with the Istio API pinned to `version`
/// (`--istio-api`).
async fn pinned_to(cluster: &Cluster, version: meshproxy::istio::ApiVersion) -> KubeTarget {
    let target = KubeTarget::connect(&cluster.args(), Some(version)).await;
    target.expect("connects")
}

/// The rollout Lease of `discounts` as stored.
fn stored_lease(cluster: &Cluster) -> Option<serde_json::Value> {
    let server = &cluster.server;
    server.object("coordination.k8s.io", "leases", NS, "meshctl-discounts")
}

/// The patch requests the cluster has seen, in order.
fn patches(cluster: &Cluster) -> Vec<fake_apiserver::RecordedRequest> {
    let requests = cluster.server.requests().into_iter();
    requests.filter(|r| r.verb == "patch").collect()
}

/// Applies `resources` (no dry run, no forcing); fails the test otherwise.
async fn apply_ok(target: &KubeTarget, resources: &[Resource]) -> Vec<meshctl::target::Applied> {
    let applied = target.apply(resources, ApplyOptions::default()).await;
    applied.expect("apply")
}

/// The `discounts` VirtualService as the fake cluster stores it.
fn stored_vs(cluster: &Cluster) -> serde_json::Value {
    cluster.istio_object("virtualservices", "discounts")
}

/// Applying `resources` fails with a message that mentions each of `needles`.
async fn apply_fails_with(target: &KubeTarget, resources: &[Resource], needles: &[&str]) {
    let msg = match target.apply(resources, ApplyOptions::default()).await {
        Ok(a) => panic!("apply should fail, got {a:?}"),
        Err(e) => e.to_string(),
    };
    for needle in needles {
        assert!(msg.contains(needle), "{msg}");
    }
}

#[tokio::test]
async fn unreachable_cluster_names_server_and_context() {
    let cluster = Cluster::start().await;
    let port = cluster.unreachable().port();
    let target = cluster.target().await;
    let server = format!("cannot reach the Kubernetes API server at http://127.0.0.1:{port}");
    apply_fails_with(&target, &discounts(), &[&server, "(context \"fake\")"]).await;
}

#[tokio::test]
async fn missing_istio_crds_name_the_group_and_what_to_install() {
    let cluster = Cluster::start().await;
    cluster.server.set_istio_installed(false);
    let target = cluster.target().await;
    apply_fails_with(
        &target,
        &discounts(),
        &[
            "the Istio CRDs are not installed",
            "networking.istio.io/v1 or v1beta1",
            "istioctl install",
        ],
    )
    .await;
}

#[tokio::test]
async fn forbidden_names_verb_and_resource() {
    let cluster = Cluster::start().await;
    cluster.server.deny("patch", "virtualservices");
    let target = cluster.target().await;
    apply_fails_with(
        &target,
        &discounts(),
        &[
            "may not patch virtualservices.networking.istio.io in namespace \"shop\"",
            "deploy/rbac.yaml",
            "User \"system:serviceaccount:ci:meshctl\" cannot patch resource \"virtualservices\"",
        ],
    )
    .await;
}

#[tokio::test]
async fn apply_conflict_names_the_other_manager_and_force_takes_over() {
    let (cluster, target) = applied().await;
    // Someone edits the weights by hand.
    cluster.edit_virtual_service("discounts", "kubectl-edit", |vs| {
        vs["spec"]["http"][0]["route"][0]["weight"] = json!(70);
        vs["spec"]["http"][0]["route"][1]["weight"] = json!(30);
    });
    apply_fails_with(
        &target,
        &discounts_at(10),
        &[
            "apply conflict on VirtualService \"discounts\"",
            ".spec.http: conflict with \"kubectl-edit\" using networking.istio.io/v1",
            "--force-conflicts",
        ],
    )
    .await;
    let vs = stored_vs(&cluster);
    assert_eq!(
        vs["spec"]["http"][0]["route"][1]["weight"], 30,
        "nothing changed"
    );

    let forced = ApplyOptions {
        dry_run: false,
        force_conflicts: true,
    };
    let applied = target
        .apply(&discounts_at(10), forced)
        .await
        .expect("forced apply");
    assert_eq!(applied[1].action, ApplyAction::Configured);
    let vs = stored_vs(&cluster);
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 10);
    let managers: Vec<&str> = vs["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter(|m| m["fieldsV1"]["f:spec"].get("f:http").is_some())
        .map(|m| m["manager"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        managers,
        ["meshctl"],
        "ownership of .spec.http moved to meshctl"
    );
}

#[tokio::test]
async fn state_annotation_round_trips_with_optimistic_concurrency() {
    let (cluster, target) = applied().await;
    let mut vs = target.virtual_service("discounts").await.expect("read");
    let stale = vs.clone();
    let state = r#"{"phase":"Progressing","step":1,"weights":{"v1":90,"v2":10}}"#;
    vs.metadata
        .annotations
        .insert(STATE_ANNOTATION.into(), state.into());
    vs.spec.http[0].route[0].weight = Some(90);
    vs.spec.http[0].route[1].weight = Some(10);
    let stored = target.replace_virtual_service(&vs).await.expect("replace");
    assert_ne!(
        stored.metadata.resource_version,
        vs.metadata.resource_version
    );
    let read = target
        .virtual_service("discounts")
        .await
        .expect("read back");
    assert_eq!(
        read.metadata
            .annotations
            .get(STATE_ANNOTATION)
            .map(String::as_str),
        Some(state)
    );
    assert_eq!(read.spec.http[0].route[1].weight, Some(10));
    assert_eq!(
        read.metadata
            .labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("meshctl")
    );

    // A writer holding the old resourceVersion loses with Conflict...
    match target.replace_virtual_service(&stale).await {
        Err(TargetError::Conflict { expected, .. }) => {
            assert_eq!(Some(expected), stale.metadata.resource_version)
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // ...and succeeds after a fresh read.
    let mut fresh = target.virtual_service("discounts").await.expect("read");
    fresh.spec.http[0].route[0].weight = Some(75);
    fresh.spec.http[0].route[1].weight = Some(25);
    target
        .replace_virtual_service(&fresh)
        .await
        .expect("retry after a fresh read");

    let raw = stored_vs(&cluster);
    let rollout_manager = raw["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|m| m["manager"] == ROLLOUT_FIELD_MANAGER)
        .cloned()
        .expect("rollout writes have their own field manager");
    assert_eq!(rollout_manager["operation"], "Update");

    let rollouts = target.rollouts().await.expect("list");
    assert_eq!(rollouts.len(), 1);
    assert_eq!(rollouts[0].metadata.name, "discounts");
}

#[tokio::test]
async fn replace_keeps_fields_outside_the_model() {
    let (cluster, target) = applied().await;
    cluster.edit_virtual_service("discounts", "kubectl-edit", |vs| {
        vs["spec"]["exportTo"] = json!(["."]);
    });
    let mut vs = target.virtual_service("discounts").await.expect("read");
    vs.metadata
        .annotations
        .insert(STATE_ANNOTATION.into(), "{}".into());
    target.replace_virtual_service(&vs).await.expect("replace");
    let raw = stored_vs(&cluster);
    assert_eq!(raw["spec"]["exportTo"], json!(["."]));
}

#[tokio::test]
async fn missing_virtual_service_says_to_apply_first() {
    let (_cluster, target) = connected().await;
    let e = target
        .virtual_service("discounts")
        .await
        .expect_err("absent");
    assert!(matches!(e, TargetError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("run `meshctl apply` first"), "{e}");
}

#[tokio::test]
async fn lease_refuses_a_second_driver_until_it_expires() {
    let cluster = Cluster::start().await;
    let a = cluster.target().await;
    let b = cluster.target().await;
    let ttl = Duration::from_secs(30);
    a.acquire_lease("discounts", "ci-job-1", ttl)
        .await
        .expect("first driver");
    a.acquire_lease("discounts", "ci-job-1", ttl)
        .await
        .expect("renewal");
    match b.acquire_lease("discounts", "ci-job-2", ttl).await {
        Err(TargetError::LeaseHeld {
            holder,
            service,
            expires_in,
        }) => {
            assert_eq!(holder, "ci-job-1");
            assert_eq!(service, "discounts");
            assert!(
                expires_in <= ttl && expires_in > Duration::from_secs(20),
                "{expires_in:?}"
            );
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    let e = b
        .acquire_lease("discounts", "ci-job-2", ttl)
        .await
        .expect_err("held");
    assert!(
        e.to_string().contains("already being driven by ci-job-1"),
        "{e}"
    );

    // The holder stops renewing: age the lease past its duration.
    cluster
        .server
        .edit(
            "coordination.k8s.io",
            "leases",
            NS,
            &lease_name("discounts"),
            "test-clock",
            |l| {
                l["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
            },
        )
        .expect("age lease");
    b.acquire_lease("discounts", "ci-job-2", ttl)
        .await
        .expect("takeover after expiry");
    let lease = stored_lease(&cluster).expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "ci-job-2");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 30);

    // The old holder's release does not free the new holder's lease.
    a.release_lease("discounts", "ci-job-1")
        .await
        .expect("no-op release");
    assert!(stored_lease(&cluster).is_some());
    b.release_lease("discounts", "ci-job-2")
        .await
        .expect("release");
    assert!(stored_lease(&cluster).is_none());
    a.acquire_lease("discounts", "ci-job-1", ttl)
        .await
        .expect("free again");
}

#[tokio::test]
async fn events_regard_the_virtual_service() {
    let (cluster, target) = applied().await;
    target
        .record_event("discounts", EventType::Normal, "StepAdvanced", "v2 at 25%")
        .await
        .expect("event");
    target
        .record_event(
            "discounts",
            EventType::Warning,
            "RolledBack",
            "success rate 80% < 99%",
        )
        .await
        .expect("event");
    let vs = cluster.istio("virtualservices", "discounts").expect("vs");
    let events = cluster.server.objects("events.k8s.io", "events", NS);
    assert_eq!(events.len(), 2, "{events:#?}");
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default())
        .collect();
    assert!(
        reasons.contains(&"StepAdvanced") && reasons.contains(&"RolledBack"),
        "{reasons:?}"
    );
    for e in &events {
        assert_eq!(e["regarding"]["kind"], "VirtualService");
        assert_eq!(e["regarding"]["name"], "discounts");
        assert_eq!(e["regarding"]["uid"], vs["metadata"]["uid"]);
        assert_eq!(e["reportingController"], "meshctl.io/rollout");
        assert!(e["eventTime"].is_string());
    }
    let warning = events
        .iter()
        .find(|e| e["reason"] == "RolledBack")
        .expect("warning");
    assert_eq!(warning["type"], "Warning");
    assert_eq!(warning["note"], "success rate 80% < 99%");
}

#[tokio::test]
async fn connection_honours_context_namespace_and_kubeconfig() {
    let cluster = Cluster::start().await;
    // A second context in the same file, pointing at the same server.
    let mut text = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    text = text.replace(
        "current-context: fake",
        "- name: other\n  context:\n    cluster: fake\n    user: ci\n    namespace: staging\ncurrent-context: fake",
    );
    std::fs::write(&cluster.kubeconfig, text).expect("write");

    let target = cluster.target().await;
    assert_eq!(target.namespace(), NS);
    assert_eq!(target.describe(), format!("kube:fake/{NS}"));
    assert_eq!(target.server(), cluster.server.url());

    let mut args = cluster.args();
    args.context = Some("other".into());
    let other = KubeTarget::connect(&args, None)
        .await
        .expect("context other");
    assert_eq!(other.describe(), "kube:other/staging");
    args.namespace = Some("prod".into());
    let prod = KubeTarget::connect(&args, None).await.expect("-n prod");
    assert_eq!(prod.namespace(), "prod");
    prod.apply(&discounts(), ApplyOptions::default())
        .await
        .expect("apply");
    assert!(
        cluster
            .istio_in("prod", "virtualservices", "discounts")
            .is_some()
    );

    args.context = Some("nope".into());
    let e = KubeTarget::connect(&args, None)
        .await
        .expect_err("unknown context");
    assert!(e.to_string().contains("nope"), "{e}");
    assert!(
        e.to_string()
            .contains(&cluster.kubeconfig.display().to_string()),
        "{e}"
    );

    let missing = meshctl::cli::KubeArgs {
        kubeconfig: Some(cluster.kubeconfig.with_file_name("absent")),
        ..meshctl::cli::KubeArgs::default()
    };
    let e = KubeTarget::connect(&missing, None)
        .await
        .expect_err("missing file");
    assert!(e.to_string().starts_with("--kubeconfig "), "{e}");
    assert!(e.to_string().contains("absent"), "{e}");
}

#[tokio::test]
async fn kube_runtime_watcher_sees_weight_changes() {
    use futures_util::StreamExt;
    use kube::runtime::watcher;

    let (cluster, target) = applied().await;
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&cluster.kubeconfig).expect("kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config"),
    )
    .expect("client");
    let ar = kube::core::ApiResource {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    };
    let api: kube::Api<kube::core::DynamicObject> = kube::Api::namespaced_with(client, NS, &ar);
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    let weight_of = |obj: &kube::core::DynamicObject| {
        obj.data["spec"]["http"][0]["route"][1]["weight"].as_u64()
    };
    let mut seen_initial = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("watch event within 20s")
            .expect("stream open")
            .expect("no watch error");
        match event {
            watcher::Event::InitApply(obj) => assert_eq!(weight_of(&obj), Some(0)),
            watcher::Event::InitDone => {
                seen_initial = true;
                apply_ok(&target, &discounts_at(40)).await;
            }
            watcher::Event::Apply(obj) if seen_initial => {
                assert_eq!(weight_of(&obj), Some(40));
                break;
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_resource_in_another_namespace_is_refused() {
    let (cluster, target) = connected().await;
    let mut resources = discounts();
    if let Resource::VirtualService(vs) = &mut resources[1] {
        vs.metadata.namespace = Some("elsewhere".into());
    }
    apply_fails_with(
        &target,
        &resources,
        &[
            "VirtualService \"discounts\" says namespace \"elsewhere\" but the target namespace is \"shop\"",
            "pass -n elsewhere",
        ],
    )
    .await;
    assert!(cluster.server.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn discovery_falls_back_to_v1beta1_on_an_older_istio() {
    let cluster = Cluster::start().await;
    cluster.server.set_istio_versions(&["v1beta1", "v1alpha3"]);
    let target = cluster.target().await;
    assert_eq!(
        target.istio_version().await.expect("discovery"),
        meshproxy::istio::ApiVersion::V1beta1
    );
    apply_ok(&target, &discounts()).await;
    let patches = patches(&cluster);
    assert!(
        patches
            .iter()
            .all(|r| r.version.as_deref() == Some("v1beta1")),
        "{patches:#?}"
    );

    let pinned = pinned_to(&cluster, meshproxy::istio::ApiVersion::V1).await;
    let e = pinned.istio_version().await.expect_err("v1 is not served");
    assert!(e.to_string().contains("--istio-api v1"), "{e}");
    assert!(
        e.to_string()
            .contains("serves networking.istio.io versions v1beta1, v1alpha3"),
        "{e}"
    );

    cluster.server.set_istio_versions(&["v1alpha3"]);
    let ancient = cluster.target().await;
    let e = ancient.istio_version().await.expect_err("too old");
    assert!(e.to_string().contains("upgrade Istio"), "{e}");
}

#[tokio::test]
async fn invalid_object_shows_the_servers_field_errors() {
    let (_cluster, target) = connected().await;
    let mut resources = discounts();
    if let Resource::DestinationRule(dr) = &mut resources[2] {
        dr.metadata.name = "Discounts_DR".into();
    }
    apply_fails_with(
        &target,
        &resources,
        &[
            "the API server rejected DestinationRule \"Discounts_DR\" as invalid",
            "metadata.name: Invalid value: \"Discounts_DR\": a lowercase RFC 1123 subdomain",
        ],
    )
    .await;
}

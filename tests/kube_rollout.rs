//! Rollouts on the Kubernetes target, end to end through the `meshctl`
//! binary against the fake API server: state in the VirtualService
//! annotation, optimistic-concurrency retry, the Lease, Events, and
//! promote / rollback from a second process.

use meshctl::rollout::state::Phase;
use serde_json::json;

use mesh_test_support::meshctl::words;

use crate::kube_support::{NS, assert_rbac_allows};
use crate::rollout_harness::{Backend, Behaviour, Mesh, exit_code, has_ab_route, weights};

#[test]
fn healthy_rollout_promotes_with_state_events_and_lease_in_the_cluster() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    mesh.rollout(&["--steps", "50,100"]).run_code(0);
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
    let state = mesh.state().expect("state annotation");
    assert_eq!(state.phase, Phase::Promoted);

    let events = mesh.cluster().server.objects("events.k8s.io", "events", NS);
    assert!(events.len() >= 2, "{events:#?}");
    let vs = mesh.cluster().istio_object("virtualservices", "discounts");
    for e in &events {
        assert_eq!(e["regarding"]["name"], "discounts");
        assert_eq!(e["regarding"]["uid"], vs["metadata"]["uid"]);
    }
    // The lease was held while driving and given up at the end.
    let requests = mesh.cluster().server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.resource.as_deref() == Some("leases")
                && r.verb == "create"
                && r.status == 201)
    );
    assert!(
        mesh.cluster()
            .server
            .object("coordination.k8s.io", "leases", NS, "meshctl-discounts")
            .is_none(),
        "lease released"
    );
    // Weights and state are written together with resourceVersion preconditions.
    assert!(
        requests
            .iter()
            .any(|r| r.resource.as_deref() == Some("virtualservices") && r.verb == "update")
    );
    assert_rbac_allows(&mesh.cluster().server);

    // `rollout status` reads the state from the cluster.
    let (out, _) = mesh
        .meshctl(&["rollout", "status", "discounts"])
        .run_code(0);
    assert!(out.contains("Promoted"), "{out}");
}

#[test]
fn a_concurrent_writer_causes_409_and_the_driver_retries_on_a_fresh_read() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    mesh.cluster().server.race_next_update("virtualservices");
    mesh.rollout(&["--steps", "50,100"]).run_code(0);
    let updates = mesh.cluster().statuses("virtualservices", "update");
    assert_eq!(updates.first(), Some(&409), "{updates:?}");
    assert!(updates[1..].iter().all(|s| *s == 200), "{updates:?}");
    // The other writer's change survived: the retry started from a fresh read.
    let vs = mesh.cluster().istio_object("virtualservices", "discounts");
    assert_eq!(vs["metadata"]["annotations"]["example.com/raced"], "1");
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
}

#[test]
fn a_second_start_is_refused_while_paused_then_promote_from_another_process() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    let mut driver = mesh.drive(&["--steps", "20,50", "--manual-promotion"]);
    mesh.wait_for("Paused", |s| s.phase == Phase::Paused);
    let lease = mesh
        .cluster()
        .server
        .object("coordination.k8s.io", "leases", NS, "meshctl-discounts")
        .expect("the driver holds the lease");
    let holder = lease["spec"]["holderIdentity"]
        .as_str()
        .expect("holder")
        .to_owned();

    let (_, err) = mesh.rollout(&["--from", "v1", "--steps", "30"]).run_code(1);
    // The recorded state refuses first; the lease (held by the paused
    // driver) would otherwise (see a_live_lease_of_another_holder_refuses_the_start).
    assert!(
        err.contains("already Paused") && err.contains("meshctl promote discounts"),
        "{err}"
    );
    assert!(
        holder.starts_with("meshctl-") && holder.contains('@'),
        "{holder}"
    );

    mesh.meshctl(&["promote", "discounts"]).run_code(0);
    assert_eq!(exit_code(&mut driver), Some(0));
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
    assert_eq!(mesh.state().expect("state").phase, Phase::Promoted);
}

#[test]
fn an_expired_lease_is_taken_over() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    // A driver that crashed long ago left its lease behind.
    hold_lease(&mesh, "crashed-job-7", 30, "2020-01-01T00:00:00.000000Z");
    mesh.rollout(&["--steps", "100"]).run_code(0);
    let takeover = mesh
        .cluster()
        .server
        .requests()
        .into_iter()
        .find(|r| r.resource.as_deref() == Some("leases") && r.verb == "update")
        .expect("the lease was taken over with an update");
    assert_eq!(takeover.status, 200);
}

#[test]
fn a_live_lease_of_another_holder_refuses_the_start() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    hold_lease(&mesh, "ci-job-42", 300, &jiff_now());
    let (_, err) = mesh.rollout(&["--steps", "100"]).run_code(1);
    assert!(err.contains("already being driven by ci-job-42"), "{err}");
    assert_eq!(mesh.weights(), weights(&[("v1", 100)]), "nothing changed");
}

/// Another holder's Lease on `discounts`, acquired and last renewed at `at`.
fn hold_lease(mesh: &Mesh, holder: &str, seconds: u32, at: &str) {
    mesh.cluster()
        .server
        .insert(
            "coordination.k8s.io",
            "leases",
            NS,
            json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "meshctl-discounts"},
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds,
                         "acquireTime": at, "renewTime": at, "leaseTransitions": 0}
            }),
        )
        .expect("a lease");
}

fn jiff_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

#[test]
fn rollback_from_another_process_stops_the_driver() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    let mut driver = mesh.drive_slowly(&[]);
    mesh.meshctl(&["rollback"]).run_code(0);
    assert_eq!(exit_code(&mut driver), Some(3));
    assert_eq!(mesh.weights().get("v1"), Some(&100));
    assert_eq!(mesh.state().expect("state").phase, Phase::RolledBack);
    assert!(mesh.cluster().event_reasons().iter().any(|r| !r.is_empty()));
    assert_rbac_allows(&mesh.cluster().server);
}

#[test]
fn a_failing_canary_rolls_back_with_a_warning_event() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy().failing("v2", 0.5));
    mesh.rollout(&["--steps", "20,50,100", "--threshold", "1"])
        .run_code(3);
    assert_eq!(mesh.weights().get("v1"), Some(&100));
    let events = mesh.cluster().server.objects("events.k8s.io", "events", NS);
    assert!(events.iter().any(|e| e["type"] == "Warning"), "{events:#?}");
}

#[test]
fn ab_on_the_cluster_routes_matches_to_v2_then_promotes() {
    use meshctl::rollout::strategy::{AB_ROUTE, Stage};
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    let mut driver = mesh.drive(&words(
        "--strategy ab --match header:x-canary=true --iterations 3 --interval 1s",
    ));
    let s = mesh.wait_for("the match stage", |s| s.stage == Stage::Match);
    assert_eq!(s.weights, weights(&[("v1", 100), ("v2", 0)]));
    let vs = mesh.virtual_service();
    let first = &vs.spec.http[0];
    assert_eq!(first.name.as_deref(), Some(AB_ROUTE), "{vs:?}");
    assert_eq!(
        first.matches[0].headers["x-canary"],
        meshproxy::istio::StringMatch::Exact("true".into())
    );
    assert_eq!(first.route[0].destination.subset.as_deref(), Some("v2"));
    assert_eq!(exit_code(&mut driver), Some(0));
    let s = mesh.state().expect("state");
    assert_eq!((s.phase, s.history.len()), (Phase::Promoted, 3));
    // The simulator sends a fifth of the requests with the header.
    assert!(
        s.history
            .iter()
            .all(|h| h.records.last().is_some_and(|r| r.canary.requests >= 10)),
        "{:?}",
        s.history
    );
    let vs = mesh.virtual_service();
    assert!(!has_ab_route(&vs), "{vs:?}");
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
    assert!(
        mesh.cluster()
            .statuses("virtualservices", "update")
            .iter()
            .all(|s| *s == 200)
    );
    assert_rbac_allows(&mesh.cluster().server);
}

#[test]
fn mirror_on_the_cluster_analyses_copies_then_steps() {
    use meshctl::rollout::strategy::Stage;
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    let mut driver = mesh.drive(&words(
        "--strategy mirror --mirror-percent 50 --iterations 2 --steps 50,100 --interval 1s",
    ));
    mesh.wait_for("the mirror stage", |s| s.stage == Stage::Mirror);
    let raw = mesh.cluster().istio_object("virtualservices", "discounts");
    assert_eq!(
        raw["spec"]["http"][0]["mirror"],
        json!({"host": "discounts", "subset": "v2"})
    );
    assert_eq!(
        raw["spec"]["http"][0]["mirrorPercentage"],
        json!({"value": 50.0})
    );
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    assert_eq!(exit_code(&mut driver), Some(0));
    let s = mesh.state().expect("state");
    assert_eq!(s.phase, Phase::Promoted);
    let weights_seen: Vec<u8> = s.history.iter().map(|h| h.weight).collect();
    assert_eq!(weights_seen, vec![0, 0, 50, 100]);
    // The mirror windows judged the copies (reported by the destination).
    for h in &s.history[..2] {
        let r = h.records.last().expect("record");
        assert!(
            r.canary.requests >= 10 && r.baseline.requests >= 10,
            "{r:?}"
        );
    }
    let raw = mesh.cluster().istio_object("virtualservices", "discounts");
    assert!(raw["spec"]["http"][0].get("mirror").is_none(), "{raw}");
    assert!(
        raw["spec"]["http"][0].get("mirrorPercentage").is_none(),
        "{raw}"
    );
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
}

#[test]
fn mirror_failing_on_the_cluster_rolls_back_and_removes_the_mirror() {
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy().failing("v2", 0.5));
    mesh.rollout(&words("--strategy mirror --iterations 3 --threshold 1"))
        .run_code(3);
    let s = mesh.state().expect("state");
    assert_eq!((s.phase, s.history.len()), (Phase::RolledBack, 1));
    assert_eq!(s.history[0].weight, 0, "rolled back in the mirror phase");
    let raw = mesh.cluster().istio_object("virtualservices", "discounts");
    assert!(raw["spec"]["http"][0].get("mirror").is_none(), "{raw}");
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    let events = mesh.cluster().server.objects("events.k8s.io", "events", NS);
    assert!(events.iter().any(|e| e["type"] == "Warning"), "{events:#?}");
}

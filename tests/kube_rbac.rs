//! `deploy/rbac.yaml` grants exactly what meshctl uses: every request of a
//! full scenario is allowed by the Role, and every verb of the Role is used.

use std::time::Duration;

use meshctl::target::{ApplyOptions, EventType, STATE_ANNOTATION, Target};

use crate::kube_support::{
    Cluster, ClusterTarget, DRY_RUN, assert_rbac_allows, discounts, discounts_at, missing_from,
    rbac_grants, used_verbs,
};

#[tokio::test]
async fn the_ci_role_is_sufficient_and_minimal() {
    let cluster = Cluster::start().await;
    let target = cluster.target().await;
    target.apply(&discounts(), DRY_RUN).await.expect("dry run");
    target
        .apply(&discounts(), ApplyOptions::default())
        .await
        .expect("apply");
    target
        .apply(&discounts_at(10), DRY_RUN)
        .await
        .expect("dry run");
    target
        .acquire_lease("discounts", "job-1", Duration::from_secs(30))
        .await
        .expect("lease");
    target
        .acquire_lease("discounts", "job-1", Duration::from_secs(30))
        .await
        .expect("renew");
    let mut vs = target.virtual_service("discounts").await.expect("vs");
    target.destination_rule("discounts").await.expect("dr");
    vs.metadata
        .annotations
        .insert(STATE_ANNOTATION.into(), "{}".into());
    target.replace_virtual_service(&vs).await.expect("replace");
    target.rollouts().await.expect("rollouts");
    let started = target.record_event("discounts", EventType::Normal, "Started", "v2 at 10%");
    started.await.expect("event");
    target
        .endpoints(
            "discounts",
            &[("version".to_owned(), "v2".to_owned())].into(),
        )
        .await
        .expect("endpoints");
    cluster
        .server
        .insert(
            "",
            "services",
            crate::kube_support::NS,
            serde_json::json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "discounts"},
                "spec": {"ports": [{"name": "grpc-api", "port": 50051}]}}),
        )
        .expect("service");
    let port = target
        .service_port("discounts")
        .await
        .expect("service port");
    assert_eq!(port.and_then(|p| p.name).as_deref(), Some("grpc-api"));
    target
        .release_lease("discounts", "job-1")
        .await
        .expect("release");

    assert_rbac_allows(&cluster.server);
    let unused = missing_from(&rbac_grants(), &used_verbs(&cluster.server));
    assert!(
        unused.is_empty(),
        "deploy/rbac.yaml grants verbs meshctl never uses: {unused:?}"
    );
}

//! The fake held to the real thing: each test sends what a client would
//! and checks the answer a real kube-apiserver gives (REAL-APISERVER.md).

use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::FakeApiServer;

const VS_PATH: &str = "/apis/networking.istio.io/v1/namespaces/shop/virtualservices";
const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const JSON: &str = "application/json";
/// No content type (a request without a body).
const NONE: &str = "";

struct Reply {
    code: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

async fn call(
    server: &FakeApiServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let payload = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.url()))
        .header("content-type", content_type)
        .header("user-agent", "kubectl/v1.36.0 (linux/amd64)")
        .body(Full::new(payload.into()))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let code = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        code,
        headers,
        body,
    }
}

/// `METHOD` on the `discounts` VirtualService with `body` as `content_type`.
async fn discounts(
    server: &FakeApiServer,
    method: Method,
    content_type: &str,
    body: &Value,
) -> Reply {
    let path = format!("{VS_PATH}/discounts");
    call(server, method, &path, content_type, body).await
}

fn vs(weight_v2: u32) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "discounts", "labels": {"app": "discounts"}},
        "spec": {
            "hosts": ["discounts"],
            "http": [{"route": [
                {"destination": {"host": "discounts", "subset": "v1"}, "weight": 100 - weight_v2},
                {"destination": {"host": "discounts", "subset": "v2"}, "weight": weight_v2}
            ]}]
        }
    })
}

async fn apply(server: &FakeApiServer, manager: &str, obj: &Value, extra: &str) -> Reply {
    call(
        server,
        Method::PATCH,
        &format!("{VS_PATH}/discounts?fieldManager={manager}{extra}"),
        APPLY,
        obj,
    )
    .await
}

#[tokio::test]
async fn apply_creates_then_a_no_op_keeps_the_resource_version() {
    let server = FakeApiServer::start().await.expect("start");
    let created = apply(&server, "meshctl", &vs(0), "").await;
    assert_eq!(created.code, StatusCode::CREATED);
    let rv = created.body["metadata"]["resourceVersion"].clone();
    assert_eq!(
        created.body["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:hosts": {}, "f:http": {}}})
    );
    let again = apply(&server, "meshctl", &vs(0), "").await;
    assert_eq!(again.code, StatusCode::OK);
    assert_eq!(again.body["metadata"]["resourceVersion"], rv);
    let changed = apply(&server, "meshctl", &vs(10), "").await;
    assert_ne!(changed.body["metadata"]["resourceVersion"], rv);
    assert_eq!(changed.body["metadata"]["generation"], 2);
}

#[tokio::test]
async fn apply_conflict_is_on_the_whole_atomic_http_list() {
    let server = FakeApiServer::start().await.expect("start");
    apply(&server, "meshctl", &vs(0), "").await;
    let other = apply(&server, "flagger", &vs(20), "").await;
    assert_eq!(other.code, StatusCode::CONFLICT);
    assert_eq!(
        other.body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Apply failed with 1 conflict: conflict with \"meshctl\": .spec.http",
            "reason": "Conflict",
            "details": {"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"meshctl\"", "field": ".spec.http"}]},
            "code": 409
        })
    );
    // Same values: shared ownership, no conflict.
    let shared = apply(&server, "flagger", &vs(0), "").await;
    assert_eq!(shared.code, StatusCode::OK);
    // Force moves ownership of .spec.http.
    let forced = apply(&server, "flagger", &vs(20), "&force=true").await;
    assert_eq!(forced.code, StatusCode::OK);
    let managers: Vec<(Value, Value)> = forced.body["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| {
            (
                m["manager"].clone(),
                m["fieldsV1"]["f:spec"].get("f:http").is_some().into(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [
            (json!("meshctl"), json!(false)),
            (json!("flagger"), json!(true))
        ]
    );
    let back = apply(&server, "meshctl", &vs(0), "").await;
    assert_eq!(back.code, StatusCode::CONFLICT);
}

#[tokio::test]
async fn apply_removes_fields_the_manager_stopped_applying() {
    let server = FakeApiServer::start().await.expect("start");
    let mut with_gateways = vs(0);
    with_gateways["spec"]["gateways"] = json!(["gw"]);
    apply(&server, "meshctl", &with_gateways, "").await;
    let r = apply(&server, "meshctl", &vs(0), "").await;
    assert_eq!(r.body["spec"].get("gateways"), None);
}

#[tokio::test]
async fn dry_run_does_not_persist() {
    let server = FakeApiServer::start().await.expect("start");
    let r = apply(&server, "meshctl", &vs(0), "&dryRun=All").await;
    assert_eq!(r.code, StatusCode::CREATED);
    let get = discounts(&server, Method::GET, NONE, &Value::Null).await;
    assert_eq!(get.code, StatusCode::NOT_FOUND);
    assert_eq!(
        get.body["message"],
        "virtualservices.networking.istio.io \"discounts\" not found"
    );
    assert_eq!(
        get.body["details"],
        json!({"name": "discounts", "group": "networking.istio.io", "kind": "virtualservices"})
    );
}

#[tokio::test]
async fn put_with_a_stale_resource_version_is_409() {
    let server = FakeApiServer::start().await.expect("start");
    let created = apply(&server, "meshctl", &vs(0), "").await;
    let mut obj = created.body.clone();
    obj["spec"]["http"][0]["route"][0]["weight"] = json!(90);
    obj["spec"]["http"][0]["route"][1]["weight"] = json!(10);
    let ok = discounts(&server, Method::PUT, JSON, &obj).await;
    assert_eq!(ok.code, StatusCode::OK);
    let stale = discounts(&server, Method::PUT, JSON, &obj).await;
    assert_eq!(stale.code, StatusCode::CONFLICT);
    assert_eq!(
        stale.body["message"],
        "Operation cannot be fulfilled on virtualservices.networking.istio.io \"discounts\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Without a resourceVersion a custom resource update is invalid.
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let missing = discounts(&server, Method::PUT, JSON, &obj).await;
    assert_eq!(missing.code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["reason"], "Invalid");
    // The updater (named from the User-Agent) now owns .spec.http.
    let get = discounts(&server, Method::GET, NONE, &Value::Null).await;
    let kubectl = get.body["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|m| m["manager"] == "kubectl")
        .cloned()
        .expect("kubectl entry");
    assert_eq!(kubectl["operation"], "Update");
    assert_eq!(kubectl["fieldsV1"], json!({"f:spec": {"f:http": {}}}));
}

#[tokio::test]
async fn merge_patch_merges_maps_and_replaces_lists() {
    let server = FakeApiServer::start().await.expect("start");
    apply(&server, "meshctl", &vs(0), "").await;
    let patch = json!({"metadata": {"annotations": {"a": "1"}}, "spec": {"hosts": ["x", "y"]}});
    let r = discounts(&server, Method::PATCH, MERGE, &patch).await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.body["spec"]["hosts"], json!(["x", "y"]));
    assert_eq!(r.body["metadata"]["labels"]["app"], "discounts");
    assert_eq!(r.body["metadata"]["annotations"]["a"], "1");
    // Custom resources do not support strategic merge patch.
    let smp = discounts(
        &server,
        Method::PATCH,
        "application/strategic-merge-patch+json",
        &patch,
    )
    .await;
    assert_eq!(smp.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn delete_honours_preconditions() {
    let server = FakeApiServer::start().await.expect("start");
    apply(&server, "meshctl", &vs(0), "").await;
    let wrong = json!({"preconditions": {"resourceVersion": "999"}});
    let r = discounts(&server, Method::DELETE, JSON, &wrong).await;
    assert_eq!(r.code, StatusCode::CONFLICT);
    let r = discounts(&server, Method::DELETE, JSON, &Value::Null).await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.body["kind"], "VirtualService");
    let r = discounts(&server, Method::DELETE, JSON, &Value::Null).await;
    assert_eq!(r.code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forbidden_reads_like_the_authorizer() {
    let server = FakeApiServer::start().await.expect("start");
    server.deny("list", "virtualservices");
    let r = call(&server, Method::GET, VS_PATH, "", &Value::Null).await;
    assert_eq!(r.code, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body["message"],
        "virtualservices.networking.istio.io is forbidden: User \"system:serviceaccount:ci:meshctl\" cannot list resource \"virtualservices\" in API group \"networking.istio.io\" in the namespace \"shop\""
    );
    assert_eq!(r.body["reason"], "Forbidden");
}

#[tokio::test]
async fn without_istio_crds_discovery_and_resources_are_404() {
    let server = FakeApiServer::start().await.expect("start");
    let groups = call(&server, Method::GET, "/apis", "", &Value::Null).await;
    assert!(
        groups.body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "networking.istio.io")
    );
    server.set_istio_installed(false);
    let groups = call(&server, Method::GET, "/apis", "", &Value::Null).await;
    assert!(
        !groups.body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "networking.istio.io")
    );
    for path in [
        "/apis/networking.istio.io",
        "/apis/networking.istio.io/v1",
        VS_PATH,
    ] {
        let r = call(&server, Method::GET, path, "", &Value::Null).await;
        assert_eq!(r.code, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.body["message"],
            "the server could not find the requested resource"
        );
    }
}

#[tokio::test]
async fn versions_convert_trivially() {
    let server = FakeApiServer::start().await.expect("start");
    apply(&server, "meshctl", &vs(0), "").await;
    let path = "/apis/networking.istio.io/v1alpha3/namespaces/shop/virtualservices/discounts";
    let r = call(&server, Method::GET, path, "", &Value::Null).await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.body["apiVersion"], "networking.istio.io/v1alpha3");
    assert_eq!(r.body["spec"]["hosts"], json!(["discounts"]));
}

#[tokio::test]
async fn list_carries_the_global_revision_and_honours_selectors() {
    let server = FakeApiServer::start().await.expect("start");
    apply(&server, "meshctl", &vs(0), "").await;
    let r = call(
        &server,
        Method::GET,
        &format!("{VS_PATH}?labelSelector=app%3Ddiscounts"),
        "",
        &Value::Null,
    )
    .await;
    assert_eq!(r.body["kind"], "VirtualServiceList");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        r.body["metadata"]["resourceVersion"],
        r.body["items"][0]["metadata"]["resourceVersion"]
    );
    let r = call(
        &server,
        Method::GET,
        &format!("{VS_PATH}?labelSelector=app%3Dother"),
        "",
        &Value::Null,
    )
    .await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn watch_replays_from_a_resource_version_then_streams() {
    let server = FakeApiServer::start().await.expect("start");
    let created = apply(&server, "meshctl", &vs(0), "").await;
    let rv = created.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    apply(&server, "meshctl", &vs(10), "").await;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let req = Request::get(format!(
        "{}{VS_PATH}?watch=true&resourceVersion={rv}&timeoutSeconds=30",
        server.url()
    ))
    .body(Full::default())
    .expect("request");
    let resp = client.request(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut buf = String::new();
    let mut lines: Vec<Value> = Vec::new();
    let mut next_line = async || -> Value {
        loop {
            if let Some(i) = buf.find('\n') {
                let line: String = buf.drain(..=i).collect();
                return serde_json::from_str(&line).expect("json line");
            }
            let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
                .await
                .expect("event within 10s")
                .expect("stream open")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    };
    lines.push(next_line().await);
    assert_eq!(lines[0]["type"], "MODIFIED");
    assert_eq!(
        lines[0]["object"]["spec"]["http"][0]["route"][1]["weight"],
        10
    );
    apply(&server, "meshctl", &vs(50), "").await;
    lines.push(next_line().await);
    assert_eq!(lines[1]["type"], "MODIFIED");
    assert_eq!(
        lines[1]["object"]["spec"]["http"][0]["route"][1]["weight"],
        50
    );
    discounts(&server, Method::DELETE, JSON, &Value::Null).await;
    lines.push(next_line().await);
    assert_eq!(lines[2]["type"], "DELETED");
}

#[tokio::test]
async fn watch_from_a_compacted_revision_gets_410_expired() {
    let server = FakeApiServer::start().await.expect("start");
    apply(&server, "meshctl", &vs(0), "").await;
    apply(&server, "meshctl", &vs(10), "").await;
    server.compact();
    let r = call(
        &server,
        Method::GET,
        &format!("{VS_PATH}?watch=1&resourceVersion=1"),
        "",
        &Value::Null,
    )
    .await;
    // The stream's one event is an ERROR carrying a 410 Status.
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.body["type"], "ERROR");
    assert_eq!(r.body["object"]["code"], 410);
    assert_eq!(r.body["object"]["reason"], "Expired");
}

#[tokio::test]
async fn identity_mismatches_are_400() {
    let server = FakeApiServer::start().await.expect("start");
    let mut obj = vs(0);
    obj["metadata"]["name"] = json!("other");
    let r = apply(&server, "meshctl", &obj, "").await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "the name of the object (other) does not match the name on the URL (discounts)"
    );
    let r = discounts(&server, Method::PATCH, APPLY, &vs(0)).await;
    assert_eq!(
        r.code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "apply needs a fieldManager"
    );
    assert_eq!(
        r.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(
        r.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
}

/// A server validating against Istio's CRDs, or `None` (after saying so)
/// when they are not available (`MESHCTL_REQUIRE_CRDS=1` makes that a failure).
async fn with_crds() -> Option<FakeApiServer> {
    let crds = crate::schema::CrdSchemas::istio()?;
    let server = FakeApiServer::start().await.expect("start");
    server.set_crd_schemas(crds);
    Some(server)
}

#[tokio::test]
async fn type_errors_are_422_invalid_with_causes() {
    let Some(server) = with_crds().await else {
        return;
    };
    let mut obj = vs(0);
    obj["metadata"]["name"] = json!("discounts-bad-weight");
    obj["spec"]["http"][0]["route"][1]["weight"] = json!("string");
    let r = call(
        &server,
        Method::PATCH,
        &format!("{VS_PATH}/discounts-bad-weight?fieldManager=meshctl"),
        APPLY,
        &obj,
    )
    .await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["message"],
        "VirtualService.networking.istio.io \"discounts-bad-weight\" is invalid: spec.http[0].route[1].weight: Invalid value: \"string\": spec.http[0].route[1].weight in body must be of type integer: \"string\""
    );
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(
        r.body["details"]["causes"],
        json!([{
            "reason": "FieldValueTypeInvalid",
            "message": "Invalid value: \"string\": spec.http[0].route[1].weight in body must be of type integer: \"string\"",
            "field": "spec.http[0].route[1].weight"
        }])
    );
}

#[tokio::test]
async fn unknown_fields_follow_field_validation() {
    let Some(server) = with_crds().await else {
        return;
    };
    let mut obj = vs(0);
    obj["spec"]["http"][0]["route"][1]["wieght"] = json!(5);
    let strict = apply(&server, "meshctl", &obj, "&fieldValidation=Strict").await;
    assert_eq!(strict.code, StatusCode::BAD_REQUEST);
    assert_eq!(
        strict.body["message"],
        "VirtualService in version \"v1\" cannot be handled as a VirtualService: strict decoding error: unknown field \"spec.http[0].route[1].wieght\""
    );
    let warn = apply(&server, "meshctl", &obj, "&fieldValidation=Warn").await;
    assert_eq!(warn.code, StatusCode::CREATED);
    assert_eq!(
        warn.headers
            .get("warning")
            .map(|v| v.to_str().unwrap_or_default().to_owned()),
        Some("299 - \"unknown field \\\"spec.http[0].route[1].wieght\\\"\"".to_owned())
    );
    assert_eq!(warn.body["spec"]["http"][0]["route"][1].get("wieght"), None);
    obj["spec"]["http"][0]["route"][0]["wieght"] = json!(1);
    let ignore = apply(&server, "meshctl", &obj, "&fieldValidation=Ignore").await;
    assert_eq!(ignore.code, StatusCode::OK);
    assert!(ignore.headers.get("warning").is_none());
    assert_eq!(
        ignore.body["spec"]["http"][0]["route"][0].get("wieght"),
        None
    );
}

#[tokio::test]
async fn required_and_enum_errors_name_their_fields() {
    let Some(server) = with_crds().await else {
        return;
    };
    let dr = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "discounts"},
        "spec": {"host": "discounts", "trafficPolicy": {"tls": {"mode": "SOMETIMES"}},
                 "subsets": [{"labels": {"version": "v1"}}]}
    });
    let r = call(
        &server,
        Method::PATCH,
        "/apis/networking.istio.io/v1/namespaces/shop/destinationrules/discounts?fieldManager=meshctl",
        APPLY,
        &dr,
    )
    .await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let causes = r.body["details"]["causes"].as_array().expect("causes");
    let by_field = |f: &str| causes.iter().find(|c| c["field"] == f).cloned();
    let mode = by_field("spec.trafficPolicy.tls.mode").expect("enum cause");
    assert_eq!(mode["reason"], "FieldValueNotSupported");
    let name = by_field("spec.subsets[0].name").expect("required cause");
    assert_eq!(name["reason"], "FieldValueRequired");
}

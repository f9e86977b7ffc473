//! The HTTP layer: routing, verbs, query parameters, watch streams.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use crate::registry::{self, ResourceType};
use crate::status::ApiError;
use crate::store::{Key, Store, Stored, Writer};
use crate::{FieldValidation, RecordedRequest};

/// The response body type.
pub type Body = BoxBody<Bytes, Infallible>;

/// State shared by the server task and the test's handle.
pub struct Shared {
    /// Objects, knobs and the request log.
    pub state: Mutex<State>,
    /// Bumped on every change so watches wake up.
    pub changed: tokio::sync::watch::Sender<u64>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// Mutable state behind the lock.
pub struct State {
    /// The objects.
    pub store: Store,
    /// The Istio CRD versions served (empty: the CRDs are not installed).
    pub istio: Vec<String>,
    /// `(verb, plural)` pairs answered with 403.
    pub denied: BTreeSet<(String, String)>,
    /// The authenticated user named in 403 messages.
    pub user: String,
    /// Every request received.
    pub requests: Vec<RecordedRequest>,
    /// Plurals whose next `update` races with another writer.
    pub races: Vec<String>,
    /// Custom resources are validated against these CRD schemas.
    pub schemas: Option<Arc<crate::schema::CrdSchemas>>,
}

// === impl Shared ===

impl Shared {
    /// Locks the state (a poisoned lock means a test already panicked).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Wakes watches after a change.
    pub fn notify(&self, rv: u64) {
        self.changed.send_replace(rv);
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: ApiError) -> Response<Body> {
    json_response(e.code, &e.body)
}

/// Query parameters the fake understands.
#[derive(Debug, Default)]
struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let params = q
            .unwrap_or_default()
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        Self { params }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed resource path.
struct Target {
    rt: &'static ResourceType,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
}

enum Route {
    Discovery(Option<Value>),
    Resource(Target),
    NotFound,
}

fn route(path: &str, state: &State, url: &str) -> Route {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => {
            return Route::Discovery(Some(json!({
                "major": "1", "minor": "36", "gitVersion": "v1.36.0-fake", "platform": "linux/amd64"
            })));
        }
        ["api"] => return Route::Discovery(Some(registry::core_versions(url))),
        ["apis"] => return Route::Discovery(Some(registry::group_list(&state.istio))),
        ["apis", g] => return Route::Discovery(registry::group(g, &state.istio)),
        ["api", v] => return Route::Discovery(registry::resource_list("", v, &state.istio)),
        ["apis", g, v] => return Route::Discovery(registry::resource_list(g, v, &state.istio)),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        [plural] => (None, *plural, None),
        _ => return Route::NotFound,
    };
    if group == registry::ISTIO_GROUP && !registry::serves(group, version, &state.istio) {
        return Route::NotFound;
    }
    match registry::lookup(group, version, plural) {
        Some(rt) => Route::Resource(Target {
            rt,
            version: version.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        }),
        None => Route::NotFound,
    }
}

/// Serves one request, recording it with its response status.
pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let slot = AtomicUsize::new(usize::MAX);
    let resp = serve(Arc::clone(&shared), req, &slot).await;
    let idx = slot.load(Ordering::SeqCst);
    if let Some(r) = shared.lock().requests.get_mut(idx) {
        r.status = resp.status().as_u16();
    }
    resp
}

async fn serve(shared: Arc<Shared>, req: Request<Incoming>, slot: &AtomicUsize) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(ApiError::bad_request(&format!("reading body: {e}"))),
    };
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_owned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    let is_watch = query.flag("watch");
    let routed = {
        let state = shared.lock();
        route(&path, &state, &shared.url)
    };
    let target = match routed {
        Route::Resource(t) => t,
        // Discovery documents and unknown paths: recorded as `get`s.
        other => {
            record(
                &shared,
                slot,
                &parts.method,
                "get",
                None,
                &path,
                &query,
                &content_type,
            );
            return match other {
                Route::Discovery(Some(d)) if parts.method == Method::GET => {
                    json_response(StatusCode::OK, &d)
                }
                _ => error_response(ApiError::no_route()),
            };
        }
    };
    let verb = match (&parts.method, target.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if is_watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unsupported",
    };
    record(
        &shared,
        slot,
        &parts.method,
        verb,
        Some(&target),
        &path,
        &query,
        &content_type,
    );
    {
        let state = shared.lock();
        if state
            .denied
            .contains(&(verb.to_owned(), target.rt.plural.to_owned()))
            || state
                .denied
                .contains(&("*".to_owned(), target.rt.plural.to_owned()))
        {
            return error_response(ApiError::forbidden(
                target.rt,
                target.name.as_deref(),
                &state.user,
                verb,
                target.namespace.as_deref(),
            ));
        }
    }
    let manager = query
        .get("fieldManager")
        .map(str::to_owned)
        .unwrap_or_else(|| user_agent.split('/').next().unwrap_or("unknown").to_owned());
    let dry_run = query.get("dryRun") == Some("All");
    let validation = match query.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return error_response(ApiError::bad_request(&format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
            )));
        }
    };
    let ctx = WriteCtx {
        manager_given: query.get("fieldManager").is_some_and(|m| !m.is_empty()),
        manager,
        dry_run,
        validation,
    };
    match verb {
        "get" => get(&shared, &target),
        "list" => list(&shared, &target, &query),
        "watch" => watch(shared, target, &query),
        "create" => write(&shared, &target, Write::Create, &body, &ctx),
        "update" => write(&shared, &target, Write::Update, &body, &ctx),
        "patch" => {
            let kind = content_type.split(';').next().unwrap_or_default().trim();
            match kind {
                "application/apply-patch+yaml" => write(
                    &shared,
                    &target,
                    Write::Apply {
                        force: query.flag("force"),
                    },
                    &body,
                    &ctx,
                ),
                "application/merge-patch+json" => {
                    write(&shared, &target, Write::Merge, &body, &ctx)
                }
                other => error_response(ApiError::unsupported_media_type(other)),
            }
        }
        "delete" => delete(&shared, &target, &body, dry_run),
        other => error_response(ApiError::method_not_supported(target.rt, other)),
    }
}

#[allow(clippy::too_many_arguments, reason = "one request's parts")]
fn record(
    shared: &Shared,
    slot: &AtomicUsize,
    method: &Method,
    verb: &str,
    target: Option<&Target>,
    path: &str,
    query: &Query,
    content_type: &str,
) {
    let mut state = shared.lock();
    slot.store(state.requests.len(), Ordering::SeqCst);
    state.requests.push(RecordedRequest {
        status: 0,
        method: method.to_string(),
        verb: verb.to_owned(),
        group: target.map(|t| t.rt.group.to_owned()),
        version: target.map(|t| t.version.clone()),
        resource: target.map(|t| t.rt.plural.to_owned()),
        namespace: target.and_then(|t| t.namespace.clone()),
        name: target.and_then(|t| t.name.clone()),
        path: path.to_owned(),
        query: query
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&"),
        content_type: content_type.to_owned(),
    });
}

fn key(t: &Target) -> Key {
    Key {
        group: t.rt.group,
        plural: t.rt.plural,
        namespace: t.namespace.clone().unwrap_or_default(),
        name: t.name.clone().unwrap_or_default(),
    }
}

fn render(t: &Target, s: &Stored) -> Value {
    s.render(t.rt.kind, &t.rt.api_version(&t.version))
}

fn get(shared: &Shared, t: &Target) -> Response<Body> {
    let state = shared.lock();
    match state.store.get(&key(t)) {
        Some(s) => json_response(StatusCode::OK, &render(t, s)),
        None => error_response(ApiError::not_found(
            t.rt,
            t.name.as_deref().unwrap_or_default(),
        )),
    }
}

/// A parsed label selector (`a=b,c!=d,e,!f`).
#[derive(Debug, Default)]
struct Selector {
    terms: Vec<(String, Option<String>, bool)>,
}

impl Selector {
    fn parse(s: Option<&str>) -> Self {
        let mut terms = Vec::new();
        for term in s.unwrap_or_default().split(',').filter(|t| !t.is_empty()) {
            if let Some((k, v)) = term.split_once("!=") {
                terms.push((k.trim().to_owned(), Some(v.trim().to_owned()), false));
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                terms.push((k.trim().to_owned(), Some(v.trim().to_owned()), true));
            } else if let Some(k) = term.strip_prefix('!') {
                terms.push((k.trim().to_owned(), None, false));
            } else {
                terms.push((term.trim().to_owned(), None, true));
            }
        }
        Self { terms }
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.terms.iter().all(|(k, v, positive)| {
            let actual = labels.get(k).and_then(Value::as_str);
            let hit = match v {
                Some(v) => actual == Some(v.as_str()),
                None => actual.is_some(),
            };
            hit == *positive
        })
    }
}

fn field_matches(query: &Query, obj: &Value) -> Result<bool, ApiError> {
    let mut ok = true;
    for term in query
        .get("fieldSelector")
        .unwrap_or_default()
        .split(',')
        .filter(|t| !t.is_empty())
    {
        let (field, value, positive) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (f, v, true)
        } else {
            return Err(ApiError::bad_request(&format!(
                "invalid selector: {term:?}"
            )));
        };
        let actual = match field {
            "metadata.name" => obj["metadata"]["name"].as_str(),
            "metadata.namespace" => obj["metadata"]["namespace"].as_str(),
            other => {
                return Err(ApiError::bad_request(&format!(
                    "field label not supported: {other}"
                )));
            }
        };
        ok &= (actual == Some(value)) == positive;
    }
    Ok(ok)
}

fn list(shared: &Shared, t: &Target, query: &Query) -> Response<Body> {
    let state = shared.lock();
    let selector = Selector::parse(query.get("labelSelector"));
    let mut items = Vec::new();
    for (_, s) in state.store.list(t.rt, t.namespace.as_deref()) {
        match field_matches(query, &s.obj) {
            Ok(true) if selector.matches(&s.obj) => items.push(render(t, s)),
            Ok(_) => {}
            Err(e) => return error_response(e),
        }
    }
    let after = query.get("continue").unwrap_or_default();
    if !after.is_empty() {
        items.retain(|o| {
            let id = format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            id.as_str() > after
        });
    }
    let mut metadata = json!({"resourceVersion": state.store.revision().to_string()});
    if let Some(limit) = query.get("limit").and_then(|l| l.parse::<usize>().ok())
        && limit > 0
        && items.len() > limit
    {
        items.truncate(limit);
        let last = &items[limit - 1]["metadata"];
        metadata["continue"] = json!(format!(
            "{}/{}",
            last["namespace"].as_str().unwrap_or_default(),
            last["name"].as_str().unwrap_or_default()
        ));
    }
    json_response(
        StatusCode::OK,
        &json!({
            "apiVersion": t.rt.api_version(&t.version),
            "kind": format!("{}List", t.rt.kind),
            "metadata": metadata,
            "items": items,
        }),
    )
}

fn watch(shared: Arc<Shared>, t: Target, query: &Query) -> Response<Body> {
    let selector = Selector::parse(query.get("labelSelector"));
    let fields = Query {
        params: query
            .params
            .iter()
            .filter(|(k, _)| k == "fieldSelector")
            .cloned()
            .collect(),
    };
    let from = query.get("resourceVersion").unwrap_or_default().to_owned();
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut changed = shared.changed.subscribe();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let line = |kind: &str, obj: Value| {
            Bytes::from(format!("{}\n", json!({"type": kind, "object": obj})))
        };
        let matches = |s: &Stored| {
            selector.matches(&s.obj) && field_matches(&fields, &s.obj).unwrap_or(false)
        };
        let mut last: u64;
        let initial: Vec<Bytes> = {
            let state = shared.lock();
            let mut out = Vec::new();
            if from.is_empty() || from == "0" {
                for (_, s) in state.store.list(t.rt, t.namespace.as_deref()) {
                    if matches(s) {
                        out.push(line("ADDED", render(&t, s)));
                    }
                }
                last = state.store.revision();
            } else {
                match from.parse::<u64>() {
                    Ok(rv) if rv >= state.store.compacted => last = rv,
                    _ => {
                        let e = ApiError::gone(&from);
                        out.push(line("ERROR", e.body));
                        last = u64::MAX;
                    }
                }
            }
            out
        };
        for b in initial {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        if last == u64::MAX {
            return;
        }
        loop {
            changed.borrow_and_update();
            let batch: Vec<(u64, Bytes)> = {
                let state = shared.lock();
                state
                    .store
                    .log
                    .iter()
                    .filter(|c| {
                        c.rv > last
                            && c.key.group == t.rt.group
                            && c.key.plural == t.rt.plural
                            && t.namespace
                                .as_deref()
                                .is_none_or(|ns| c.key.namespace == ns)
                            && matches(&c.object)
                    })
                    .map(|c| (c.rv, line(c.kind, render(&t, &c.object))))
                    .collect()
            };
            for (rv, b) in batch {
                last = rv;
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            // Later events that did not match still advance the position.
            last = last.max(*changed.borrow());
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                () = tokio::time::sleep_until(deadline) => return,
                () = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

enum Write {
    Create,
    Update,
    Merge,
    Apply { force: bool },
}

struct WriteCtx {
    manager: String,
    manager_given: bool,
    dry_run: bool,
    validation: FieldValidation,
}

fn write(shared: &Shared, t: &Target, op: Write, body: &[u8], ctx: &WriteCtx) -> Response<Body> {
    let parsed: Result<Value, String> = match op {
        Write::Apply { .. } => serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string()),
        _ => serde_json::from_slice::<Value>(body).map_err(|e| e.to_string()),
    };
    let mut obj = match parsed {
        Ok(v) if v.is_object() => v,
        Ok(_) => {
            return error_response(ApiError::bad_request("the request body must be an object"));
        }
        Err(e) => {
            return error_response(ApiError::bad_request(&format!(
                "error decoding request body: {e}"
            )));
        }
    };
    let api_version = t.rt.api_version(&t.version);
    let namespace = t.namespace.clone().unwrap_or_default();
    if t.namespace.is_none() {
        return error_response(ApiError::method_not_supported(
            t.rt,
            "write without a namespace",
        ));
    }
    // Identity checks a real server makes before anything else.
    if !matches!(op, Write::Merge) {
        if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
            && av != api_version
        {
            return error_response(ApiError::bad_request(&format!(
                "the API version in the data ({av}) does not match the expected API version ({api_version})"
            )));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != t.rt.kind
        {
            return error_response(ApiError::bad_request(&format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                t.rt.kind
            )));
        }
        if let Some(ns) = obj["metadata"]["namespace"].as_str()
            && ns != namespace
        {
            return error_response(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let body_name = obj["metadata"]["name"].as_str().map(str::to_owned);
    let name = match (&op, &t.name, body_name) {
        (Write::Create, _, Some(n)) if !n.is_empty() => n,
        (Write::Create, _, _) => match obj["metadata"]["generateName"].as_str() {
            Some(prefix) => {
                let n = shared.lock().store.revision() + 1;
                format!("{prefix}{:05x}", n * 7919 % 0xfffff)
            }
            None => {
                return error_response(ApiError::invalid(
                    t.rt,
                    "",
                    &[crate::status::Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
        },
        (_, Some(url_name), Some(n)) if &n != url_name && !matches!(op, Write::Merge) => {
            return error_response(ApiError::bad_request(&format!(
                "the name of the object ({n}) does not match the name on the URL ({url_name})"
            )));
        }
        (_, Some(url_name), _) => url_name.clone(),
        (_, None, _) => return error_response(ApiError::method_not_supported(t.rt, "write")),
    };
    if let Some(msg) = crate::validation::check_name(&name) {
        return error_response(ApiError::invalid(
            t.rt,
            &name,
            &[crate::status::Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {name:?}: {msg}"),
                field: "metadata.name".into(),
            }],
        ));
    }
    if matches!(op, Write::Apply { .. }) && !ctx.manager_given {
        return error_response(ApiError::apply_needs_field_manager());
    }
    let key = Key {
        group: t.rt.group,
        plural: t.rt.plural,
        namespace,
        name: name.clone(),
    };
    let mut state = shared.lock();
    if let Write::Merge = op {
        let Some(current) = state.store.get(&key) else {
            return error_response(ApiError::not_found(t.rt, &name));
        };
        let mut merged = render(t, current);
        if let Some(m) = merged["metadata"].as_object_mut() {
            m.remove("managedFields");
            // A merge patch is unconditional unless it carries a resourceVersion.
            m.remove("resourceVersion");
        }
        json_patch::merge(&mut merged, &obj);
        obj = merged;
    }
    let mut warnings = Vec::new();
    if t.rt.custom
        && let Some(schemas) = state.schemas.clone()
    {
        match crate::validation::check_custom(
            &schemas,
            t.rt,
            &t.version,
            &name,
            &mut obj,
            ctx.validation,
        ) {
            Ok(w) => warnings = w,
            Err(e) => return error_response(e),
        }
    }
    if matches!(op, Write::Update)
        && let Some(i) = state.races.iter().position(|p| p == t.rt.plural)
    {
        // Another writer gets in between this client's read and its write.
        state.races.remove(i);
        let race = state
            .store
            .edit(t.rt, key.clone(), "racing-controller", |o| {
                let n = o["metadata"]["annotations"]["example.com/raced"]
                    .as_str()
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0);
                o["metadata"]["annotations"]["example.com/raced"] = json!((n + 1).to_string());
            });
        if let Err(e) = race {
            return error_response(e);
        }
    }
    let by = Writer {
        manager: &ctx.manager,
        api_version: &api_version,
        dry_run: ctx.dry_run,
    };
    let result = match op {
        Write::Create => state.store.create(t.rt, key, obj, by),
        Write::Update => state.store.update(t.rt, key, obj, by, true),
        Write::Merge => state.store.update(t.rt, key, obj, by, false),
        Write::Apply { force } => state.store.apply(t.rt, key, obj, by, force),
    };
    let rv = state.store.revision();
    drop(state);
    shared.notify(rv);
    match result {
        Ok(w) => {
            let mut object = render(t, &w.object);
            if ctx.dry_run
                && w.created
                && let Some(m) = object["metadata"].as_object_mut()
            {
                m.remove("resourceVersion");
            }
            let code = if w.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut resp = json_response(code, &object);
            for w in warnings {
                if let Ok(v) = HeaderValue::from_str(&format!("299 - {w:?}")) {
                    resp.headers_mut().append(header::WARNING, v);
                }
            }
            resp
        }
        Err(e) => error_response(e),
    }
}

fn delete(shared: &Shared, t: &Target, body: &[u8], dry_run: bool) -> Response<Body> {
    let options: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return error_response(ApiError::bad_request(&format!(
                    "error decoding DeleteOptions: {e}"
                )));
            }
        }
    };
    let precondition = options["preconditions"]["resourceVersion"].as_str();
    let mut state = shared.lock();
    let result = state.store.delete(t.rt, &key(t), precondition, dry_run);
    let rv = state.store.revision();
    drop(state);
    shared.notify(rv);
    match result {
        // Custom resources answer with the deleted object, built-ins with a Status.
        Ok(s) if t.rt.custom => json_response(StatusCode::OK, &render(t, &s)),
        Ok(s) => {
            let mut details =
                json!({"name": t.name, "kind": t.rt.plural, "uid": s.obj["metadata"]["uid"]});
            if !t.rt.group.is_empty() {
                details["group"] = json!(t.rt.group);
            }
            json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            )
        }
        Err(e) => error_response(e),
    }
}

//! `metav1.Status` bodies, worded as kube-apiserver words them (see
//! `REAL-APISERVER.md` and k8s.io/apimachinery `pkg/api/errors`).

use http::StatusCode;
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// An error response: HTTP status plus a `metav1.Status` body.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status.
    pub code: StatusCode,
    /// The `metav1.Status` JSON.
    pub body: Value,
}

/// One `details.causes[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldManagerConflict`, ...
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// Field path (`spec.http[0].route`).
    pub field: String,
}

/// A status about object `name`: `<resource> "<name>" <what>`.
fn about(rt: &ResourceType, name: &str, code: StatusCode, reason: &str, what: &str) -> ApiError {
    status(
        code,
        reason,
        &format!("{} {name:?} {what}", rt.qualified()),
        Some(details(rt, Some(name))),
    )
}

fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> ApiError {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    ApiError { code, body }
}

fn details(rt: &ResourceType, name: Option<&str>) -> Value {
    let mut d = json!({"kind": rt.plural});
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    if let Some(name) = name {
        d["name"] = json!(name);
    }
    d
}

fn causes_json(causes: &[Cause]) -> Value {
    causes
        .iter()
        .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
        .collect()
}

// === impl ApiError ===

impl ApiError {
    /// 404 for a path nothing serves (e.g. a CRD that is not installed).
    pub fn no_route() -> Self {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    /// 404 `virtualservices.networking.istio.io "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        about(rt, name, StatusCode::NOT_FOUND, "NotFound", "not found")
    }

    /// 409 `... already exists` on create.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        about(
            rt,
            name,
            StatusCode::CONFLICT,
            "AlreadyExists",
            "already exists",
        )
    }

    /// 409 for a stale `resourceVersion` on update.
    pub fn modified(rt: &ResourceType, name: &str) -> Self {
        status(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified()
            ),
            Some(details(rt, Some(name))),
        )
    }

    /// 409 for a failed delete precondition.
    pub fn precondition(rt: &ResourceType, name: &str, wanted: &str, actual: &str) -> Self {
        status(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} {name:?}: the ResourceVersion in the precondition ({wanted}) does not match the ResourceVersion in record ({actual}). The object might have been modified",
                rt.qualified()
            ),
            Some(details(rt, Some(name))),
        )
    }

    /// 409 server-side apply conflict; `conflicts` are (manager label, field path).
    pub fn apply_conflict(conflicts: &[(String, String)]) -> Self {
        let causes: Vec<Cause> = conflicts
            .iter()
            .map(|(manager, field)| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {manager}"),
                field: field.clone(),
            })
            .collect();
        let message = if let [(manager, field)] = conflicts {
            format!("Apply failed with 1 conflict: conflict with {manager}: {field}")
        } else {
            let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
            managers.sort();
            managers.dedup();
            let mut lines = Vec::new();
            for m in managers {
                lines.push(format!("conflicts with {m}:"));
                for (_, f) in conflicts.iter().filter(|(cm, _)| cm == m) {
                    lines.push(format!("- {f}"));
                }
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        };
        status(
            StatusCode::CONFLICT,
            "Conflict",
            &message,
            Some(json!({"causes": causes_json(&causes)})),
        )
    }

    /// 422 `VirtualService.networking.istio.io "x" is invalid: ...`.
    pub fn invalid(rt: &ResourceType, name: &str, causes: &[Cause]) -> Self {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let qualified_kind = if rt.group.is_empty() {
            rt.kind.to_owned()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        let mut d = json!({"kind": rt.kind, "name": name, "causes": causes_json(causes)});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            &format!("{qualified_kind} {name:?} is invalid: {joined}"),
            Some(d),
        )
    }

    /// 422 for an apply patch without `fieldManager`.
    pub fn apply_needs_field_manager() -> Self {
        status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            Some(json!({
                "group": "meta.k8s.io", "kind": "PatchOptions",
                "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]
            })),
        )
    }

    /// 400 with a free-form message (strict decoding, bad patch bodies, ...).
    pub fn bad_request(message: &str) -> Self {
        status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
    }

    /// 403 `User "u" cannot VERB resource "R" in API group "G" in the namespace "NS"`.
    pub fn forbidden(
        rt: &ResourceType,
        name: Option<&str>,
        user: &str,
        verb: &str,
        namespace: Option<&str>,
    ) -> Self {
        let subject = match name {
            Some(n) => format!("{} {n:?}", rt.qualified()),
            None => rt.qualified(),
        };
        let scope = match namespace {
            Some(ns) => format!(" in the namespace {ns:?}"),
            None => " at the cluster scope".to_owned(),
        };
        status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "{subject} is forbidden: User {user:?} cannot {verb} resource {:?} in API group {:?}{scope}",
                rt.plural, rt.group
            ),
            Some(details(rt, name)),
        )
    }

    /// 405 for a verb the fake does not implement.
    pub fn method_not_supported(rt: &ResourceType, verb: &str) -> Self {
        status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "{verb} is not supported on resources of kind {:?}",
                rt.qualified()
            ),
            Some(details(rt, None)),
        )
    }

    /// 415 for a patch content type the resource does not accept.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
            None,
        )
    }

    /// 410 Gone: the requested watch resourceVersion has been compacted.
    pub fn gone(rv: &str) -> Self {
        status(
            StatusCode::GONE,
            "Expired",
            &format!("too old resource version: {rv}"),
            None,
        )
    }
}

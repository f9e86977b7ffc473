//! Checks a real API server makes on writes: object names, and custom
//! resources against their CRD's OpenAPI schema (422 Invalid for type,
//! required, enum and range errors; unknown fields by `fieldValidation`).

use serde_json::Value;

use crate::FieldValidation;
use crate::registry::ResourceType;
use crate::schema::{CrdSchemas, FieldErrorKind};
use crate::status::{ApiError, Cause};

/// Checks `metadata.name` is a DNS-1123 subdomain; `Some(reason)` when not.
pub fn check_name(name: &str) -> Option<&'static str> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends_ok = name
        .bytes()
        .next()
        .zip(name.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if name.len() > 253 {
        Some("must be no more than 253 characters")
    } else if !ok_chars || !ends_ok {
        Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    } else {
        None
    }
}

/// Removes the value at a schema path (`spec.http[0].route[1].wieght`).
fn remove_path(obj: &mut Value, path: &str) {
    let mut segs: Vec<Seg> = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            segs.push(Seg::Key(name.to_owned()));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse::<usize>() {
                segs.push(Seg::Index(i));
            }
        }
    }
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let mut cur = obj;
    for s in parents {
        let next = match s {
            Seg::Key(k) => cur.get_mut(k.as_str()),
            Seg::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let (Seg::Key(k), Some(map)) = (last, cur.as_object_mut()) {
        map.remove(k);
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

/// Validates a custom resource write against its CRD schema. Unknown
/// fields: `Strict` → 400, `Warn` → dropped with a warning (returned),
/// `Ignore` → dropped. Other violations → 422 Invalid, one cause per field.
pub fn check_custom(
    schemas: &CrdSchemas,
    rt: &ResourceType,
    version: &str,
    name: &str,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let errors = schemas.validate(rt.group, version, rt.kind, obj);
    let (unknown, invalid): (Vec<_>, Vec<_>) = errors
        .into_iter()
        .partition(|e| e.kind == FieldErrorKind::Unknown);
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        match mode {
            FieldValidation::Strict => {
                let fields: Vec<String> = unknown
                    .iter()
                    .map(|e| format!("unknown field {:?}", e.field))
                    .collect();
                return Err(ApiError::bad_request(&format!(
                    "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                    fields.join(", "),
                    kind = rt.kind,
                )));
            }
            FieldValidation::Warn | FieldValidation::Ignore => {
                for e in &unknown {
                    remove_path(obj, &e.field);
                    if mode == FieldValidation::Warn {
                        warnings.push(format!("unknown field {:?}", e.field));
                    }
                }
            }
        }
    }
    if !invalid.is_empty() {
        let causes: Vec<Cause> = invalid
            .iter()
            .map(|e| {
                let full = e.to_string();
                let message = full
                    .strip_prefix(&format!("{}: ", e.field))
                    .unwrap_or(&full)
                    .to_owned();
                Cause {
                    reason: match e.kind {
                        FieldErrorKind::Type => "FieldValueTypeInvalid",
                        FieldErrorKind::Required => "FieldValueRequired",
                        FieldErrorKind::Enum => "FieldValueNotSupported",
                        _ => "FieldValueInvalid",
                    }
                    .to_owned(),
                    message,
                    field: e.field.clone(),
                }
            })
            .collect();
        return Err(ApiError::invalid(rt, name, &causes));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_must_be_dns_subdomains() {
        assert_eq!(check_name("discounts-v2.x"), None);
        assert!(check_name("Discounts").is_some());
        assert!(check_name("-a").is_some());
        assert!(check_name("").is_some());
    }

    #[test]
    fn remove_path_follows_indexes() {
        let mut obj =
            json!({"spec": {"http": [{"route": [{"weight": 1}, {"wieght": 2, "weight": 3}]}]}});
        remove_path(&mut obj, "spec.http[0].route[1].wieght");
        assert_eq!(
            obj,
            json!({"spec": {"http": [{"route": [{"weight": 1}, {"weight": 3}]}]}})
        );
    }
}

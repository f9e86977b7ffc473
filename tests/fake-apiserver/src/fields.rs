//! Field ownership for server-side apply, after structured-merge-diff as the
//! API server runs it for CRDs whose schemas declare no list types: maps are
//! granular (one owner per key), every list is atomic (owned and replaced as a
//! whole), scalars are leaves. `metadata` contributes only `labels` and
//! `annotations` keys; `apiVersion`, `kind`, `status` are never owned.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// A field path (`["spec", "http"]`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(pub Vec<String>);

/// A set of owned fields.
pub type FieldSet = BTreeSet<FieldPath>;

// === impl FieldPath ===

impl FieldPath {
    /// Whether one path is a prefix of the other (they overlap).
    pub fn overlaps(&self, other: &Self) -> bool {
        let n = self.0.len().min(other.0.len());
        self.0[..n] == other.0[..n]
    }

    /// The value at this path.
    pub fn get<'a>(&self, obj: &'a Value) -> Option<&'a Value> {
        let mut cur = obj;
        for seg in &self.0 {
            cur = cur.as_object()?.get(seg)?;
        }
        Some(cur)
    }

    /// Sets the value at this path, creating intermediate maps.
    pub fn set(&self, obj: &mut Value, value: Value) {
        let mut cur = obj;
        let (last, parents) = match self.0.split_last() {
            Some(x) => x,
            None => return,
        };
        for seg in parents {
            if !cur.get(seg).is_some_and(Value::is_object)
                && let Some(map) = cur.as_object_mut()
            {
                map.insert(seg.clone(), Value::Object(Map::new()));
            }
            match cur.get_mut(seg) {
                Some(next) => cur = next,
                None => return,
            }
        }
        if let Some(map) = cur.as_object_mut() {
            map.insert(last.clone(), value);
        }
    }

    /// Removes the value at this path and prunes maps the removal emptied.
    pub fn remove(&self, obj: &mut Value) {
        fn go(cur: &mut Value, segs: &[String]) -> bool {
            let Some(map) = cur.as_object_mut() else {
                return false;
            };
            match segs {
                [] => false,
                [last] => {
                    map.remove(last);
                    map.is_empty()
                }
                [first, rest @ ..] => {
                    let emptied = map.get_mut(first).is_some_and(|c| go(c, rest));
                    if emptied {
                        map.remove(first);
                    }
                    map.is_empty()
                }
            }
        }
        go(obj, &self.0);
    }

    /// `FieldsV1` rendering: `{"f:spec":{"f:http":{}}}` merged into `into`.
    fn render_into(&self, into: &mut Map<String, Value>) {
        let mut cur = into;
        for seg in &self.0 {
            let entry = cur
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
            match entry.as_object_mut() {
                Some(m) => cur = m,
                None => return,
            }
        }
    }
}

impl fmt::Display for FieldPath {
    /// structured-merge-diff's path form: `.spec.http`, `.metadata.annotations.meshctl.io/rollout`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for seg in &self.0 {
            write!(f, ".{seg}")?;
        }
        Ok(())
    }
}

/// The fields an object sets (its apply configuration's field set).
pub fn field_set(obj: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, c) in map {
                    path.push(k.clone());
                    walk(c, path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(FieldPath(path.clone()));
            }
        }
    }
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for sub in ["labels", "annotations"] {
                    if let Some(Value::Object(m)) = v.get(sub) {
                        for key in m.keys() {
                            out.insert(FieldPath(vec!["metadata".into(), sub.into(), key.clone()]));
                        }
                    }
                }
            }
            _ => {
                let mut path = vec![k.clone()];
                walk(v, &mut path, &mut out);
            }
        }
    }
    out
}

/// Renders a field set as `FieldsV1` JSON.
pub fn render(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in set {
        p.render_into(&mut root);
    }
    Value::Object(root)
}

/// Whether `p` overlaps any path of `set`.
pub fn overlaps_any(p: &FieldPath, set: &FieldSet) -> bool {
    set.iter().any(|q| q.overlaps(p))
}

/// The fields whose value differs between two objects (set, changed or removed).
pub fn changed(old: &Value, new: &Value) -> FieldSet {
    let old_set = field_set(old);
    let new_set = field_set(new);
    let mut out = FieldSet::new();
    for p in new_set.iter().chain(old_set.iter()) {
        if p.get(old) != p.get(new) {
            out.insert(p.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(s: &str) -> FieldPath {
        FieldPath(s.split('.').map(str::to_owned).collect())
    }

    #[test]
    fn lists_are_atomic_and_metadata_is_labels_and_annotations() {
        let obj = json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "a", "labels": {"app": "a"}, "annotations": {"x/y": "1"}},
            "spec": {"hosts": ["a"], "http": [{"route": [{"weight": 100}]}], "tls": {}},
        });
        let set = field_set(&obj);
        let shown: Vec<String> = set.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                ".metadata.annotations.x/y",
                ".metadata.labels.app",
                ".spec.hosts",
                ".spec.http",
                ".spec.tls"
            ]
        );
        assert_eq!(
            render(&set)["f:spec"],
            json!({"f:hosts": {}, "f:http": {}, "f:tls": {}})
        );
    }

    #[test]
    fn remove_prunes_emptied_maps() {
        let mut obj =
            json!({"metadata": {"name": "a", "annotations": {"k": "v"}}, "spec": {"a": {"b": 1}}});
        path("metadata.annotations.k").remove(&mut obj);
        path("spec.a.b").remove(&mut obj);
        assert_eq!(obj, json!({"metadata": {"name": "a"}}));
    }

    #[test]
    fn changed_reports_set_and_removed_fields() {
        let old = json!({"spec": {"a": 1, "b": [1]}});
        let new = json!({"spec": {"a": 2, "c": true}});
        let shown: Vec<String> = changed(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, [".spec.a", ".spec.b", ".spec.c"]);
    }
}

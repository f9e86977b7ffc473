//! What `meshctl apply` would change: rendered objects against the live
//! ones, as one unified YAML diff per object (`meshctl diff`).
//!
//! Pure: the command reads the live objects from a target and hands both
//! sides here. Before diffing, both sides are normalised so that only what
//! `apply` would change shows: server-managed fields (`resourceVersion`,
//! `generation`; `managedFields`, `uid`, `creationTimestamp` and `status`
//! are outside the resource model and never read) are dropped, and so is
//! meshctl's rollout-state annotation unless asked for. Annotations only the
//! live object has are kept on the rendered side, as `apply` keeps them.
//! Objects that exist only in the target are not shown: `apply` never deletes.

use meshproxy::istio::{ApiVersion, ObjectMeta, Resource, yaml};
use serde::Serialize;
use similar::TextDiff;

use crate::target::{ApplyAction, STATE_ANNOTATION};

/// How to compare.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiffOptions {
    /// Keep the rollout-state annotation ([`STATE_ANNOTATION`]) instead of
    /// stripping it. `apply` keeps it, so it appears on both sides.
    pub show_rollout_state: bool,
    /// The apiVersion the target writes (the Kubernetes target writes the
    /// version the cluster serves, whatever the rendered object says).
    pub api_version: Option<ApiVersion>,
}

/// The difference for one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectDiff {
    /// `VirtualService`.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// What `apply` would do: created, configured or unchanged.
    pub action: ApplyAction,
    /// The unified diff (empty when unchanged).
    pub diff: String,
}

/// A rendered or stored object could not be printed as YAML.
#[derive(Debug, thiserror::Error)]
#[error("printing {kind} {name:?} as YAML")]
pub struct DiffError {
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// The printer's error.
    #[source]
    pub source: Box<yaml::YamlError>,
}

fn meta_mut(r: &mut Resource) -> &mut ObjectMeta {
    match r {
        Resource::Gateway(x) => &mut x.metadata,
        Resource::VirtualService(x) => &mut x.metadata,
        Resource::DestinationRule(x) => &mut x.metadata,
    }
}

fn set_api_version(r: &mut Resource, v: ApiVersion) {
    match r {
        Resource::Gateway(x) => x.api_version = v,
        Resource::VirtualService(x) => x.api_version = v,
        Resource::DestinationRule(x) => x.api_version = v,
    }
}

/// Both sides as `apply` would leave them, minus what the server manages.
fn normalise(
    desired: &Resource,
    live: Option<&Resource>,
    options: DiffOptions,
) -> (Resource, Option<Resource>) {
    let mut desired = desired.clone();
    if let Some(v) = options.api_version {
        set_api_version(&mut desired, v);
    }
    let live = live.map(|l| {
        let mut l = l.clone();
        let lm = meta_mut(&mut l);
        lm.resource_version = None;
        lm.generation = None;
        if !options.show_rollout_state {
            lm.annotations.remove(STATE_ANNOTATION);
        }
        l
    });
    let dm = meta_mut(&mut desired);
    dm.resource_version = None;
    dm.generation = None;
    if let Some(l) = &live {
        let lm = l.metadata();
        // The target fills in its namespace; the rendered object may leave it out.
        if dm.namespace.is_none() {
            dm.namespace.clone_from(&lm.namespace);
        }
        // `apply` keeps annotations the rendered object does not mention
        // (the rollout state, others' annotations): both targets merge them.
        for (k, v) in &lm.annotations {
            dm.annotations.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    (desired, live)
}

fn print(r: &Resource) -> Result<String, DiffError> {
    yaml::to_string(r).map_err(|e| DiffError {
        kind: r.kind().to_owned(),
        name: r.metadata().name.clone(),
        source: Box::new(e),
    })
}

/// Diffs each rendered object against its live counterpart (`live[i]` is
/// the stored version of `desired[i]`, `None` when it does not exist).
pub fn diff(
    desired: &[Resource],
    live: &[Option<Resource>],
    options: DiffOptions,
) -> Result<Vec<ObjectDiff>, DiffError> {
    desired
        .iter()
        .zip(
            live.iter()
                .map(Option::as_ref)
                .chain(std::iter::repeat(None)),
        )
        .map(|(d, l)| {
            let (d, l) = normalise(d, l, options);
            let kind = d.kind().to_owned();
            let name = d.metadata().name.clone();
            let new_text = print(&d)?;
            let path = format!("{kind}/{name}");
            let (old_text, old_header, action) = match &l {
                None => (String::new(), "/dev/null".to_owned(), ApplyAction::Created),
                Some(l) => (print(l)?, format!("live/{path}"), ApplyAction::Configured),
            };
            if old_text == new_text {
                return Ok(ObjectDiff {
                    kind,
                    name,
                    action: ApplyAction::Unchanged,
                    diff: String::new(),
                });
            }
            let diff = TextDiff::from_lines(&old_text, &new_text)
                .unified_diff()
                .context_radius(3)
                .header(&old_header, &format!("rendered/{path}"))
                .to_string();
            Ok(ObjectDiff {
                kind,
                name,
                action,
                diff,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discounts VirtualService (v1 100, v2 0) and DestinationRule.
    fn resources() -> Vec<Resource> {
        let text = crate::testing::discounts_vs_and_dr(concat!(
            "  - route:\n",
            "    - destination: {host: discounts, subset: v1}\n",
            "      weight: 100\n",
            "    - destination: {host: discounts, subset: v2}\n",
            "      weight: 0\n",
        ));
        yaml::parse_resources(&text).unwrap()
    }

    #[test]
    fn identical_objects_are_unchanged_despite_server_fields() {
        let desired = resources();
        let mut live: Vec<Option<Resource>> = desired.iter().cloned().map(Some).collect();
        for l in live.iter_mut().flatten() {
            let m = meta_mut(l);
            m.resource_version = Some("42".into());
            m.generation = Some(3);
            m.namespace = Some("shop".into());
            m.annotations
                .insert(STATE_ANNOTATION.into(), r#"{"phase":"Promoted"}"#.into());
            m.annotations
                .insert("example.com/owner".into(), "team-a".into());
        }
        let out = diff(&desired, &live, DiffOptions::default()).unwrap();
        assert!(
            out.iter()
                .all(|d| d.action == ApplyAction::Unchanged && d.diff.is_empty()),
            "{out:?}"
        );
        // Asked for, the state shows on both sides (apply keeps it): still no change.
        let shown = diff(
            &desired,
            &live,
            DiffOptions {
                show_rollout_state: true,
                api_version: None,
            },
        )
        .unwrap();
        assert!(shown.iter().all(|d| d.action == ApplyAction::Unchanged));
    }

    #[test]
    fn weight_change_is_a_unified_diff_of_the_weight_lines() {
        let desired = resources();
        let mut live_vs = desired[0].clone();
        if let Resource::VirtualService(vs) = &mut live_vs {
            vs.spec.http[0].route[0].weight = Some(90);
            vs.spec.http[0].route[1].weight = Some(10);
        }
        let out = diff(
            &desired,
            &[Some(live_vs), Some(desired[1].clone())],
            DiffOptions::default(),
        )
        .unwrap();
        assert_eq!(out[0].action, ApplyAction::Configured);
        let d = &out[0].diff;
        assert!(
            d.starts_with(
                "--- live/VirtualService/discounts\n+++ rendered/VirtualService/discounts\n@@"
            ),
            "{d}"
        );
        for line in [
            "-      weight: 90\n+      weight: 100\n",
            "-      weight: 10\n+      weight: 0\n",
        ] {
            assert!(d.contains(line), "{line:?} missing from\n{d}");
        }
        assert_eq!(out[1].action, ApplyAction::Unchanged);
    }

    #[test]
    fn a_new_object_is_all_added() {
        let desired = resources();
        let out = diff(&desired, &[], DiffOptions::default()).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|d| d.action == ApplyAction::Created));
        let d = &out[1].diff;
        assert!(
            d.starts_with("--- /dev/null\n+++ rendered/DestinationRule/discounts\n"),
            "{d}"
        );
        let body: Vec<&str> = d.lines().skip(3).collect();
        assert!(
            !body.is_empty() && body.iter().all(|l| l.starts_with('+')),
            "{d}"
        );
    }

    #[test]
    fn the_targets_api_version_replaces_the_rendered_one() {
        let desired = resources();
        let mut live = desired[1].clone();
        set_api_version(&mut live, ApiVersion::V1beta1);
        let out = diff(
            &desired[1..],
            &[Some(live)],
            DiffOptions {
                show_rollout_state: false,
                api_version: Some(ApiVersion::V1beta1),
            },
        )
        .unwrap();
        assert_eq!(out[0].action, ApplyAction::Unchanged);
    }
}

//! Reading and changing the weights of a VirtualService's route: the rollout
//! modifies the applied object (the first HTTP route that sends traffic to
//! the stable or the new subset); it never re-renders.

use std::collections::BTreeMap;

use meshproxy::istio::{HttpMatchRequest, HttpRoute, HttpRouteDestination, VirtualService};

use super::state::RolloutState;
use super::sticky::{self, StickyError};
use super::strategy::{AB_ROUTE, Strategy};

/// The VirtualService cannot carry the rollout.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No HTTP route sends traffic to either subset.
    #[error(
        "VirtualService {name:?} has no HTTP route with a destination subset {from:?} or {to:?}: render it with `--versions {from},{to}` and run `meshctl apply`"
    )]
    NoRoute {
        /// VirtualService.
        name: String,
        /// Stable subset.
        from: String,
        /// New subset.
        to: String,
    },
    /// The route has no destination for the stable subset.
    #[error(
        "VirtualService {name:?} route {route} has no destination with subset {from:?}: pass the stable version with --from"
    )]
    NoStable {
        /// VirtualService.
        name: String,
        /// Route index.
        route: usize,
        /// Stable subset.
        from: String,
    },
    /// Sticky sessions cannot be added to the route.
    #[error(transparent)]
    Sticky(#[from] StickyError),
}

fn weight_of(d: &HttpRouteDestination, n: usize) -> u8 {
    match d.weight {
        Some(w) => u8::try_from(w.min(100)).unwrap_or(100),
        None if n == 1 => 100,
        None => 0,
    }
}

/// Routes meshctl adds in front of the weighted one (`ab` match, sticky
/// sessions): never the route carrying the split.
fn is_added_route(r: &HttpRoute) -> bool {
    r.name.as_deref() == Some(AB_ROUTE) || sticky::is_sticky_route(r)
}

/// The index of the route carrying the rollout.
pub fn route_index(vs: &VirtualService, from: &str, to: &str) -> Option<usize> {
    vs.spec.http.iter().position(|r| {
        !is_added_route(r)
            && r.route
                .iter()
                .any(|d| matches!(d.destination.subset.as_deref(), Some(s) if s == from || s == to))
    })
}

/// The weight per subset of the first route that has subsets.
pub fn current_weights(vs: &VirtualService) -> BTreeMap<String, u8> {
    let Some(route) = vs
        .spec
        .http
        .iter()
        .find(|r| !is_added_route(r) && r.route.iter().any(|d| d.destination.subset.is_some()))
    else {
        return BTreeMap::new();
    };
    let n = route.route.len();
    route
        .route
        .iter()
        .filter_map(|d| Some((d.destination.subset.clone()?, weight_of(d, n))))
        .collect()
}

/// The subset taking the most traffic now (the default `--from`).
pub fn stable_subset(vs: &VirtualService) -> Option<String> {
    current_weights(vs)
        .into_iter()
        .max_by_key(|(_, w)| *w)
        .map(|(s, _)| s)
}

/// Sets `weights` (subset → percent) on the rollout's route. A missing
/// destination for the new subset is added (a copy of the stable one);
/// destinations of other subsets get weight 0.
pub fn set_weights(
    vs: &mut VirtualService,
    from: &str,
    to: &str,
    weights: &BTreeMap<String, u8>,
) -> Result<(), RouteError> {
    let name = vs.metadata.name.clone();
    let i = route_index(vs, from, to).ok_or_else(|| RouteError::NoRoute {
        name: name.clone(),
        from: from.to_owned(),
        to: to.to_owned(),
    })?;
    let route = &mut vs.spec.http[i];
    let stable = route
        .route
        .iter()
        .find(|d| d.destination.subset.as_deref() == Some(from))
        .cloned()
        .ok_or_else(|| RouteError::NoStable {
            name,
            route: i,
            from: from.to_owned(),
        })?;
    if !route
        .route
        .iter()
        .any(|d| d.destination.subset.as_deref() == Some(to))
    {
        let mut canary = stable;
        canary.destination.subset = Some(to.to_owned());
        route.route.push(canary);
    }
    for d in &mut route.route {
        let w = d
            .destination
            .subset
            .as_deref()
            .and_then(|s| weights.get(s))
            .copied()
            .unwrap_or(0);
        d.weight = Some(u32::from(w));
    }
    Ok(())
}

/// Shapes the VirtualService for `state`: the weights on the rollout's route
/// and, for an unfinished `ab` rollout, a first route named
/// [`AB_ROUTE`] sending matching requests to the new subset. A finished
/// rollout (promoted or rolled back) has no match route.
pub fn apply_state(vs: &mut VirtualService, state: &RolloutState) -> Result<(), RouteError> {
    vs.spec.http.retain(|r| r.name.as_deref() != Some(AB_ROUTE));
    sticky::strip(vs);
    set_weights(vs, &state.from, &state.to, &state.weights)?;
    if let Strategy::Ab { rule, .. } = &state.strategy
        && !state.phase.is_finished()
    {
        let i = route_index(vs, &state.from, &state.to).unwrap_or(0);
        let mut target = vs.spec.http[i]
            .route
            .iter()
            .find(|d| d.destination.subset.as_deref() == Some(state.from.as_str()))
            .cloned()
            .unwrap_or_default();
        target.destination.subset = Some(state.to.clone());
        target.weight = None;
        let (header, value) = rule.header_match();
        vs.spec.http.insert(
            0,
            HttpRoute {
                name: Some(AB_ROUTE.to_owned()),
                matches: vec![HttpMatchRequest {
                    headers: [(header, value)].into(),
                    ..Default::default()
                }],
                route: vec![target],
                mirror: None,
                mirror_percentage: None,
                ..vs.spec.http[i].clone()
            },
        );
    }
    apply_sticky(vs, state)
}

/// Sticky sessions (see [`sticky`]) on the rollout's route, consistent with
/// the weights just set: called by [`apply_state`], so every weight write
/// (steps, `promote`, `rollback`, from any process) carries them.
pub fn apply_sticky(vs: &mut VirtualService, state: &RolloutState) -> Result<(), RouteError> {
    let Some(cookie) = &state.sticky_cookie else {
        return Ok(());
    };
    if let Some(i) = route_index(vs, &state.from, &state.to) {
        sticky::apply(vs, i, cookie)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VS: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: discounts
spec:
  hosts: [discounts]
  http:
  - route:
    - destination: {host: discounts, subset: v1}
";

    #[test]
    fn adds_the_canary_and_sets_weights() {
        let mut vs: VirtualService = meshproxy::istio::yaml::from_str(VS).unwrap();
        assert_eq!(stable_subset(&vs).as_deref(), Some("v1"));
        let w: BTreeMap<String, u8> = [("v1".into(), 90), ("v2".into(), 10)].into();
        set_weights(&mut vs, "v1", "v2", &w).unwrap();
        assert_eq!(current_weights(&vs), w);
        assert_eq!(vs.spec.http[0].route[1].destination.host, "discounts");
    }

    #[test]
    fn explains_a_missing_route() {
        let mut vs: VirtualService = meshproxy::istio::yaml::from_str(VS).unwrap();
        let e = set_weights(&mut vs, "v3", "v4", &BTreeMap::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("render it with `--versions v3,v4` and run `meshctl apply`"),
            "{e}"
        );
    }
}

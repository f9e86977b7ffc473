//! Editing an applied VirtualService: the weights of the route carrying a
//! rollout, a mirror to the new subset, the `ab` match route in front of it,
//! and sticky-session routes ([`sticky`]).
//!
//! This module knows VirtualServices and subsets, nothing of rollouts: it is
//! below both `render` (sticky routes of a rendered object) and `rollout`
//! (which turns its state into a [`Shape`] and writes it with [`shape`]).
//! A rollout modifies the applied object (the first HTTP route that sends
//! traffic to the stable or the new subset); it never re-renders.

pub mod sticky;

use std::collections::BTreeMap;

use meshproxy::istio::{
    Destination, HttpMatchRequest, HttpRoute, HttpRouteDestination, Percent, VirtualService,
};

use meshproxy::istio::StringMatch;

use self::sticky::{CookieName, StickyError};

/// Name of the HTTP route the `ab` strategy puts first in the VirtualService.
pub const AB_ROUTE: &str = "meshctl-ab";

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
    /// The rollout's route already mirrors somewhere else.
    #[error(
        "VirtualService {name:?} route {route} already mirrors to {mirror}: a mirror or bluegreen rollout puts its own mirror there; remove that mirror from the route, or use --strategy canary or ab"
    )]
    MirrorInUse {
        /// VirtualService.
        name: String,
        /// Route index.
        route: usize,
        /// The existing mirror destination.
        mirror: String,
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

/// The destination of `route` with subset `subset`.
fn destination<'r>(route: &'r HttpRoute, subset: &str) -> Option<&'r HttpRouteDestination> {
    route
        .route
        .iter()
        .find(|d| d.destination.subset.as_deref() == Some(subset))
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

/// The index of the route carrying the rollout, or why there is none.
fn rollout_route(vs: &VirtualService, from: &str, to: &str) -> Result<usize, RouteError> {
    route_index(vs, from, to).ok_or_else(|| RouteError::NoRoute {
        name: vs.metadata.name.clone(),
        from: from.to_owned(),
        to: to.to_owned(),
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
    let i = rollout_route(vs, from, to)?;
    let route = &mut vs.spec.http[i];
    let stable = destination(route, from)
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

/// What one write makes of the rollout's route: the weights, and what a
/// preview stage adds. Built from a rollout's state by
/// `rollout::routes::apply_state`.
#[derive(Clone, Debug)]
pub struct Shape<'a> {
    /// The stable subset.
    pub from: &'a str,
    /// The new subset.
    pub to: &'a str,
    /// Subset → percent on the weighted route.
    pub weights: &'a BTreeMap<String, u8>,
    /// Mirror this percentage of the weighted route to `to`.
    pub mirror: Option<u8>,
    /// A first route named [`AB_ROUTE`] sending requests with this header
    /// match to `to`.
    pub match_header: Option<(String, StringMatch)>,
    /// Sticky sessions with this cookie; `None` keeps the cookie the
    /// VirtualService already carries, if any.
    pub sticky_cookie: Option<&'a CookieName>,
}

/// Shapes the VirtualService as `shape` says: the weights on the rollout's
/// route, a mirror or a match route when asked for (any other one is
/// removed), and sticky routes consistent with the weights.
pub fn shape(vs: &mut VirtualService, shape: &Shape<'_>) -> Result<(), RouteError> {
    let Shape { from, to, .. } = *shape;
    vs.spec.http.retain(|r| r.name.as_deref() != Some(AB_ROUTE));
    clear_mirror(vs, from, to);
    // A rollout state written before rollouts recorded the cookie still
    // keeps the sticky routes the VirtualService carries.
    let carried = match shape.sticky_cookie {
        None => sticky::cookie_of(vs),
        Some(_) => None,
    };
    sticky::strip(vs);
    set_weights(vs, from, to, shape.weights)?;
    if let Some(percent) = shape.mirror {
        set_mirror(vs, from, to, percent)?;
    }
    if let Some((header, value)) = shape.match_header.clone() {
        let i = route_index(vs, from, to).unwrap_or(0);
        let mut target = destination(&vs.spec.http[i], from)
            .cloned()
            .unwrap_or_default();
        target.destination.subset = Some(to.to_owned());
        target.weight = None;
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
    let Some(cookie) = shape.sticky_cookie.or(carried.as_ref()) else {
        return Ok(());
    };
    if let Some(i) = route_index(vs, from, to) {
        sticky::apply(vs, i, cookie)?;
    }
    Ok(())
}

/// Is `m` the mirror a rollout to `to` puts on its route?
fn is_ours(m: &Destination, host: &str, to: &str) -> bool {
    m.host == host && m.subset.as_deref() == Some(to)
}

/// The host of the stable destination of the rollout's route.
fn stable_host(route: &HttpRoute, from: &str, to: &str) -> Option<String> {
    route
        .route
        .iter()
        .find(|d| matches!(d.destination.subset.as_deref(), Some(s) if s == from || s == to))
        .map(|d| d.destination.host.clone())
}

/// Fails when the rollout's route mirrors somewhere other than the new
/// subset (a mirror or bluegreen rollout would replace that mirror).
pub fn check_mirror(vs: &VirtualService, from: &str, to: &str) -> Result<(), RouteError> {
    let Some(i) = route_index(vs, from, to) else {
        return Ok(());
    };
    let route = &vs.spec.http[i];
    let host = stable_host(route, from, to).unwrap_or_default();
    match &route.mirror {
        Some(m) if !is_ours(m, &host, to) => Err(RouteError::MirrorInUse {
            name: vs.metadata.name.clone(),
            route: i,
            mirror: match &m.subset {
                Some(s) => format!("{} subset {s}", m.host),
                None => m.host.clone(),
            },
        }),
        _ => Ok(()),
    }
}

/// Mirrors `percent`% of the rollout's route to the new subset (same host
/// and port as the stable destination).
pub fn set_mirror(
    vs: &mut VirtualService,
    from: &str,
    to: &str,
    percent: u8,
) -> Result<(), RouteError> {
    let i = rollout_route(vs, from, to)?;
    let route = &mut vs.spec.http[i];
    let stable = destination(route, from)
        .or_else(|| route.route.first())
        .map(|d| d.destination.clone())
        .unwrap_or_default();
    route.mirror = Some(Destination {
        subset: Some(to.to_owned()),
        ..stable
    });
    route.mirror_percentage = Some(Percent {
        value: f64::from(percent),
    });
    Ok(())
}

/// Removes the mirror to the new subset from the rollout's route (a mirror
/// elsewhere is left alone).
pub fn clear_mirror(vs: &mut VirtualService, from: &str, to: &str) {
    let Some(i) = route_index(vs, from, to) else {
        return;
    };
    let route = &mut vs.spec.http[i];
    let host = stable_host(route, from, to).unwrap_or_default();
    if route.mirror.as_ref().is_some_and(|m| is_ours(m, &host, to)) {
        route.mirror = None;
        route.mirror_percentage = None;
    }
}

/// Does any route still carry a rollout's match route or a mirror to `to`?
pub fn has_preview(vs: &VirtualService, to: &str) -> bool {
    vs.spec.http.iter().any(|r| {
        r.name.as_deref() == Some(AB_ROUTE)
            || r.mirror
                .as_ref()
                .is_some_and(|m| m.subset.as_deref() == Some(to))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> VirtualService {
        meshproxy::istio::yaml::from_str(&crate::testing::discounts_vs(crate::testing::TO_V1))
            .unwrap()
    }

    #[test]
    fn adds_the_canary_and_sets_weights() {
        let mut vs = fixture();
        assert_eq!(stable_subset(&vs).as_deref(), Some("v1"));
        let w: BTreeMap<String, u8> = [("v1".into(), 90), ("v2".into(), 10)].into();
        set_weights(&mut vs, "v1", "v2", &w).unwrap();
        assert_eq!(current_weights(&vs), w);
        assert_eq!(vs.spec.http[0].route[1].destination.host, "discounts");
    }

    #[test]
    fn a_foreign_mirror_is_refused_and_left_alone() {
        let mut vs = fixture();
        vs.spec.http[0].mirror = Some(Destination {
            host: "audit".into(),
            subset: None,
            port: None,
        });
        let e = check_mirror(&vs, "v1", "v2").unwrap_err().to_string();
        assert!(
            e.contains("route 0 already mirrors to audit: a mirror or bluegreen rollout puts its own mirror there; remove that mirror"),
            "{e}"
        );
        clear_mirror(&mut vs, "v1", "v2");
        assert!(vs.spec.http[0].mirror.is_some());
    }

    #[test]
    fn explains_a_missing_route() {
        let mut vs = fixture();
        let e = set_weights(&mut vs, "v3", "v4", &BTreeMap::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("render it with `--versions v3,v4` and run `meshctl apply`"),
            "{e}"
        );
    }
}

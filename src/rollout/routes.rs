//! The rollout's VirtualService: [`apply_state`] turns a [`RolloutState`]
//! into one [`Shape`] of the route (weights, the stage's mirror or match
//! route, sticky routes) and writes it with [`crate::routing`], so every
//! weight write (steps, `promote`, `rollback`, from any process) carries the
//! same shape.

use meshproxy::istio::VirtualService;

pub use crate::routing::{RouteError, current_weights, stable_subset};
use crate::routing::{Shape, shape};

use super::state::RolloutState;
use super::strategy::Stage;

/// Shapes the VirtualService for `state`: the weights on the rollout's route
/// and, while unfinished, what the current [`Stage`] adds: a first route
/// named [`crate::routing::AB_ROUTE`] sending matching requests to the new
/// subset, or a mirror to the new subset on the weighted route. A finished
/// rollout (promoted or rolled back) has neither.
pub fn apply_state(vs: &mut VirtualService, state: &RolloutState) -> Result<(), RouteError> {
    let live = !state.phase.is_finished();
    let mirror = (live && state.stage == Stage::Mirror)
        .then(|| state.strategy.mirror_percent().unwrap_or(100));
    let match_header = state
        .strategy
        .match_rule()
        .filter(|_| live && state.stage == Stage::Match)
        .map(|rule| rule.header_match());
    shape(
        vs,
        &Shape {
            from: &state.from,
            to: &state.to,
            weights: &state.weights,
            mirror,
            match_header,
            sticky_cookie: state.sticky_cookie.as_ref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_route() -> String {
        crate::testing::discounts_vs(crate::testing::TO_V1)
    }

    #[test]
    fn mirror_is_set_and_cleared_on_the_weighted_route() {
        use crate::rollout::strategy::{Stage, Strategy};
        use crate::routing::{check_mirror, has_preview};
        use meshproxy::istio::{Destination, Percent};
        let mut vs: VirtualService = meshproxy::istio::yaml::from_str(&one_route()).unwrap();
        let mut state = crate::rollout::state::tests::sample();
        state.weights = [("v1".to_owned(), 100), ("v2".to_owned(), 0)].into();
        state.strategy = Strategy::Mirror {
            percent: 25,
            iterations: 2,
        };
        state.stage = Stage::Mirror;
        apply_state(&mut vs, &state).unwrap();
        let r = &vs.spec.http[0];
        assert_eq!(
            r.mirror,
            Some(Destination {
                host: "discounts".into(),
                subset: Some("v2".into()),
                port: None
            })
        );
        assert_eq!(r.mirror_percentage, Some(Percent { value: 25.0 }));
        assert!(has_preview(&vs, "v2"));
        assert!(check_mirror(&vs, "v1", "v2").is_ok(), "our own mirror");
        // The next step (weights only) removes it in the same write.
        state.stage = Stage::Weighted;
        state.weights = [("v1".to_owned(), 50), ("v2".to_owned(), 50)].into();
        apply_state(&mut vs, &state).unwrap();
        assert_eq!(
            (
                vs.spec.http[0].mirror.as_ref(),
                vs.spec.http[0].mirror_percentage
            ),
            (None, None)
        );
        assert!(!has_preview(&vs, "v2"));
        // A finished rollout never carries the mirror.
        state.stage = Stage::Mirror;
        state.phase = crate::rollout::state::Phase::RolledBack;
        apply_state(&mut vs, &state).unwrap();
        assert!(!has_preview(&vs, "v2"));
    }

    mod rewriting {
        use std::collections::BTreeMap;

        use meshproxy::istio::{StringMatch, VirtualService};

        use super::*;
        use crate::rollout::machine::{Machine, Plan};
        use crate::rollout::state::{Phase, RolloutState, Timestamp};
        use crate::routing::RouteError;
        use crate::routing::sticky::{StickyError, cookie_of, strip};

        fn fixture() -> String {
            crate::testing::discounts_vs(concat!(
                "  - name: primary\n",
                "    timeout: 5s\n",
                "    route:\n",
                "    - destination: {host: discounts, subset: v1}\n",
                "      weight: 100\n",
            ))
        }

        fn state(cookie: Option<&str>) -> RolloutState {
            let plan = Plan {
                sticky_cookie: cookie.map(|c| c.parse().unwrap()),
                ..crate::rollout::machine::tests::plan(&[10, 50, 100])
            };
            let (m, _) = Machine::start(plan, "test".into(), Timestamp::from_millis(0)).unwrap();
            m.state().clone()
        }

        fn at(vs: &mut VirtualService, s: &mut RolloutState, v1: u8, v2: u8, phase: Phase) {
            s.weights = BTreeMap::from([("v1".to_owned(), v1), ("v2".to_owned(), v2)]);
            s.phase = phase;
            apply_state(vs, s).unwrap();
            s.write(vs);
            meshproxy::istio::validate::validate(&[meshproxy::istio::Resource::VirtualService(
                vs.clone(),
            )])
            .unwrap_or_else(|e| {
                // Subsets are checked against DestinationRules, absent here.
                assert!(
                    e.problems
                        .iter()
                        .all(|p| p.field.ends_with("destination.subset")),
                    "{e}"
                );
            });
            assert_eq!(
                current_weights(vs),
                BTreeMap::from([("v1".to_owned(), v1), ("v2".to_owned(), v2)])
            );
        }

        fn names(vs: &VirtualService) -> Vec<&str> {
            vs.spec
                .http
                .iter()
                .map(|r| r.name.as_deref().unwrap_or("-"))
                .collect()
        }

        fn set_cookies(vs: &VirtualService) -> Vec<Option<String>> {
            let primary = vs
                .spec
                .http
                .iter()
                .find(|r| r.name.as_deref() == Some("primary"));
            primary
                .unwrap()
                .route
                .iter()
                .map(|d| {
                    d.headers
                        .as_ref()
                        .and_then(|h| h.response.as_ref())
                        .and_then(|r| r.add.get("set-cookie"))
                        .cloned()
                })
                .collect()
        }

        #[test]
        fn a_state_that_names_no_cookie_keeps_the_sticky_routes_the_virtual_service_has() {
            let mut vs: VirtualService = meshproxy::istio::yaml::from_str(&fixture()).unwrap();
            at(&mut vs, &mut state(Some("ver")), 90, 10, Phase::Progressing);
            // A state written before rollouts recorded the cookie.
            let mut old = state(None);
            at(&mut vs, &mut old, 100, 0, Phase::RolledBack);
            assert_eq!(names(&vs), ["meshctl-sticky-v1", "primary"]);
            assert_eq!(cookie_of(&vs).unwrap().as_str(), "ver");
        }

        #[test]
        fn sticky_routes_follow_the_weights_through_a_rollout() {
            let mut vs: VirtualService = meshproxy::istio::yaml::from_str(&fixture()).unwrap();
            let mut s = state(Some("ver"));
            let both = || {
                vec![
                    Some("ver=v1; Path=/; HttpOnly; SameSite=Lax".to_owned()),
                    Some("ver=v2; Path=/; HttpOnly; SameSite=Lax".to_owned()),
                ]
            };

            at(&mut vs, &mut s, 90, 10, Phase::Progressing);
            assert_eq!(
                names(&vs),
                ["meshctl-sticky-v1", "meshctl-sticky-v2", "primary"]
            );
            assert_eq!(set_cookies(&vs), both());
            let pin = &vs.spec.http[1];
            assert_eq!(
                pin.matches[0].headers["cookie"],
                StringMatch::Regex("^(.*?;\\s*)?ver=v2(;.*)?$".into())
            );
            assert_eq!(pin.route.len(), 1);
            assert_eq!(pin.route[0].destination.subset.as_deref(), Some("v2"));
            assert_eq!(pin.route[0].weight, None);
            assert!(pin.route[0].headers.is_none(), "{pin:?}");
            // The pinned route keeps the weighted route's settings.
            assert_eq!(pin.timeout.as_deref(), Some("5s"));
            assert_eq!(stable_subset(&vs).as_deref(), Some("v1"));
            assert_eq!(cookie_of(&vs).unwrap().as_str(), "ver");

            // Another process reads the state back and moves the weights.
            let mut s = RolloutState::read(&vs).unwrap();
            assert_eq!(s.sticky_cookie.as_ref().unwrap().as_str(), "ver");
            at(&mut vs, &mut s, 50, 50, Phase::Progressing);
            assert_eq!(
                names(&vs),
                ["meshctl-sticky-v1", "meshctl-sticky-v2", "primary"]
            );
            assert_eq!(set_cookies(&vs), both());

            // Promoted: v1 clients fall through and are re-pinned to v2.
            at(&mut vs, &mut s, 0, 100, Phase::Promoted);
            assert_eq!(names(&vs), ["meshctl-sticky-v2", "primary"]);
            assert_eq!(set_cookies(&vs), both());

            // Rolled back: only v1 keeps a sticky route.
            at(&mut vs, &mut s, 100, 0, Phase::RolledBack);
            assert_eq!(names(&vs), ["meshctl-sticky-v1", "primary"]);
            assert_eq!(stable_subset(&vs).as_deref(), Some("v1"));

            // Rendering without a cookie removes everything sticky (a state
            // that names none keeps the VirtualService's: see above).
            strip(&mut vs);
            assert_eq!(names(&vs), ["primary"]);
            assert_eq!(set_cookies(&vs), [None, None]);
            assert!(vs.spec.http[0].route.iter().all(|d| d.headers.is_none()));
            assert_eq!(cookie_of(&vs), None);
        }

        #[test]
        fn sticky_routes_keep_the_weighted_routes_matches_and_other_operations() {
            let text = fixture()
                .replace(
                    "    timeout: 5s\n",
                    "    match: [{uri: {prefix: /api}}, {headers: {x-beta: {exact: \"1\"}}}]\n",
                )
                .replace(
                    "      weight: 100\n",
                    "      weight: 100\n      headers: {request: {set: {x-team: a}}}\n",
                );
            let mut vs: VirtualService = meshproxy::istio::yaml::from_str(&text).unwrap();
            let mut s = state(Some("ver"));
            at(&mut vs, &mut s, 90, 10, Phase::Progressing);
            let pin = &vs.spec.http[0];
            assert_eq!(pin.matches.len(), 2);
            assert_eq!(pin.matches[0].uri, Some(StringMatch::Prefix("/api".into())));
            assert!(pin.matches.iter().all(|m| m.headers.contains_key("cookie")));
            assert!(pin.matches[1].headers.contains_key("x-beta"));
            // The user's own request operation stays everywhere.
            let primary = &vs.spec.http[2];
            let h = primary.route[0].headers.as_ref().unwrap();
            assert_eq!(h.request.as_ref().unwrap().set["x-team"], "a");
            at(&mut vs, &mut state(None), 100, 0, Phase::RolledBack);
            let h = vs.spec.http[0].route[0].headers.as_ref().unwrap();
            assert_eq!(h.request.as_ref().unwrap().set["x-team"], "a");
            assert!(h.response.is_none());
        }

        /// The error of applying a sticky cookie to the VirtualService `yaml`.
        fn sticky_error(yaml: &str) -> RouteError {
            let mut vs: VirtualService = meshproxy::istio::yaml::from_str(yaml).unwrap();
            apply_state(&mut vs, &state(Some("ver"))).unwrap_err()
        }

        #[test]
        fn conflicts_are_explained() {
            let own = fixture().replace(
            "      weight: 100\n",
            "      weight: 100\n      headers: {response: {add: {set-cookie: \"theme=dark\"}}}\n",
        );
            let e = sticky_error(&own);
            assert_eq!(
                e.to_string(),
                "VirtualService \"discounts\" route 0 destination \"v1\" already adds set-cookie \"theme=dark\": remove that header operation or drop --sticky-cookie"
            );
            let matched = fixture().replace(
                "    timeout: 5s\n",
                "    match: [{headers: {cookie: {regex: \".*beta=1.*\"}}}]\n",
            );
            let e = sticky_error(&matched);
            assert!(
                matches!(e, RouteError::Sticky(StickyError::CookieMatch { .. })),
                "{e}"
            );
            assert!(
                e.to_string()
                    .contains("already matches on the cookie header"),
                "{e}"
            );
        }
    }
}

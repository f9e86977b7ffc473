//! Fixtures shared by the unit tests: the `discounts` VirtualService that
//! `meshctl render` writes, around whatever HTTP routes a test needs.

/// The YAML of VirtualService `discounts` (host `discounts`) whose `http:`
/// list is `http`, written as it stands under `http:` (`  - route: ...`).
pub(crate) fn discounts_vs(http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: discounts\nspec:\n  hosts: [discounts]\n  http:\n{http}"
    )
}

/// The `http:` of a freshly rendered single-version service: one route, to
/// subset v1.
pub(crate) const TO_V1: &str = "  - route:\n    - destination: {host: discounts, subset: v1}\n";

/// DestinationRule `discounts` with subset v1 (pods labelled `version: v1`).
pub(crate) const DR_V1: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: discounts\nspec:\n  host: discounts\n  subsets:\n  - name: v1\n    labels: {version: v1}\n";

/// Two documents: [`discounts_vs`] with `http`, then [`DR_V1`].
pub(crate) fn discounts_vs_and_dr(http: &str) -> String {
    format!("{}---\n{DR_V1}", discounts_vs(http))
}

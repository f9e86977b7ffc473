//! Fixtures shared by the unit tests: the `discounts` VirtualService that
//! `meshctl render` writes, around whatever HTTP routes a test needs.

/// The YAML of VirtualService `discounts` (host `discounts`) whose `http:`
/// list is `http`, written as it stands under `http:` (`  - route: ...`).
pub(crate) fn discounts_vs(http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: discounts\nspec:\n  hosts: [discounts]\n  http:\n{http}"
    )
}

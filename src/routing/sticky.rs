//! Sticky sessions in the VirtualService, so a user does not flip between
//! versions while weights move, on Istio as on meshproxy (which needs no
//! `--sticky-cookie` flag of its own for this).
//!
//! With cookie `NAME`, the route carrying the split (the rollout's route,
//! `primary` when rendered) is shaped as Istio users write it by hand:
//!
//! - every destination of the weighted route gets a response header
//!   operation `headers.response.add.set-cookie: "NAME=SUBSET; Path=/;
//!   HttpOnly; SameSite=Lax"`, so a new client is told the version it got
//!   (`add`, not `set`: the application's own `Set-Cookie` headers stay);
//! - ahead of it, one route per version whose weight is above 0, named
//!   `meshctl-sticky-SUBSET`, matching the cookie on the `cookie` header
//!   (`^(.*?;\s*)?NAME=SUBSET(;.*)?$`, AND-ed with the weighted route's own
//!   matches) and sending to that subset alone.
//!
//! The sticky routes follow the weights, written in the same
//! compare-and-swap as them ([`super::shape`]): a version at
//! weight 0 has no sticky route, so after a rollback clients pinned to v2
//! fall through to the weighted route and are re-pinned to v1; after a
//! promotion clients pinned to v1 move to v2. The same rule holds for the
//! final state: a promoted VirtualService keeps one sticky route (the new
//! version's) and the `set-cookie` operations, which is also what
//! `meshctl render --promoted` prints when the spec sets `stickyCookie`,
//! so git and the cluster converge. Rendering without the cookie (or a
//! rollout of a VirtualService without sticky routes and no
//! `--sticky-cookie`) removes them.

use std::fmt;
use std::str::FromStr;

use meshproxy::istio::{
    HeaderOperations, Headers, HttpMatchRequest, HttpRoute, HttpRouteDestination, StringMatch,
    VirtualService,
};
use serde::{Deserialize, Serialize};

/// Name prefix of the routes this module adds (`meshctl-sticky-v2`).
pub const STICKY_ROUTE_PREFIX: &str = "meshctl-sticky-";

/// The response header the weighted destinations add.
const SET_COOKIE: &str = "set-cookie";

/// Attributes of the cookie, as meshproxy's own `--sticky-cookie` sets it.
const ATTRIBUTES: &str = "; Path=/; HttpOnly; SameSite=Lax";

/// A cookie name: an RFC 6265 token (letters, digits and
/// ``!#$%&'*+-.^_`|~``).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CookieName(String);

/// A cookie name that is not a token. The caller says where it came from
/// (`--sticky-cookie`, `meshctl.yaml` field `stickyCookie`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a valid cookie name: {problem}; use letters, digits and !#$%&'*+-.^_`|~ (e.g. meshctl-version)"
)]
pub struct CookieNameError {
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub problem: &'static str,
}

/// The VirtualService cannot take sticky routes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StickyError {
    /// The weighted route already matches on the `cookie` header; Istio
    /// cannot AND two conditions on one header.
    #[error(
        "VirtualService {name:?} route {route} already matches on the cookie header: sticky sessions need that header; move the cookie condition to its own route or drop --sticky-cookie"
    )]
    CookieMatch {
        /// VirtualService.
        name: String,
        /// Route index.
        route: usize,
    },
    /// A destination already adds a `set-cookie` header of its own (Istio's
    /// `add` holds one value per header).
    #[error(
        "VirtualService {name:?} route {route} destination {subset:?} already adds set-cookie {value:?}: remove that header operation or drop --sticky-cookie"
    )]
    SetCookieTaken {
        /// VirtualService.
        name: String,
        /// Route index.
        route: usize,
        /// The destination's subset.
        subset: String,
        /// The value found.
        value: String,
    },
}

// === impl CookieName ===

impl CookieName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `Set-Cookie` value pinning a client to `subset`.
    pub fn set_cookie(&self, subset: &str) -> String {
        format!("{}={subset}{ATTRIBUTES}", self.0)
    }

    /// RE2 regex over the `cookie` request header: this cookie has value
    /// `subset` (anywhere among the client's cookies).
    pub fn regex(&self, subset: &str) -> String {
        cookie_regex(&self.0, subset)
    }
}

impl FromStr for CookieName {
    type Err = CookieNameError;

    fn from_str(s: &str) -> Result<Self, CookieNameError> {
        let err = |problem| CookieNameError {
            value: s.to_owned(),
            problem,
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > 128 {
            return Err(err("it is longer than 128 characters"));
        }
        if !s.chars().all(is_token_char) {
            return Err(err(
                "it holds a character not allowed in a cookie name (space, quote, `=`, `;`, `,`, `/`, brackets or a control character)",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for CookieName {
    type Error = CookieNameError;

    fn try_from(s: String) -> Result<Self, CookieNameError> {
        s.parse()
    }
}

impl From<CookieName> for String {
    fn from(c: CookieName) -> Self {
        c.0
    }
}

impl fmt::Display for CookieName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RE2 regex over the `cookie` request header: cookie `name` has value
/// `value`, anywhere among the client's cookies (as Istio users write it).
/// Shared by `--match cookie:` and sticky sessions.
pub fn cookie_regex(name: &str, value: &str) -> String {
    format!(
        "^(.*?;\\s*)?{}={}(;.*)?$",
        regex_escape(name),
        regex_escape(value)
    )
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A character allowed in an HTTP token (RFC 9110 `tchar`), and so in a
/// header or cookie name.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Is this a route meshctl adds for sticky sessions?
pub fn is_sticky_route(r: &HttpRoute) -> bool {
    r.name
        .as_deref()
        .is_some_and(|n| n.starts_with(STICKY_ROUTE_PREFIX))
}

/// The cookie name of a `set-cookie` value this module wrote for `subset`.
fn ours<'v>(value: &'v str, subset: &str) -> Option<&'v str> {
    let (name, rest) = value.split_once('=')?;
    let rest = rest.strip_prefix(subset)?;
    (rest == ATTRIBUTES && name.parse::<CookieName>().is_ok()).then_some(name)
}

fn set_cookie_op(d: &HttpRouteDestination) -> Option<&String> {
    d.headers.as_ref()?.response.as_ref()?.add.get(SET_COOKIE)
}

/// The sticky cookie a VirtualService already carries (from a render with
/// `stickyCookie` or an earlier rollout), read from the weighted route's
/// `set-cookie` operations.
pub fn cookie_of(vs: &VirtualService) -> Option<CookieName> {
    vs.spec
        .http
        .iter()
        .filter(|r| !is_sticky_route(r))
        .flat_map(|r| &r.route)
        .find_map(|d| {
            let subset = d.destination.subset.as_deref()?;
            ours(set_cookie_op(d)?, subset)?.parse().ok()
        })
}

/// Removes what [`apply`] added: the sticky routes and the `set-cookie`
/// operations it wrote (any cookie name), leaving other header operations.
pub fn strip(vs: &mut VirtualService) {
    vs.spec.http.retain(|r| !is_sticky_route(r));
    for d in vs.spec.http.iter_mut().flat_map(|r| r.route.iter_mut()) {
        strip_destination(d);
    }
}

fn strip_destination(d: &mut HttpRouteDestination) {
    let Some(subset) = d.destination.subset.clone() else {
        return;
    };
    if set_cookie_op(d).is_none_or(|v| ours(v, &subset).is_none()) {
        return;
    }
    if let Some(h) = d.headers.as_mut() {
        if let Some(resp) = h.response.as_mut() {
            resp.add.remove(SET_COOKIE);
            if resp.is_empty() {
                h.response = None;
            }
        }
        if h.is_empty() {
            d.headers = None;
        }
    }
}

/// Adds sticky sessions with `cookie` to the weighted route at index `i`:
/// `set-cookie` on each of its destinations, and a route per destination
/// with weight above 0 put right before it. Call [`strip`] first.
pub fn apply(vs: &mut VirtualService, i: usize, cookie: &CookieName) -> Result<(), StickyError> {
    let name = vs.metadata.name.clone();
    let Some(weighted) = vs.spec.http.get_mut(i) else {
        return Ok(());
    };
    if weighted
        .matches
        .iter()
        .any(|m| m.headers.contains_key("cookie"))
    {
        return Err(StickyError::CookieMatch { name, route: i });
    }
    let n = weighted.route.len();
    let mut pinned = Vec::new();
    for d in &mut weighted.route {
        let Some(subset) = d.destination.subset.clone() else {
            continue;
        };
        if let Some(value) = set_cookie_op(d) {
            return Err(StickyError::SetCookieTaken {
                name,
                route: i,
                subset,
                value: value.clone(),
            });
        }
        let weight = d.weight.unwrap_or(if n == 1 { 100 } else { 0 });
        if weight > 0 {
            let mut target = d.clone();
            target.weight = None;
            pinned.push((subset.clone(), target));
        }
        d.headers
            .get_or_insert_with(Headers::default)
            .response
            .get_or_insert_with(HeaderOperations::default)
            .add
            .insert(SET_COOKIE.to_owned(), cookie.set_cookie(&subset));
    }
    let template = vs.spec.http[i].clone();
    let routes: Vec<HttpRoute> = pinned
        .into_iter()
        .map(|(subset, target)| {
            let cookie_match = StringMatch::Regex(cookie.regex(&subset));
            let matches = if template.matches.is_empty() {
                vec![HttpMatchRequest {
                    headers: [("cookie".to_owned(), cookie_match)].into(),
                    ..Default::default()
                }]
            } else {
                template
                    .matches
                    .iter()
                    .map(|m| {
                        let mut m = m.clone();
                        m.name = None;
                        m.headers.insert("cookie".to_owned(), cookie_match.clone());
                        m
                    })
                    .collect()
            };
            HttpRoute {
                name: Some(format!("{STICKY_ROUTE_PREFIX}{subset}")),
                matches,
                route: vec![target],
                ..template.clone()
            }
        })
        .collect();
    vs.spec.http.splice(i..i, routes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_names_are_tokens() {
        let c: CookieName = "meshctl-version".parse().unwrap();
        assert_eq!(
            c.set_cookie("v2"),
            "meshctl-version=v2; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(c.regex("v2"), "^(.*?;\\s*)?meshctl-version=v2(;.*)?$");
        assert_eq!(
            "a.b".parse::<CookieName>().unwrap().regex("v1"),
            "^(.*?;\\s*)?a\\.b=v1(;.*)?$"
        );
        for bad in ["", "a b", "a=b", "a;b", "\"a\"", "a/b"] {
            let e = bad.parse::<CookieName>().unwrap_err().to_string();
            assert!(e.contains("is not a valid cookie name"), "{e}");
            assert!(e.contains("(e.g. meshctl-version)"), "{e}");
        }
    }

    #[test]
    fn the_regex_matches_the_cookie_among_others() {
        let c: CookieName = "ver".parse().unwrap();
        let re = regex::Regex::new(&c.regex("v2")).unwrap();
        for yes in ["ver=v2", "a=1; ver=v2", "a=1;ver=v2; b=2", "ver=v2; b=2"] {
            assert!(re.is_match(yes), "{yes}");
        }
        for no in ["ver=v1", "xver=v2", "ver=v22", "a=ver=v2x", ""] {
            assert!(!re.is_match(no), "{no}");
        }
    }
}

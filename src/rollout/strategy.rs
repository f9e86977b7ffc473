//! How the new version receives traffic during the rollout: `canary` moves
//! route weights step by step; `ab` sends only requests matching a header or
//! a cookie to the new version (a first HTTP route the engine adds and
//! removes) while the weighted route stays on the stable version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Name of the HTTP route the `ab` strategy puts first in the VirtualService.
pub const AB_ROUTE: &str = "meshctl-ab";

/// What an `ab` request must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    /// A request header with this exact value.
    Header,
    /// A cookie with this exact value (matched on the `cookie` header).
    Cookie,
}

/// `--match header:NAME=VALUE` or `--match cookie:NAME=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// Header or cookie.
    pub kind: MatchKind,
    /// Header name (lowercase) or cookie name.
    pub name: String,
    /// Exact value.
    pub value: String,
}

/// The rollout strategy, recorded in the rollout state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Strategy {
    /// Weighted steps (the default).
    #[default]
    Canary,
    /// Matching requests go to the new version for `iterations` analyses.
    Ab {
        /// The requests sent to the new version.
        #[serde(rename = "match")]
        rule: Match,
        /// Analysis intervals before promotion.
        iterations: u32,
    },
}

/// A `--match` value that cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "--match {value:?}: {problem}; use `header:NAME=VALUE` (e.g. header:x-canary=true) or `cookie:NAME=VALUE` (e.g. cookie:group=beta)"
)]
pub struct MatchError {
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub problem: String,
}

// === impl Match ===

impl Match {
    /// Istio header matches for this rule: an exact header, or for a cookie an
    /// anchored regex over the `cookie` header (as Istio users write it).
    pub fn header_match(&self) -> (String, meshproxy::istio::StringMatch) {
        use meshproxy::istio::StringMatch;
        match self.kind {
            MatchKind::Header => (self.name.clone(), StringMatch::Exact(self.value.clone())),
            MatchKind::Cookie => (
                "cookie".to_owned(),
                StringMatch::Regex(format!(
                    "^(.*?;\\s*)?{}={}(;.*)?$",
                    regex_escape(&self.name),
                    regex_escape(&self.value)
                )),
            ),
        }
    }
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

fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!#$%&'*+^`|~".contains(c))
}

impl FromStr for Match {
    type Err = MatchError;

    fn from_str(s: &str) -> Result<Self, MatchError> {
        let err = |problem: &str| MatchError {
            value: s.to_owned(),
            problem: problem.to_owned(),
        };
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| err("missing the `header:` or `cookie:` prefix"))?;
        let kind = match kind {
            "header" => MatchKind::Header,
            "cookie" => MatchKind::Cookie,
            _ => return Err(err("the prefix must be `header` or `cookie`")),
        };
        let (name, value) = rest
            .split_once('=')
            .ok_or_else(|| err("missing `=VALUE`"))?;
        if !token_ok(name) {
            return Err(err("the name must be a non-empty HTTP token"));
        }
        if value.is_empty() || value.chars().any(|c| c.is_control() || c == ';') {
            return Err(err(
                "the value must be non-empty, without `;` or control characters",
            ));
        }
        let name = match kind {
            MatchKind::Header => name.to_ascii_lowercase(),
            MatchKind::Cookie => name.to_owned(),
        };
        Ok(Self {
            kind,
            name,
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            MatchKind::Header => "header",
            MatchKind::Cookie => "cookie",
        };
        write!(f, "{kind}:{}={}", self.name, self.value)
    }
}

// === impl Strategy ===

impl Strategy {
    /// Is this the default canary strategy?
    pub fn is_canary(&self) -> bool {
        matches!(self, Self::Canary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_cookie() {
        let m: Match = "header:X-Canary=true".parse().unwrap();
        assert_eq!(m.to_string(), "header:x-canary=true");
        let c: Match = "cookie:group=beta".parse().unwrap();
        let (h, sm) = c.header_match();
        assert_eq!(h, "cookie");
        assert_eq!(
            sm,
            meshproxy::istio::StringMatch::Regex("^(.*?;\\s*)?group=beta(;.*)?$".into())
        );
    }

    #[test]
    fn explains_bad_values() {
        let e = "x-canary=true".parse::<Match>().unwrap_err().to_string();
        assert!(
            e.contains("missing the `header:` or `cookie:` prefix"),
            "{e}"
        );
        assert!(e.contains("header:NAME=VALUE"), "{e}");
        let e = "query:a=b".parse::<Match>().unwrap_err().to_string();
        assert!(e.contains("must be `header` or `cookie`"), "{e}");
        assert!("header:x".parse::<Match>().is_err());
        assert!("header:=v".parse::<Match>().is_err());
    }
}

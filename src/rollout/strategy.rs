//! How the new version receives traffic during the rollout:
//!
//! - `canary` moves route weights step by step;
//! - `ab` sends only requests matching a header or a cookie to the new
//!   version (a first HTTP route the engine adds and removes) while the
//!   weighted route stays on the stable version;
//! - `mirror` first mirrors a share of live traffic to the new version
//!   (VirtualService `mirror` / `mirrorPercentage` on the weighted route,
//!   weights stay on the stable version, responses of the copies are
//!   discarded) and analyses the copies for `iterations` intervals, then
//!   removes the mirror and runs the canary steps;
//! - `bluegreen` previews the new version on mirrored traffic (or on
//!   matched requests with `--match`) for `iterations` intervals, then
//!   switches 100% in one write (removing the preview in the same write) and
//!   analyses one more interval after the switch; a failure there rolls back
//!   in one write.
//!
//! Each step of a rollout has a [`Stage`], recorded in the rollout state, so
//! any process can tell (and undo) what the route carries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::routing::AB_ROUTE;
use crate::routing::sticky::{cookie_regex, is_token_char};

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
    /// `percent`% of live traffic mirrored to the new version for
    /// `iterations` analyses, then the canary steps.
    Mirror {
        /// Share of requests mirrored, 1..=100.
        #[serde(rename = "mirrorPercent")]
        percent: u8,
        /// Analysis intervals of the mirror phase.
        iterations: u32,
    },
    /// A preview for `iterations` analyses, then 100% in one write and one
    /// analysis after the switch.
    #[serde(rename = "bluegreen")]
    BlueGreen {
        /// How the new version is previewed.
        preview: Preview,
        /// Analysis intervals of the preview.
        iterations: u32,
    },
}

/// How `bluegreen` shows the new version traffic before the switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preview {
    /// A share of live traffic mirrored (copies; clients see the stable version).
    Mirror {
        /// Share of requests mirrored, 1..=100.
        percent: u8,
    },
    /// Requests matching the rule are served by the new version.
    Match(Match),
}

/// What the route carries during one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Weights only (a canary step).
    #[default]
    Weighted,
    /// A first `meshctl-ab` route sends matching requests to the new
    /// version; the weighted route stays on the stable version.
    Match,
    /// The weighted route (stable version at 100%) mirrors to the new
    /// version; the analysis judges the mirrored copies.
    Mirror,
    /// `bluegreen` after the switch: the new version at 100%, analysed once
    /// more before the rollout counts as promoted.
    Switched,
}

/// A `--mirror-percent` value out of range.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "--mirror-percent {0} is out of range: use a whole percentage from 1 to 100 (100 mirrors every request, 10 one in ten)"
)]
pub struct MirrorPercentError(pub String);

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
                StringMatch::Regex(cookie_regex(&self.name, &self.value)),
            ),
        }
    }
}

fn token_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
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

/// Parses `--mirror-percent`: a whole number from 1 to 100.
pub fn mirror_percent(s: &str) -> Result<u8, MirrorPercentError> {
    match s.trim().trim_end_matches('%').parse::<u8>() {
        Ok(p) if (1..=100).contains(&p) => Ok(p),
        _ => Err(MirrorPercentError(s.to_owned())),
    }
}

// === impl Strategy ===

impl Strategy {
    /// Is this the default canary strategy?
    pub fn is_canary(&self) -> bool {
        matches!(self, Self::Canary)
    }

    /// Analysis intervals before the weighted steps (or the switch): the
    /// `ab`, mirror and preview iterations; 0 for `canary`.
    pub fn iterations(&self) -> u32 {
        match self {
            Self::Canary => 0,
            Self::Ab { iterations, .. }
            | Self::Mirror { iterations, .. }
            | Self::BlueGreen { iterations, .. } => *iterations,
        }
    }

    /// The stage of the first `iterations` steps.
    pub fn preview_stage(&self) -> Stage {
        match self {
            Self::Canary => Stage::Weighted,
            Self::Ab { .. }
            | Self::BlueGreen {
                preview: Preview::Match(_),
                ..
            } => Stage::Match,
            Self::Mirror { .. }
            | Self::BlueGreen {
                preview: Preview::Mirror { .. },
                ..
            } => Stage::Mirror,
        }
    }

    /// The rule of the match route, if the strategy has one.
    pub fn match_rule(&self) -> Option<&Match> {
        match self {
            Self::Ab { rule, .. }
            | Self::BlueGreen {
                preview: Preview::Match(rule),
                ..
            } => Some(rule),
            _ => None,
        }
    }

    /// The mirrored share, if the strategy mirrors.
    pub fn mirror_percent(&self) -> Option<u8> {
        match self {
            Self::Mirror { percent, .. }
            | Self::BlueGreen {
                preview: Preview::Mirror { percent },
                ..
            } => Some(*percent),
            _ => None,
        }
    }

    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::Ab { .. } => "ab",
            Self::Mirror { .. } => "mirror",
            Self::BlueGreen { .. } => "bluegreen",
        }
    }
}

// === impl Stage ===

impl Stage {
    /// Weights only?
    pub fn is_weighted(&self) -> bool {
        matches!(self, Self::Weighted)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Weighted => "weighted",
            Self::Match => "match",
            Self::Mirror => "mirror",
            Self::Switched => "switched",
        })
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
    fn mirror_percent_is_1_to_100() {
        assert_eq!(mirror_percent("100"), Ok(100));
        assert_eq!(mirror_percent("10%"), Ok(10));
        for bad in ["0", "101", "-5", "ten", "2.5"] {
            let e = mirror_percent(bad).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "--mirror-percent {bad} is out of range: use a whole percentage from 1 to 100 (100 mirrors every request, 10 one in ten)"
                )
            );
        }
    }

    #[test]
    fn strategies_round_trip_as_json() {
        let rule: Match = "header:x-canary=true".parse().unwrap();
        for (s, json) in [
            (
                Strategy::Mirror {
                    percent: 50,
                    iterations: 2,
                },
                r#"{"kind":"mirror","mirrorPercent":50,"iterations":2}"#,
            ),
            (
                Strategy::BlueGreen {
                    preview: Preview::Mirror { percent: 100 },
                    iterations: 3,
                },
                r#"{"kind":"bluegreen","preview":{"mirror":{"percent":100}},"iterations":3}"#,
            ),
            (
                Strategy::BlueGreen {
                    preview: Preview::Match(rule.clone()),
                    iterations: 1,
                },
                r#"{"kind":"bluegreen","preview":{"match":{"kind":"header","name":"x-canary","value":"true"}},"iterations":1}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
            assert_eq!(serde_json::from_str::<Strategy>(json).unwrap(), s);
        }
        let bg = Strategy::BlueGreen {
            preview: Preview::Match(rule.clone()),
            iterations: 1,
        };
        assert_eq!(
            (bg.preview_stage(), bg.match_rule(), bg.mirror_percent()),
            (Stage::Match, Some(&rule), None)
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

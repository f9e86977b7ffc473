//! The vocabulary of traffic shifting: a `Weight` is 0..=100, a `Split` is a
//! set of version weights summing to 100, a `Version` is a subset name.
//! Invalid values cannot be constructed, so the rest of the code never checks.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A traffic share in percent, 0..=100.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Weight(u8);

/// A weight or split that breaks the rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrafficError {
    /// A weight above 100.
    #[error("weight {0} is out of range: use 0 to 100")]
    WeightRange(u64),
    /// A weight that is not an integer.
    #[error("weight {0:?} is not a whole number from 0 to 100")]
    WeightSyntax(String),
    /// A `VERSION=PERCENT` pair without `=`.
    #[error("{0:?} is not VERSION=PERCENT (e.g. v1=90)")]
    PairSyntax(String),
    /// Weights that do not sum to 100.
    #[error("weights sum to {sum}, not 100 ({pairs})")]
    Sum {
        /// The sum.
        sum: u32,
        /// The pairs, `v1=90, v2=20`.
        pairs: String,
    },
    /// The same version twice.
    #[error("version {0:?} is given twice")]
    Duplicate(String),
    /// An invalid version name.
    #[error("{0:?} is not a valid version name: use lowercase letters, digits and '-' (e.g. v2)")]
    VersionName(String),
    /// An empty split.
    #[error("a split needs at least one version")]
    Empty,
}

// === impl Weight ===

impl Weight {
    /// 0%.
    pub const ZERO: Self = Self(0);
    /// 100%.
    pub const FULL: Self = Self(100);

    /// The percentage.
    pub fn get(self) -> u8 {
        self.0
    }

    /// 100 minus this weight.
    pub fn complement(self) -> Self {
        Self(100 - self.0)
    }
}

impl TryFrom<u64> for Weight {
    type Error = TrafficError;
    fn try_from(v: u64) -> Result<Self, Self::Error> {
        u8::try_from(v)
            .ok()
            .filter(|w| *w <= 100)
            .map(Self)
            .ok_or(TrafficError::WeightRange(v))
    }
}

impl TryFrom<u32> for Weight {
    type Error = TrafficError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        Self::try_from(u64::from(v))
    }
}

impl TryFrom<u8> for Weight {
    type Error = TrafficError;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Self::try_from(u64::from(v))
    }
}

impl FromStr for Weight {
    type Err = TrafficError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_end_matches('%');
        let v: u64 = s
            .parse()
            .map_err(|_| TrafficError::WeightSyntax(s.to_owned()))?;
        Self::try_from(v)
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        Self::try_from(v).map_err(serde::de::Error::custom)
    }
}

/// A version (DestinationRule subset) name such as `v1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Version(String);

// === impl Version ===

impl Version {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Version {
    type Err = TrafficError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if meshproxy::istio::validate::is_dns1123_label(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(TrafficError::VersionName(s.to_owned()))
        }
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Weights per version, summing to 100, in a stable order (as given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Split(Vec<(Version, Weight)>);

// === impl Split ===

impl Split {
    /// Builds a split; the weights must sum to 100 and versions be distinct.
    pub fn new(pairs: Vec<(Version, Weight)>) -> Result<Self, TrafficError> {
        if pairs.is_empty() {
            return Err(TrafficError::Empty);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (v, _) in &pairs {
            if !seen.insert(v) {
                return Err(TrafficError::Duplicate(v.0.clone()));
            }
        }
        let sum: u32 = pairs.iter().map(|(_, w)| u32::from(w.0)).sum();
        if sum != 100 {
            let pairs = pairs
                .iter()
                .map(|(v, w)| format!("{v}={w}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(TrafficError::Sum { sum, pairs });
        }
        Ok(Self(pairs))
    }

    /// All traffic to one version.
    pub fn all_to(version: Version) -> Self {
        Self(vec![(version, Weight::FULL)])
    }

    /// Stable gets `100 - canary`, canary gets `canary`.
    pub fn canary(stable: Version, canary: Version, weight: Weight) -> Self {
        Self(vec![(stable, weight.complement()), (canary, weight)])
    }

    /// Parses `v1=90` pairs.
    pub fn parse_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Self, TrafficError> {
        let parsed = pairs
            .iter()
            .map(|p| {
                let p = p.as_ref();
                let (v, w) = p
                    .split_once('=')
                    .ok_or_else(|| TrafficError::PairSyntax(p.to_owned()))?;
                Ok((v.trim().parse()?, w.parse()?))
            })
            .collect::<Result<Vec<_>, TrafficError>>()?;
        Self::new(parsed)
    }

    /// The (version, weight) pairs.
    pub fn pairs(&self) -> &[(Version, Weight)] {
        &self.0
    }

    /// The weight of one version (0 when absent).
    pub fn weight_of(&self, version: &Version) -> Weight {
        self.0
            .iter()
            .find(|(v, _)| v == version)
            .map_or(Weight::ZERO, |(_, w)| *w)
    }

    /// As a map, for display and JSON.
    pub fn to_map(&self) -> BTreeMap<String, u8> {
        self.0.iter().map(|(v, w)| (v.0.clone(), w.0)).collect()
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (v, w) in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{v}={w}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Split {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(Version, Weight)>::deserialize(d)?;
        Self::new(pairs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn weight_range() {
        assert_eq!("100".parse::<Weight>().unwrap(), Weight::FULL);
        assert_eq!("10%".parse::<Weight>().unwrap().get(), 10);
        assert_eq!(
            "101".parse::<Weight>().unwrap_err().to_string(),
            "weight 101 is out of range: use 0 to 100"
        );
        assert!("1.5".parse::<Weight>().is_err());
        assert!(serde_json::from_str::<Weight>("150").is_err());
    }

    #[test]
    fn split_sums_to_100() {
        let s = Split::parse_pairs(&["v1=90", "v2=10"]).unwrap();
        assert_eq!(s.weight_of(&v("v2")).get(), 10);
        assert_eq!(s.to_string(), "v1=90 v2=10");
        assert_eq!(
            Split::parse_pairs(&["v1=90", "v2=20"])
                .unwrap_err()
                .to_string(),
            "weights sum to 110, not 100 (v1=90, v2=20)"
        );
        assert!(matches!(
            Split::parse_pairs(&["v1=50", "v1=50"]),
            Err(TrafficError::Duplicate(_))
        ));
        assert!(matches!(
            Split::parse_pairs(&["v1"]),
            Err(TrafficError::PairSyntax(_))
        ));
    }

    #[test]
    fn canary_split() {
        let s = Split::canary(v("v1"), v("v2"), Weight::try_from(25u8).unwrap());
        assert_eq!(s.to_string(), "v1=75 v2=25");
    }

    #[test]
    fn version_names() {
        assert!("v2".parse::<Version>().is_ok());
        assert!("V2".parse::<Version>().is_err());
        assert!("".parse::<Version>().is_err());
    }
}

//! The value types of the spec: leaf values that validate themselves while
//! parsing, so the YAML parser reports the position of a bad one, and whose
//! `FromStr` gives flags the same rules and messages (hosts, ports, version
//! names, weights, percentages, durations, URLs, labels).

use super::*;

/// Deserializes a string scalar through `FromStr`. The parse runs inside
/// the visitor, so the YAML parser reports the scalar's own line and column.
pub(super) fn parse_str<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: FromStr> Visitor<'_> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, std::marker::PhantomData))
}

/// Builds a value from a map's entries, in order, or says why it cannot.
type Finish<K, V, T> = fn(Vec<(K, V)>) -> Result<T, String>;

/// Deserializes a map, its entries in order, through `finish`, inside the
/// visitor (see [`parse_str`]).
pub(super) fn parse_map<'de, D, K, V, T>(
    d: D,
    expecting: &'static str,
    finish: Finish<K, V, T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    struct Entries<K, V, T>(&'static str, Finish<K, V, T>);
    impl<'de, K: Deserialize<'de>, V: Deserialize<'de>, T> Visitor<'de> for Entries<K, V, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let mut pairs = Vec::new();
            while let Some(k) = map.next_key()? {
                let v = map.next_value()?;
                pairs.push((k, v));
            }
            (self.1)(pairs).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(Entries(expecting, finish))
}

/// `impl Deserialize for TYPE` through its `FromStr` ([`parse_str`]), the
/// string saying what a value must be.
macro_rules! deserialize_from_str {
    ($ty:ty, $expecting:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                parse_str(d, $expecting)
            }
        }
    };
}

/// Deserializes an integer scalar through `check`, inside the visitor (see
/// [`parse_str`]).
pub(super) fn parse_int<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(i128) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(&'static str, fn(i128) -> Result<T, String>);
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.1)(i128::from(v)).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.1)(i128::from(v)).map_err(E::custom)
        }
    }
    d.deserialize_i64(V(expecting, check))
}

/// A version name, checked where it is written.
#[derive(Debug)]
pub(super) struct VersionName(pub(super) Version);

impl<'de> Deserialize<'de> for VersionName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a version name such as v1").map(Self)
    }
}

/// A cookie name, checked where it is written.
#[derive(Debug)]
pub(super) struct CookieValue(pub(super) CookieName);

impl<'de> Deserialize<'de> for CookieValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a cookie name such as meshctl-version").map(Self)
    }
}

/// A weight 0..=100, checked where it is written.
#[derive(Debug)]
pub(super) struct WeightValue(pub(super) Weight);

impl<'de> Deserialize<'de> for WeightValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_int(d, "a whole percentage from 0 to 100", |n| {
            u64::try_from(n)
                .ok()
                .and_then(|v| Weight::try_from(v).ok())
                .map(Self)
                .ok_or_else(|| format!("weight {n} is out of range: use 0 to 100"))
        })
    }
}

/// Leaf values that validate themselves while parsing, so the YAML parser
/// reports the position; `FromStr` gives flags the same rules and messages.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub(super) struct $name(pub(super) String);

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| Self(s.to_owned()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                parse_str(d, "a string")
            }
        }
    };
}

checked_string!(
    /// A DNS-1123 label: service, namespace and webhook names.
    Label,
    |s| {
        if is_dns1123_label(s) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. discounts)"
            ))
        }
    }
);

checked_string!(
    /// A DNS-1123 subdomain: gateway and secret names.
    Subdomain,
    |s| {
        if is_dns1123_subdomain(s) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a valid Kubernetes name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. discounts-gateway)"
            ))
        }
    }
);

checked_string!(
    /// An external host name (`*.example.com` allowed).
    Host,
    |s| {
        if is_valid_host(s) && s != "*" {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a valid host name: use a DNS name such as discounts.example.com or *.example.com"
            ))
        }
    }
);

/// A port number 1..=65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Port(pub(super) NonZeroU16);

pub(super) fn port_from_u64(n: u64) -> Result<Port, String> {
    u16::try_from(n)
        .ok()
        .and_then(NonZeroU16::new)
        .map(Port)
        .ok_or_else(|| format!("port {n} is out of range: use 1 to 65535"))
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_int(d, "a port number from 1 to 65535", |n| {
            u64::try_from(n)
                .map_err(|_| format!("port {n} is out of range: use 1 to 65535"))
                .and_then(port_from_u64)
        })
    }
}

/// A percentage 0..=100 (fractions allowed).
#[derive(Clone, Copy, Debug)]
pub(super) struct Percent(pub(super) f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage from 0 to 100")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
                if (0.0..=100.0).contains(&v) {
                    Ok(Percent(v))
                } else {
                    Err(E::custom(format!(
                        "{v} is out of range: use a percentage from 0 to 100 (e.g. 99.5)"
                    )))
                }
            }
            #[allow(clippy::cast_precision_loss, reason = "checked against 0..=100 next")]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
            #[allow(clippy::cast_precision_loss, reason = "checked against 0..=100 next")]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_f64(V)
    }
}

/// A duration such as `30s`, `500ms`, `5m`.
#[derive(Clone, Copy, Debug)]
pub(super) struct DurationValue(pub(super) Duration);

impl FromStr for DurationValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        meshproxy::istio::validate::parse_duration(s)
            .map(Self)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a duration: use a number with a unit, e.g. \"30s\", \"500ms\" or \"5m\""
                )
            })
    }
}

deserialize_from_str!(
    DurationValue,
    "a duration with a unit, e.g. \"30s\", \"500ms\" or \"5m\""
);

/// `rollout.interval`: a duration, or `auto`.
#[derive(Clone, Copy, Debug)]
pub(super) enum IntervalValue {
    /// Sized from the traffic (`--interval auto`).
    Auto,
    /// A fixed window.
    Every(DurationValue),
}

impl FromStr for IntervalValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Self::Auto);
        }
        s.parse().map(Self::Every).map_err(|_| {
            format!(
                "{s:?} is neither a duration nor `auto`: use a number with a unit, e.g. \"30s\", \"500ms\" or \"5m\", or `auto` to size each window from the traffic"
            )
        })
    }
}

deserialize_from_str!(
    IntervalValue,
    "a duration with a unit, e.g. \"30s\", \"500ms\" or \"5m\", or `auto`"
);

/// An absolute `http` or `https` URL.
#[derive(Clone, Debug)]
pub(super) struct HttpUrl(pub(super) reqwest::Url);

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let fix = "use an absolute http(s) URL, e.g. http://127.0.0.1:15000/metrics";
        let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e}): {fix}"))?;
        if matches!(url.scheme(), "http" | "https") && url.has_host() {
            Ok(Self(url))
        } else {
            Err(format!("{s:?} is not an http(s) URL: {fix}"))
        }
    }
}

deserialize_from_str!(HttpUrl, "an http(s) URL");

/// Kubernetes labels (`key: value`), keys and values checked.
#[derive(Clone, Debug, Default)]
pub(super) struct Labels(pub(super) BTreeMap<String, String>);

pub(super) fn check_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A label key: an optional DNS prefix and `/`, then a name.
pub(super) struct LabelKey(pub(super) String);

impl FromStr for LabelKey {
    type Err = String;
    fn from_str(key: &str) -> Result<Self, String> {
        let name = match key.split_once('/') {
            Some((prefix, name)) if is_dns1123_subdomain(prefix) => name,
            Some(_) => "",
            None => key,
        };
        if check_label_name(name) {
            Ok(Self(key.to_owned()))
        } else {
            Err(format!(
                "{key:?} is not a valid label key: use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.' (e.g. version or app.kubernetes.io/version)"
            ))
        }
    }
}

deserialize_from_str!(LabelKey, "a label key");

/// A label value: empty, or a name.
pub(super) struct LabelValue(pub(super) String);

impl FromStr for LabelValue {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        if value.is_empty() || check_label_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "{value:?} is not a valid label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            ))
        }
    }
}

deserialize_from_str!(LabelValue, "a label value");

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_map(
            d,
            "a map of label keys to values (e.g. {version: v1})",
            |pairs: Vec<(LabelKey, LabelValue)>| {
                Ok(Labels(pairs.into_iter().map(|(k, v)| (k.0, v.0)).collect()))
            },
        )
    }
}

/// `versions`: a list of names (`[v1, v2]`, labels `version: NAME`) or a map
/// of name to pod labels, in order; names unique.
#[derive(Debug, Default)]
pub(super) struct RawVersions(pub(super) Vec<(Version, Option<Labels>)>);

impl<'de> Deserialize<'de> for RawVersions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn push<E: de::Error>(
            out: &mut Vec<(Version, Option<Labels>)>,
            v: Version,
            labels: Option<Labels>,
        ) -> Result<(), E> {
            if out.iter().any(|(seen, _)| *seen == v) {
                return Err(E::custom(format!(
                    "version {:?} is given twice: each version needs its own name",
                    v.as_str()
                )));
            }
            out.push((v, labels));
            Ok(())
        }
        impl<'de> Visitor<'de> for V {
            type Value = RawVersions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of version names (e.g. [v1, v2]) or a map of version name to pod labels",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawVersions, A::Error> {
                let mut out = Vec::new();
                while let Some(VersionName(v)) = seq.next_element()? {
                    push(&mut out, v, None)?;
                }
                Ok(RawVersions(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawVersions, A::Error> {
                let mut out = Vec::new();
                while let Some(VersionName(v)) = map.next_key()? {
                    let labels = map.next_value::<Option<Labels>>()?;
                    push(&mut out, v, labels)?;
                }
                Ok(RawVersions(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `weights`: a map of version to percent, in order, summing to 100.
#[derive(Debug)]
pub(super) struct RawWeights(pub(super) Split);

impl<'de> Deserialize<'de> for RawWeights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_map(
            d,
            "a map of version to percent (e.g. {v1: 90, v2: 10})",
            |pairs: Vec<(VersionName, WeightValue)>| {
                Split::new(pairs.into_iter().map(|(v, w)| (v.0, w.0)).collect())
                    .map(RawWeights)
                    .map_err(|e| split_fix(&e))
            },
        )
    }
}

pub(super) fn split_fix(e: &TrafficError) -> String {
    match e {
        TrafficError::Sum { .. } => format!("{e}: make the weights add up to 100"),
        TrafficError::Duplicate(_) => format!("{e}: give each version one weight"),
        TrafficError::Empty => "no weights given: list at least one version (e.g. v1=100)".into(),
        _ => e.to_string(),
    }
}

/// `rollout.grpcErrorCodes`: a list of gRPC status names or numbers
/// (`[INTERNAL, 14]`), or one comma-separated string.
#[derive(Clone, Debug)]
pub(super) struct GrpcCodesValue(pub(super) GrpcCodes);

impl<'de> Deserialize<'de> for GrpcCodesValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Number(u64),
            Name(String),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<Item>),
            Text(String),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            de::Error::custom(format!(
                "expected a list of gRPC status codes (e.g. [INTERNAL, UNAVAILABLE]); valid names: {}",
                crate::metrics::grpc::GrpcCode::names()
            ))
        })?;
        let parsed = match raw {
            Raw::Text(t) => t.parse(),
            Raw::List(items) => {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|i| match i {
                        Item::Number(n) => n.to_string(),
                        Item::Name(s) => s,
                    })
                    .collect();
                GrpcCodes::parse_items(items.iter().map(String::as_str))
            }
        };
        parsed.map(GrpcCodesValue).map_err(de::Error::custom)
    }
}

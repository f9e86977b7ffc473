//! gRPC status codes and the one rule for a failed request.
//!
//! A gRPC call that fails is usually an HTTP 200 whose trailers carry
//! `grpc-status`; Istio (and meshproxy) report that status as the
//! `grpc_response_status` label of `istio_requests_total`, as its number
//! (`"13"`). A request counts as **failed** when
//!
//! - its HTTP status (`response_code`) is 5xx, or
//! - its gRPC status is in the chosen set of server faults ([`GrpcCodes`];
//!   by default `UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
//!   UNAVAILABLE, DATA_LOSS`: the codes a server or the network causes, not
//!   the client's own mistakes such as `NOT_FOUND` or `INVALID_ARGUMENT`).
//!
//! [`failure`] applies that rule to one series and names its cause, so the
//! analysis can say which codes failed (`INTERNAL ×10, UNAVAILABLE ×2`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A gRPC status code (the 17 of the gRPC specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrpcCode {
    /// 0: not an error.
    Ok,
    /// 1: cancelled, typically by the caller.
    Cancelled,
    /// 2: unknown error (also any status number a client does not know).
    Unknown,
    /// 3: the client sent an invalid argument.
    InvalidArgument,
    /// 4: the deadline passed before the call completed.
    DeadlineExceeded,
    /// 5: an entity was not found.
    NotFound,
    /// 6: the entity already exists.
    AlreadyExists,
    /// 7: the caller may not do this.
    PermissionDenied,
    /// 8: a quota or resource ran out.
    ResourceExhausted,
    /// 9: the system is not in a state for this call.
    FailedPrecondition,
    /// 10: aborted (e.g. a concurrency conflict).
    Aborted,
    /// 11: out of the valid range.
    OutOfRange,
    /// 12: the method is not implemented.
    Unimplemented,
    /// 13: an internal error of the server.
    Internal,
    /// 14: the service is unavailable (retryable).
    Unavailable,
    /// 15: unrecoverable data loss.
    DataLoss,
    /// 16: no valid credentials.
    Unauthenticated,
}

/// A value that is not a gRPC status code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a gRPC status code: use names (case-insensitive) or numbers 0-16, comma-separated; valid names: {}",
    GrpcCode::names()
)]
pub struct CodeError {
    /// The rejected value.
    pub value: String,
}

/// A set of gRPC status codes that count as failed requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcCodes(BTreeSet<GrpcCode>);

// === impl GrpcCode ===

impl GrpcCode {
    /// Every code, in number order.
    pub const ALL: [Self; 17] = [
        Self::Ok,
        Self::Cancelled,
        Self::Unknown,
        Self::InvalidArgument,
        Self::DeadlineExceeded,
        Self::NotFound,
        Self::AlreadyExists,
        Self::PermissionDenied,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::OutOfRange,
        Self::Unimplemented,
        Self::Internal,
        Self::Unavailable,
        Self::DataLoss,
        Self::Unauthenticated,
    ];

    /// The number on the wire (`grpc-status: 13`).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The code of a wire number; a number the specification does not
    /// define is `UNKNOWN`, as gRPC clients treat it.
    pub fn from_number(n: u32) -> Self {
        usize::try_from(n)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
            .unwrap_or(Self::Unknown)
    }

    /// The canonical name (`DEADLINE_EXCEEDED`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
            Self::DataLoss => "DATA_LOSS",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// Every name, comma-separated (for error messages).
    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The code a `grpc_response_status` label carries: Istio writes the
    /// number (`"13"`); a name (`"INTERNAL"`) is accepted too. `None` for
    /// an empty label (not a gRPC request); a label that is neither is
    /// `UNKNOWN`.
    pub fn from_label(label: &str) -> Option<Self> {
        let label = label.trim();
        if label.is_empty() {
            return None;
        }
        Some(match label.parse::<u32>() {
            Ok(n) => Self::from_number(n),
            Err(_) => label.parse().unwrap_or(Self::Unknown),
        })
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GrpcCode {
    type Err = CodeError;

    /// A name in any case (`internal`, `Deadline_Exceeded`, also with `-`
    /// for `_`) or a number 0-16.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || CodeError {
            value: s.to_owned(),
        };
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            let n: usize = t.parse().map_err(|_| err())?;
            return Self::ALL.get(n).copied().ok_or_else(err);
        }
        let upper = t.to_ascii_uppercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|c| c.name() == upper)
            .ok_or_else(err)
    }
}

// === impl GrpcCodes ===

impl GrpcCodes {
    /// The codes a server or the network causes: `UNKNOWN,
    /// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS`.
    pub const SERVER_FAULTS: [GrpcCode; 6] = [
        GrpcCode::Unknown,
        GrpcCode::DeadlineExceeded,
        GrpcCode::Unimplemented,
        GrpcCode::Internal,
        GrpcCode::Unavailable,
        GrpcCode::DataLoss,
    ];

    /// A set of the given codes.
    pub fn new(codes: impl IntoIterator<Item = GrpcCode>) -> Self {
        Self(codes.into_iter().collect())
    }

    /// Is `code` in the set?
    pub fn contains(&self, code: GrpcCode) -> bool {
        self.0.contains(&code)
    }

    /// The codes, in number order.
    pub fn iter(&self) -> impl Iterator<Item = GrpcCode> + '_ {
        self.0.iter().copied()
    }

    /// Parses each item of a list (names or numbers, see [`GrpcCode`]'s
    /// `FromStr`); duplicates are merged. An empty list is an empty set
    /// (no gRPC status counts as failed, only 5xx).
    pub fn parse_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, CodeError> {
        items
            .into_iter()
            .map(str::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }
}

impl Default for GrpcCodes {
    fn default() -> Self {
        Self::new(Self::SERVER_FAULTS)
    }
}

impl FromStr for GrpcCodes {
    type Err = CodeError;

    /// A comma-separated list (`INTERNAL,unavailable,4`); `""` or `none` is
    /// the empty set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("none") {
            return Ok(Self(BTreeSet::new()));
        }
        Self::parse_items(t.split(','))
    }
}

impl fmt::Display for GrpcCodes {
    /// `INTERNAL,UNAVAILABLE`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(GrpcCode::name).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for GrpcCodes {
    /// A list of names (`["INTERNAL", "UNAVAILABLE"]`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(GrpcCode::name))
    }
}

impl<'de> Deserialize<'de> for GrpcCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Self::parse_items(names.iter().map(String::as_str)).map_err(serde::de::Error::custom)
    }
}

/// Why a request counts as failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// Its gRPC status is in the failing set.
    Grpc(GrpcCode),
    /// Its HTTP status is 5xx (and it has no failing gRPC status).
    Http(u16),
}

impl fmt::Display for Failure {
    /// `INTERNAL` or `HTTP 503`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grpc(c) => f.write_str(c.name()),
            Self::Http(s) => write!(f, "HTTP {s}"),
        }
    }
}

/// The rule: is a request with HTTP status label `response_code` and gRPC
/// status label `grpc_response_status` (empty for plain HTTP) a failure,
/// and why? A failing gRPC status names the cause even when the HTTP
/// status is also 5xx, as the gRPC status is the more precise of the two.
pub fn failure(
    response_code: &str,
    grpc_response_status: &str,
    codes: &GrpcCodes,
) -> Option<Failure> {
    if let Some(code) = GrpcCode::from_label(grpc_response_status)
        && codes.contains(code)
    {
        return Some(Failure::Grpc(code));
    }
    let http = response_code.trim();
    if http.starts_with('5') {
        return Some(Failure::Http(http.parse().unwrap_or(500)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_parse_case_insensitively() {
        assert_eq!("internal".parse(), Ok(GrpcCode::Internal));
        assert_eq!("Deadline_Exceeded".parse(), Ok(GrpcCode::DeadlineExceeded));
        assert_eq!("deadline-exceeded".parse(), Ok(GrpcCode::DeadlineExceeded));
        assert_eq!(" 14 ".parse(), Ok(GrpcCode::Unavailable));
        assert_eq!("0".parse(), Ok(GrpcCode::Ok));
        for c in GrpcCode::ALL {
            assert_eq!(c.name().parse(), Ok(c));
            assert_eq!(c.number().to_string().parse(), Ok(c));
            assert_eq!(GrpcCode::from_number(u32::from(c.number())), c);
        }
    }

    #[test]
    fn bad_codes_list_the_valid_names() {
        let e = "17".parse::<GrpcCode>().unwrap_err().to_string();
        assert!(e.starts_with("\"17\" is not a gRPC status code"), "{e}");
        assert!(
            e.contains("DEADLINE_EXCEEDED") && e.contains("UNAUTHENTICATED"),
            "{e}"
        );
        let e = "INTERNAL,teapot".parse::<GrpcCodes>().unwrap_err();
        assert_eq!(e.value, "teapot");
        assert!("".parse::<GrpcCode>().is_err());
        assert!("-1".parse::<GrpcCode>().is_err());
    }

    #[test]
    fn sets_parse_print_and_round_trip() {
        let d = GrpcCodes::default();
        assert_eq!(
            d.to_string(),
            "UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS"
        );
        let s: GrpcCodes = "unavailable, 13,INTERNAL".parse().unwrap();
        assert_eq!(s.to_string(), "INTERNAL,UNAVAILABLE");
        assert_eq!("none".parse::<GrpcCodes>().unwrap().to_string(), "none");
        assert_eq!("".parse::<GrpcCodes>().unwrap(), GrpcCodes::new([]));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["INTERNAL","UNAVAILABLE"]"#);
        assert_eq!(serde_json::from_str::<GrpcCodes>(&json).unwrap(), s);
        assert!(serde_json::from_str::<GrpcCodes>(r#"["NOPE"]"#).is_err());
    }

    #[test]
    fn labels_follow_istio_and_unknown_numbers_are_unknown() {
        assert_eq!(GrpcCode::from_label(""), None);
        assert_eq!(GrpcCode::from_label("13"), Some(GrpcCode::Internal));
        assert_eq!(GrpcCode::from_label("INTERNAL"), Some(GrpcCode::Internal));
        assert_eq!(GrpcCode::from_label("99"), Some(GrpcCode::Unknown));
        assert_eq!(GrpcCode::from_label("garbage"), Some(GrpcCode::Unknown));
    }

    #[test]
    fn a_request_fails_on_5xx_or_a_server_fault() {
        let d = GrpcCodes::default();
        // Plain HTTP: only 5xx.
        assert_eq!(failure("200", "", &d), None);
        assert_eq!(failure("404", "", &d), None);
        assert_eq!(failure("503", "", &d), Some(Failure::Http(503)));
        // gRPC: HTTP 200 with a failing status in the trailers.
        assert_eq!(failure("200", "0", &d), None);
        assert_eq!(
            failure("200", "13", &d),
            Some(Failure::Grpc(GrpcCode::Internal))
        );
        assert_eq!(
            failure("200", "14", &d),
            Some(Failure::Grpc(GrpcCode::Unavailable))
        );
        // Client faults are not the server's.
        assert_eq!(failure("200", "5", &d), None);
        assert_eq!(failure("200", "3", &d), None);
        // Both: the gRPC status names the cause, counted once.
        assert_eq!(
            failure("503", "14", &d),
            Some(Failure::Grpc(GrpcCode::Unavailable))
        );
        // A 5xx stays a failure whatever the set says about its gRPC status.
        let only_internal: GrpcCodes = "INTERNAL".parse().unwrap();
        assert_eq!(
            failure("503", "14", &only_internal),
            Some(Failure::Http(503))
        );
        assert_eq!(failure("200", "14", &only_internal), None);
        assert_eq!(failure("200", "13", &GrpcCodes::new([])), None);
        assert_eq!(Failure::Grpc(GrpcCode::DataLoss).to_string(), "DATA_LOSS");
        assert_eq!(Failure::Http(502).to_string(), "HTTP 502");
    }
}

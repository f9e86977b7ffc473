//! gRPC vocabulary the request path needs: status codes and their names,
//! `grpc-timeout`, and the status the proxy's own replies to gRPC clients carry.
//!
//! A gRPC client reads the outcome of a call from `grpc-status`, not from
//! the HTTP status, so the proxy's own errors reach it as Envoy sends them:
//! HTTP 200 with `content-type: application/grpc` and `grpc-status` /
//! `grpc-message` in the headers of an otherwise empty response (a
//! trailers-only response). HTTP statuses map to gRPC ones as in gRPC's
//! `http-grpc-status-mapping.md` (503 → `UNAVAILABLE`, 504 →
//! `DEADLINE_EXCEEDED` as Envoy's timeout reply, …).

use std::time::Duration;

use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// `grpc-status`.
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-timeout`.
pub static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// `OK`.
pub const OK: u8 = 0;
/// `CANCELLED`.
pub const CANCELLED: u8 = 1;
/// `UNKNOWN`.
pub const UNKNOWN: u8 = 2;
/// `DEADLINE_EXCEEDED`.
pub const DEADLINE_EXCEEDED: u8 = 4;
/// `RESOURCE_EXHAUSTED`.
pub const RESOURCE_EXHAUSTED: u8 = 8;
/// `UNIMPLEMENTED`.
pub const UNIMPLEMENTED: u8 = 12;
/// `INTERNAL`.
pub const INTERNAL: u8 = 13;
/// `UNAVAILABLE`.
pub const UNAVAILABLE: u8 = 14;

/// The canonical names of gRPC status codes 0..=16.
const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Parses a gRPC status as Istio's `fault.abort.grpcStatus` spells it
/// (`UNAVAILABLE`; the number `14` is accepted too).
pub fn parse_code(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return (usize::from(n) < NAMES.len()).then_some(n);
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .and_then(|i| u8::try_from(i).ok())
}

/// The `grpc-status` in `headers`: `None` when absent; a value that is not
/// a code 0..=16 reads as `UNKNOWN`, as gRPC clients read it.
pub fn status_of(headers: &HeaderMap) -> Option<u8> {
    let v = headers.get(&GRPC_STATUS)?;
    Some(
        std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(|s| s.parse::<u8>().ok())
            .filter(|c| usize::from(*c) < NAMES.len())
            .unwrap_or(UNKNOWN),
    )
}

/// The gRPC status a client derives from an HTTP status when a response
/// carries none (gRPC's HTTP-to-gRPC mapping).
pub fn from_http(status: StatusCode) -> u8 {
    match status.as_u16() {
        200 => UNKNOWN,
        400 => INTERNAL,
        401 => 16,
        403 => 7,
        404 => UNIMPLEMENTED,
        429 | 502..=504 => UNAVAILABLE,
        _ => UNKNOWN,
    }
}

/// The HTTP status sent instead of a gRPC status to a client that is not
/// gRPC (a `grpcStatus` fault on a plain HTTP request), as Envoy maps it.
pub fn to_http(code: u8) -> StatusCode {
    match code {
        OK => StatusCode::OK,
        CANCELLED => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        3 | 9 | 11 => StatusCode::BAD_REQUEST,
        DEADLINE_EXCEEDED => StatusCode::GATEWAY_TIMEOUT,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        RESOURCE_EXHAUSTED => StatusCode::TOO_MANY_REQUESTS,
        UNIMPLEMENTED => StatusCode::NOT_IMPLEMENTED,
        UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        16 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Parses `grpc-timeout` (`100m`, `5S`: up to 8 digits and a unit of
/// `H`, `M`, `S`, `m`, `u`, `n`); `None` when absent or malformed.
pub fn timeout_of(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(&GRPC_TIMEOUT)?.as_bytes();
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n * 3600),
        b"M" => Duration::from_secs(n * 60),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `grpc-status` as a header value.
pub fn status_value(code: u8) -> HeaderValue {
    HeaderValue::from(u16::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_by_name_and_number() {
        assert_eq!(parse_code("UNAVAILABLE"), Some(14));
        assert_eq!(parse_code("unavailable"), Some(14));
        assert_eq!(parse_code("4"), Some(4));
        assert_eq!(parse_code("17"), None);
        assert_eq!(parse_code("BROKEN"), None);
    }

    #[test]
    fn grpc_timeout_units() {
        let t = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(&GRPC_TIMEOUT, HeaderValue::from_static(v));
            timeout_of(&h)
        };
        assert_eq!(t("100m"), Some(Duration::from_millis(100)));
        assert_eq!(t("2S"), Some(Duration::from_secs(2)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("5u"), Some(Duration::from_micros(5)));
        assert_eq!(t("123456789m"), None);
        assert_eq!(t("m"), None);
        assert_eq!(t("10x"), None);
    }

    #[test]
    fn statuses_read_from_headers_and_mapped() {
        let mut h = HeaderMap::new();
        assert_eq!(status_of(&h), None);
        h.insert(&GRPC_STATUS, HeaderValue::from_static("13"));
        assert_eq!(status_of(&h), Some(INTERNAL));
        h.insert(&GRPC_STATUS, HeaderValue::from_static("x"));
        assert_eq!(status_of(&h), Some(UNKNOWN));
        assert_eq!(from_http(StatusCode::SERVICE_UNAVAILABLE), UNAVAILABLE);
        assert_eq!(to_http(UNAVAILABLE), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(to_http(DEADLINE_EXCEEDED), StatusCode::GATEWAY_TIMEOUT);
    }
}

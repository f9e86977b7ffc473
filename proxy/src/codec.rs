//! HTTP/1.1 message heads and body framing for the lean lane.
//!
//! Heads are parsed by `httparse` (the parser hyper itself uses); this
//! module only turns its output into `http` types, decides how a body is
//! framed (RFC 9112 §6.3), serialises heads, and finds where a chunked body
//! ends so it can be forwarded byte for byte.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{BufMut as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};

/// Most header fields accepted in one head (hyper's default).
pub const MAX_HEADERS: usize = 100;

/// Why a head could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// More than [`MAX_HEADERS`] fields (answered 431).
    TooManyHeaders,
    /// Not HTTP/1.x (answered 400).
    Invalid,
}

/// Byte ranges of one header field inside a head.
pub type FieldRange = (Range<usize>, Range<usize>);

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    /// The head's bytes, request line to the empty line.
    pub raw: Bytes,
    /// Request method.
    pub method: Method,
    /// Request target.
    pub uri: Uri,
    /// HTTP/1.x minor version.
    pub minor: u8,
    /// Header fields (values share `raw`).
    pub headers: HeaderMap,
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// A parsed response head; header fields are ranges into `raw`.
#[derive(Debug)]
pub struct ResponseHead {
    /// The head's bytes.
    pub raw: Bytes,
    /// Status code.
    pub status: StatusCode,
    /// Header fields.
    pub fields: Vec<FieldRange>,
    /// How the body is delimited (before `HEAD`/status rules).
    pub framing: Framing,
    /// Whether the connection may carry another request afterwards (never
    /// after a close-delimited body).
    pub keep_alive: bool,
}

// === impl RequestHead ===

/// Parses the request head at the start of `buf`, splitting it off.
/// `Ok(None)`: the head is incomplete. `scratch` is reused between calls
/// to avoid an allocation per request.
pub fn parse_request(
    buf: &mut BytesMut,
    scratch: &mut Vec<FieldRange>,
) -> Result<Option<RequestHead>, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let base = buf.as_ptr() as usize;
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(_) => return Err(HeadError::Invalid),
    };
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(HeadError::Invalid)?;
    let path = req
        .path
        .map(|p| offset(base, p.as_bytes()))
        .ok_or(HeadError::Invalid)?;
    let minor = req.version.ok_or(HeadError::Invalid)?;
    scratch.clear();
    scratch.extend(
        req.headers
            .iter()
            .map(|h| (offset(base, h.name.as_bytes()), offset(base, h.value))),
    );
    let raw = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(raw.slice(path)).map_err(|_| HeadError::Invalid)?;
    // Room for the fields the proxy adds (x-forwarded-*, x-request-id).
    let mut headers = HeaderMap::with_capacity(scratch.len() + 4);
    for (name, value) in scratch.iter() {
        let name = HeaderName::from_bytes(&raw[name.clone()]).map_err(|_| HeadError::Invalid)?;
        let value = HeaderValue::from_maybe_shared(raw.slice(value.clone()))
            .map_err(|_| HeadError::Invalid)?;
        headers.append(name, value);
    }
    Ok(Some(RequestHead {
        raw,
        method,
        uri,
        minor,
        headers,
    }))
}

/// The range `part` occupies in the buffer starting at address `base`.
fn offset(base: usize, part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - base;
    start..start + part.len()
}

/// The request's body length: `Ok(0)` without `content-length`, `Err` when
/// it has several or an invalid one, or uses `transfer-encoding`.
pub fn request_body_len(headers: &HeaderMap) -> Result<u64, ()> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(());
    }
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(0),
        (Some(v), None) => parse_length(v.as_bytes()).ok_or(()),
        _ => Err(()),
    }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether a comma-separated header (`Connection`) lists `token`.
pub fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| lists(v.as_bytes(), token))
}

fn lists(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

// === impl ResponseHead ===

/// Parses the response head at the start of `buf`, splitting it off.
/// `Ok(None)`: incomplete.
pub fn parse_response(
    buf: &mut BytesMut,
    mut fields: Vec<FieldRange>,
) -> Result<Option<ResponseHead>, (HeadError, Vec<FieldRange>)> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let base = buf.as_ptr() as usize;
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err((HeadError::TooManyHeaders, fields)),
        Err(_) => return Err((HeadError::Invalid, fields)),
    };
    let (Some(code), Some(minor)) = (resp.code, resp.version) else {
        return Err((HeadError::Invalid, fields));
    };
    let Ok(status) = StatusCode::from_u16(code) else {
        return Err((HeadError::Invalid, fields));
    };
    let mut length = None;
    let mut chunked = false;
    let mut close = minor == 0;
    let mut bad = false;
    fields.clear();
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            match parse_length(h.value) {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => bad = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The final coding decides (RFC 9112 §6.3).
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                bad = true;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if lists(h.value, "close") {
                close = true;
            } else if lists(h.value, "keep-alive") {
                close = false;
            }
        }
        fields.push((offset(base, name), offset(base, h.value)));
    }
    if bad {
        return Err((HeadError::Invalid, fields));
    }
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::Close
    };
    let raw = buf.split_to(len).freeze();
    Ok(Some(ResponseHead {
        raw,
        status,
        fields,
        framing,
        keep_alive: !close && framing != Framing::Close,
    }))
}

impl ResponseHead {
    /// The framing of the body that follows, for a request with `method`.
    pub fn body_framing(&self, method: &Method) -> Framing {
        if method == Method::HEAD
            || self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED
        {
            Framing::Empty
        } else {
            self.framing
        }
    }

    /// Each header field as (name, value) bytes.
    pub fn field_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }

    /// The header fields as a `HeaderMap` (for header operations).
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.fields.len());
        for (n, v) in &self.fields {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&self.raw[n.clone()]),
                HeaderValue::from_maybe_shared(self.raw.slice(v.clone())),
            ) {
                map.append(name, value);
            }
        }
        map
    }
}

/// Hop-by-hop fields a proxy never forwards (RFC 9110 §7.6.1), besides
/// those the `Connection` field names. `transfer-encoding` is framing and
/// handled by the caller.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Whether `name` is listed in any of the head's `Connection` fields.
pub fn named_by_connection(fields: &[(&[u8], &[u8])], name: &[u8]) -> bool {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .any(|(_, v)| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
        })
}

// === serialising ===

/// Writes a request head for `HTTP/1.1` to `out`.
pub fn write_request_head(out: &mut BytesMut, method: &Method, uri: &Uri, headers: &HeaderMap) {
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    let target = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    out.put_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.put_slice(b" HTTP/1.1\r\n");
    write_fields(out, headers);
    out.put_slice(b"\r\n");
}

/// Writes `name: value\r\n` for every field.
pub fn write_fields(out: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

/// Writes one `name: value\r\n`.
pub fn write_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes `HTTP/1.1 CODE REASON\r\n`.
pub fn write_status_line(out: &mut BytesMut, status: StatusCode) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
}

/// Writes one chunk of a chunked body (nothing for empty data).
pub fn write_chunk(out: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    write_chunk_size(out, data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Writes a chunk's size line; the data and its CRLF follow.
pub fn write_chunk_size(out: &mut BytesMut, len: usize) {
    let mut hex = [0u8; 16];
    let mut n = len;
    let mut i = hex.len();
    while n > 0 || i == hex.len() {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.put_slice(&hex[i..]);
    out.put_slice(b"\r\n");
}

/// The last chunk of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

// === chunked framing ===

/// Follows a chunked body as its bytes pass by, to find where it ends.
#[derive(Debug, Default)]
pub struct ChunkedEnd {
    state: ChunkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// A chunked body that does not follow RFC 9112 §7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadChunk;

impl ChunkedEnd {
    /// How many bytes at the start of `buf` belong to the body, as far as
    /// they can be framed now. The rest (an incomplete size or trailer
    /// line) must be offered again with more bytes after it.
    pub fn advance(&mut self, buf: &[u8]) -> Result<usize, BadChunk> {
        let mut p = 0;
        loop {
            let rest = &buf[p..];
            match self.state {
                ChunkState::Done => return Ok(p),
                ChunkState::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        p += n;
                        self.state = if size == 0 {
                            ChunkState::Trailer
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => return Ok(p),
                    Err(_) => return Err(BadChunk),
                },
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(p);
                    }
                    let take = left.min(rest.len() as u64);
                    p += usize::try_from(take).map_err(|_| BadChunk)?;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(p);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(BadChunk);
                    }
                    p += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                        return Ok(p);
                    };
                    p += eol + 2;
                    if eol == 0 {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }

    /// Whether the last chunk and the trailer section have passed.
    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head_and_keeps_what_follows() {
        let mut buf = BytesMut::from(
            &b"GET /a?b=1 HTTP/1.1\r\nHost: discounts\r\nX-Two: 1\r\nx-two: 2\r\n\r\nNEXT"[..],
        );
        let mut scratch = Vec::new();
        let head = parse_request(&mut buf, &mut scratch).unwrap().unwrap();
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri, "/a?b=1");
        assert_eq!(head.minor, 1);
        assert_eq!(head.headers["host"], "discounts");
        assert_eq!(head.headers.get_all("x-two").iter().count(), 2);
        assert_eq!(&buf[..], b"NEXT");
        assert_eq!(request_body_len(&head.headers), Ok(0));
    }

    #[test]
    fn incomplete_and_invalid_request_heads() {
        let mut scratch = Vec::new();
        let mut partial = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
        assert!(parse_request(&mut partial, &mut scratch).unwrap().is_none());
        assert_eq!(partial.len(), 25, "an incomplete head stays in the buffer");
        let mut bad = BytesMut::from(&b"GET / HTTP/9.1\r\n\r\n"[..]);
        assert_eq!(
            parse_request(&mut bad, &mut scratch).unwrap_err(),
            HeadError::Invalid
        );
        let mut many = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_request(&mut many, &mut scratch).unwrap_err(),
            HeadError::TooManyHeaders
        );
    }

    #[test]
    fn request_body_lengths() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(request_body_len(&h), Ok(12));
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("13"));
        assert_eq!(request_body_len(&h), Err(()), "two lengths");
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("+1"));
        assert_eq!(request_body_len(&h), Err(()));
        let mut te = HeaderMap::new();
        te.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert_eq!(request_body_len(&te), Err(()));
    }

    #[test]
    fn response_framing() {
        let framing = |head: &[u8]| {
            let mut buf = BytesMut::from(head);
            parse_response(&mut buf, Vec::new())
                .map_err(|(e, _)| e)
                .map(|h| h.map(|h| (h.framing, h.keep_alive)))
        };
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
            Ok(Some((Framing::Length(5), true)))
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Ok(Some((Framing::Chunked, true)))
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\n\r\n"),
            Ok(Some((Framing::Close, false)))
        );
        assert_eq!(
            framing(b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"),
            Ok(Some((Framing::Empty, false)))
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n"),
            Ok(Some((Framing::Length(1), false)))
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
            Err(HeadError::Invalid)
        );
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\n"), Ok(None));
    }

    #[test]
    fn chunked_end_is_found_across_reads() {
        let body = b"4\r\nRust\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        // Every split point gives the same end.
        for split in 0..body.len() {
            let mut c = ChunkedEnd::default();
            let first = c.advance(&body[..split]).unwrap();
            assert!(first <= split);
            let mut total = first;
            let mut rest = body[first..].to_vec();
            while !c.done() {
                let n = c.advance(&rest).unwrap();
                assert!(n > 0, "split {split}: stuck at {total}");
                total += n;
                rest.drain(..n);
            }
            assert_eq!(total, end, "split {split}");
        }
        let mut c = ChunkedEnd::default();
        assert_eq!(c.advance(b"4\r\nRustXX"), Err(BadChunk));
        assert_eq!(ChunkedEnd::default().advance(b"zz\r\n"), Err(BadChunk));
    }

    /// Bytes that look a little like HTTP, to reach deeper into the parsers.
    fn noise(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"GET ",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"\r\n",
            b"\r\n\r\n",
            b": ",
            b"/",
            b"host",
            b"content-length",
            b"transfer-encoding",
            b"chunked",
            b"0",
            b"ff",
            b";x=y",
            b" ",
            b"\n",
            b"\0",
            b"\x7f",
            b"\xff",
            b"200 OK",
        ];
        let mut out = Vec::new();
        while out.len() < len {
            if rng.bool() {
                out.extend_from_slice(PIECES[rng.usize(..PIECES.len())]);
            } else {
                out.push(rng.u8(..));
            }
        }
        out
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_head_parsers() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut scratch = Vec::new();
        let mut fields = Vec::new();
        for _ in 0..20_000 {
            let len = rng.usize(..160);
            let bytes = noise(&mut rng, len);
            let mut buf = BytesMut::from(&bytes[..]);
            if let Ok(Some(head)) = parse_request(&mut buf, &mut scratch) {
                assert_eq!(head.raw.len() + buf.len(), bytes.len());
                assert!(head.raw.ends_with(b"\n"), "{:?}", head.raw);
            }
            let mut buf = BytesMut::from(&bytes[..]);
            match parse_response(&mut buf, std::mem::take(&mut fields)) {
                Ok(Some(head)) => {
                    assert_eq!(head.raw.len() + buf.len(), bytes.len());
                    fields = head.fields;
                }
                Ok(None) => {}
                Err((_, f)) => fields = f,
            }
            let _ = ChunkedEnd::default().advance(&bytes);
        }
    }

    #[test]
    fn chunked_ends_are_found_in_random_bodies_split_at_random() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2_000 {
            let mut body = Vec::new();
            for _ in 0..rng.usize(..5) {
                let n = rng.usize(1..300);
                body.extend_from_slice(format!("{n:x}").as_bytes());
                if rng.bool() {
                    body.extend_from_slice(b";ext=\"v\"");
                }
                body.extend_from_slice(b"\r\n");
                body.extend((0..n).map(|_| rng.u8(..)));
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n");
            for _ in 0..rng.usize(..3) {
                body.extend_from_slice(b"x-t: 1\r\n");
            }
            body.extend_from_slice(b"\r\n");
            let end = body.len();
            body.extend_from_slice(b"HTTP/1.1 200 OK\r\n");

            // Feed it in random pieces, keeping what was not taken.
            let mut c = ChunkedEnd::default();
            let (mut fed, mut taken) = (0, 0);
            while !c.done() {
                assert!(fed < body.len(), "ran past the end without finishing");
                fed = (fed + rng.usize(1..64)).min(body.len());
                taken += c.advance(&body[taken..fed]).unwrap();
            }
            assert_eq!(taken, end);
        }
    }

    #[test]
    fn serialises_heads_and_chunks() {
        let mut out = BytesMut::new();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("discounts"));
        write_request_head(&mut out, &Method::POST, &Uri::from_static("/x?y"), &h);
        assert_eq!(&out[..], b"POST /x?y HTTP/1.1\r\nhost: discounts\r\n\r\n");
        out.clear();
        write_status_line(&mut out, StatusCode::SERVICE_UNAVAILABLE);
        write_chunk(&mut out, &[b'a'; 26]);
        write_chunk(&mut out, b"");
        assert_eq!(
            &out[..],
            b"HTTP/1.1 503 Service Unavailable\r\n1a\r\naaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        );
    }
}

//! The request and response body types the proxy moves.
//!
//! Both are small enums instead of boxed trait objects: a body is either
//! streamed straight through from the other side (`hyper::body::Incoming`),
//! a few buffered bytes (retry replays, local replies), a replay of a
//! client body read once ([`Replayable`]), or empty. Frames pass as they
//! come, trailers included (gRPC's `grpc-status` travels in them).
//!
//! A gRPC call is counted when it ends, not when its response head
//! arrives: its response body carries a [`CallRecord`] that reads the
//! `grpc-status` trailer, and counts the call as cancelled (`DC`) if the
//! body is dropped before the end.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::grpc;
use crate::inflight::InflightGuard;
use crate::metrics::{DestinationMetrics, Flags, Protocol, ResponseStatus, Security};

/// The error type of the proxy's bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body sent upstream.
#[derive(Debug)]
pub enum UpstreamBody {
    /// No body.
    Empty,
    /// A buffered body (taken on the first poll).
    Full(Option<Bytes>),
    /// The client's body, streamed.
    Stream(Incoming),
    /// The client's body, streamed and kept for a retry or a mirror.
    Replay(ReplayBody),
}

/// A body sent to the client. It may carry a guard that marks the request
/// finished on its connection when the body is dropped, and the record of
/// a gRPC call, counted when the call ends.
#[derive(Debug)]
pub struct ResponseBody {
    kind: UpstreamBody,
    guard: Option<InflightGuard>,
    call: Option<Box<Call>>,
    /// A gRPC call counted by this body (when it ended, or at once).
    counted: bool,
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// Whether a client body may be buffered for replay on a retry: it is
    /// empty, or its size is known (`content-length`) and at most `limit`.
    pub fn replayable(incoming: &Incoming, limit: u64) -> bool {
        incoming.is_end_stream() || incoming.size_hint().upper().is_some_and(|n| n <= limit)
    }

    /// Buffers an `Incoming` body whole.
    pub async fn buffer(incoming: Incoming) -> Result<Bytes, hyper::Error> {
        Ok(incoming.collect().await?.to_bytes())
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(s) => Pin::new(s).poll_frame(cx).map_err(Into::into),
            Self::Replay(r) => Pin::new(r).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty | Self::Full(None) => true,
            Self::Full(Some(b)) => b.is_empty(),
            Self::Stream(s) => s.is_end_stream(),
            Self::Replay(r) => r.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty | Self::Full(None) => SizeHint::with_exact(0),
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Stream(s) => s.size_hint(),
            Self::Replay(_) => SizeHint::default(),
        }
    }
}

// === impl ResponseBody ===

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self::of(UpstreamBody::Empty)
    }

    /// A short local reply.
    pub fn text(s: &'static str) -> Self {
        Self::of(UpstreamBody::Full(Some(Bytes::from_static(s.as_bytes()))))
    }

    /// Buffered bytes.
    pub fn bytes(b: Bytes) -> Self {
        Self::of(UpstreamBody::Full(Some(b)))
    }

    /// The upstream's body, streamed.
    pub fn stream(incoming: Incoming) -> Self {
        Self::of(UpstreamBody::Stream(incoming))
    }

    fn of(kind: UpstreamBody) -> Self {
        Self {
            kind,
            guard: None,
            call: None,
            counted: false,
        }
    }

    /// Attaches a guard dropped with the body.
    #[must_use]
    pub fn with_guard(mut self, guard: InflightGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Makes this the body of a gRPC call whose response head carried
    /// `head_status` (a trailers-only response) or none: the call is
    /// counted when the body ends, with the `grpc-status` of its trailers.
    /// Past `deadline` (`grpc-timeout`) the call ends for the client with
    /// `DEADLINE_EXCEEDED` and the upstream stream is reset.
    #[must_use]
    pub fn with_call(
        mut self,
        mut record: CallRecord,
        head_status: Option<u8>,
        deadline: Option<Instant>,
    ) -> Self {
        self.counted = true;
        if self.kind.is_end_stream() {
            record.finish(
                head_status.unwrap_or_else(|| record.missing_status()),
                Flags::NONE,
            );
            return self;
        }
        self.call = Some(Box::new(Call {
            record,
            head_status,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        }));
        self
    }

    /// Whether the body counts its request when it ends (a gRPC call).
    pub fn counts_itself(&self) -> bool {
        self.counted
    }
}

/// A gRPC call in progress on a response body.
#[derive(Debug)]
struct Call {
    record: CallRecord,
    head_status: Option<u8>,
    deadline: Option<Pin<Box<Sleep>>>,
}

fn trailers(code: u8, message: &'static str) -> Frame<Bytes> {
    let mut t = HeaderMap::new();
    t.insert(grpc::GRPC_STATUS.clone(), grpc::status_value(code));
    t.insert(
        grpc::GRPC_MESSAGE.clone(),
        http::HeaderValue::from_static(message),
    );
    Frame::trailers(t)
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(call) = &mut this.call
            && let Some(sleep) = &mut call.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            // `grpc-timeout` passed mid-stream: the client gets
            // DEADLINE_EXCEEDED, the upstream a reset (its body is dropped).
            this.kind = UpstreamBody::Empty;
            if let Some(mut call) = this.call.take() {
                call.record.finish(grpc::DEADLINE_EXCEEDED, Flags::UT);
            }
            return Poll::Ready(Some(Ok(trailers(
                grpc::DEADLINE_EXCEEDED,
                "upstream request timeout",
            ))));
        }
        let poll = Pin::new(&mut this.kind).poll_frame(cx);
        if let Some(call) = &mut this.call {
            match &poll {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(t) = frame.trailers_ref() {
                        let code = grpc::status_of(t).unwrap_or(grpc::UNKNOWN);
                        call.record.finish(code, Flags::NONE);
                        this.call = None;
                    }
                }
                Poll::Ready(None) => {
                    let code = call
                        .head_status
                        .unwrap_or_else(|| call.record.missing_status());
                    call.record.finish(code, Flags::NONE);
                    this.call = None;
                }
                Poll::Ready(Some(Err(_))) => {
                    // The upstream broke the stream off: the client gets
                    // UNAVAILABLE in trailers rather than a bare reset.
                    call.record.finish(grpc::UNAVAILABLE, Flags::UC);
                    this.call = None;
                    this.kind = UpstreamBody::Empty;
                    return Poll::Ready(Some(Ok(trailers(
                        grpc::UNAVAILABLE,
                        "upstream connect error or disconnect/reset after headers",
                    ))));
                }
                Poll::Pending => {}
            }
        }
        if let Poll::Ready(None) = poll {
            // Finished: release the connection's in-flight slot now rather
            // than when hyper gets round to dropping the body.
            this.guard = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.call.is_none() && self.kind.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.kind.size_hint()
    }
}

/// How one gRPC call is counted, once, when it ends: by its `grpc-status`,
/// or as cancelled (`DC`, `CANCELLED`) when dropped before that.
#[derive(Debug)]
pub struct CallRecord {
    metrics: DestinationMetrics,
    flags: Flags,
    security: Security,
    principal: Arc<str>,
    start: Instant,
    /// The HTTP status sent to the client; 0 until a response head is.
    http: u16,
    log: Option<Box<AccessLine>>,
    done: bool,
}

/// The fields of a request's access-log line known when it starts.
#[derive(Debug)]
pub struct AccessLine {
    /// The request method.
    pub method: http::Method,
    /// The request path.
    pub path: Box<str>,
    /// The route's name.
    pub route: Box<str>,
    /// The client.
    pub peer: SocketAddr,
}

// === impl CallRecord ===

impl CallRecord {
    /// Starts the record of a call to `metrics`' destination, with the
    /// flags it has so far; `log` when access logging is on.
    pub fn new(
        metrics: &DestinationMetrics,
        flags: Flags,
        security: Security,
        principal: &Arc<str>,
        start: Instant,
        log: Option<AccessLine>,
    ) -> Self {
        Self {
            metrics: metrics.clone(),
            flags,
            security,
            principal: principal.clone(),
            start,
            http: 0,
            log: log.map(Box::new),
            done: false,
        }
    }

    /// Drops the record without counting (the caller counts the request).
    pub fn discard(mut self) {
        self.done = true;
    }

    /// Notes the HTTP status the client was sent.
    pub fn set_http(&mut self, status: http::StatusCode) {
        self.http = status.as_u16();
    }

    /// The status a client reads from a response without `grpc-status`.
    fn missing_status(&self) -> u8 {
        match http::StatusCode::from_u16(self.http) {
            Ok(http::StatusCode::OK) | Err(_) => grpc::UNKNOWN,
            Ok(s) => grpc::from_http(s),
        }
    }

    /// Counts the call with gRPC status `code` and the extra `flags`.
    pub fn finish(&mut self, code: u8, flags: Flags) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let flags = self.flags.with(flags);
        let elapsed = self.start.elapsed();
        self.metrics.record(
            ResponseStatus::grpc(self.http, code),
            flags,
            Protocol::Grpc,
            self.security,
            &self.principal,
            elapsed,
        );
        if let Some(log) = &self.log {
            let id = self.metrics.id();
            tracing::info!(
                target: "meshproxy::access",
                method = %log.method,
                path = &*log.path,
                status = self.http,
                grpc_status = code,
                flags = flags.as_str(),
                route = &*log.route,
                destination = %id.name,
                version = %id.version,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                peer = %log.peer,
            );
        }
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.finish(grpc::CANCELLED, Flags::DC);
    }
}

/// A client body read once and sent as often as needed: to each try of a
/// retried request and to a mirror, each a [`ReplayBody`] of its own.
///
/// Frames are passed on as they arrive (a bidirectional gRPC stream is
/// never held back) and kept, up to `limit` bytes, so a new try can start
/// from the first frame. Past the limit the frames go only to the current
/// try, and no new try or mirror can be made.
#[derive(Clone, Debug)]
pub struct Replayable {
    state: Arc<Mutex<ReplayState>>,
}

#[derive(Debug)]
struct ReplayState {
    source: Option<Incoming>,
    kept: Vec<Kept>,
    size: u64,
    limit: u64,
    /// Every frame read so far is in `kept`.
    whole: bool,
    ended: bool,
    failed: bool,
    /// The try whose body reads past `kept`.
    current: u64,
    /// Bodies waiting for the next frame.
    wakers: Vec<Waker>,
}

#[derive(Clone, Debug)]
enum Kept {
    Data(Bytes),
    Trailers(HeaderMap),
}

/// One reader of a [`Replayable`] body.
#[derive(Debug)]
pub struct ReplayBody {
    state: Arc<Mutex<ReplayState>>,
    /// Index of the next kept frame.
    next: usize,
    /// Which try this is (`u64::MAX`: a mirror, never the current try).
    try_id: u64,
}

/// The error of a replayed body that lost frames (past the limit).
#[derive(Debug, thiserror::Error)]
#[error("request body past the replay limit; this copy cannot be completed")]
pub struct NotReplayable;

// === impl Replayable ===

impl Replayable {
    /// Keeps up to `limit` bytes of `source`.
    pub fn new(source: Incoming, limit: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(ReplayState {
                ended: source.is_end_stream(),
                source: Some(source),
                kept: Vec::new(),
                size: 0,
                limit,
                whole: true,
                failed: false,
                current: 0,
                wakers: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a new try can still send the whole body.
    pub fn whole(&self) -> bool {
        let s = self.lock();
        s.whole && !s.failed
    }

    /// The body of the next try; earlier tries can no longer read past
    /// what was kept.
    pub fn next_try(&self) -> ReplayBody {
        let mut s = self.lock();
        s.current += 1;
        ReplayBody {
            state: self.state.clone(),
            next: 0,
            try_id: s.current,
        }
    }

    /// A body for a mirrored copy, which fails if the body outgrows the
    /// limit.
    pub fn mirror(&self) -> ReplayBody {
        ReplayBody {
            state: self.state.clone(),
            next: 0,
            try_id: u64::MAX,
        }
    }
}

// === impl ReplayBody ===

impl ReplayBody {
    fn is_end_stream(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.ended && s.whole && self.next >= s.kept.len()
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let mut s = this.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = s.kept.get(this.next) {
            this.next += 1;
            return Poll::Ready(Some(Ok(match kept.clone() {
                Kept::Data(b) => Frame::data(b),
                Kept::Trailers(t) => Frame::trailers(t),
            })));
        }
        let current = this.try_id == s.current;
        if !s.whole && !current {
            return Poll::Ready(Some(Err(NotReplayable.into())));
        }
        if s.ended {
            return Poll::Ready(None);
        }
        if s.failed {
            return Poll::Ready(Some(Err(NotReplayable.into())));
        }
        let Some(source) = s.source.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(source).poll_frame(cx);
        let out = match polled {
            Poll::Pending => {
                if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    s.wakers.push(cx.waker().clone());
                }
                return Poll::Pending;
            }
            Poll::Ready(None) => {
                s.ended = true;
                s.source = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                s.failed = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if s.whole {
                    let kept = if let Some(d) = frame.data_ref() {
                        s.size += d.len() as u64;
                        Kept::Data(d.clone())
                    } else if let Some(t) = frame.trailers_ref() {
                        Kept::Trailers(t.clone())
                    } else {
                        Kept::Data(Bytes::new())
                    };
                    s.kept.push(kept);
                    this.next = s.kept.len();
                    // The frame that crosses the limit is still kept, so
                    // no reader misses it; later ones are not.
                    if s.size > s.limit {
                        s.whole = false;
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        };
        // Other readers (a mirror, an older try) wait for this frame too.
        for w in s.wakers.drain(..) {
            if !w.will_wake(cx.waker()) {
                w.wake();
            }
        }
        out
    }

    fn is_end_stream(&self) -> bool {
        ReplayBody::is_end_stream(self)
    }
}

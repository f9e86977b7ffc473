//! The request and response body types the proxy moves.
//!
//! Both are small enums instead of boxed trait objects: a body is either
//! streamed straight through from the other side (`hyper::body::Incoming`),
//! a few buffered bytes (retry replays, local replies), or empty.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// A body sent upstream.
#[derive(Debug)]
pub enum UpstreamBody {
    /// No body.
    Empty,
    /// A buffered body (taken on the first poll).
    Full(Option<Bytes>),
    /// The client's body, streamed.
    Stream(Incoming),
}

/// A body sent to the client. It may carry a guard that marks the request
/// finished on its connection when the body is dropped.
#[derive(Debug)]
pub struct ResponseBody {
    kind: UpstreamBody,
    guard: Option<crate::server::InflightGuard>,
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
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty | Self::Full(None) => true,
            Self::Full(Some(b)) => b.is_empty(),
            Self::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty | Self::Full(None) => SizeHint::with_exact(0),
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Stream(s) => s.size_hint(),
        }
    }
}

// === impl ResponseBody ===

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self {
            kind: UpstreamBody::Empty,
            guard: None,
        }
    }

    /// A short local reply.
    pub fn text(s: &'static str) -> Self {
        Self {
            kind: UpstreamBody::Full(Some(Bytes::from_static(s.as_bytes()))),
            guard: None,
        }
    }

    /// Buffered bytes.
    pub fn bytes(b: Bytes) -> Self {
        Self {
            kind: UpstreamBody::Full(Some(b)),
            guard: None,
        }
    }

    /// The upstream's body, streamed.
    pub fn stream(incoming: Incoming) -> Self {
        Self {
            kind: UpstreamBody::Stream(incoming),
            guard: None,
        }
    }

    /// Attaches a guard dropped with the body.
    #[must_use]
    pub fn with_guard(mut self, guard: crate::server::InflightGuard) -> Self {
        self.guard = Some(guard);
        self
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.kind).poll_frame(cx);
        if let Poll::Ready(None) = poll {
            // Finished: release the connection's in-flight slot now rather
            // than when hyper gets round to dropping the body.
            this.guard = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.kind.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.kind.size_hint()
    }
}

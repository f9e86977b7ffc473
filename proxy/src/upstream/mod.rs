//! Connections to upstreams, pooled per worker: HTTP/1.1 keep-alive
//! connections of the lean lane ([`http1`]) and multiplexed HTTP/2
//! connections ([`http2`]), plain or TLS.

pub mod http1;
pub mod http2;

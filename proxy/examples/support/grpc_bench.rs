//! The gRPC method shared by the `grpc-upstream` and `grpc-client` examples:
//! hand-written prost messages (no `protoc` on the build machine) for
//!
//! ```proto
//! package bench;
//! service Discounts { rpc Quote(QuoteRequest) returns (QuoteReply); }
//! message QuoteRequest { string sku = 1; uint32 quantity = 2; }
//! message QuoteReply { string version = 1; uint32 percent = 2; }
//! ```

/// The method's path, as a gRPC client sends it in `:path`.
pub const QUOTE_PATH: &str = "/bench.Discounts/Quote";

/// The request message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuoteRequest {
    /// The article asked about.
    #[prost(string, tag = "1")]
    pub sku: String,
    /// How many of it.
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
}

/// The reply: which version answered, and a discount.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuoteReply {
    /// The upstream version that served the call (`v1`, `v2`).
    #[prost(string, tag = "1")]
    pub version: String,
    /// The discount in percent.
    #[prost(uint32, tag = "2")]
    pub percent: u32,
}

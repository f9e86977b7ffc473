//! A small tonic client for `proxy/bench/h2.sh`, the same for every peer
//! (direct, nginx, haproxy, Envoy, meshproxy):
//!
//! - `frame FILE` writes one length-prefixed gRPC message (`QuoteRequest`,
//!   uncompressed) to FILE, the request body `h2load -d FILE` posts, so that
//!   h2load's unary calls carry exactly the bytes a gRPC client sends;
//! - `check --addr ADDR --authority NAME --calls N` makes N unary calls
//!   over one HTTP/2 connection (`:authority` NAME), prints
//!   `ok=N failed=N v1=N v2=N`, and exits 1 unless every call came back with
//!   `grpc-status: 0` and a well-formed reply: the bench runs it against
//!   every peer before measuring, because h2load sees only HTTP statuses and
//!   a gRPC failure is an HTTP 200 with a non-zero `grpc-status` trailer.
//!
//! Loopback targets only; bounded by `--calls` and a 5 s deadline per call.
//!
//! ```text
//! cargo run --release -p meshproxy --example grpc-client -- check --addr 127.0.0.1:18094 --calls 100
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use http::uri::PathAndQuery;
use prost::Message;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

#[path = "support/grpc_bench.rs"]
mod grpc_bench;
use grpc_bench::{QUOTE_PATH, QuoteReply, QuoteRequest};

/// gRPC bench helper: request body for h2load, and a correctness check.
#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write one framed QuoteRequest (5-byte gRPC prefix + protobuf) to FILE.
    Frame {
        /// Where to write the request body.
        file: PathBuf,
    },
    /// Make unary calls and check that every one succeeds.
    Check {
        /// The peer to call (loopback).
        #[arg(long)]
        addr: SocketAddr,
        /// `:authority` of the calls (the host meshproxy routes by).
        #[arg(long, default_value = "discounts")]
        authority: String,
        /// How many calls.
        #[arg(long, default_value_t = 100)]
        calls: u32,
    },
}

/// The request every call sends (h2load's body is this, framed).
fn request() -> QuoteRequest {
    QuoteRequest {
        sku: "sku-1234".to_owned(),
        quantity: 3,
    }
}

/// The gRPC message framing: compressed flag 0, big-endian length, message.
fn framed(message: &QuoteRequest) -> Vec<u8> {
    let body = message.encode_to_vec();
    let len = u32::try_from(body.len()).expect("a small message");
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

async fn check(
    addr: SocketAddr,
    authority: &str,
    calls: u32,
) -> Result<BTreeMap<String, u32>, String> {
    let origin: http::Uri = format!("http://{authority}")
        .parse()
        .map_err(|e| format!("--authority {authority}: {e}"))?;
    let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("--addr {addr}: {e}"))?
        .origin(origin)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut seen = BTreeMap::new();
    let mut failed = 0u32;
    for call in 1..=calls {
        grpc.ready()
            .await
            .map_err(|e| format!("channel to {addr}: {e}"))?;
        let codec = ProstCodec::<QuoteRequest, QuoteReply>::default();
        let path = PathAndQuery::from_static(QUOTE_PATH);
        match grpc
            .unary(tonic::Request::new(request()), path, codec)
            .await
        {
            // The upstream answers `percent` = the sku's length (8).
            Ok(reply) if reply.get_ref().percent == 8 => {
                *seen.entry(reply.into_inner().version).or_insert(0) += 1;
            }
            Ok(reply) => {
                eprintln!("unexpected reply: {:?}", reply.get_ref());
                failed += 1;
            }
            Err(status) => {
                if failed == 0 {
                    eprintln!("first failure (call {call} of {calls}): {status}");
                }
                failed += 1;
            }
        }
    }
    seen.insert("failed".to_owned(), failed);
    Ok(seen)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Frame { file } => {
            if let Err(e) = std::fs::write(&file, framed(&request())) {
                eprintln!("grpc-client: writing {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Command::Check {
            addr,
            authority,
            calls,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            match rt.block_on(check(addr, &authority, calls)) {
                Ok(mut seen) => {
                    let failed = seen.remove("failed").unwrap_or(0);
                    let ok: u32 = seen.values().sum();
                    let versions: Vec<String> =
                        seen.iter().map(|(v, n)| format!("{v}={n}")).collect();
                    println!("ok={ok} failed={failed} {}", versions.join(" "));
                    if failed == 0 && ok == calls {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("grpc-client: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

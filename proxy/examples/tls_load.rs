//! A small HTTPS load client with client certificates, for `bench/tls.sh`.
//!
//! wrk cannot present a client certificate, so mTLS request rates and
//! handshake rates are measured with this client against both meshproxy and
//! nginx (same client, same settings, so the comparison is fair). Two modes:
//!
//! - keep-alive (default): each connection sends requests back to back over
//!   one TLS session: requests per second.
//! - `--handshake`: every request opens a new TCP + TLS connection with
//!   session resumption disabled, sends one request and closes: full
//!   handshakes per second.
//!
//! Bounded by `--duration` and `--max-requests`; loopback targets only.
//!
//! ```text
//! cargo run --release -p meshproxy --example tls_load -- \
//!     --addr 127.0.0.1:8443 --ca ca.crt --cert client.crt --key client.key
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// HTTPS load with optional client certificates.
#[derive(Debug, Parser)]
struct Args {
    /// Server address (loopback).
    #[arg(long)]
    addr: SocketAddr,
    /// Name to send as SNI and verify the server certificate against.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Host header.
    #[arg(long, default_value = "bench")]
    host: String,
    /// CA file (PEM) to verify the server with.
    #[arg(long)]
    ca: PathBuf,
    /// Client certificate (PEM); with --key, presented to the server.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many requests in total.
    #[arg(long, default_value_t = 10_000_000)]
    max_requests: u64,
    /// New connection (full handshake, no resumption) for every request.
    #[arg(long)]
    handshake: bool,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        return Err(format!("--addr {}: only loopback targets are allowed", args.addr).into());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

fn client_config(args: &Args) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&args.ca)? {
        roots.add(ca?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(meshproxy::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => builder.with_client_auth_cert(
            CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?,
            PrivateKeyDer::from_pem_file(key)?,
        )?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if args.handshake {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

struct Shared {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    addr: SocketAddr,
    uri: http::Uri,
    host: String,
    deadline: Instant,
    budget: AtomicU64,
    errors: AtomicU64,
    handshake: bool,
}

async fn connect(
    shared: &Shared,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, Error> {
    let tcp = TcpStream::connect(shared.addr).await?;
    tcp.set_nodelay(true)?;
    let tls = shared.connector.connect(shared.name.clone(), tcp).await?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(send)
}

async fn request(
    shared: &Shared,
    send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
) -> Result<bool, Error> {
    send.ready().await?;
    let req = http::Request::get(shared.uri.clone())
        .header(http::header::HOST, &shared.host)
        .body(Empty::new())?;
    let resp = send.send_request(req).await?;
    let status = resp.status();
    let close = resp
        .headers()
        .get(http::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    resp.into_body().collect().await?;
    if !status.is_success() {
        return Err(format!("status {status}").into());
    }
    Ok(close)
}

/// One connection's loop; returns request latencies in microseconds.
async fn worker(shared: Arc<Shared>) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut send: Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> = None;
    while Instant::now() < shared.deadline {
        if shared
            .budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_err()
        {
            break;
        }
        let start = Instant::now();
        let result = async {
            // A connection the server closed between requests (keep-alive
            // limit) is replaced, not counted as an error.
            if shared.handshake
                || send
                    .as_ref()
                    .is_none_or(hyper::client::conn::http1::SendRequest::is_closed)
            {
                send = Some(connect(&shared).await?);
            }
            let close = match send.as_mut() {
                Some(s) => request(&shared, s).await?,
                None => return Err("no connection".into()),
            };
            if close {
                send = None;
            }
            Ok::<(), Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(10), result).await {
            Ok(Ok(())) => {
                let micros = start.elapsed().as_micros();
                latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Ok(Err(e)) => {
                if shared.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("error: {e}");
                }
                send = None;
            }
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                send = None;
            }
        }
    }
    latencies
}

async fn run(args: Args) -> Result<(), Error> {
    let shared = Arc::new(Shared {
        connector: tokio_rustls::TlsConnector::from(client_config(&args)?),
        name: ServerName::try_from(args.server_name.clone())?,
        addr: args.addr,
        uri: args.path.parse()?,
        host: args.host.clone(),
        deadline: Instant::now() + args.duration,
        budget: AtomicU64::new(args.max_requests),
        errors: AtomicU64::new(0),
        handshake: args.handshake,
    });
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    let ok = latencies.len();
    let what = if args.handshake {
        "handshakes+requests"
    } else {
        "requests"
    };
    println!(
        "{what}={ok} errors={} seconds={elapsed:.2} rate={:.0}/s p50={:.2}ms p99={:.2}ms connections={} mtls={}",
        shared.errors.load(Ordering::Relaxed),
        ok as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        args.connections,
        args.cert.is_some(),
    );
    Ok(())
}

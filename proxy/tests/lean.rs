//! The lean HTTP/1.1 lane: upstream framings it forwards byte for byte or
//! re-frames, pipelining, stale pooled connections, hop-by-hop fields, and
//! the requests it hands to hyper mid-connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::*;

/// The next request head on `tcp` (without its blank line), reading into
/// `buf`, which keeps what follows it; `None` at end of stream.
async fn next_head(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An upstream that answers every request head it reads with `answer`
/// (given the request head), closing the connection after each answer
/// when `close` is set. Counts connections.
async fn raw_upstream(answer: fn(&str) -> Vec<u8>, close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let counter = conns.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(head) = next_head(&mut tcp, &mut buf).await {
                    if tcp.write_all(&answer(&head)).await.is_err() {
                        return;
                    }
                    if close {
                        let _ = tcp.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (addr, conns)
}

async fn lean_proxy(upstream: SocketAddr) -> (ConfigDir, meshproxy::Handle) {
    let cfg = ConfigDir::new(&split(100, 0), &[upstream], &[upstream]);
    let p = proxy(cfg.path()).await;
    (cfg, p)
}

/// Reads from `tcp` until `n` complete responses with `content-length`
/// bodies have arrived; returns the raw text.
async fn read_responses(tcp: &mut TcpStream, n: usize) -> String {
    let mut text = Vec::new();
    let read = async {
        loop {
            let s = String::from_utf8_lossy(&text).into_owned();
            if count_complete(&s) >= n {
                return s;
            }
            let mut chunk = [0u8; 8192];
            let got = tcp.read(&mut chunk).await.unwrap();
            assert!(got > 0, "connection closed after: {s}");
            text.extend_from_slice(&chunk[..got]);
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("responses")
}

fn count_complete(s: &str) -> usize {
    let mut rest = s;
    let mut n = 0;
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = &rest[..end];
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        if rest.len() < end + 4 + len {
            break;
        }
        rest = &rest[end + 4 + len..];
        n += 1;
    }
    n
}

#[tokio::test]
async fn chunked_close_delimited_and_large_bodies_arrive_whole() {
    fn answer(head: &str) -> Vec<u8> {
        if head.starts_with("GET /chunked") {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, mesh!\r\n0\r\nx-trailer: 1\r\n\r\n".to_vec()
        } else if head.starts_with("GET /large") {
            let body = "0123456789abcdef".repeat(64 * 1024);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else {
            b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec()
        }
    }
    // Close after each answer: the close-delimited body needs it, and the
    // pool must not keep those connections.
    let (up, _) = raw_upstream(answer, true).await;
    let (_cfg, p) = lean_proxy(up).await;
    let c = client();
    let r = get(&c, p.listen_addr(), "svc", "/chunked").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "hello, mesh!"));
    let r = get(&c, p.listen_addr(), "svc", "/close").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "until the end"));
    assert_eq!(r.headers["transfer-encoding"], "chunked", "re-framed");
    let r = get(&c, p.listen_addr(), "svc", "/large").await;
    assert_eq!(r.body.len(), 16 * 64 * 1024);
    assert!(r.body.starts_with("0123456789abcdef0123"));
    // Each kept working on the same client connection.
    let r = get(&c, p.listen_addr(), "svc", "/chunked").await;
    assert_eq!(r.body, "hello, mesh!");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let up = upstream().echo().run().await;
    let (_cfg, p) = lean_proxy(up.addr).await;
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(
        b"GET /one HTTP/1.1\r\nHost: svc\r\n\r\nGET /two HTTP/1.1\r\nHost: svc\r\n\r\nGET /three HTTP/1.1\r\nHost: svc\r\n\r\n",
    )
    .await
    .unwrap();
    let text = read_responses(&mut tcp, 3).await;
    let one = text.find("GET /one").unwrap();
    let two = text.find("GET /two").unwrap();
    let three = text.find("GET /three").unwrap();
    assert!(one < two && two < three, "{text}");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
}

#[tokio::test]
async fn pooled_connections_closed_by_the_upstream_are_replaced() {
    // The upstream closes every connection after its answer without
    // announcing it; the next request must not fail on the dead one.
    fn answer(_: &str) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec()
    }
    let (up, conns) = raw_upstream(answer, true).await;
    let (_cfg, p) = lean_proxy(up).await;
    let c = client();
    for i in 0..20 {
        let r = get(&c, p.listen_addr(), "svc", "/").await;
        assert_eq!(r.status.as_u16(), 200, "request {i}: {}", r.body);
        if i % 2 == 0 {
            // Give the close time to arrive, so both paths are taken: seen
            // at checkout, and found when the request is sent.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(conns.load(Ordering::SeqCst), 20);
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let (up, conns) = raw_upstream(
        |_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
        false,
    )
    .await;
    let (_cfg, p) = lean_proxy(up).await;
    let c = client();
    for _ in 0..50 {
        assert_eq!(get(&c, p.listen_addr(), "svc", "/").await.status, 200);
    }
    assert!(conns.load(Ordering::SeqCst) <= 2, "{conns:?}");
}

#[tokio::test]
async fn hop_by_hop_fields_of_the_upstream_are_dropped() {
    fn answer(_: &str) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nconnection: keep-alive, x-private\r\nkeep-alive: timeout=5\r\nx-private: secret\r\nx-public: yes\r\ncontent-length: 2\r\n\r\nok".to_vec()
    }
    let (up, _) = raw_upstream(answer, false).await;
    let (_cfg, p) = lean_proxy(up).await;
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!(r.headers["x-public"], "yes");
    for gone in ["connection", "keep-alive", "x-private"] {
        assert!(!r.headers.contains_key(gone), "{gone}: {:?}", r.headers);
    }
}

#[tokio::test]
async fn head_requests_get_no_body_and_the_connection_goes_on() {
    let up = upstream().body("twelve bytes").run().await;
    let (_cfg, p) = lean_proxy(up.addr).await;
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(b"HEAD / HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(tcp.read(&mut b).await.unwrap(), 1);
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.contains("content-length: 12"), "{head}");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await
        .unwrap();
    let text = read_responses(&mut tcp, 1).await;
    assert!(
        text.starts_with("HTTP/1.1 200 OK"),
        "no body bytes came before: {text}"
    );
    assert!(text.ends_with("twelve bytes"), "{text}");
}

#[tokio::test]
async fn requests_the_lane_does_not_serve_go_to_hyper_mid_connection() {
    let up = upstream().echo().run().await;
    let (_cfg, p) = lean_proxy(up.addr).await;
    let tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);

    // 1. A small POST: served by the lane, body forwarded.
    let req = Request::post("/small")
        .header("host", "svc")
        .body(http_body_util::Either::Left(Full::new(Bytes::from_static(
            b"0123456789",
        ))))
        .unwrap();
    let body = send
        .send_request(req)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = String::from_utf8(body.to_bytes().to_vec()).unwrap();
    assert!(text.contains("body-len: 10"), "{text}");

    // 2. A chunked POST on the same connection: handed to hyper.
    let chunks = futures_util::stream::iter(
        ["abc", "defg"].map(|s| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(s)))),
    );
    let req = Request::post("/chunked")
        .header("host", "svc")
        .body(http_body_util::Either::Right(StreamBody::new(chunks)))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(resp.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("body-len: 7"), "{text}");
    assert!(text.contains("x-forwarded-for: 127.0.0.1"), "{text}");

    // 3. And the connection still serves.
    let req = Request::get("/after")
        .header("host", "svc")
        .body(http_body_util::Either::Left(Full::new(Bytes::new())))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let text = String::from_utf8(resp.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.starts_with("GET /after"), "{text}");
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(
            &m,
            "meshproxy_http1_handoffs_total",
            &[("reason", "request_body")]
        ),
        1.0,
        "{m}"
    );
}

#[tokio::test]
async fn http_1_0_and_expect_continue_are_served_by_hyper() {
    let up = upstream().echo().run().await;
    let (_cfg, p) = lean_proxy(up.addr).await;
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(b"GET /old HTTP/1.0\r\nHost: svc\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    assert!(text.contains("GET /old"), "{text}");

    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(
        b"POST /x HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\ncontent-length: 3\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    tcp.write_all(b"abc").await.unwrap();
    let text = read_responses(&mut tcp, 1).await;
    assert!(text.contains("body-len: 3"), "{text}");
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    for reason in ["http_1_0", "expect"] {
        assert_eq!(
            metric_value(&m, "meshproxy_http1_handoffs_total", &[("reason", reason)]),
            1.0,
            "{reason}: {m}"
        );
    }
}

#[tokio::test]
async fn the_hyper_engine_serves_the_same_routes() {
    let up = upstream().echo().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up.addr], &[up.addr]);
    let p = proxy_with(cfg.path(), |s| s.forward.lean_http1 = false).await;
    let r = get(&client(), p.listen_addr(), "svc", "/via-hyper").await;
    assert_eq!(r.status.as_u16(), 200);
    assert!(r.body.starts_with("GET /via-hyper"), "{}", r.body);
    assert!(r.body.contains("x-request-id: "), "{}", r.body);
}

#[tokio::test]
async fn a_request_trickled_byte_by_byte_is_served() {
    let up = upstream().echo().run().await;
    let (_cfg, p) = lean_proxy(up.addr).await;
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    for b in b"POST /slow HTTP/1.1\r\nHost: svc\r\ncontent-length: 5\r\n\r\nhello" {
        tcp.write_all(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let text = read_responses(&mut tcp, 1).await;
    assert!(text.contains("POST /slow"), "{text}");
    assert!(text.contains("body-len: 5"), "{text}");
}

#[tokio::test]
async fn connection_close_is_answered_in_kind_and_the_connection_ends() {
    let up = upstream().run().await;
    let (_cfg, p) = lean_proxy(up.addr).await;
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut text))
        .await
        .expect("the proxy closes the connection")
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nok"), "{text}");
}

#[tokio::test]
async fn informational_answers_are_skipped_and_malformed_ones_are_503_uc() {
    fn answer(head: &str) -> Vec<u8> {
        if head.starts_with("GET /hints") {
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nok".to_vec()
        }
    }
    let (up, _) = raw_upstream(answer, false).await;
    let (_cfg, p) = lean_proxy(up).await;
    let c = client();
    let r = get(&c, p.listen_addr(), "svc", "/hints").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "ok"));
    let r = get(&c, p.listen_addr(), "svc", "/bad").await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.body);
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[("response_code", "503"), ("response_flags", "UC")]
        ),
        1.0,
        "{m}"
    );
}

#[tokio::test]
async fn a_route_timeout_during_the_body_ends_the_connection_counted_ut() {
    // The upstream sends its head and part of the body, then stalls.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\npart")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let cfg = ConfigDir::new(
        "  - timeout: 300ms\n    route:\n    - {destination: {host: svc, subset: v1}}\n",
        &[up],
        &[up],
    );
    let p = proxy(cfg.path()).await;
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut text = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut text))
        .await
        .expect("closed in bounded time")
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.ends_with("\r\n\r\npart"),
        "cut off after what arrived: {text}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(&m, "istio_requests_total", &[("response_flags", "UT")]),
        1.0,
        "{m}"
    );
}

/// Reads from `tcp` into `got` until it holds `want`.
async fn read_until(tcp: &mut TcpStream, got: &mut Vec<u8>, want: &[u8]) {
    tokio::time::timeout(WAIT, async {
        while !got.windows(want.len()).any(|w| w == want) {
            let mut chunk = [0u8; 1024];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(got));
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("tunnel bytes");
}

/// An upstream that accepts WebSocket upgrades and then echoes bytes;
/// other requests get `426`. Sends each request head it reads to `heads`.
async fn websocket_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(head) = next_head(&mut tcp, &mut buf).await {
                    let head = head.to_ascii_lowercase();
                    let _ = tx.send(head.clone());
                    if !head.contains("\r\nupgrade: websocket") {
                        let _ = tcp
                            .write_all(
                                b"HTTP/1.1 426 Upgrade Required\r\ncontent-length: 4\r\n\r\nnope",
                            )
                            .await;
                        continue;
                    }
                    let _ = tcp
                        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                        .await;
                    // Echo: what came with the head first, then the rest.
                    let _ = tcp.write_all(&buf).await;
                    let (mut r, mut w) = tcp.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    return;
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn websocket_upgrades_become_tunnels_and_other_answers_pass_as_usual() {
    let (up, mut heads) = websocket_upstream().await;
    let (_cfg, p) = lean_proxy(up).await;

    // A refused upgrade is an ordinary answer; the connection goes on.
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: nonsense\r\nConnection: Upgrade\r\n\r\n",
    )
    .await
    .unwrap();
    let text = read_responses(&mut tcp, 1).await;
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required"), "{text}");
    let head = heads.recv().await.unwrap();
    assert!(head.contains("\r\nupgrade: nonsense"), "{head}");

    // The upgrade, with the first frame's bytes in the same write.
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut tcp, &mut got, b"early").await;
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nupgrade: websocket\r\n"),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nconnection: upgrade\r\n"),
        "{text}"
    );
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("get /ws http/1.1"), "{head}");
    assert!(head.contains("\r\nupgrade: websocket"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade"), "{head}");
    assert!(head.contains("\r\nsec-websocket-key: "), "{head}");
    assert!(head.contains("\r\nx-forwarded-for: 127.0.0.1"), "{head}");

    // Both ways, as long as the client wants.
    tcp.write_all(b"ping-1").await.unwrap();
    read_until(&mut tcp, &mut got, b"ping-1").await;
    tcp.write_all(b"ping-2").await.unwrap();
    read_until(&mut tcp, &mut got, b"ping-2").await;

    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(&m, "istio_requests_total", &[("response_code", "101")]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_value(&m, "istio_requests_total", &[("response_code", "426")]),
        1.0,
        "{m}"
    );
}

#[tokio::test]
async fn an_idle_tunnel_is_closed_after_the_idle_timeout() {
    let (up, _heads) = websocket_upstream().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up], &[up]);
    let p = proxy_with(cfg.path(), |s| {
        s.limits.idle_timeout = Duration::from_secs(1)
    })
    .await;
    let mut tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    read_until(&mut tcp, &mut got, b"\r\n\r\n").await;
    // Traffic keeps it open past the timeout...
    for i in 0..4 {
        let msg = format!("ping-{i}");
        tcp.write_all(msg.as_bytes()).await.unwrap();
        read_until(&mut tcp, &mut got, msg.as_bytes()).await;
        // 4 x 300 ms is past the timeout; each gap leaves 700 ms of slack.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // ...and silence closes it.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest))
        .await
        .expect("the idle tunnel is closed")
        .unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

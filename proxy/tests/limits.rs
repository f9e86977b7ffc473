//! Limits on what clients control: header size, slow clients, idle
//! connections, connection count.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::*;

/// Reads until EOF or error; returns what was read, or panics after `WAIT`.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "connection not closed within {WAIT:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let up = upstream().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up.addr], &[]);
    let p = proxy_with(cfg.path(), |s| s.limits.max_header_bytes = 16 * 1024).await;
    // Just under the limit passes.
    let ok = send(
        &client(),
        p.listen_addr(),
        http::Request::get("/")
            .header("host", "svc")
            .header("x-big", "a".repeat(8 * 1024)),
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(ok.status, 200);
    let mut s = TcpStream::connect(p.listen_addr()).await.unwrap();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: svc\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let _ = s.write_all(req.as_bytes()).await;
    let resp = read_to_close(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");
    assert_eq!(up.hits(), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn slow_client_is_cut_off_by_the_header_read_timeout() {
    let up = upstream().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up.addr], &[]);
    let p = proxy_with(cfg.path(), |s| {
        s.limits.header_read_timeout = Duration::from_millis(500);
        s.limits.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let mut s = TcpStream::connect(p.listen_addr()).await.unwrap();
    // Half a request head, then nothing.
    s.write_all(b"GET / HTTP/1.1\r\nHost: svc\r\nX-Slow: ")
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let _ = read_to_close(&mut s).await;
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(up.hits(), 0);
    p.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let up = upstream().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up.addr], &[]);
    let p = proxy_with(cfg.path(), |s| {
        s.limits.idle_timeout = Duration::from_millis(300)
    })
    .await;
    let mut s = TcpStream::connect(p.listen_addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await
        .unwrap();
    let resp = read_to_close(&mut s).await;
    // One full answer, then the proxy closes the idle keep-alive connection.
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.ends_with("ok"), "{resp}");
    // A connection that never sends anything is closed too.
    let mut silent = TcpStream::connect(p.listen_addr()).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");
    eventually("connections gauge drops to 0", || async {
        metric_value(
            &admin_get(p.admin_addr(), "/metrics").await.body,
            "meshproxy_active_connections",
            &[],
        ) == 0.0
    })
    .await;
    p.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_and_counted() {
    let up = upstream().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up.addr], &[]);
    let p = proxy_with(cfg.path(), |s| s.limits.max_connections = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(p.listen_addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let mut third = TcpStream::connect(p.listen_addr()).await.unwrap();
    let _ = third
        .write_all(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await;
    assert_eq!(read_to_close(&mut third).await, "");
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(&m, "meshproxy_connections_rejected_total", &[]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_value(&m, "meshproxy_active_connections", &[]),
        2.0,
        "{m}"
    );
    drop(held);
    eventually("a slot frees up", || async {
        let mut s = TcpStream::connect(p.listen_addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
            .await
            .is_ok()
            && read_to_close(&mut s).await.starts_with("HTTP/1.1 200")
    })
    .await;
    p.shutdown().await;
}

#[tokio::test]
async fn oversized_headers_over_http2_get_431() {
    let up = upstream().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up.addr], &[]);
    let p = proxy_with(cfg.path(), |s| s.limits.max_header_bytes = 16 * 1024).await;
    let tcp = TcpStream::connect(p.listen_addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("http://svc/")
        .header("x-big", "a".repeat(40 * 1024))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, send.send_request(req))
        .await
        .unwrap();
    match resp {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => panic!("expected a 431 response, got {e}"),
    }
    assert_eq!(up.hits(), 0);
    p.shutdown().await;
}

/// Workers balance connections exactly: whatever worker's listener the
/// kernel picks (`SO_REUSEPORT` hashes the addresses), each worker ends up
/// serving as many connections as the others, give or take one.
#[tokio::test]
async fn connections_are_balanced_across_workers() {
    let up = upstream().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[up.addr], &[]);
    let p = proxy_with(cfg.path(), |s| s.workers = Some(3)).await;
    let mut open = Vec::new();
    for n in 1..=12 {
        let mut s = TcpStream::connect(p.listen_addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let got = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..got]).starts_with("HTTP/1.1 200"),
            "connection {n}: {:?}",
            String::from_utf8_lossy(&buf[..got])
        );
        open.push(s);
        let per_worker = p.worker_connections();
        assert_eq!(per_worker.iter().sum::<usize>(), n, "{per_worker:?}");
        let (min, max) = (
            per_worker.iter().min().unwrap(),
            per_worker.iter().max().unwrap(),
        );
        assert!(max - min <= 1, "after {n} connections: {per_worker:?}");
    }
    // Closed connections are no longer counted.
    drop(open);
    eventually("closed connections leave the counts", || async {
        p.worker_connections().iter().sum::<usize>() == 0
    })
    .await;
}

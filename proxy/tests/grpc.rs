//! gRPC through meshproxy with a real tonic server and client: every call
//! kind with its trailers, weights, retries, faults, cancellation,
//! deadlines, TLS and mTLS upstreams, and the metrics of it all.

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::Code;
use tonic_prost::ProstCodec;

use crate::grpc_support::*;
use crate::util::*;

const ROUTE_V1: &str = "  - route: [{destination: {host: svc, subset: v1}}]\n";

fn msg(text: &str, n: u32) -> Msg {
    Msg {
        text: text.into(),
        n,
    }
}

async fn metrics(p: &meshproxy::Handle) -> String {
    admin_get(p.admin_addr(), "/metrics").await.body
}

fn grpc_count(m: &str, version: &str, status: &str, flags: &str) -> f64 {
    metric_value(
        m,
        "istio_requests_total",
        &[
            ("destination_version", version),
            ("request_protocol", "grpc"),
            ("grpc_response_status", status),
            ("response_flags", flags),
        ],
    )
}

#[tokio::test]
async fn every_call_kind_passes_with_its_trailers() {
    let v1 = echo_server("v1", None).await;
    let cfg = grpc_config(ROUTE_V1, "{name: grpc}", "{}", &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;

    // Unary, with response metadata.
    let r = unary(&mut c, "hi", &[]).await.unwrap();
    assert_eq!(r.get_ref().text, "v1:hi");
    assert_eq!(r.metadata().get("x-version").unwrap(), "v1");

    // Server streaming, ending in a failure whose trailers carry a message,
    // binary details and `-bin` metadata.
    let mut stream = server_stream(&mut c, msg("s", 3), ("x-fail", "13")).await;
    let mut got = Vec::new();
    let status = loop {
        match stream.message().await {
            Ok(Some(m)) => got.push(m.n),
            Ok(None) => panic!("stream ended without its failure"),
            Err(s) => break s,
        }
    };
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(status.message(), "asked to fail");
    assert_eq!(status.details(), &[9, 8, 7][..]);
    assert_eq!(
        status
            .metadata()
            .get_bin("x-detail-bin")
            .unwrap()
            .to_bytes()
            .unwrap(),
        &[0u8, 1, 2, 255][..]
    );

    // Client streaming.
    c.ready().await.unwrap();
    let outbound = futures_util::stream::iter(vec![msg("a", 0), msg("b", 0), msg("c", 0)]);
    let r = c
        .client_streaming(
            tonic::Request::new(outbound),
            PathAndQuery::from_static(CLIENT_STREAM),
            ProstCodec::<Msg, Msg>::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.get_ref().text, "v1:a,b,c");

    // Bidirectional, in lock step: each reply arrives before the next
    // message is sent, so nothing is buffered on the way.
    c.ready().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(1);
    let mut replies = c
        .streaming(
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
            PathAndQuery::from_static(BIDI),
            ProstCodec::<Msg, Msg>::default(),
        )
        .await
        .unwrap()
        .into_inner();
    for i in 1..=5u32 {
        tx.send(msg(&format!("m{i}"), 0)).await.unwrap();
        let m = tokio::time::timeout(WAIT, replies.message())
            .await
            .expect("bidi reply held back")
            .unwrap()
            .unwrap();
        assert_eq!((m.text.as_str(), m.n), (format!("v1:m{i}").as_str(), i));
    }
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());

    let m = metrics(&p).await;
    assert_eq!(grpc_count(&m, "v1", "0", "-"), 3.0, "{m}");
    assert_eq!(grpc_count(&m, "v1", "13", "-"), 1.0, "{m}");
}

#[tokio::test]
async fn a_weighted_split_is_seen_in_the_metrics() {
    let v1 = echo_server("v1", None).await;
    let v2 = echo_server("v2", None).await;
    let cfg = grpc_config(
        &split(90, 10),
        "{name: grpc-api}",
        "{}",
        &[v1.addr],
        &[v2.addr],
    );
    let p = proxy_with(cfg.path(), |s| s.workers = Some(1)).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    let mut v2_seen = 0;
    for i in 0..100 {
        let r = unary(&mut c, &i.to_string(), &[]).await.unwrap();
        if r.get_ref().text.starts_with("v2:") {
            v2_seen += 1;
        }
    }
    assert_eq!(v2_seen, 10);
    let m = metrics(&p).await;
    assert_eq!(grpc_count(&m, "v1", "0", "-"), 90.0, "{m}");
    assert_eq!(grpc_count(&m, "v2", "0", "-"), 10.0, "{m}");
    // Calls are multiplexed: one upstream connection per endpoint.
    assert_eq!(v1.seen.calls.load(Ordering::SeqCst), 90);
}

#[tokio::test]
async fn unavailable_is_retried_and_other_statuses_are_not() {
    let v1 = echo_server("v1", None).await;
    let http = "  - route: [{destination: {host: svc, subset: v1}}]\n    retries: {attempts: 2, retryOn: unavailable}\n";
    let cfg = grpc_config(http, "{name: grpc}", "{}", &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    let r = unary(&mut c, "x", &[("x-fail-first", "2")]).await.unwrap();
    assert_eq!(r.get_ref().text, "v1:x");
    assert_eq!(v1.seen.calls.load(Ordering::SeqCst), 3);

    let e = unary(&mut c, "x", &[("x-fail", "13")]).await.unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert_eq!(
        v1.seen.calls.load(Ordering::SeqCst),
        4,
        "INTERNAL is not retried"
    );
    let m = metrics(&p).await;
    assert_eq!(grpc_count(&m, "v1", "0", "-"), 1.0, "{m}");
    assert_eq!(grpc_count(&m, "v1", "13", "-"), 1.0, "{m}");
}

#[tokio::test]
async fn grpc_status_faults_abort_calls() {
    let v1 = echo_server("v1", None).await;
    let http = "  - route: [{destination: {host: svc, subset: v1}}]\n    fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}\n";
    let cfg = grpc_config(http, "{name: grpc}", "{}", &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    let e = unary(&mut c, "x", &[]).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert_eq!(e.message(), "fault filter abort");
    assert_eq!(v1.seen.calls.load(Ordering::SeqCst), 0);
    let m = metrics(&p).await;
    assert_eq!(grpc_count(&m, "v1", "8", "FI"), 1.0, "{m}");

    // An HTTP client gets the status's HTTP mapping.
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn the_proxys_own_errors_are_grpc_errors() {
    let closed = closed_port().await;
    let http = "  - match: [{headers: {x-v2: {exact: \"1\"}}}]\n    route: [{destination: {host: svc, subset: v2}}]\n  - route: [{destination: {host: svc, subset: v1}}]\n";
    let cfg = grpc_config(http, "{name: grpc}", "{}", &[closed], &[]);
    let p = proxy(cfg.path()).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    let e = unary(&mut c, "x", &[]).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let e = unary(&mut c, "x", &[("x-v2", "1")]).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let mut other = grpc_client(p.listen_addr(), "nowhere").await;
    let e = unary(&mut other, "x", &[]).await.unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    let m = metrics(&p).await;
    assert_eq!(grpc_count(&m, "v1", "14", "UF"), 1.0, "{m}");
    assert_eq!(grpc_count(&m, "v2", "14", "UH"), 1.0, "{m}");
    assert_eq!(grpc_count(&m, "unknown", "12", "NR"), 1.0, "{m}");
    // HTTP 200 for all of them, as Envoy answers gRPC clients.
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[("request_protocol", "grpc"), ("response_code", "200")]
        ),
        3.0,
        "{m}"
    );
}

#[tokio::test]
async fn a_cancelled_call_cancels_the_upstream_and_counts_once() {
    let v1 = echo_server("v1", None).await;
    let cfg = grpc_config(ROUTE_V1, "{name: grpc}", "{}", &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    // A server stream the client abandons after two messages.
    let mut stream = server_stream(&mut c, msg("s", 1000), ("x-sleep-ms", "20")).await;
    stream.message().await.unwrap().unwrap();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    // A unary call the client gives up on before the answer.
    let slow = unary(&mut c, "slow", &[("x-sleep-ms", "5000")]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), slow)
            .await
            .is_err()
    );
    eventually("the upstream sees both cancellations", || async {
        v1.seen.cancelled.load(Ordering::SeqCst) == 2
    })
    .await;
    eventually("both calls are counted as cancelled", || async {
        grpc_count(&metrics(&p).await, "v1", "1", "DC") == 2.0
    })
    .await;
}

#[tokio::test]
async fn grpc_timeout_caps_the_route_timeout() {
    let v1 = echo_server("v1", None).await;
    let cfg = grpc_config(ROUTE_V1, "{name: grpc}", "{}", &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let mut send = h2_connect(p.listen_addr()).await;
    // Unary: the deadline passes before the response head.
    let started = tokio::time::Instant::now();
    let slow = msg("slow", 0);
    let req = grpc_request(UNARY)
        .header("grpc-timeout", "200m")
        .header("x-sleep-ms", "5000")
        .body(full(&slow))
        .unwrap();
    let r = h2_read(send.send_request(req).await.unwrap()).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.head.status, 200);
    assert_eq!(grpc_status(&r).as_deref(), Some("4"));
    // Server streaming: the deadline passes mid-stream; what arrived
    // stays, and the call ends with DEADLINE_EXCEEDED in trailers.
    let (tx, body) = h2_body();
    let req = grpc_request(SERVER_STREAM)
        .header("grpc-timeout", "300m")
        .header("x-sleep-ms", "50")
        .body(body)
        .unwrap();
    tx.send(Ok(hyper::body::Frame::data(grpc_frame(&msg("s", 1000)))))
        .await
        .unwrap();
    drop(tx);
    let r = h2_read(send.send_request(req).await.unwrap()).await;
    assert!(!r.body.is_empty());
    assert_eq!(grpc_status(&r).as_deref(), Some("4"));
    eventually("the upstream sees both calls cancelled", || async {
        v1.seen.cancelled.load(Ordering::SeqCst) == 2
    })
    .await;
    let m = metrics(&p).await;
    assert_eq!(grpc_count(&m, "v1", "4", "UT"), 2.0, "{m}");
}

#[tokio::test]
async fn request_and_response_trailers_pass_through() {
    // An upstream answering with the request's trailers as its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        use http_body_util::BodyExt as _;
                        let te = req.headers().get("te").cloned();
                        let collected = req.into_body().collect().await.unwrap();
                        let mut trailers = collected.trailers().cloned().unwrap_or_default();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        if let Some(te) = te {
                            trailers.insert("x-te-seen", te);
                        }
                        let frames = futures_util::stream::iter(vec![
                            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(
                                collected.to_bytes(),
                            )),
                            Ok(hyper::body::Frame::trailers(trailers)),
                        ]);
                        let mut resp = http::Response::new(http_body_util::StreamBody::new(frames));
                        resp.headers_mut()
                            .insert("content-type", "application/grpc".parse().unwrap());
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
            });
        }
    });
    let cfg = grpc_config(ROUTE_V1, "{name: grpc}", "{}", &[addr], &[]);
    let p = proxy(cfg.path()).await;
    let mut send = h2_connect(p.listen_addr()).await;
    let (tx, body) = h2_body();
    let req = grpc_request(UNARY).body(body).unwrap();
    let pending = tokio::spawn(send.send_request(req));
    tx.send(Ok(hyper::body::Frame::data(grpc_frame(&msg("t", 1)))))
        .await
        .unwrap();
    let mut t = http::HeaderMap::new();
    t.insert("x-checksum-bin", "AAEC".parse().unwrap());
    tx.send(Ok(hyper::body::Frame::trailers(t))).await.unwrap();
    drop(tx);
    let r = h2_read(pending.await.unwrap().unwrap()).await;
    assert_eq!(r.body, grpc_frame(&msg("t", 1)));
    let trailers = r.trailers.expect("trailers");
    assert_eq!(trailers["x-checksum-bin"], "AAEC");
    assert_eq!(trailers["x-te-seen"], "trailers");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn unary_calls_are_mirrored() {
    let v1 = echo_server("v1", None).await;
    let v2 = echo_server("v2", None).await;
    let http = "  - route: [{destination: {host: svc, subset: v1}}]\n    mirror: {host: svc, subset: v2}\n    mirrorPercentage: {value: 100}\n";
    let cfg = grpc_config(http, "{name: grpc}", "{}", &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    for _ in 0..5 {
        assert_eq!(
            unary(&mut c, "m", &[]).await.unwrap().get_ref().text,
            "v1:m"
        );
    }
    eventually("the mirror gets every call", || async {
        v2.seen.calls.load(Ordering::SeqCst) == 5
    })
    .await;
    eventually("mirrored calls are counted by the destination", || async {
        metric_value(
            &metrics(&p).await,
            "istio_requests_total",
            &[
                ("reporter", "destination"),
                ("destination_version", "v2"),
                ("request_protocol", "grpc"),
            ],
        ) == 5.0
    })
    .await;
}

#[tokio::test]
async fn tls_and_mtls_upstreams_get_h2_by_alpn() {
    let certs = tempfile::tempdir().unwrap();
    let simple = echo_server("simple", Some(server_tls(certs.path(), &[b"h2"], false))).await;
    let simple_ca = std::fs::read(certs.path().join("ca.pem")).unwrap();
    let mutual_dir = tempfile::tempdir().unwrap();
    let mutual = echo_server(
        "mutual",
        Some(server_tls(mutual_dir.path(), &[b"h2"], true)),
    )
    .await;
    let d = mutual_dir.path().display();
    for (policy, addr, ca, want) in [
        (
            "{tls: {mode: SIMPLE, caCertificates: ca.pem}}".to_owned(),
            simple.addr,
            &simple_ca,
            "simple:x",
        ),
        (
            format!(
                "{{tls: {{mode: MUTUAL, caCertificates: {d}/ca.pem, clientCertificate: {d}/client.crt, privateKey: {d}/client.key}}}}"
            ),
            mutual.addr,
            &simple_ca,
            "mutual:x",
        ),
    ] {
        let cfg = grpc_config(ROUTE_V1, "{name: grpc}", &policy, &[addr], &[]);
        std::fs::write(cfg.path().join("ca.pem"), ca).unwrap();
        let p = proxy(cfg.path()).await;
        let mut c = grpc_client(p.listen_addr(), "svc").await;
        let r = unary(&mut c, "x", &[]).await.unwrap();
        assert_eq!(r.get_ref().text, want, "{policy}");
    }

    // ISTIO_MUTUAL: the proxy's own workload certificate.
    let cfg = grpc_config(
        ROUTE_V1,
        "{name: grpc}",
        "{tls: {mode: ISTIO_MUTUAL}}",
        &[mutual.addr],
        &[],
    );
    let p = proxy_with(cfg.path(), |s| {
        s.tls.mesh = Some(meshproxy::tls::MeshIdentityFiles {
            cert: mutual_dir.path().join("client.crt"),
            key: mutual_dir.path().join("client.key"),
            ca: mutual_dir.path().join("ca.pem"),
        });
    })
    .await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    assert_eq!(
        unary(&mut c, "x", &[]).await.unwrap().get_ref().text,
        "mutual:x"
    );
    let m = metrics(&p).await;
    assert_eq!(grpc_count(&m, "v1", "0", "-"), 1.0, "{m}");
}

#[tokio::test]
async fn grpc_metrics_pass_promtool() {
    let v1 = echo_server("v1", None).await;
    let cfg = grpc_config(ROUTE_V1, "{name: grpc}", "{}", &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let mut c = grpc_client(p.listen_addr(), "svc").await;
    unary(&mut c, "x", &[]).await.unwrap();
    unary(&mut c, "x", &[("x-fail", "14")]).await.unwrap_err();
    get(&client(), p.listen_addr(), "svc", "/").await;
    let m = metrics(&p).await;
    assert!(
        m.lines().any(
            |l| l.starts_with("istio_request_duration_milliseconds_count{")
                && l.contains("grpc_response_status=\"14\"")
        ),
        "{m}"
    );
    assert!(
        m.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("request_protocol=\"http\"")
            && l.contains("grpc_response_status=\"\"")),
        "{m}"
    );
    if let Some(problems) = promtool_problems(&m) {
        assert!(problems.is_empty(), "promtool: {problems:?}\n{m}");
    }
}

//! mTLS end to end: inbound handshakes (refusals, ALPN, identities in the
//! metrics), every outbound DestinationRule TLS mode against TLS upstreams,
//! certificate rotation under load, and curl/openssl as independent clients.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_test_support::ca::{Issued, TestCa};
use meshproxy::tls::{MeshIdentityFiles, ServerTlsFiles, TlsSettings};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::util::*;

/// Config routing every host to `svc` v1 at `upstream`: over HTTP/2 the
/// authority is the proxy's address, not `svc`.
fn config(upstream: SocketAddr) -> ConfigDir {
    let cfg = ConfigDir::new(&split(100, 0), &[upstream], &[]);
    cfg.write(
        "svc.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc}\nspec:\n  host: svc\n  subsets:\n  - {name: v1, labels: {version: v1}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc}\nspec:\n  hosts: [svc, \"*\"]\n  http:\n  - route:\n    - destination: {host: svc, subset: v1}\n",
    );
    cfg
}

// === clients and servers ===

type TlsHttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client_config(pki: &TestCa, identity: Option<&Issued>) -> rustls::ClientConfig {
    let builder = rustls::ClientConfig::builder_with_provider(meshproxy::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots());
    match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert_der()], id.key_der())
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

/// An HTTPS client verifying the proxy as `localhost`, offering h2 when asked.
fn tls_client(pki: &TestCa, identity: Option<&Issued>, h2: bool) -> TlsHttpClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config(pki, identity))
        .https_only()
        .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(
            ServerName::try_from("localhost").unwrap(),
        ));
    let connector = if h2 {
        builder.enable_all_versions().build()
    } else {
        builder.enable_http1().build()
    };
    Client::builder(TokioExecutor::new()).build(connector)
}

/// `GET /` with `Host: svc` over TLS; `Err` when the connection fails.
async fn tls_get(
    client: &TlsHttpClient,
    proxy: SocketAddr,
) -> Result<(StatusCode, Version, String), String> {
    let req = Request::get(format!("https://{proxy}/"))
        .header("host", "svc")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(WAIT, client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let (status, version) = (resp.status(), resp.version());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, version, String::from_utf8_lossy(&body).into_owned()))
}

/// An HTTPS upstream answering `<client SPIFFE ID or anonymous> <SNI or ->`.
async fn tls_upstream(cert: &Issued, client_ca: Option<&TestCa>) -> SocketAddr {
    tls_upstream_counted(cert, client_ca).await.0
}

/// [`tls_upstream`], counting the TLS connections it accepts.
async fn tls_upstream_counted(
    cert: &Issued,
    client_ca: Option<&TestCa>,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let builder = rustls::ServerConfig::builder_with_provider(meshproxy::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pki) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(pki.roots()),
                meshproxy::tls::provider(),
            )
            .build()
            .unwrap(),
        ),
    };
    let config = builder
        .with_single_cert(vec![cert.cert_der()], cert.key_der())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let conn = tls.get_ref().1;
                let who = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(meshproxy::tls::spiffe_id_of)
                    .map_or("anonymous".to_string(), |id| id.to_string());
                let answer = format!("{who} {}", conn.server_name().unwrap_or("-"));
                let svc = hyper::service::service_fn(move |_req| {
                    let answer = answer.clone();
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(answer))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// The leaf certificate the proxy serves to a new connection.
async fn served_leaf(proxy: SocketAddr, pki: &TestCa, client: &Issued) -> CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(pki, Some(client))));
    let tcp = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let tls = tokio::time::timeout(
        WAIT,
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap()
    .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// A proxy with mTLS on its listener: server certificate `proxy`, clients
/// verified against `pki`.
struct MtlsProxy {
    handle: meshproxy::Handle,
    cert: PathBuf,
    key: PathBuf,
}

async fn mtls_proxy(
    cfg: &ConfigDir,
    certs: &Path,
    pki: &TestCa,
    allowed: &[&str],
    mesh: Option<MeshIdentityFiles>,
) -> MtlsProxy {
    let (cert, key) = pki.workload("proxy").write_atomic(certs, "proxy");
    let inbound = ServerTlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: Some(pki.ca_path().to_owned()),
        allowed_identities: allowed.iter().map(|id| id.parse().unwrap()).collect(),
    };
    let handle = proxy_with(cfg.path(), |s| {
        s.tls = TlsSettings {
            inbound: Some(inbound),
            mesh,
            reload_interval: Duration::from_millis(50),
        };
    })
    .await;
    MtlsProxy { handle, cert, key }
}

async fn metrics(handle: &meshproxy::Handle) -> String {
    admin_get(handle.admin_addr(), "/metrics").await.body
}

// === inbound ===

#[tokio::test]
async fn mutual_tls_reaches_the_upstream_and_labels_the_metrics() {
    let up = upstream().body("hello").run().await;
    let cfg = config(up.addr);
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let proxy = mtls_proxy(&cfg, certs.path(), &pki, &[], None).await;
    let addr = proxy.handle.listen_addr();

    let frontend = pki.workload("frontend");
    let (status, version, body) = tls_get(&tls_client(&pki, Some(&frontend), false), addr)
        .await
        .unwrap();
    assert_eq!(
        (status, version, body.as_str()),
        (StatusCode::OK, Version::HTTP_11, "hello")
    );

    let text = metrics(&proxy.handle).await;
    let labels = [
        ("destination_service_name", "svc"),
        ("connection_security_policy", "mutual_tls"),
        (
            "source_principal",
            "spiffe://cluster.local/ns/default/sa/frontend",
        ),
        ("response_code", "200"),
    ];
    assert_eq!(
        metric_value(&text, "istio_requests_total", &labels),
        1.0,
        "{text}"
    );
}

#[tokio::test]
async fn upstreams_see_tls_clients_as_https_over_h1_and_h2() {
    let up = upstream().echo().run().await;
    let cfg = config(up.addr);
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let proxy = mtls_proxy(&cfg, certs.path(), &pki, &[], None).await;
    let frontend = pki.workload("frontend");
    // HTTP/1.1 (the lean lane) and h2 (hyper).
    for (h2, version) in [(false, Version::HTTP_11), (true, Version::HTTP_2)] {
        let (status, got, body) = tls_get(
            &tls_client(&pki, Some(&frontend), h2),
            proxy.handle.listen_addr(),
        )
        .await
        .unwrap();
        assert_eq!((status, got), (StatusCode::OK, version));
        assert!(body.contains("x-forwarded-proto: https\n"), "{body}");
    }
}

#[tokio::test]
async fn h2_is_negotiated_by_alpn() {
    let up = upstream().run().await;
    let cfg = config(up.addr);
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let proxy = mtls_proxy(&cfg, certs.path(), &pki, &[], None).await;
    let client = tls_client(&pki, Some(&pki.workload("frontend")), true);
    let (status, version, _) = tls_get(&client, proxy.handle.listen_addr()).await.unwrap();
    assert_eq!((status, version), (StatusCode::OK, Version::HTTP_2));
}

#[tokio::test]
async fn handshakes_without_an_acceptable_client_certificate_are_refused() {
    let up = upstream().run().await;
    let cfg = config(up.addr);
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let other = TestCa::in_dir(certs.path(), "other");
    let allowed = ["spiffe://cluster.local/ns/default/sa/frontend"];
    let proxy = mtls_proxy(&cfg, certs.path(), &pki, &allowed, None).await;
    let addr = proxy.handle.listen_addr();

    // Plain HTTP to the TLS port: no HTTP answer.
    let plain = get_plain_result(addr).await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    let cases = [
        ("no client certificate", None),
        (
            "a certificate from another CA",
            Some(other.workload("frontend")),
        ),
        (
            "an expired certificate",
            Some(pki.issue("frontend", 2000, 2001)),
        ),
        (
            "an identity not on the allow-list",
            Some(pki.workload("batch")),
        ),
    ];
    for (case, identity) in &cases {
        let result = tls_get(&tls_client(&pki, identity.as_ref(), false), addr).await;
        assert!(result.is_err(), "{case}: served {result:?}");
    }
    assert_eq!(up.hits(), 0, "a refused client reached the upstream");
    // Under TLS 1.3 a client can see the refusal (an alert after its
    // Finished) before the proxy's task has counted it: wait for the count.
    let want = (cases.len() + 1) as f64;
    eventually("every refused handshake is counted", || async {
        let text = metrics(&proxy.handle).await;
        metric_value(&text, "meshproxy_tls_handshake_failures_total", &[]) == want
    })
    .await;
    let text = metrics(&proxy.handle).await;
    assert_eq!(
        metric_value(&text, "meshproxy_tls_handshake_failures_total", &[]),
        want,
        "no more than the refused ones: {text}"
    );

    // The allowed identity still gets through.
    let ok = tls_get(
        &tls_client(&pki, Some(&pki.workload("frontend")), false),
        addr,
    )
    .await;
    assert_eq!(ok.unwrap().0, StatusCode::OK);
}

/// A plain HTTP/1.1 request to `addr`; `Err` unless an HTTP response came back.
async fn get_plain_result(addr: SocketAddr) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await;
    if out.starts_with(b"HTTP/") {
        Ok(String::from_utf8_lossy(&out).into_owned())
    } else {
        Err(format!("{} bytes, not HTTP", out.len()))
    }
}

// === outbound ===

/// Routes `svc` to `upstream` (subset v1) with `tls` as the DestinationRule's
/// `trafficPolicy.tls` (YAML flow mapping).
fn route_with_tls(cfg: &ConfigDir, upstream: SocketAddr, tls: &str) {
    cfg.write_endpoints(&[upstream], &[]);
    cfg.write(
        "svc.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  trafficPolicy:\n    tls: {tls}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc}}\nspec:\n  hosts: [svc]\n  http:\n  - route:\n    - destination: {{host: svc, subset: v1}}\n"
        ),
    );
}

#[tokio::test]
async fn connections_to_an_mtls_upstream_are_pooled() {
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let (mesh_cert, mesh_key) = pki
        .workload("meshproxy")
        .write_atomic(certs.path(), "meshproxy");
    let (mutual, accepted) = tls_upstream_counted(&pki.workload("svc"), Some(&pki)).await;
    let cfg = ConfigDir::new(&split(100, 0), &[mutual], &[]);
    route_with_tls(&cfg, mutual, "{mode: ISTIO_MUTUAL}");
    let handle = proxy_with(cfg.path(), |s| {
        s.tls.mesh = Some(MeshIdentityFiles {
            cert: mesh_cert.clone(),
            key: mesh_key.clone(),
            ca: pki.ca_path().to_owned(),
        });
    })
    .await;
    let http = client();
    for i in 0..30 {
        let r = get(&http, handle.listen_addr(), "svc", "/").await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.body);
        assert_eq!(r.body, "spiffe://cluster.local/ns/default/sa/meshproxy svc");
    }
    // One keep-alive client connection is served by one worker, whose pool
    // keeps its upstream connection (session tickets and all).
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n <= 2, "{n} TLS connections for 30 requests");
}

#[tokio::test]
async fn every_outbound_mode_against_tls_upstreams() {
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let (client_cert, client_key) = pki
        .workload("checkout")
        .write_atomic(certs.path(), "checkout");
    let (mesh_cert, mesh_key) = pki
        .workload("meshproxy")
        .write_atomic(certs.path(), "meshproxy");
    let one_way = tls_upstream(&pki.workload("svc"), None).await;
    let mutual = tls_upstream(&pki.workload("svc"), Some(&pki)).await;
    let plain = upstream().body("plain").run().await;

    let cfg = ConfigDir::new(&split(100, 0), &[plain.addr], &[]);
    // The CA file, relative to the config directory.
    std::fs::copy(pki.ca_path(), cfg.path().join("ca.pem")).unwrap();
    let handle = proxy_with(cfg.path(), |s| {
        s.tls.mesh = Some(MeshIdentityFiles {
            cert: mesh_cert.clone(),
            key: mesh_key.clone(),
            ca: pki.ca_path().to_owned(),
        });
    })
    .await;
    let addr = handle.listen_addr();
    let http = client();

    let cases: Vec<(&str, SocketAddr, String, u16, &str)> = vec![
        ("DISABLE", plain.addr, "{mode: DISABLE}".into(), 200, "plain"),
        (
            "SIMPLE verifies the name",
            one_way,
            "{mode: SIMPLE, caCertificates: ca.pem}".into(),
            200,
            "anonymous svc",
        ),
        (
            "SIMPLE refuses another name",
            one_way,
            "{mode: SIMPLE, caCertificates: ca.pem, sni: ratings}".into(),
            503,
            "upstream connect error",
        ),
        (
            "SIMPLE with subjectAltNames",
            one_way,
            "{mode: SIMPLE, sni: svc.default.svc.cluster.local, subjectAltNames: [\"spiffe://cluster.local/ns/default/sa/svc\"]}".into(),
            200,
            "anonymous svc.default.svc.cluster.local",
        ),
        (
            "SIMPLE to an mTLS upstream is refused",
            mutual,
            "{mode: SIMPLE, caCertificates: ca.pem}".into(),
            503,
            "upstream connect error",
        ),
        (
            "MUTUAL presents the configured certificate",
            mutual,
            format!(
                "{{mode: MUTUAL, caCertificates: ca.pem, clientCertificate: {}, privateKey: {}}}",
                client_cert.display(),
                client_key.display()
            ),
            200,
            "spiffe://cluster.local/ns/default/sa/checkout svc",
        ),
        (
            "ISTIO_MUTUAL presents the proxy's own certificate",
            mutual,
            "{mode: ISTIO_MUTUAL}".into(),
            200,
            "spiffe://cluster.local/ns/default/sa/meshproxy svc",
        ),
    ];
    // Consecutive cases answer differently, so seeing the expected answer
    // also shows the new DestinationRule is live.
    for (case, upstream, tls, status, body) in cases {
        route_with_tls(&cfg, upstream, &tls);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = get(&http, addr, "svc", "/").await;
            if r.status.as_u16() == status && r.body.starts_with(body) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{case}: expected {status} {body:?}, got {} {:?}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let text = metrics(&handle).await;
    assert!(
        metric_value(&text, "istio_requests_total", &[("response_flags", "UF")]) >= 2.0,
        "{text}"
    );

    // A key file that does not exist is caught when the DestinationRule is
    // loaded: the configuration is rejected and the old one (ISTIO_MUTUAL,
    // the last case) keeps serving.
    route_with_tls(
        &cfg,
        mutual,
        &format!(
            "{{mode: MUTUAL, caCertificates: ca.pem, clientCertificate: {}, privateKey: missing.key}}",
            client_cert.display()
        ),
    );
    eventually(
        "the DestinationRule naming a missing key is rejected",
        || async {
            let text = admin_get(handle.admin_addr(), "/metrics").await.body;
            metric_value(&text, "meshproxy_config_reload_failures_total", &[]) >= 1.0
        },
    )
    .await;
    let r = get(&http, addr, "svc", "/").await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    assert!(
        r.body
            .starts_with("spiffe://cluster.local/ns/default/sa/meshproxy svc"),
        "{:?}",
        r.body
    );

    // MUTUAL without its files is an invalid configuration: rejected whole.
    route_with_tls(&cfg, mutual, "{mode: MUTUAL, caCertificates: ca.pem}");
    eventually("the invalid DestinationRule is rejected", || async {
        let text = admin_get(handle.admin_addr(), "/metrics").await.body;
        metric_value(&text, "meshproxy_config_reload_failures_total", &[]) >= 2.0
    })
    .await;
}

/// The load-time TLS check names the file, the DestinationRule, the field
/// and the missing file.
#[test]
fn missing_tls_files_are_rejected_at_load_with_file_rule_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("svc.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc}\nspec:\n  host: svc\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n      tls: {mode: SIMPLE, caCertificates: no-such-ca.pem}\n",
    )
    .unwrap();
    let (snapshot, _) = meshproxy::source::dir::load(dir.path()).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = meshproxy::metrics::ProxyMetrics::register(&mut registry);
    let tls = std::sync::Arc::new(
        meshproxy::tls::ClientTls::new(None, Some(dir.path().to_path_buf())).unwrap(),
    );
    let live = meshproxy::source::Live::new(metrics).with_client_tls(tls);
    let err = live.apply(snapshot).unwrap_err().to_string();
    assert!(err.contains("svc.yaml: DestinationRule/svc"), "{err}");
    assert!(err.contains("spec.subsets[0].trafficPolicy.tls"), "{err}");
    assert!(err.contains("no-such-ca.pem"), "{err}");
    assert_eq!(live.generation(), 0, "nothing was applied");
}

// === rotation ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request() {
    let up = upstream().run().await;
    let cfg = config(up.addr);
    let certs = tempfile::tempdir().unwrap();
    let pki = Arc::new(TestCa::in_dir(certs.path(), "mesh"));
    let proxy = mtls_proxy(&cfg, certs.path(), &pki, &[], None).await;
    let addr = proxy.handle.listen_addr();
    let frontend = Arc::new(pki.workload("frontend"));

    // Bounded load: 4 clients, at most 3000 requests or 60 s. Two reuse
    // their connections (in flight across rotations); two open a new
    // connection every few requests (handshakes during rotations).
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut load = Vec::new();
    for worker in 0..4u64 {
        let (stop, ok, failed, pki, frontend) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            pki.clone(),
            frontend.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut client = tls_client(&pki, Some(&frontend), worker == 0);
            for i in 0..750u64 {
                if stop.load(Ordering::Acquire) || tokio::time::Instant::now() > deadline {
                    break;
                }
                if worker >= 2 && i % 4 == 0 {
                    client = tls_client(&pki, Some(&frontend), false);
                }
                match tls_get(&client, addr).await {
                    Ok((StatusCode::OK, _, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("request failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }

    let before = served_leaf(addr, &pki, &frontend).await;
    for round in 0..3 {
        let next = pki.workload("proxy");
        // The key lands first: for a moment the pair does not match, which
        // is rejected while the old pair keeps serving.
        std::fs::write(&proxy.key, next.key_pem()).unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        if round == 1 {
            // A broken certificate file, then the right one.
            std::fs::write(&proxy.cert, "-----BEGIN CERTIFICATE-----\nnope\n").unwrap();
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
        std::fs::write(&proxy.cert, next.cert_pem()).unwrap();
        eventually("the new certificate is served", || async {
            served_leaf(addr, &pki, &frontend).await == next.cert_der()
        })
        .await;
    }
    assert_ne!(served_leaf(addr, &pki, &frontend).await, before);
    // Let the load run on the final certificate for a moment, then stop it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Release);
    for task in load {
        task.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed, 0,
        "{failed} requests failed during rotation ({ok} succeeded)"
    );
    assert!(ok >= 40, "too little load to prove anything: {ok} requests");
}

// === independent clients ===

/// Runs a command to completion off the async runtime.
async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_openssl_as_independent_clients() {
    if !require_tool("curl") || !require_tool("openssl") {
        return;
    }
    let up = upstream().body("from upstream").run().await;
    let cfg = config(up.addr);
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let other = TestCa::in_dir(certs.path(), "other");
    let proxy = mtls_proxy(&cfg, certs.path(), &pki, &[], None).await;
    let port = proxy.handle.listen_addr().port();
    let (good_cert, good_key) = pki
        .workload("frontend")
        .write_atomic(certs.path(), "frontend");
    let (rogue_cert, rogue_key) = other
        .workload("frontend")
        .write_atomic(certs.path(), "rogue");
    let (old_cert, old_key) = pki
        .issue("frontend", 2000, 2001)
        .write_atomic(certs.path(), "old");

    let curl = |client: Option<(&Path, &Path)>, extra: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "--cacert"])
            .arg(pki.ca_path())
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(["-H", "host: svc", "-w", "\n%{http_version}"])
            .args(extra)
            .arg(format!("https://localhost:{port}/"));
        if let Some((cert, key)) = client {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        cmd
    };
    let out = run(curl(Some((&good_cert, &good_key)), &["--http2"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "from upstream\n2", "curl over h2");
    let out = run(curl(Some((&good_cert, &good_key)), &["--http1.1"])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from upstream\n1.1");

    for (case, client) in [
        ("no client certificate", None),
        (
            "another CA",
            Some((rogue_cert.as_path(), rogue_key.as_path())),
        ),
        ("expired", Some((old_cert.as_path(), old_key.as_path()))),
    ] {
        let out = run(curl(client, &[])).await;
        assert!(
            !out.status.success(),
            "curl with {case} was served: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("from upstream"),
            "{case}"
        );
    }
    // Plain HTTP to the TLS port.
    let mut plain = Command::new("curl");
    plain
        .args(["-sS", "--max-time", "20", "-H", "host: svc"])
        .arg(format!("http://127.0.0.1:{port}/"));
    let out = run(plain).await;
    assert!(!out.status.success(), "plain HTTP was served");

    // openssl s_client: verifies the proxy's certificate and negotiates h2.
    let s_client = |cert: &Path, key: &Path| {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", "localhost", "-verify_hostname", "localhost"])
            .args(["-verify_return_error", "-alpn", "h2,http/1.1", "-CAfile"])
            .arg(pki.ca_path())
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(std::process::Stdio::null());
        cmd
    };
    let out = run(s_client(&good_cert, &good_key)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ALPN protocol: h2"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    // Refused: reading on (-ign_eof) shows the server's alert, TLS 1.3 included.
    let mut rogue = s_client(&rogue_cert, &rogue_key);
    rogue.arg("-ign_eof");
    let out = run(rogue).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("alert"),
        "openssl with a foreign CA's certificate: {text}"
    );
}

// === the real binary ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_mtls_and_names_bad_files() {
    const BIN: &str = env!("CARGO_BIN_EXE_meshproxy");
    let up = upstream().body("via binary").run().await;
    let cfg = config(up.addr);
    let certs = tempfile::tempdir().unwrap();
    let pki = TestCa::in_dir(certs.path(), "mesh");
    let (cert, key) = pki.workload("proxy").write_atomic(certs.path(), "proxy");
    let frontend = pki.workload("frontend");

    // A missing key file: exit 1, naming the file and the fix.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(certs.path().join("missing.key"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.key"), "{stderr}");
    assert!(stderr.contains("check the path"), "{stderr}");

    // A bad allow-list entry: usage error naming the flag.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(pki.ca_path())
        .args(["--tls-allow-identity", "frontend"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--tls-allow-identity: \"frontend\": not a SPIFFE ID; use spiffe://"),
        "{stderr}"
    );

    // Serving mTLS, with a key file others may read (warned about), then a
    // broken rotation (rejected with a log line, the old pair keeps serving).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (listen, admin) = (closed_port().await, closed_port().await);
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args([
            "--listen",
            &listen.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(pki.ca_path())
        .args(["--tls-reload-interval", "100ms"])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let client = tls_client(&pki, Some(&frontend), false);
    let mut served = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = tls_get(&client, listen).await {
            served = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, body) = served.expect("the binary never served mTLS");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "via binary"));

    let before = served_leaf(listen, &pki, &frontend).await;
    let secret = pki.workload("proxy");
    std::fs::write(&key, secret.key_pem()).unwrap();
    // Give the watcher a few polls, then check the old pair still serves.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(served_leaf(listen, &pki, &frontend).await, before);
    let fresh = tls_get(&tls_client(&pki, Some(&frontend), false), listen).await;
    assert_eq!(fresh.unwrap().0, StatusCode::OK);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = log.join().unwrap();
    assert!(
        log.contains("private key file is readable by group or others"),
        "{log}"
    );
    assert!(
        log.contains(&format!("chmod 600 {}", key.display())),
        "{log}"
    );
    assert!(
        log.contains("rejected new inbound TLS certificate"),
        "{log}"
    );
    assert!(
        log.contains("is not the private key of the certificate in"),
        "{log}"
    );
    assert!(log.contains("still using the previous one"), "{log}");
    // The key material itself is never logged.
    let key_body: String = secret
        .key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!log.contains(&key_body[..40]), "key material in the log");
}

//! The admin listener: /metrics (checked by promtool), /ready, /config.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::*;

#[tokio::test]
async fn metrics_carry_istio_names_and_pass_promtool() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().respond(500).run().await;
    let cfg = ConfigDir::new(&split(50, 50), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let c = client();
    for _ in 0..10 {
        get(&c, p.listen_addr(), "svc", "/").await;
    }
    let r = admin_get(p.admin_addr(), "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = r.body;
    let base = [
        ("reporter", "source"),
        ("source_workload", "meshproxy"),
        ("destination_service", "svc.default.svc.cluster.local"),
        ("destination_service_name", "svc"),
        ("destination_service_namespace", "default"),
        ("request_protocol", "http"),
        ("connection_security_policy", "none"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut l = base.to_vec();
        l.extend_from_slice(extra);
        l
    };
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &with(&[
                ("destination_version", "v1"),
                ("response_code", "200"),
                ("response_flags", "-")
            ])
        ),
        5.0,
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &with(&[("destination_version", "v2"), ("response_code", "500")])
        ),
        5.0,
        "{m}"
    );
    // Cumulative buckets: +Inf equals _count; every bound Istio uses is present.
    let v1_labels = with(&[("destination_version", "v1"), ("response_code", "200")]);
    let mut inf = v1_labels.clone();
    inf.push(("le", "+Inf"));
    assert_eq!(
        metric_value(&m, "istio_request_duration_milliseconds_bucket", &inf),
        5.0,
        "{m}"
    );
    assert_eq!(
        metric_value(&m, "istio_request_duration_milliseconds_count", &v1_labels),
        5.0,
        "{m}"
    );
    for le in [
        "0.5",
        "1.0",
        "5.0",
        "10.0",
        "25.0",
        "50.0",
        "100.0",
        "250.0",
        "500.0",
        "1000.0",
        "2500.0",
        "5000.0",
        "10000.0",
        "30000.0",
        "60000.0",
        "300000.0",
        "600000.0",
        "1800000.0",
        "3600000.0",
    ] {
        assert!(
            m.contains(&format!(
                "istio_request_duration_milliseconds_bucket{{le=\"{le}\","
            )),
            "bucket {le} missing:\n{m}"
        );
    }
    assert!(m.contains("# TYPE istio_requests_total counter\n"), "{m}");
    assert_eq!(metric_value(&m, "meshproxy_config_generation", &[]), 1.0);

    if !require_tool("promtool") {
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool parses the exposition (exit 1 on any format error) and then
    // lints names. Istio's own name `istio_request_duration_milliseconds`
    // draws the one lint "use base unit seconds"; real Istio's exposition
    // gets the same. Anything else fails the test.
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| *l != "istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"")
        .collect();
    assert!(
        out.status.success() || (out.status.code() == Some(3) && problems.is_empty()),
        "promtool check metrics: {:?}\n{text}",
        out.status
    );
    assert!(
        problems.is_empty(),
        "promtool problems:\n{}",
        problems.join("\n")
    );
    p.shutdown().await;
}

#[tokio::test]
async fn ready_and_config_show_the_live_state() {
    let v1 = upstream().run().await;
    let cfg = ConfigDir::new(&split(90, 10), &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let r = admin_get(p.admin_addr(), "/ready").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "ready\n"));
    let r = admin_get(p.admin_addr(), "/config").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["generation"], 1);
    let vs = &v["files"][0]["resources"][1];
    assert_eq!(vs["kind"], "VirtualService");
    assert_eq!(vs["spec"]["http"][0]["route"][0]["weight"], 90);
    assert_eq!(
        v["endpoints"]["services"]["svc"]["endpoints"][0]["address"],
        v1.addr.to_string()
    );
    assert_eq!(admin_get(p.admin_addr(), "/nope").await.status, 404);
    p.shutdown().await;
}

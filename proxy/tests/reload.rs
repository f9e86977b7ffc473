//! Hot reload: atomic swaps under load, and rejected configurations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_during_load_fail_no_request() {
    let v1 = upstream()
        .body("v1")
        .delay(Duration::from_millis(2))
        .run()
        .await;
    let v2 = upstream()
        .body("v2")
        .delay(Duration::from_millis(2))
        .run()
        .await;
    let cfg = ConfigDir::new(&split(100, 0), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let addr = p.listen_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (stop, ok) = (stop.clone(), ok.clone());
        load.push(tokio::spawn(async move {
            let c = client();
            let mut failures = Vec::new();
            // Bounded in count as well as by the stop flag.
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = get(&c, addr, "svc", "/").await;
                if r.status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push(r.status);
                }
            }
            failures
        }));
    }
    // Move the weights while the load runs, as a rollout does.
    for (i, (a, b)) in [(90, 10), (50, 50), (0, 100), (75, 25), (0, 100)]
        .into_iter()
        .enumerate()
    {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cfg.write_routes(&split(a, b));
        let want = i as u64 + 2;
        eventually("reload", || async { p.live().generation() >= want }).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let failures = t.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed requests during reload: {failures:?}"
        );
    }
    assert!(
        ok.load(Ordering::Relaxed) > 100,
        "the load ran: {}",
        ok.load(Ordering::Relaxed)
    );
    // The last config (0/100) is live.
    let before = v1.hits();
    for _ in 0..20 {
        assert_eq!(get(&client(), addr, "svc", "/").await.body, "v2");
    }
    assert_eq!(v1.hits(), before);
    let cfg_json = admin_get(p.admin_addr(), "/config").await.body;
    assert!(cfg_json.contains("\"generation\": 6"), "{cfg_json}");
    p.shutdown().await;
}

#[tokio::test]
async fn invalid_reload_is_rejected_and_the_old_config_keeps_serving() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let failures = |m: &str| metric_value(m, "meshproxy_config_reload_failures_total", &[]);
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(failures(&m), 0.0);

    // Weights that do not sum to 100.
    cfg.write_routes(&split(90, 20));
    eventually("reload failure counted", || async {
        failures(&admin_get(p.admin_addr(), "/metrics").await.body) == 1.0
    })
    .await;
    // Broken YAML in another file.
    cfg.write("broken.yaml", "kind: VirtualService\nspec: [unclosed\n");
    eventually("second reload failure counted", || async {
        failures(&admin_get(p.admin_addr(), "/metrics").await.body) == 2.0
    })
    .await;
    assert_eq!(p.live().generation(), 1);
    for _ in 0..10 {
        assert_eq!(get(&client(), p.listen_addr(), "svc", "/").await.body, "v1");
    }
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(&m, "meshproxy_config_generation", &[]),
        0.0 + 1.0
    );

    // Fixing both files brings the new config in.
    std::fs::remove_file(cfg.path().join("broken.yaml")).unwrap();
    cfg.write_routes(&split(0, 100));
    eventually("fixed config loads", || async {
        p.live().generation() == 2
    })
    .await;
    assert_eq!(get(&client(), p.listen_addr(), "svc", "/").await.body, "v2");
    p.shutdown().await;
}

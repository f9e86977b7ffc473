//! The real `meshproxy` binary: graceful drain on SIGTERM, start-up errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

const BIN: &str = env!("CARGO_BIN_EXE_meshproxy");

/// Reserves two free ports (the binary binds them right after).
async fn free_ports() -> (std::net::SocketAddr, std::net::SocketAddr) {
    (closed_port().await, closed_port().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_0() {
    let slow = upstream()
        .delay(Duration::from_millis(1500))
        .body("slow but fine")
        .run()
        .await;
    let cfg = ConfigDir::new(&split(100, 0), &[slow.addr], &[]);
    let (listen, admin) = free_ports().await;
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args([
            "--listen",
            &listen.to_string(),
            "--admin",
            &admin.to_string(),
            "--drain-timeout",
            "10s",
            "--workers",
            "2",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    eventually("proxy ready", || async {
        tokio::net::TcpStream::connect(admin).await.is_ok()
            && admin_get(admin, "/ready").await.status == 200
    })
    .await;

    let in_flight = tokio::spawn(async move { get(&client(), listen, "svc", "/").await });
    eventually("request reached the upstream", || async {
        slow.hits() == 1
    })
    .await;
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    let r = in_flight.await.unwrap();
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "slow but fine"));
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("meshproxy did not exit after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let log = log.join().unwrap().join("\n");
    assert!(log.contains("SIGTERM received: draining"), "{log}");
    assert!(log.contains("drained"), "{log}");
    // New connections are refused once it is gone.
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
}

#[test]
fn invalid_config_at_start_exits_1_naming_file_and_field() {
    let cfg = ConfigDir::new(&split(90, 20), &[], &[]);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = cfg.path().join("svc.yaml");
    assert!(
        err.contains(&format!(
            "{}: VirtualService/svc spec.http[0].route: weights sum to 110: they must sum to 100",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn bad_flag_value_exits_2_naming_the_flag() {
    let out = Command::new(BIN)
        .args(["--config", ".", "--max-header-bytes", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-header-bytes: 10 is too small: use at least 8192"),
        "{err}"
    );
}

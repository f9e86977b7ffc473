//! meshctl judges gRPC (issue 13): the failure rule read the same way from
//! an exposition endpoint and from a real Prometheus server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use meshctl::metrics::prometheus::Prometheus;
use meshctl::metrics::proxy::ProxyMetrics;
use meshctl::metrics::{GrpcCodes, MetricsSource};

use crate::rollout_prometheus::{prometheus_binary, start_prometheus};

/// gRPC and HTTP series of `discounts` as meshproxy exposes them (with
/// labels the analysis sums over), and a series of another service.
const GRPC_EXPOSITION: &str = r#"# TYPE istio_requests_total counter
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v1",request_protocol="grpc",response_code="200",grpc_response_status="0",response_flags="-"} 500
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v1",request_protocol="grpc",response_code="200",grpc_response_status="5",response_flags="-"} 7
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="0",response_flags="-"} 88
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",response_flags="-"} 10
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="14",response_flags="UF"} 1
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="503",grpc_response_status="14",response_flags="UC"} 1
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="http",response_code="502",grpc_response_status="",response_flags="-"} 3
istio_requests_total{reporter="destination",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",response_flags="-"} 4
istio_requests_total{reporter="source",destination_service_name="other",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",response_flags="-"} 9
# TYPE istio_request_duration_milliseconds histogram
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="0",le="5"} 80
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="0",le="+Inf"} 88
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",le="5"} 10
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",le="+Inf"} 10
"#;

/// Serves a fixed body as `/metrics` on 127.0.0.1:0 until dropped.
struct StaticMetrics {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl StaticMetrics {
    fn serve(body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            // Bounded: at most 10 minutes of 5 ms polls.
            for _ in 0..120_000 {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for StaticMetrics {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn exposition_and_prometheus_count_grpc_failures_alike() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    let metrics = StaticMetrics::serve(GRPC_EXPOSITION);
    let prom = start_prometheus(bin, &metrics.addr.to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("http://{}/metrics", metrics.addr);
    for codes in [
        GrpcCodes::default(),
        "NOT_FOUND,internal".parse().expect("codes"),
        GrpcCodes::new([]),
    ] {
        let timeout = Duration::from_secs(5);
        let direct = ProxyMetrics::new(&url, timeout)
            .expect("source")
            .with_grpc_codes(codes.clone());
        let promql = Prometheus::new(&prom.url, timeout)
            .expect("source")
            .with_grpc_codes(codes.clone());
        let (a, b) = rt.block_on(async {
            (
                direct.scrape("discounts").await.expect("direct scrape"),
                promql.scrape("discounts").await.expect("prometheus scrape"),
            )
        });
        assert_eq!(a, b, "codes {codes}");
        let v2 = a.version("v2");
        let expected = match codes.to_string().as_str() {
            // INTERNAL 10, UNAVAILABLE 1 (HTTP 200) + 1 (HTTP 503), HTTP 502 3.
            "UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS" => {
                vec![("HTTP 502", 3.0), ("INTERNAL", 10.0), ("UNAVAILABLE", 2.0)]
            }
            // The 503 still counts as a 5xx, the HTTP 200 UNAVAILABLE does not.
            "NOT_FOUND,INTERNAL" => vec![("HTTP 502", 3.0), ("HTTP 503", 1.0), ("INTERNAL", 10.0)],
            _ => vec![("HTTP 502", 3.0), ("HTTP 503", 1.0)],
        };
        let total: f64 = expected.iter().map(|(_, n)| n).sum();
        assert_eq!((v2.requests, v2.errors), (103.0, total), "codes {codes}");
        let got: Vec<(&str, f64)> = v2.failures.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, expected, "codes {codes}");
        // v1's NOT_FOUND is a client fault unless the set says otherwise.
        let v1 = a.version("v1");
        let not_found = if codes.to_string().contains("NOT_FOUND") {
            7.0
        } else {
            0.0
        };
        assert_eq!((v1.requests, v1.errors), (507.0, not_found));
        // The destination-reported copies stay apart.
        assert_eq!(a.destination["v2"].requests, 4.0);
    }
    drop(prom);
}

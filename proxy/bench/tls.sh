#!/usr/bin/env bash
# mTLS benchmark, run by hand: meshproxy vs nginx terminating TLS with the
# same ECDSA P-256 certificate (from `meshctl certs`), the same worker count,
# the same plain-HTTP upstream behind both, and the same load tools.
#
#   proxy/bench/tls.sh            # WORKERS=1 DURATION=10s CONNS=64 HS_CONNS=16 SKIP_BUILD=0 MESHPROXY_ARGS=
#
# Measured per server:
#   handshakes/s  tls_load --handshake: every request on a new TCP+TLS
#                 connection with a client certificate, resumption disabled
#                 (full ECDHE + ECDSA handshake, mutual auth, one request).
#   s_time conn/s openssl s_time -new with the client certificate: one
#                 connection at a time, an independent client (handshake only).
#   req/s mTLS    tls_load keep-alive: CONNS connections with client certs,
#                 requests back to back.
#   req/s TLS     wrk over https (wrk cannot present a client certificate, so
#                 this runs against server-only TLS listeners of both).
# The servers are pinned to CPU 0, load clients and the upstream to CPU 1
# (2-core machine); nothing leaves 127.0.0.1; every run is bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORKERS=${WORKERS:-1}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
HS_CONNS=${HS_CONNS:-16}
PORT_BASE=${PORT_BASE:-18440}
UP=$PORT_BASE NGINX_MTLS=$((PORT_BASE + 1)) NGINX_TLS=$((PORT_BASE + 2))
PROXY_MTLS=$((PORT_BASE + 3)) PROXY_TLS=$((PORT_BASE + 4))
ADMIN_MTLS=$((PORT_BASE + 5)) ADMIN_TLS=$((PORT_BASE + 6))
secs=${DURATION%s}

for tool in nginx openssl wrk taskset curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

# SKIP_BUILD=1 reuses the release binaries already built.
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  cargo build --release -q -p meshproxy --bin meshproxy --example tls_load
fi
[[ -x target/debug/meshctl ]] || cargo build -q -p meshctl --bin meshctl
PROXY_BIN=target/release/meshproxy
LOAD=target/release/examples/tls_load

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/debug/meshctl certs --out "$work/pki" --name bench-server --name bench-client >/dev/null
pki=$work/pki

# --- the upstream: static 200, shared by both servers -------------------------
mkdir -p "$work/up" "$work/front"
cat >"$work/up/nginx.conf" <<CONF
worker_processes 1;
pid $work/up/nginx.pid;
error_log $work/up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$UP reuseport;
    keepalive_requests 1000000;
    location / { return 200 "ok\n"; }
  }
}
CONF
taskset -c 1 nginx -p "$work/up" -c "$work/up/nginx.conf" -g 'daemon off;' &
pids+=($!)

# --- nginx terminating TLS / mTLS in front of the upstream --------------------
cat >"$work/front/nginx.conf" <<CONF
worker_processes $WORKERS;
pid $work/front/nginx.pid;
error_log $work/front/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$UP; keepalive 256; }
  ssl_certificate $pki/bench-server.crt;
  ssl_certificate_key $pki/bench-server.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ecdh_curve X25519:prime256v1;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NGINX_MTLS ssl http2;
    ssl_client_certificate $pki/ca.crt;
    ssl_verify_client on;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$NGINX_TLS ssl http2;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
taskset -c 0 nginx -p "$work/front" -c "$work/front/nginx.conf" -g 'daemon off;' &
pids+=($!)

# --- meshproxy with the same certificate, routing to the same upstream --------
mkdir -p "$work/config"
cat >"$work/config/app.yaml" <<CONF
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [bench, localhost]
  http:
  - route:
    - destination: {host: app, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: app}
spec:
  host: app
  subsets:
  - name: v1
    labels: {version: v1}
CONF
cat >"$work/config/endpoints.yaml" <<CONF
services:
  app:
    endpoints:
    - address: 127.0.0.1:$UP
      labels: {version: v1}
CONF
# MESHPROXY_ARGS adds flags, e.g. MESHPROXY_ARGS="--http1 hyper" to compare
# with hyper serving every connection.
read -ra extra <<<"${MESHPROXY_ARGS:-}"
common=(--config "$work/config" --workers "$WORKERS"
  --tls-cert "$pki/bench-server.crt" --tls-key "$pki/bench-server.key" "${extra[@]}")
RUST_LOG=error taskset -c 0 "$PROXY_BIN" "${common[@]}" --tls-client-ca "$pki/ca.crt" \
  --listen 127.0.0.1:$PROXY_MTLS --admin 127.0.0.1:$ADMIN_MTLS &
pids+=($!)
RUST_LOG=error taskset -c 0 "$PROXY_BIN" "${common[@]}" \
  --listen 127.0.0.1:$PROXY_TLS --admin 127.0.0.1:$ADMIN_TLS &
pids+=($!)

client=(--cert "$pki/bench-client.crt" --key "$pki/bench-client.key")
ready() {
  for _ in $(seq 100); do
    curl -sf --cacert "$pki/ca.crt" "${@:2}" "https://localhost:$1/" -H 'host: bench' >/dev/null && return 0
    sleep 0.1
  done
  echo "bench: port $1 did not come up" >&2
  exit 1
}
ready $NGINX_MTLS --cert "$pki/bench-client.crt" --key "$pki/bench-client.key"
ready $NGINX_TLS
ready $PROXY_MTLS --cert "$pki/bench-client.crt" --key "$pki/bench-client.key"
ready $PROXY_TLS

load() { taskset -c 1 "$LOAD" --ca "$pki/ca.crt" --duration "$DURATION" "$@"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

declare -A result
for name in nginx meshproxy; do
  if [[ $name == nginx ]]; then mtls=$NGINX_MTLS tls=$NGINX_TLS; else mtls=$PROXY_MTLS tls=$PROXY_TLS; fi
  echo "== $name (workers=$WORKERS)" >&2
  out=$(load --addr 127.0.0.1:$mtls "${client[@]}" --handshake --connections "$HS_CONNS")
  echo "   handshake: $out" >&2
  result[$name,hs]=$(field rate <<<"$out")
  result[$name,hs_p99]=$(field p99 <<<"$out")
  out=$(taskset -c 1 openssl s_time -connect 127.0.0.1:$mtls -new -time "$secs" \
    -cert "$pki/bench-client.crt" -key "$pki/bench-client.key" -CAfile "$pki/ca.crt" 2>&1 |
    grep -m1 'real seconds' || true)
  echo "   s_time: $out" >&2
  # "N connections in S real seconds": wall-clock rate (s_time's per-user-second
  # figure counts only the client's own CPU time).
  result[$name,stime]=$(awk '{ if ($4 > 0) printf "%.0f", $1 / $4 }' <<<"$out")
  out=$(load --addr 127.0.0.1:$mtls "${client[@]}" --connections "$CONNS")
  echo "   keep-alive mTLS: $out" >&2
  result[$name,rps]=$(field rate <<<"$out")
  result[$name,p99]=$(field p99 <<<"$out")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" -H 'Host: bench' "https://127.0.0.1:$tls/" 2>&1)
  echo "   wrk TLS: $(grep -E 'Requests/sec|Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ')" >&2
  result[$name,wrk]=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
done

printf '\n| workers=%s, %s per run | nginx %s | meshproxy |\n|---|---|---|\n' \
  "$WORKERS" "$DURATION" "$(nginx -v 2>&1 | sed 's/.*nginx\///')"
printf '| mTLS full handshakes/s (tls_load, %s conns, + 1 request) | %s | %s |\n' "$HS_CONNS" "${result[nginx,hs]}" "${result[meshproxy,hs]}"
printf '| handshake+request p99 ms | %s | %s |\n' "${result[nginx,hs_p99]}" "${result[meshproxy,hs_p99]}"
printf '| mTLS handshakes/s (openssl s_time -new, 1 conn) | %s | %s |\n' "${result[nginx,stime]}" "${result[meshproxy,stime]}"
printf '| mTLS req/s keep-alive (tls_load, %s conns) | %s | %s |\n' "$CONNS" "${result[nginx,rps]}" "${result[meshproxy,rps]}"
printf '| mTLS keep-alive p99 ms | %s | %s |\n' "${result[nginx,p99]}" "${result[meshproxy,p99]}"
printf '| TLS req/s keep-alive (wrk -t1 -c%s) | %s | %s |\n' "$CONNS" "${result[nginx,wrk]}" "${result[meshproxy,wrk]}"

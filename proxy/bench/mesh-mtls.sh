#!/usr/bin/env bash
# The mesh-internal hop, run by hand: client -> sidecar A (plain in,
# DestinationRule ISTIO_MUTUAL out) -> sidecar B (mTLS in) -> app, as two
# Istio sidecars carry a request between services. Sidecar A runs twice side
# by side, with the lean HTTP/1.1 lane (default) and with `--http1 hyper`;
# sidecar B and the app are shared. One worker per sidecar.
#
#   proxy/bench/mesh-mtls.sh      # DURATION=5s ROUNDS=3 CONNS=32 SKIP_BUILD=0
#
# Prints req/s and sidecar A's CPU per request (user + system, from /proc)
# for each engine and round. Loopback only; every run bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
APP=127.0.0.1:18480 SIDECAR_B=127.0.0.1:18481 LEAN=127.0.0.1:18483 HYPER=127.0.0.1:18485

command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  cargo build --release -q -p meshproxy --bin meshproxy --example bench-upstream
  cargo build --release -q --bin meshctl
fi
BIN=target/release

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN/meshctl" certs --out "$tmp/pki" --name frontend --name discounts >/dev/null
pki=$tmp/pki

"$BIN/examples/bench-upstream" 1 "$APP" &
pids+=($!)

# Sidecar B: terminates mTLS, routes to the app.
mkdir -p "$tmp/b" "$tmp/a"
cat >"$tmp/b/app.yaml" <<CONF
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: discounts}
spec:
  hosts: [discounts]
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
  - {name: v1, labels: {version: v1}}
CONF
printf 'services:\n  app:\n    endpoints:\n    - {address: "%s", labels: {version: v1}}\n' "$APP" >"$tmp/b/endpoints.yaml"
RUST_LOG=error "$BIN/meshproxy" --config "$tmp/b" --listen "$SIDECAR_B" --admin 127.0.0.1:18482 --workers 1 \
  --tls-cert "$pki/discounts.crt" --tls-key "$pki/discounts.key" --tls-client-ca "$pki/ca.crt" &
pids+=($!)

# Sidecar A: plain in, ISTIO_MUTUAL to sidecar B with the frontend identity.
cat >"$tmp/a/discounts.yaml" <<CONF
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: discounts}
spec:
  hosts: [discounts]
  http:
  - route:
    - destination: {host: discounts, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: discounts}
spec:
  host: discounts
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - {name: v1, labels: {version: v1}}
CONF
printf 'services:\n  discounts:\n    endpoints:\n    - {address: "%s", labels: {version: v1}}\n' "$SIDECAR_B" >"$tmp/a/endpoints.yaml"
declare -A pid_of
for engine in lean hyper; do
  if [[ $engine == lean ]]; then addr=$LEAN; else addr=$HYPER; fi
  RUST_LOG=error "$BIN/meshproxy" --config "$tmp/a" --listen "$addr" --admin "127.0.0.1:$(( ${addr##*:} + 1 ))" \
    --workers 1 --http1 "$engine" \
    --workload-cert "$pki/frontend.crt" --workload-key "$pki/frontend.key" --mesh-ca "$pki/ca.crt" &
  pids+=($!)
  pid_of[$engine]=$!
done

for addr in "$LEAN" "$HYPER"; do
  for _ in $(seq 1 100); do
    [[ $(curl -s -H 'Host: discounts' "http://$addr/") == "hello, mesh!" ]] && break
    sleep 0.1
  done
  [[ $(curl -s -H 'Host: discounts' "http://$addr/") == "hello, mesh!" ]] ||
    { echo "bench: $addr does not answer through the mTLS hop" >&2; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "| round | engine | req/s (c=$CONNS) | sidecar A CPU µs/request |"
echo "|---:|---|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
  for engine in lean hyper; do
    if [[ $engine == lean ]]; then addr=$LEAN; else addr=$HYPER; fi
    t0=$(cpu_ticks "${pid_of[$engine]}")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -H 'Host: discounts' "http://$addr/")
    t1=$(cpu_ticks "${pid_of[$engine]}")
    if grep -q "Non-2xx" <<<"$out"; then echo "warning: $engine answered non-2xx" >&2; fi
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    awk -v r="$round" -v e="$engine" -v rps="$rps" -v t=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "| %s | %s | %.0f | %.1f |\n", r, e, rps, t / hz * 1e6 / n }'
  done
done

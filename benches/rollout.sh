#!/usr/bin/env bash
# Rollout benchmarks (issue 5). Prints the numbers quoted in the README.
#
#  1. time from a bad canary's first failing requests to v1 = 100
#     (`meshctl demo --bad-canary -o json`: first step_started -> rolled_back);
#  2. canary requests needed to detect a 5% error rate against a 0.1%
#     baseline at 95% confidence (closed form, verified by simulation);
#  3. meshctl's CPU and RSS while it drives a long rollout against a
#     metrics endpoint (default 2 minutes; BENCH_MINUTES=10 for the full run).
#
# Needs: cargo, python3 (JSON and a tiny metrics server). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

INTERVAL=${BENCH_INTERVAL:-2s}
MINUTES=${BENCH_MINUTES:-2}
PARTS=${BENCH_PARTS:-123}            # e.g. BENCH_PARTS=3 for the CPU/RSS run only
if [ -n "${MESHCTL_BIN:-}" ]; then    # measure a binary you built already
  BIN=$MESHCTL_BIN
else
  cargo build --release --locked -p meshctl >/dev/null
  BIN=target/release/meshctl
fi
WORK=$(mktemp -d)
trap 'kill "${SERVER:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

if [[ $PARTS == *1* ]]; then
echo "== 1. bad canary -> v1=100 (interval $INTERVAL, threshold 2)"
for run in 1 2 3; do
  "$BIN" demo --bad-canary --interval "$INTERVAL" -o json >"$WORK/demo.jsonl" || test $? -eq 3
  python3 - "$WORK/demo.jsonl" <<'PY'
import json, sys, datetime
ev = [json.loads(l) for l in open(sys.argv[1])]
t = lambda e: datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
start = next(e for e in ev if e["event"] == "step_started")
back = next(e for e in ev if e["event"] == "rolled_back")
print(f"  first failing requests -> v1=100: {(t(back) - t(start)).total_seconds():.2f} s "
      f"(weights {back['weights']})")
PY
done
fi

if [[ $PARTS == *2* ]]; then
echo "== 2. requests to detect 5% vs 0.1% errors at 95% confidence"
cargo test --locked -p meshctl --lib sample_size -- --nocapture 2>/dev/null | grep 'z-test:' | sed 's/^/  /'
fi

[[ $PARTS == *3* ]] || exit 0
echo "== 3. meshctl CPU and RSS during a ${MINUTES}-minute rollout"
mkdir -p "$WORK/mesh"
cat >"$WORK/mesh/discounts.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: discounts}
spec:
  hosts: [discounts]
  http:
  - route:
    - destination: {host: discounts, subset: v1}
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: discounts}
spec:
  host: discounts
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
# Counters grow with wall time: 100 requests/s to each version, all fast.
python3 - "$WORK/port" <<'PY' &
import http.server, sys, time
start = time.time()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = int((time.time() - start) * 100)
        out = []
        for v in ("v1", "v2"):
            l = f'destination_service_name="discounts",destination_version="{v}"'
            out.append(f'istio_requests_total{{{l},response_code="200"}} {n}')
            out.append(f'istio_request_duration_milliseconds_bucket{{{l},le="5"}} {n}')
            out.append(f'istio_request_duration_milliseconds_bucket{{{l},le="+Inf"}} {n}')
        body = ("\n".join(out) + "\n").encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
SERVER=$!
for _ in $(seq 50); do test -s "$WORK/port" && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
STEP_SECONDS=$((MINUTES * 60 / 4))
"$BIN" --target "local:$WORK/mesh" -q rollout start discounts --to v2 --steps 25,50,75,100 \
  --interval "${STEP_SECONDS}s" --metrics "http://127.0.0.1:$PORT/metrics" &
PID=$!
TCK=$(getconf CLK_TCK)
MAXRSS=0
START=$(date +%s.%N)
while kill -0 "$PID" 2>/dev/null; do
  if [ -r "/proc/$PID/stat" ]; then
    read -r -a F <"/proc/$PID/stat" || true
    TICKS=$(( ${F[13]:-0} + ${F[14]:-0} ))
    RSS=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
    [ "${RSS:-0}" -gt "$MAXRSS" ] && MAXRSS=$RSS
  fi
  sleep 1
done
wait "$PID" || true
END=$(date +%s.%N)
python3 -c "
ticks, tck, start, end, rss = $TICKS, $TCK, $START, $END, $MAXRSS
wall = end - start
print(f'  wall {wall:.0f} s, CPU {ticks / tck:.2f} s = {100 * ticks / tck / wall:.3f}% of one core, max RSS {rss / 1024:.1f} MiB')
"

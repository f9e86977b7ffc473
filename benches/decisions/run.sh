#!/usr/bin/env bash
# The decision benchmark (issue 14): --analysis window vs sequential on
# simulated traffic with known truth, driving the real rollout engine
# in-process on a paused clock (see benches/decisions/main.rs). Writes the
# tables into README.md ("Decisions you can trust"). Seeds are fixed, so the
# numbers are reproducible.
#
#   RUNS=500 benches/decisions/run.sh      # rollouts per scenario and rule
#
# Three tables: fixed 10 s and 1 s intervals, and --interval auto (each
# rule sizing its bakes for its own test after a 3 s rate probe).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${RUNS:-500}"
for interval in 10s 1s auto; do
    cargo bench --bench decisions -- --runs "$runs" --interval "$interval" --readme README.md
done

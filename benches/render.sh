#!/usr/bin/env bash
# Whole-process time of `meshctl render` of the example (the README figure).
# Builds the release binary, then runs hyperfine (installed when missing).
# Usage: benches/render.sh [extra hyperfine args], e.g. --export-markdown FILE
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v hyperfine >/dev/null; then
  echo "installing hyperfine"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi

cargo build --release --locked --bin meshctl
bin=target/release/meshctl
"$bin" render -f examples/meshctl.yaml >/dev/null  # fail fast if it does not render

hyperfine --warmup 20 --runs 200 -N \
  "$bin render -f examples/meshctl.yaml" \
  "$bin render -f examples/meshctl.yaml -o json" \
  "$@"

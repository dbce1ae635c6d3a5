#!/usr/bin/env bash
# The one test command (README "Test it"): on a fresh machine it installs what the tests need
# (the wasm32-wasip2 target, redis-server), builds every Wasm component in release mode and runs
# every test in the workspace: unit tests of the pure crates and components, the wasmtime-hosted
# component tests, and the end-to-end suite on real `spin up` (tests/e2e: it runs `spin build`
# and starts Spin itself; `spin` from PATH, else ../shared/tools/spin).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32-wasip2 target"
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

step "redis-server (for the redis:// and Upstash lock backends), promtool (checks /metrics)"
if ! command -v redis-server >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server prometheus >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server prometheus >/dev/null
  fi
fi
redis-server --version
promtool --version 2>&1 | sed -n 1p

step "Spin CLI (for the end-to-end suite on real spin up)"
if command -v spin >/dev/null 2>&1; then
  spin --version
elif [ -x ../shared/tools/spin ]; then
  ../shared/tools/spin --version
else
  echo "no Spin CLI: the end-to-end suite will say so (and fail under CI=true)"
fi

step "build the Wasm components (release, as spin.toml names them)"
cargo build --locked --target wasm32-wasip2 --release \
  -p cart -p spin-adapter -p inventory -p event-sink
# Test fixtures: the hello-world baseline and the small guests the host's own tests use.
cargo build --locked --target wasm32-wasip2 --release -p hello-fixture --lib --examples
export CART_TESTS_SKIP_FIXTURE_BUILD=1

step "deploy/: SpinKube manifest and runtime config against their schemas"
python3 -c 'import yaml, jsonschema' 2>/dev/null || python3 -m pip install --quiet pyyaml jsonschema
python3 deploy/check.py
echo "deploy/prometheus, deploy/grafana: promtool check and rule tests, metric names against the registry"
bash scripts/check-observability.sh

step "run every test"
set +e
cargo test --locked --workspace --exclude hello-fixture --no-fail-fast -- --test-threads="${TEST_THREADS:-2}" 2>&1 | tee target/test-output.log
status=${PIPESTATUS[0]}
set -e

step "summary"
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed\n", p, f }' target/test-output.log
exit "$status"

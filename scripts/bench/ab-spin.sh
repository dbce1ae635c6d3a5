#!/usr/bin/env bash
# A/B throughput of builds of the app on real `spin up`, side by side.
#
#   scripts/bench/ab-spin.sh snapshot NAME     # keep the built components as variant NAME
#   scripts/bench/ab-spin.sh run ROUNDS PATH...  # serve every variant, measure them in turn
#
# `snapshot` copies target/wasm32-wasip2/release/{cart,spin_adapter,inventory,event_sink}.wasm
# (build them first, at the revision you want) into target/ab/NAME with a manifest: the app's
# spin.toml pointing at the copies, plus the hello-world baseline at /hello.
#
# `run` starts one Spin per variant (each with a fresh state dir, its own port from 4200 up),
# seeds product p1 and a one-line cart for user `abuser` through the public APIs, then for
# each round and each PATH measures every variant in turn: wrk 2 threads x 16 connections,
# 1 s warm-up, 4 s measured, header `X-User-Id: abuser`. It prints one line per round and path
# with each variant's requests per second. Alternating the variants round by round spreads
# whatever else the machine does over all of them, so their differences are comparable even
# when the absolute figures drift (which is why the real-Spin figures of docs/benchmarks.md
# come from scripts/bench-spin.sh and the A/B comparisons from this script).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
AB="$ROOT/target/ab"
WASM="$ROOT/target/wasm32-wasip2/release"
SPIN="$(command -v spin || echo "$ROOT/../shared/tools/spin")"
REFERENCE_TOKEN="$(sed -n 's/^reference_token = { default = "\([^"]*\)".*/\1/p' "$ROOT/spin.toml")"

die() { echo "ab-spin: $*" >&2; exit 1; }

# Process groups of the Spins `run` started: stopped on exit, however the script ends.
GROUPS_STARTED=()
stop_spins() {
  for g in "${GROUPS_STARTED[@]:-}"; do [ -n "$g" ] && kill -- "-$g" 2>/dev/null || true; done
}
trap stop_spins EXIT

snapshot() {
  local name="$1" dir="$AB/$1"
  mkdir -p "$dir"
  for c in cart spin_adapter inventory event_sink; do
    [ -f "$WASM/$c.wasm" ] || die "$WASM/$c.wasm is missing: build the components first"
    cp "$WASM/$c.wasm" "$dir/"
  done
  [ -f "$WASM/hello_fixture.wasm" ] ||
    cargo build --target wasm32-wasip2 --release -p hello-fixture --lib
  cp "$WASM/hello_fixture.wasm" "$dir/"
  {
    sed "s#\"target/wasm32-wasip2/release/#\"$dir/#g" "$ROOT/spin.toml"
    printf '\n[[trigger.http]]\nroute = "/hello"\ncomponent = "hello"\n\n[component.hello]\nsource = "%s/hello_fixture.wasm"\n' "$dir"
  } > "$dir/spin.toml"
  echo "variant $name: $dir ($(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- components crates wit || echo ', uncommitted changes'))"
}

run() {
  local rounds="$1"; shift
  [ "$#" -gt 0 ] || die "name at least one path"
  command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
  local variants=() ports=()
  for dir in "$AB"/*/; do
    [ -f "$dir/spin.toml" ] && variants+=("$(basename "$dir")")
  done
  [ "${#variants[@]}" -gt 0 ] || die "no variants in $AB: snapshot some first"
  local port=4200
  for v in "${variants[@]}"; do
    local state
    state="$(mktemp -d "$AB/.state-$v.XXXX")"
    setsid "$SPIN" up -f "$AB/$v/spin.toml" --listen "127.0.0.1:$port" --state-dir "$state" \
      > "$AB/$v/spin.log" 2>&1 < /dev/null &
    GROUPS_STARTED+=("$!")
    ports+=("$port")
    port=$((port + 1))
  done
  for i in "${!variants[@]}"; do
    local base="http://127.0.0.1:${ports[$i]}"
    for _ in $(seq 120); do curl -sf "$base/hello" > /dev/null && break; sleep 0.5; done
    curl -sf "$base/hello" > /dev/null || die "variant ${variants[$i]} did not start: $AB/${variants[$i]}/spin.log"
    curl -sf -X PUT "$base/inventory/v1/stores/bench/products/p1" \
      -H "authorization: Bearer $REFERENCE_TOKEN" -H 'content-type: application/json' \
      -d '{"title":"P","unitPrice":{"amount":100,"currency":"EUR"},"stock":1000000}' > /dev/null
    curl -sf -X POST "$base/v1/stores/bench/cart/items" -H 'X-User-Id: abuser' \
      -H 'content-type: application/json' -d '{"productId":"p1","quantity":1}' > /dev/null
  done
  for r in $(seq "$rounds"); do
    for path in "$@"; do
      local line="round $r $path"
      for i in "${!variants[@]}"; do
        local url="http://127.0.0.1:${ports[$i]}$path"
        wrk -t2 -c16 -d1s -H 'X-User-Id: abuser' "$url" > /dev/null 2>&1
        local rps
        rps="$(wrk -t2 -c16 -d4s -H 'X-User-Id: abuser' "$url" 2>&1 | awk '/Requests\/sec/ {print $2}')"
        line="$line  ${variants[$i]}=$rps"
      done
      echo "$line"
    done
  done
}

case "${1:-}" in
  snapshot) [ "$#" -eq 2 ] || die "usage: $0 snapshot NAME"; snapshot "$2" ;;
  run) [ "$#" -ge 3 ] || die "usage: $0 run ROUNDS PATH..."; shift; run "$@" ;;
  *) die "usage: $0 snapshot NAME | run ROUNDS PATH..." ;;
esac

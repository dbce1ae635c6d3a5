#!/usr/bin/env bash
# Runs the capability-host suites (crate cart-tests) N times in a row, warm, and writes one
# line per run (pass/fail, seconds, failing tests) to OUT, then the N/N figure. For flake
# hunting: a run that fails keeps its whole output as OUT.run-K.log.
#
#   bash scripts/repeat-capability-suites.sh [N=20] [OUT=target/repeat-capability-suites.txt]
#
# Needs the wasm build and fixtures first (see tests/README.md); builds nothing itself.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
out=${2:-target/repeat-capability-suites.txt}
export CART_TESTS_SKIP_FIXTURE_BUILD=1
cargo test -q -p cart-tests --tests --no-run >/dev/null 2>&1 || {
  echo "the suites do not build" >&2
  exit 2
}
: >"$out"
passed=0
for k in $(seq 1 "$runs"); do
  log="$out.run-$k.log"
  start=$(date +%s.%N)
  cargo test -p cart-tests --tests >"$log" 2>&1
  status=$?
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    printf 'run %d pass %.1fs\n' "$k" "$secs" >>"$out"
    rm -f "$log"
  else
    failing=$(grep -E '^test .* FAILED$|^    [a-z_]+$' "$log" | tr '\n' ' ')
    printf 'run %d FAIL %.1fs %s\n' "$k" "$secs" "$failing" >>"$out"
  fi
done
printf '%d/%d runs passed\n' "$passed" "$runs" | tee -a "$out"

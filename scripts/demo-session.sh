#!/usr/bin/env bash
# A scripted shopper session against a running cart app (`spin up`; the real-Spin suite in
# tests/e2e runs it too): stock three products, add them, change a quantity, remove one, read cart
# and summary, lose a race with a stale If-Match, and check that the inventory holds exactly what
# the cart shows.
#
#   scripts/demo-session.sh http://127.0.0.1:3000
#
# The reference inventory's writes and listings need `Authorization: Bearer <reference_token>`:
# REFERENCE_TOKEN (default: the demo value in spin.toml) must be the app's `reference_token`.
#
# Exits non-zero on the first deviation. Needs curl and python3.
set -euo pipefail
BASE=${1:-http://127.0.0.1:3000}
MANIFEST="$(dirname "$0")/../spin.toml"
REFERENCE_TOKEN=${REFERENCE_TOKEN:-$(sed -n 's/^reference_token = { default = "\([^"]*\)".*/\1/p' "$MANIFEST")}
AS_OPERATOR=(-H "Authorization: Bearer $REFERENCE_TOKEN")
STORE=${STORE:-session-$$-$RANDOM}
USER_ID=${USER_ID:-alice}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# call METHOD PATH [JSON] [extra curl args...] -> sets STATUS, body in $TMP/body, headers in $TMP/headers
call() {
  local method=$1 path=$2 data=${3:-}
  shift 3 || shift $#
  local args=(-sS -X "$method" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -H "X-User-Id: $USER_ID")
  if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data "$data"); fi
  STATUS=$(curl "${args[@]}" "$@" "$BASE$path")
  printf '%-6s %-60s -> %s\n' "$method" "$path" "$STATUS"
}

expect_status() {
  if [ "$STATUS" != "$1" ]; then
    echo "expected HTTP $1, got $STATUS:"; cat "$TMP/body"; echo; exit 1
  fi
}

# check PYTHON_EXPR: evaluated with `b` = parsed JSON body; must be true.
check() {
  python3 - "$TMP/body" "$1" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
if not eval(sys.argv[2]):
    print("check failed:", sys.argv[2]); print(json.dumps(b, indent=2)); sys.exit(1)
PY
}

header() { grep -i "^$1:" "$TMP/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

echo "store $STORE, user $USER_ID, app $BASE"
for spec in "beans:Espresso beans:1890:10" "kettle:Pour-over kettle:4900:5" "filters:Paper filters:450:20"; do
  IFS=: read -r id title price stock <<<"$spec"
  call PUT "/inventory/v1/stores/$STORE/products/$id" \
    "{\"title\":\"$title\",\"unitPrice\":{\"amount\":$price,\"currency\":\"EUR\"},\"stock\":$stock}" "${AS_OPERATOR[@]}"
  expect_status 200
done

call POST "/v1/stores/$STORE/cart/items" '{"productId":"beans","quantity":2}'
expect_status 200
FIRST_ETAG=$(header etag)
check 'b["lines"][0]["title"] == "Espresso beans" and b["lines"][0]["reservation"]["status"] == "confirmed"'
call POST "/v1/stores/$STORE/cart/items" '{"productId":"kettle","quantity":1}'
expect_status 200
call POST "/v1/stores/$STORE/cart/items" '{"productId":"filters","quantity":4}'
expect_status 200
check 'len(b["lines"]) == 3 and b["itemCount"] == 7'

call PATCH "/v1/stores/$STORE/cart/items/beans" '{"quantity":5}'
expect_status 200
call DELETE "/v1/stores/$STORE/cart/items/filters" ""
expect_status 200

call GET "/v1/stores/$STORE/cart" ""
expect_status 200
ETAG=$(header etag)
check 'sorted((l["productId"], l["quantity"]) for l in b["lines"]) == [("beans", 5), ("kettle", 1)]'
check 'b["subtotal"] == {"amount": 5*1890 + 4900, "currency": "EUR"}'
check 'all(l["lineTotal"]["amount"] == l["unitPrice"]["amount"] * l["quantity"] for l in b["lines"])'

call GET "/v1/stores/$STORE/cart/summary" ""
expect_status 200
check 'b["itemCount"] == 6 and b["lineCount"] == 2 and b["subtotal"]["amount"] == 14350'
[ "$(header cache-control)" = "private, max-age=5" ] || { echo "summary Cache-Control wrong"; exit 1; }

call GET "/v1/stores/$STORE/cart" "" -H "If-None-Match: $ETAG"
expect_status 304

call PATCH "/v1/stores/$STORE/cart/items/kettle" '{"quantity":2}' -H "If-Match: $FIRST_ETAG"
expect_status 412
check 'b["type"].endswith("/precondition-failed") and "currentVersion" in b'

call POST "/v1/stores/$STORE/cart/items" '{"productId":"kettle","quantity":10}'
expect_status 409
check 'b["type"].endswith("/insufficient-stock") and b["available"] == 5'

# Listing holds is an operator's view (a shopper or a stranger gets 401).
call GET "/inventory/v1/stores/$STORE/products/beans/reservations" ""
expect_status 401
call GET "/inventory/v1/stores/$STORE/products/beans/reservations" "" "${AS_OPERATOR[@]}"
expect_status 200
check '[r["quantity"] for r in b["reservations"]] == [5]'
call GET "/inventory/v1/stores/$STORE/products/kettle/reservations" "" "${AS_OPERATOR[@]}"
check '[r["quantity"] for r in b["reservations"]] == [1]'
call GET "/inventory/v1/stores/$STORE/products/filters/reservations" "" "${AS_OPERATOR[@]}"
check 'b["reservations"] == []'
call GET "/inventory/v1/stores/$STORE/products/beans" "" "${AS_OPERATOR[@]}"
check 'b["available"] == 5 and b["reserved"] == 5'

echo "session OK"

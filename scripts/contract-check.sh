#!/usr/bin/env bash
# Contract check: fuzzes a running cart server against docs/openapi.yaml and fails when an
# answer is not what the document says (a status it does not list, a body or header that does
# not match the schema, a problem `type` not listed for that status, a 5xx, bad input accepted,
# a method that is not refused with 405 and `Allow`).
#
#   scripts/contract-check.sh BASE_URL          e.g. scripts/contract-check.sh http://127.0.0.1:3911
#
# The server must run the local `spin.toml` defaults (demo identity: `X-User-Id` is trusted)
# with an admin token, e.g.
#   spin up --listen 127.0.0.1:3911 --variable admin_token=contract-admin
#
# Requirements: python3 3.11+ (schemathesis 4 needs it) with venv, curl, and PyPI reachable
# the first time. The fuzzer is installed into target/contract-venv, pinned:
#   schemathesis==4.32.5, openapi-spec-validator==0.9.0
#
# Environment:
#   CONTRACT_ADMIN_TOKEN   the server's admin_token (default: contract-admin)
#   CONTRACT_METRICS_TOKEN the server's metrics_token, when it sets one (default: none, and
#                          /metrics is then expected to be open)
#   CONTRACT_SEED          fixed Hypothesis seed (default: 20240611)
#   CONTRACT_MAX_EXAMPLES  generated cases per operation in the fuzzing phase (default: 25)
#   CONTRACT_USER          the X-User-Id every request sends (default: a fresh id per run, so
#                          each run starts from empty carts and no stored Idempotency-Keys,
#                          which is what makes two runs with one seed give the same answers)
#   CONTRACT_SPEC          the document to check (default: docs/openapi.yaml)
#   CONTRACT_REPORT_DIR    where the JUnit and HAR reports go (default: target/contract-check)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
OPENAPI_VALIDATOR_VERSION=0.9.0

if [ $# -ne 1 ]; then
  echo "usage: $0 BASE_URL   (e.g. http://127.0.0.1:3911)" >&2
  exit 2
fi
BASE_URL=${1%/}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SPEC=${CONTRACT_SPEC:-$ROOT/docs/openapi.yaml}
SPEC="$(cd "$(dirname "$SPEC")" && pwd)/$(basename "$SPEC")"
VENV="$ROOT/target/contract-venv"
REPORT_DIR=${CONTRACT_REPORT_DIR:-$ROOT/target/contract-check}
mkdir -p "$REPORT_DIR"
REPORT_DIR="$(cd "$REPORT_DIR" && pwd)"
ADMIN_TOKEN=${CONTRACT_ADMIN_TOKEN:-contract-admin}
METRICS_TOKEN=${CONTRACT_METRICS_TOKEN:-}
SEED=${CONTRACT_SEED:-20240611}
MAX_EXAMPLES=${CONTRACT_MAX_EXAMPLES:-25}
USER_ID=${CONTRACT_USER:-contract-$(date +%s)-$$}

step() { printf '\n==> %s\n' "$*"; }

step "fuzzer: schemathesis $SCHEMATHESIS_VERSION in ${VENV#"$ROOT"/}"
if [ ! -x "$VENV/bin/schemathesis" ] \
  || [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ] \
  || [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
fi
"$VENV/bin/schemathesis" --version

step "the document is valid OpenAPI"
"$VENV/bin/openapi-spec-validator" "$SPEC"

step "server at $BASE_URL"
for _ in $(seq 30); do
  if curl -sf "$BASE_URL/healthz" >/dev/null 2>&1; then break; fi
  sleep 1
done
curl -sf "$BASE_URL/healthz" >/dev/null || { echo "no server answers $BASE_URL/healthz" >&2; exit 1; }

# The admin token goes only to the operations secured by `adminToken`; the cart operations
# carry the demo identity header instead (a bearer token would replace it).
# No crash cache: it would replay an earlier run's failures first, so runs would differ.
CONFIG="$REPORT_DIR/schemathesis.toml"
cat >"$CONFIG" <<EOF
[cache]
enabled = false

[auth.openapi.adminToken]
bearer = "$ADMIN_TOKEN"
EOF
if [ -n "$METRICS_TOKEN" ]; then
  printf '\n[auth.openapi.metricsToken]\nbearer = "%s"\n' "$METRICS_TOKEN" >>"$CONFIG"
fi

started=$(date +%s)
step "targeted cases (answers the fuzzer cannot reach on its own: state, sizes, identities)"
# Each case is sent as written, must get the status named, and its answer is validated
# against the document with the same checks the fuzzer uses.
set +e
CONTRACT_BASE_URL="$BASE_URL" CONTRACT_SPEC="$SPEC" CONTRACT_USER="$USER_ID-probe" \
CONTRACT_ADMIN_TOKEN="$ADMIN_TOKEN" CONTRACT_METRICS_TOKEN="$METRICS_TOKEN" "$VENV/bin/python" - <<'PY'
import json, os, sys
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)

BASE = os.environ["CONTRACT_BASE_URL"]
USER = os.environ["CONTRACT_USER"]
ADMIN = os.environ["CONTRACT_ADMIN_TOKEN"]
METRICS = os.environ.get("CONTRACT_METRICS_TOKEN", "")
schema = schemathesis.openapi.from_path(os.environ["CONTRACT_SPEC"])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
http = requests.Session()
failures = 0
CART = "/v1/stores/{storeId}/cart"
ITEMS = "/v1/stores/{storeId}/cart/items"
ITEM = "/v1/stores/{storeId}/cart/items/{productId}"
SUMMARY = "/v1/stores/{storeId}/cart/summary"
CHECKOUT = "/v1/stores/{storeId}/cart/checkout"
MERGE = "/v1/stores/{storeId}/cart/merge"
DEMO = {"storeId": "demo"}
ME = {"X-User-Id": USER}

def probe(expect, method, template, params=None, query=None, user=ME, **kwargs):
    """Sends one request; it must get `expect` and an answer the document describes."""
    global failures
    params = params or {}
    headers = {**(user or {}), **kwargs.pop("headers", {})}
    url = BASE + template.format(**params)
    response = http.request(method, url, params=query, headers=headers, timeout=15, **kwargs)
    slug = ""
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        slug = response.json().get("type", "").rsplit("/", 1)[-1]
    problems = []
    if response.status_code != expect:
        problems.append(f"expected {expect}")
    case = schema[template][method].Case(path_parameters=params, query=query, headers=headers)
    try:
        case.validate_response(response, checks=CHECKS)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # a group of failed checks: name them, go on with the rest
        for failure in getattr(error, "exceptions", [error]):
            title = getattr(failure, "title", "") or str(failure).strip().splitlines()[0]
            message = " ".join(str(getattr(failure, "message", "")).split())[:300]
            problems.append(f"{title}: {message}" if message else title)
    mark = "ok  " if not problems else "FAIL"
    print(f"{mark} {response.status_code} {method} {url[len(BASE):]} {slug}".rstrip()
          + ("" if not problems else "  <- " + "; ".join(problems)))
    failures += bool(problems)
    return response

def as_json(body):
    return {"data": json.dumps(body), "headers": {"Content-Type": "application/json"}}

# Identity and the operator endpoints.
probe(401, "GET", CART, DEMO, user=None)
probe(401, "GET", CART, DEMO, user={"Authorization": "Bearer not-a-jwt"})
probe(401, "GET", CART, DEMO, user={"X-User-Id": "bad:id"})
probe(401, "POST", "/admin/outbox/relay", user=None)
probe(403, "POST", "/admin/outbox/relay", user={"Authorization": "Bearer wrong-token"})
probe(200, "POST", "/admin/outbox/relay", query={"force": "true"}, user={"Authorization": f"Bearer {ADMIN}"})
probe(200, "POST", "/admin/reservations/sweep", query={"storeId": "demo"}, user={"Authorization": f"Bearer {ADMIN}"})
probe(400, "POST", "/admin/reservations/sweep", user={"Authorization": f"Bearer {ADMIN}"})
probe(204, "POST", "/admin/cache/invalidate", user={"Authorization": f"Bearer {ADMIN}"},
      **as_json({"storeId": "demo", "productId": "ceramic-mug"}))
if METRICS:
    probe(401, "GET", "/metrics", user=None)
    probe(403, "GET", "/metrics", user={"Authorization": "Bearer wrong-token"})
    probe(200, "GET", "/metrics", user={"Authorization": f"Bearer {METRICS}"})
else:
    probe(200, "GET", "/metrics", user=None)
probe(200, "HEAD", "/healthz", user=None)
# Limits that apply before routing.
probe(413, "GET", "/healthz", user=None, data=b" " * 17000)
probe(431, "GET", CART, DEMO, headers={"X-Padding": "p" * 9000})
# A cart's life: versions, limits, stock, retries.
added = probe(200, "POST", ITEMS, DEMO, **as_json({"productId": "ceramic-mug", "quantity": 2}))
etag = added.headers.get("etag", '"1"')
probe(304, "GET", CART, DEMO, headers={"If-None-Match": etag})
probe(304, "HEAD", CART, DEMO, headers={"If-None-Match": etag})
probe(304, "GET", SUMMARY, DEMO, headers={"If-None-Match": etag})
probe(400, "GET", SUMMARY, DEMO, headers={"If-None-Match": "1"})
probe(412, "POST", ITEMS, DEMO, headers={"If-Match": '"999"', "Content-Type": "application/json"},
      data=json.dumps({"productId": "ceramic-mug", "quantity": 1}))
probe(422, "POST", ITEMS, DEMO, **as_json({"productId": "ceramic-mug", "quantity": 9}))
probe(409, "POST", ITEMS, DEMO, **as_json({"productId": "pour-over-kettle", "quantity": 11}))
probe(422, "POST", ITEMS, DEMO, **as_json({"productId": "no-such-product", "quantity": 1}))
probe(422, "POST", ITEMS, DEMO, **as_json({"productId": "ceramic-mug", "quantity": 0}))
probe(400, "POST", ITEMS, DEMO, **as_json({"productId": "ceramic-mug", "quantity": 1.5}))
probe(400, "POST", ITEMS, DEMO, **as_json({"productId": "ceramic-mug", "quantity": 1, "extra": 1}))
probe(415, "POST", ITEMS, DEMO, headers={"Content-Type": "text/plain"}, data="productId=ceramic-mug")
probe(413, "POST", ITEMS, DEMO, headers={"Content-Type": "application/json"}, data=b" " * 17000)
key = {"Idempotency-Key": f'"{USER}-k1"', "Content-Type": "application/json"}
probe(200, "POST", ITEMS, DEMO, headers=key, data=json.dumps({"productId": "espresso-beans", "quantity": 1}))
replayed = probe(200, "POST", ITEMS, DEMO, headers=key, data=json.dumps({"productId": "espresso-beans", "quantity": 1}))
if replayed.headers.get("idempotent-replayed") != "true":
    print("FAIL the retry was not a replay (no Idempotent-Replayed: true)")
    failures += 1
probe(422, "POST", ITEMS, DEMO, headers=key, data=json.dumps({"productId": "espresso-beans", "quantity": 2}))
probe(400, "POST", ITEMS, DEMO, headers={"Idempotency-Key": '"open', "Content-Type": "application/json"},
      data=json.dumps({"productId": "espresso-beans", "quantity": 1}))
mug = {"storeId": "demo", "productId": "ceramic-mug"}
probe(200, "PATCH", ITEM, mug, **as_json({"quantity": 3}))
probe(422, "PATCH", ITEM, mug, **as_json({"quantity": -1}))
probe(404, "PATCH", ITEM, {"storeId": "demo", "productId": "gift-card"}, **as_json({"quantity": 1}))
probe(400, "PATCH", ITEM, {"storeId": "demo", "productId": "a%3Ab"}, **as_json({"quantity": 1}))
probe(200, "DELETE", ITEM, {"storeId": "demo", "productId": "espresso-beans"})
probe(404, "DELETE", ITEM, {"storeId": "demo", "productId": "espresso-beans"})
probe(412, "DELETE", CART, DEMO, headers={"If-Match": '"999"'})
probe(200, "DELETE", ITEM, mug)
# Checkout: refusals first, then one real checkout of a checkout-policy product.
probe(200, "POST", ITEMS, DEMO, **as_json({"productId": "gift-card", "quantity": 1}))
probe(415, "POST", CHECKOUT, DEMO, headers={"Content-Type": "text/plain"}, data="now")
probe(400, "POST", CHECKOUT, DEMO, **as_json({"express": True}))
probe(412, "POST", CHECKOUT, DEMO, headers={"If-Match": '"999"'})
probe(200, "POST", CHECKOUT, DEMO, **as_json({}))
probe(422, "POST", CHECKOUT, DEMO)
# Guest carts: a guest token, a guest line, and the merge on sign-in.
token = probe(201, "POST", "/v1/guest-tokens", user=None).json()["token"]
guest = {"Authorization": f"Bearer {token}"}
probe(200, "POST", ITEMS, DEMO, user=guest, **as_json({"productId": "paper-filters", "quantity": 1}))
probe(403, "POST", MERGE, DEMO, user=guest, **as_json({"guestToken": token}))
probe(422, "POST", MERGE, DEMO, **as_json({"guestToken": "not-a-token"}))
probe(400, "POST", MERGE, DEMO, **as_json({"token": token}))
probe(415, "POST", MERGE, DEMO, headers={"Content-Type": "text/plain"}, data=token)
probe(200, "POST", MERGE, DEMO, **as_json({"guestToken": token}))
probe(200, "DELETE", CART, DEMO, headers={"If-Match": "*"})

print(f"targeted cases: {failures} failed")
sys.exit(1 if failures else 0)
PY
targeted=$?
set -e

# Checks: everything about the answers, except
# * positive_data_acceptance: a well-formed request is still refused by business rules the
#   schema cannot express (a product the store does not sell is 422, an empty cart cannot be
#   checked out), and those refusals are documented statuses;
# * ignored_auth: the demo identity mode deliberately serves cart routes without a token;
# * use_after_free, ensure_resource_availability: need OpenAPI links the document does not have.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,allow_header_conformance

step "fuzzing (seed $SEED, $MAX_EXAMPLES examples per operation, X-User-Id: $USER_ID)"
set +e
# Run from the report directory: schemathesis keeps its working files in the current one.
(cd "$REPORT_DIR" && "$VENV/bin/schemathesis" --no-color --config-file "$CONFIG" run "$SPEC" \
  --url "$BASE_URL" \
  --header "X-User-Id: $USER_ID" \
  --checks "$CHECKS" \
  --phases examples,coverage,fuzzing \
  --mode all \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --workers 1 \
  --generation-database none \
  --generation-with-security-parameters false \
  --request-timeout 15 \
  --report junit,har \
  --report-junit-path "$REPORT_DIR/junit.xml" \
  --report-har-path "$REPORT_DIR/requests.har")
fuzzed=$?
set -e
echo
echo "contract check took $(( $(date +%s) - started )) s: targeted cases exit $targeted, fuzzer exit $fuzzed"
echo "reports: ${REPORT_DIR#"$ROOT"/}/junit.xml, ${REPORT_DIR#"$ROOT"/}/requests.har"
if [ "$targeted" -ne 0 ] || [ "$fuzzed" -ne 0 ]; then
  echo "CONTRACT CHECK FAILED" >&2
  exit 1
fi
echo "contract check passed"

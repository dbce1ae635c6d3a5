#!/usr/bin/env python3
"""Turns span-count snapshots into per-request figures for scripts/bench-spin.sh.

  spans.py wait FILE                       block until FILE stops changing (exports drained)
  spans.py row LABEL N BEFORE AFTER BEFORE_BY_COMPONENT AFTER_BY_COMPONENT

`row` prints three tab-separated markdown rows (totals, by component, raw span names); the
totals row ends with the milliseconds per request spent inside key-value writes, key-value reads
and variable reads (Spin's busy_ns + idle_ns span attributes, summed over every component):
BEFORE/AFTER are snapshots of ../shared/tools/otlp-span-count's {span name: count};
the *_BY_COMPONENT files are snapshots of scripts/bench/span_attr.py's
{"<component> <span name>": count}. Every figure is (after - before) / N.

Span names Spin 4.0.2 emits (observed): `wasi_key_value.{open,get,set,delete,exists,get_keys}`,
`wasi_key_value_cas.{new,current}`, `spin_key_value.{increment,swap}` (the atomics), the
batch calls, `spin_variables.get`, an outbound HTTP request as its bare method (`GET`, `PUT`,
`POST`, ...), the inbound request as `METHOD /route`, `execute_wasm_component <id>`.
"""
import json
import re
import sys
import time

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
WRITE_OPS = {"set", "swap", "delete", "increment", "set_many", "delete_many"}
# On the SQLite store `cas.new` is the read (it loads the value); `cas.current` returns that
# copy without touching the database (on Redis, Cosmos DB or DynamoDB `current` is the read).
READ_OPS = {"get", "exists", "get_keys", "list_keys", "get_many", "new"}


def classify(name):
    if "key_value" in name:
        op = name.rsplit(".", 1)[-1]
        if op in WRITE_OPS:
            return "kv_write"
        if op in READ_OPS:
            return "kv_read"
        if op == "current":
            return "kv_cas_current"
        if op == "open":
            return "kv_open"
        return "kv_other"
    if "variables" in name or name.startswith("wasi_config"):
        return "variable"
    if "redis" in name.lower():
        return "redis"
    if name in HTTP_METHODS:
        return "outbound_http"
    if name.startswith("execute_wasm_component "):
        return "component"
    if name.split(" ", 1)[0] in HTTP_METHODS:
        return "inbound"
    return "other"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def delta(before, after):
    out = {}
    for k, v in after.items():
        d = v - before.get(k, 0)
        if d:
            out[k] = d
    return out


def fmt(x):
    return ("%.1f" % x).rstrip("0").rstrip(".") if x != int(x) else "%d" % x


def wait(path, quiet_s=1.0, max_s=15.0):
    """Returns once the file has not changed for quiet_s (an export arrives every 200 ms)."""
    start = time.time()
    last, since = None, time.time()
    while time.time() - start < max_s:
        cur = load(path)
        if cur != last:
            last, since = cur, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.1)


def row(label, n, b, a, bc, ac):
    n = float(n)
    names = delta(load(b), load(a))
    comps_all = delta(load(bc), load(ac))
    comps = {k: v for k, v in comps_all.items() if not k.startswith("time_us ")}
    ms = {}
    for key, us in comps_all.items():
        if key.startswith("time_us "):
            k = classify(key.split(" ", 2)[2])
            ms[k] = ms.get(k, 0) + us / 1000.0
    tot = {}
    for name, c in names.items():
        k = classify(name)
        tot[k] = tot.get(k, 0) + c
    by = {}
    for key, c in comps.items():
        comp, name = key.split(" ", 1)
        k = classify(name)
        if k in ("kv_write", "kv_read", "outbound_http", "variable"):
            by.setdefault(comp, {}).setdefault(k, 0)
            by[comp][k] += c
    g = lambda k: fmt(tot.get(k, 0) / n)
    t = lambda k: "%.2f" % (ms.get(k, 0) / n)
    totals = "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        label, g("kv_write"), g("kv_read"), g("kv_cas_current"), g("kv_open"),
        g("variable"), g("outbound_http"), g("redis"),
        fmt((tot.get("component", 0)) / n), t("kv_write"), t("kv_read"), t("variable"))
    parts = []
    for comp in sorted(by):
        d = by[comp]
        parts.append("%s: %s W / %s R / %s var / %s out" % (
            comp, fmt(d.get("kv_write", 0) / n), fmt(d.get("kv_read", 0) / n),
            fmt(d.get("variable", 0) / n), fmt(d.get("outbound_http", 0) / n)))
    by_comp = "| %s | %s |" % (label, "; ".join(parts) if parts else "-")
    clean = lambda k: " ".join(k.split()).replace("|", "\\|").replace("`", "'")
    raw = "| %s | %s |" % (label, ", ".join(
        "`%s` %s" % (clean(k), fmt(v / n)) for k, v in sorted(names.items())))
    print("\t".join([totals, by_comp, raw]))


if __name__ == "__main__":
    if sys.argv[1] == "wait":
        wait(sys.argv[2])
    elif sys.argv[1] == "row":
        row(*sys.argv[2:8])
    else:
        sys.exit("usage: spans.py wait FILE | row LABEL N BEFORE AFTER BEFORE_C AFTER_C")

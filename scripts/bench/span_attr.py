#!/usr/bin/env python3
"""OTLP/HTTP trace receiver for scripts/bench-spin.sh: counts Spin's spans per component.

  span_attr.py LISTEN_PORT BY_COMPONENT_JSON [FORWARD_PORT]

Writes {"<component> <span name>": count} after every export, plus
{"time_us <component> <span name>": microseconds} (the span's busy_ns + idle_ns attributes, which
Spin's tracing spans carry: the time spent in that host call), where <component> is the nearest
`execute_wasm_component <id>` span above the span (the cart's adapter is composed into the cart,
so its calls count as "cart"; a chained inventory or event-sink call counts as that component).
Spans with no such ancestor (the inbound request span itself) count under "-".

With FORWARD_PORT, every export body is also posted unchanged to
http://127.0.0.1:FORWARD_PORT/v1/traces, so ../shared/tools/otlp-span-count receives exactly the
same spans and keeps the plain per-name totals.
"""
import json
import sys
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

OUT = sys.argv[2]
FORWARD = (
    "http://127.0.0.1:%s/v1/traces" % sys.argv[3] if len(sys.argv) > 3 else None
)
PREFIX = "execute_wasm_component "

SPANS = {}  # span id -> (name, parent span id, microseconds)
PENDING = []  # span ids whose component is not known yet (an ancestor has not arrived)
COMPONENT = {}  # span id -> component id, once resolved
COUNTS = Counter()


def component_of(span_id, depth=0):
    """The component of a span, "-" at a root, None while an ancestor is missing."""
    if span_id in COMPONENT:
        return COMPONENT[span_id]
    if span_id not in SPANS or depth > 200:
        return None
    name, parent, _ = SPANS[span_id]
    if name.startswith(PREFIX):
        comp = name[len(PREFIX):]
    elif not parent:
        comp = "-"
    else:
        comp = component_of(parent, depth + 1)
        if comp is None:
            return None
    COMPONENT[span_id] = comp
    return comp


def resolve():
    global PENDING
    still = []
    for sid in PENDING:
        comp = component_of(sid)
        if comp is None:
            still.append(sid)
        else:
            name, _, us = SPANS[sid]
            COUNTS["%s %s" % (comp, name)] += 1
            if us:
                COUNTS["time_us %s %s" % (comp, name)] += us
    PENDING = still


class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path.endswith("/v1/traces"):
            if FORWARD:
                try:
                    req = urllib.request.Request(
                        FORWARD,
                        data=body,
                        headers={"content-type": "application/x-protobuf"},
                    )
                    urllib.request.urlopen(req, timeout=5).read()
                except Exception as e:  # the totals would be short: say so loudly
                    print("forward failed: %s" % e, file=sys.stderr, flush=True)
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        sid = bytes(sp.span_id)
                        ns = 0
                        for a in sp.attributes:
                            if a.key in ("busy_ns", "idle_ns"):
                                ns += a.value.int_value
                        SPANS[sid] = (sp.name, bytes(sp.parent_span_id), ns // 1000)
                        PENDING.append(sid)
            resolve()
            json.dump(COUNTS, open(OUT, "w"), indent=1, sort_keys=True)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *a):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()

#!/usr/bin/env bash
# Checks the observability files against each other and against the service:
#
# 1. `promtool check rules` on deploy/prometheus/{recording,alerting}-rules.yml;
# 2. `promtool test rules` on deploy/prometheus/tests/*.yml (series in, alerts out);
# 3. every metric name in the rule expressions, in the rule tests (input series and PromQL
#    checks) and in the queries of deploy/grafana/*.json is one /metrics really exports:
#    a family of components/cart/src/runtime/metric_registry.rs (read as Rust source text; a
#    histogram family also as its `_bucket`, `_sum` and `_count` series) or one of the live
#    gauges that /metrics adds in components/cart/src/edge/api.rs; names recorded by the rule files
#    are allowed too. Every label matcher is checked against what /metrics emits: on a
#    selector of an exported family the label must be one that family has (job and instance
#    are the scrape's) and its value one the registry lists for it (operation, status,
#    dependency, result, source, currency, le as shown in seconds, ...); on a recorded series
#    the value must be one some family emits. A typo, or `dependency="db"`, cannot make a
#    query silently match nothing;
# 4. every alert has a severity label, summary, description and a runbook_url whose anchor
#    exists in docs/runbooks.md, and at least one test case where it fires and one where it
#    stays quiet;
# 5. every dashboard query parses as PromQL (through promtool) and uses the templated
#    Prometheus datasource.
#
# 6. with OBSERVABILITY_SCRAPE=<file> (a live /metrics, as tests/e2e/tests/metrics.rs passes
#    it): every family used above, and every family the registry lists, is in that scrape
#    with its TYPE.
#
# Needs bash, python3 (standard library only) and promtool (Debian package `prometheus`).
# Exit status 1 with one line per problem.
set -euo pipefail
cd "$(dirname "$0")/.."

RULES=(deploy/prometheus/recording-rules.yml deploy/prometheus/alerting-rules.yml)
TESTS=(deploy/prometheus/tests/*.yml)

fail() { printf 'check-observability: FAILED: %s\n' "$*" >&2; exit 1; }

command -v promtool >/dev/null 2>&1 ||
  fail "promtool not found (apt-get install prometheus; scripts/test.sh installs it)"
command -v python3 >/dev/null 2>&1 || fail "python3 not found"
for f in "${RULES[@]}"; do [ -f "$f" ] || fail "missing $f"; done
[ -f "${TESTS[0]}" ] || fail "no rule tests in deploy/prometheus/tests/"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if ! promtool check rules "${RULES[@]}" >"$scratch/check.log" 2>&1; then
  cat "$scratch/check.log" >&2
  fail "promtool check rules"
fi
if ! promtool test rules "${TESTS[@]}" >"$scratch/test.log" 2>&1; then
  cat "$scratch/test.log" >&2
  fail "promtool test rules (see the output above)"
fi

# The dashboard's queries become recording rules in a scratch file, so promtool parses them.
SCRATCH_RULES="$scratch/dashboard-queries.yml" python3 - "${RULES[@]}" -- "${TESTS[@]}" <<'PY'
import json
import os
import pathlib
import re
import sys

ROOT = pathlib.Path.cwd()
REGISTRY = ROOT / "components/cart/src/runtime/metric_registry.rs"
GAUGES_SOURCE = ROOT / "components/cart/src/edge/api.rs"
RUNBOOKS = ROOT / "docs/runbooks.md"
DASHBOARDS = sorted((ROOT / "deploy/grafana").glob("*.json"))

args = sys.argv[1:]
split = args.index("--")
RULE_FILES = [pathlib.Path(a) for a in args[:split]]
TEST_FILES = [pathlib.Path(a) for a in args[split + 1:]]

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


# --------------------------------------------------------------------------- YAML (subset)
# The standard library has no YAML parser. Rule and test files use block mappings and
# sequences, plain, quoted and block (| >) scalars and empty flow collections; anything else
# is refused with a message rather than misread.

class YamlError(Exception):
    pass


def _strip_comment(text):
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text, where):
    text = _strip_comment(text).strip()
    if not text:
        return None
    if text[0] == '"':
        if not text.endswith('"') or len(text) < 2:
            raise YamlError(f"{where}: unterminated double-quoted string")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise YamlError(f"{where}: double-quoted string this checker cannot read ({e})")
    if text[0] == "'":
        if not text.endswith("'") or len(text) < 2:
            raise YamlError(f"{where}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text == "[]":
        return []
    if text == "{}":
        return {}
    if text[0] == "[" and text.endswith("]"):
        return [_scalar(part, where) for part in text[1:-1].split(",")]
    if text[0] in "[{&*!|>%@`":
        raise YamlError(f"{where}: YAML construct this checker does not read: {text[:30]}")
    return text


class _Lines:
    def __init__(self, path):
        self.path = path
        self.raw = path.read_text().split("\n")

    def meaningful(self, i):
        """Index of the next line that is neither blank nor a comment."""
        while i < len(self.raw):
            stripped = self.raw[i].strip()
            if stripped and not stripped.startswith("#"):
                return i
            i += 1
        return i

    def indent(self, i):
        line = self.raw[i]
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise YamlError(f"{self.path}:{i + 1}: tab in indentation")
        return len(line) - len(line.lstrip(" "))


def _block_scalar(lines, i, parent_indent, header, where):
    style, chomp = header[0], header[1:].strip()
    if chomp not in ("", "-", "+"):
        raise YamlError(f"{where}: block scalar header {header!r} not supported")
    body, j, block_indent = [], i, None
    while j < len(lines.raw):
        line = lines.raw[j]
        if line.strip():
            ind = len(line) - len(line.lstrip(" "))
            if ind <= parent_indent:
                break
            if block_indent is None:
                block_indent = ind
            if ind < block_indent:
                break
            body.append(line[block_indent:])
        else:
            body.append("")
        j += 1
    while body and body[-1] == "":
        body.pop()
    if style == "|":
        text = "\n".join(body)
    else:
        text, para = "", []
        for line in body:
            if line == "":
                text += " ".join(para) + "\n"
                para = []
            else:
                para.append(line)
        text += " ".join(para)
    if chomp != "-":
        text += "\n"
    return text, j


def _parse(lines, i, indent):
    i = lines.meaningful(i)
    if i >= len(lines.raw):
        return None, i
    first = lines.raw[i].strip()
    if first == "-" or first.startswith("- "):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _value_after_key(lines, i, indent, rest, where):
    """The value of a `key:` whose remaining text is `rest`; returns (value, next index)."""
    rest_clean = _strip_comment(rest).strip()
    if rest_clean[:1] in ("|", ">"):
        return _block_scalar(lines, i + 1, indent, rest_clean, where)
    if rest_clean:
        return _scalar(rest_clean, where), i + 1
    j = lines.meaningful(i + 1)
    if j >= len(lines.raw):
        return None, j
    child = lines.indent(j)
    text = lines.raw[j].strip()
    if child > indent or (child == indent and (text == "-" or text.startswith("- "))):
        return _parse(lines, j, child)
    return None, i + 1


def _mapping(lines, i, indent):
    out = {}
    while True:
        i = lines.meaningful(i)
        if i >= len(lines.raw) or lines.indent(i) != indent:
            return out, i
        text = lines.raw[i][indent:]
        where = f"{lines.path}:{i + 1}"
        if text.startswith("- ") or text == "-":
            return out, i
        m = re.match(r"([A-Za-z0-9_.$-]+):(?:\s+(.*)|$)", text)
        if not m:
            raise YamlError(f"{where}: expected `key: value`, got {text[:40]!r}")
        key, rest = m.group(1), m.group(2) or ""
        if key in out:
            raise YamlError(f"{where}: duplicate key {key!r}")
        out[key], i = _value_after_key(lines, i, indent, rest, where)


def _sequence(lines, i, indent):
    out = []
    while True:
        i = lines.meaningful(i)
        if i >= len(lines.raw) or lines.indent(i) != indent:
            return out, i
        line = lines.raw[i]
        text = line[indent:]
        if not (text == "-" or text.startswith("- ")):
            return out, i
        content = text[1:].lstrip(" ")
        where = f"{lines.path}:{i + 1}"
        if not content.strip() or content.lstrip().startswith("#"):
            j = lines.meaningful(i + 1)
            if j < len(lines.raw) and lines.indent(j) > indent:
                value, i = _parse(lines, j, lines.indent(j))
            else:
                value, i = None, i + 1
            out.append(value)
            continue
        column = len(line) - len(content)
        if re.match(r"[A-Za-z0-9_.$-]+:(\s|$)", content):
            # `- key: value` starts a mapping whose keys sit at `column`.
            lines.raw[i] = " " * column + content
            value, i = _mapping(lines, i, column)
            out.append(value)
        else:
            out.append(_scalar(content, where))
            i += 1


def load_yaml(path):
    lines = _Lines(path)
    value, i = _parse(lines, 0, 0)
    i = lines.meaningful(i)
    if i < len(lines.raw):
        raise YamlError(f"{path}:{i + 1}: unexpected indentation")
    return value


# --------------------------------------------------------------------------- the registry
def rust_strings(text):
    """Rust string literals in `text`, unescaped (\\" and \\\\ only)."""
    return [re.sub(r"\\(.)", r"\1", s) for s in re.findall(r'"((?:[^"\\]|\\.)*)"', text)]


def balanced(text, start, open_ch, close_ch):
    """The text between the bracket at `start` and its match."""
    depth, i, in_str = 0, start, False
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return text[start + 1: i]
        i += 1
    raise ValueError("unbalanced")


def split_args(text):
    parts, depth, cur, in_str, i = [], 0, "", False, 0
    while i < len(text):
        ch = text[i]
        if in_str:
            cur += ch
            if ch == "\\":
                cur += text[i + 1]
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            cur += ch
        elif ch in "([{":
            depth += 1
            cur += ch
        elif ch in ")]}":
            depth -= 1
            cur += ch
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    if cur.strip():
        parts.append(cur.strip())
    return parts


METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


SCRAPE_LABELS = {"job", "instance"}


def shown_bound(n, unit):
    """A stored bucket bound as /metrics shows it (metrics::shown): seconds for durations."""
    digits = {"MillisAsSeconds": 3, "MicrosAsSeconds": 6}.get(unit)
    if digits is None:
        return str(n)
    whole, frac = divmod(n, 10 ** digits)
    return f"{whole}" if frac == 0 else f"{whole}.{frac:0{digits}d}".rstrip("0")


def read_registry():
    """(families {name: kind}, labels {family: {label: set of values}}) as /metrics shows them."""
    src = REGISTRY.read_text()
    where = str(REGISTRY.relative_to(ROOT))
    families, labels = {}, {}

    def const_array(name):
        m = re.search(rf"(?:pub )?const {name}: \[[^\]]*\] = \[", src)
        if not m:
            raise SystemExit(f"{where}: no `const {name}` array found; update scripts/check-observability.sh")
        return balanced(src, m.end() - 1, "[", "]")

    # Helpers `const fn helper(params) -> Counter { Counter { ..., family: <param or "literal">, ... } }`.
    helpers = {}
    for m in re.finditer(r"const fn (\w+)\(([^)]*)\)\s*->\s*Counter\s*\{", src):
        params = [p.split(":")[0].strip() for p in m.group(2).split(",") if p.strip()]
        body = balanced(src, m.end() - 1, "{", "}")
        fam = re.search(r'\bfamily(?:\s*:\s*("(?:[^"\\]|\\.)*"|\w+))?\s*,', body)
        if not fam:
            continue
        expr = fam.group(1) or "family"
        if expr.startswith('"'):
            helpers[m.group(1)] = ("literal", rust_strings(expr)[0])
        elif expr in params:
            helpers[m.group(1)] = ("param", params.index(expr))

    m = re.search(r"pub const COUNTERS: &\[Counter\] = &\[", src)
    if not m:
        raise SystemExit(f"{where}: no `pub const COUNTERS: &[Counter]` found; update scripts/check-observability.sh")
    body = balanced(src, m.end() - 1, "[", "]")
    for call in re.finditer(r"\b(\w+)\s*\(", body):
        name = call.group(1)
        if name not in helpers:
            continue
        args = split_args(balanced(body, call.end() - 1, "(", ")"))
        kind, value = helpers[name]
        family = value if kind == "literal" else (rust_strings(args[value]) or [None])[0]
        if not (family and METRIC_NAME.match(family)):
            continue
        families[family] = "counter"
        own = labels.setdefault(family, {})
        # A stored name carries its labels: `family{result=\"x\"}`.
        stored = (rust_strings(args[0]) or [""])[0] if args else ""
        for label, value in re.findall(r'(\w+)="([^"]*)"', stored):
            own.setdefault(label, set()).add(value)
    if not families:
        raise SystemExit(f"{where}: no counter family found in COUNTERS; update scripts/check-observability.sh")

    operations = set(rust_strings(const_array("OPERATIONS")))
    statuses = set(rust_strings(const_array("STATUSES"))) | {"other"}

    # Histograms: `pub const NAME: HistogramDef = HistogramDef { family: "...", label: "...",
    # values: &ARRAY, buckets: &ARRAY, unit: Unit::X, ... };`, all listed in HISTOGRAMS.
    m = re.search(r"pub const HISTOGRAMS: \[[^\]]*\] = \[", src)
    if not m:
        raise SystemExit(f"{where}: no `pub const HISTOGRAMS` found; update scripts/check-observability.sh")
    listed = re.findall(r"&(\w+)", balanced(src, m.end() - 1, "[", "]"))
    for const in listed:
        d = re.search(rf"pub const {const}: HistogramDef = HistogramDef \{{", src)
        if not d:
            raise SystemExit(f"{where}: HISTOGRAMS lists {const}, not defined as `pub const {const}: HistogramDef = HistogramDef {{`")
        body = balanced(src, d.end() - 1, "{", "}")
        field = lambda f: re.search(rf"\b{f}:\s*([^,]+),", body)
        family = rust_strings(field("family").group(1))[0]
        label = rust_strings(field("label").group(1))[0]
        values_ref = field("values").group(1).strip().lstrip("&")
        buckets_ref = field("buckets").group(1).strip().lstrip("&")
        unit = field("unit").group(1).strip().split("::")[-1]
        bounds = [int(n) for n in re.findall(r"\d+", const_array(buckets_ref).replace("_", ""))]
        families[family] = "histogram"
        own = labels.setdefault(family, {})
        own["le"] = {shown_bound(n, unit) for n in bounds} | {"+Inf"}
        if label:
            own[label] = set(rust_strings(const_array(values_ref)))

    # Per-operation counters: `pub const RESPONSES: &str = "..."` (operation, status) and
    # `pub const STORE_WRITES: &str = "..."` (operation).
    for const, own in (("RESPONSES", {"operation": operations, "status": statuses}),
                       ("STORE_WRITES", {"operation": operations})):
        m = re.search(rf'pub const {const}: &str =\s*"([^"]*)";', src)
        if not m:
            raise SystemExit(f"{where}: no `pub const {const}: &str` found; update scripts/check-observability.sh")
        families[m.group(1)] = "counter"
        labels[m.group(1)] = own
    return families, labels


def read_gauges():
    """The live gauges `metrics_response` passes to `Scrape::render` in api.rs."""
    src = GAUGES_SOURCE.read_text()
    where = str(GAUGES_SOURCE.relative_to(ROOT))
    m = re.search(r"\.render\(\s*&\[", src)
    if not m:
        raise SystemExit(f"{where}: no `scrape.render(&[...])` found; update scripts/check-observability.sh")
    body = balanced(src, m.end() - 1, "[", "]")
    names = [s for s in re.findall(r'\(\s*"([^"]+)"\s*,', body) if METRIC_NAME.match(s)]
    if not names:
        raise SystemExit(f"{where}: no gauge tuple found in `render(&[...])`; update scripts/check-observability.sh")
    return names


# --------------------------------------------------------------------------- PromQL names
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan", "atan2", "start", "end"}
MATCHER = re.compile(r"""([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
STRING_FREE_BACKTICKS = re.compile(r"`[^`]*`")


def grafana_query(expr):
    """A Grafana variable query as PromQL: `label_values(m{...}, l)` -> `m{...}`."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*", expr, re.S)
    if m:
        return m.group(1)
    if re.fullmatch(r"\s*label_values\(\s*[a-zA-Z_]\w*\s*\)\s*", expr):
        return ""
    return expr


def metric_names(expr):
    text = STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def label_matchers(expr):
    for m in MATCHER.finditer(expr):
        raw = m.group(3)
        value = json.loads(raw) if raw[0] == '"' else raw[1:-1]
        yield m.group(1), m.group(2), value


SELECTOR = re.compile(r"""(?<![\w:])([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{((?:[^{}"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*)\}""")


class Checker:
    def __init__(self, families, gauges, labels, records):
        self.families = dict(families)
        self.labels = {f: dict(l) for f, l in labels.items()}
        for g in gauges:
            self.families[g] = "gauge"
            self.labels.setdefault(g, {})
        # Every value any family has for a label: what a recorded series can carry.
        self.any_labels = {}
        for own in self.labels.values():
            for label, values in own.items():
                self.any_labels.setdefault(label, set()).update(values)
        self.records = records
        self.used = set()

    def family_of(self, name):
        """The exported family a series name belongs to, or None."""
        if name in self.families:
            return name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and self.families.get(name[: -len(suffix)]) == "histogram":
                return name[: -len(suffix)]
        return None

    def exported(self, name):
        return self.family_of(name) is not None

    def check_expr(self, where, expr):
        for name in sorted(metric_names(expr)):
            if name in self.records:
                continue
            if self.exported(name):
                self.used.add(self.family_of(name))
                continue
            problem(where, f"metric {name!r} is not exported by /metrics (not a family of "
                           f"metric_registry.rs, not a live gauge of api.rs, not a recorded rule)")
        self.check_labels(where, expr)

    def check_labels(self, where, expr):
        """Every label matcher against the labels /metrics emits: on a selector of an exported
        family, the label must be one that family has (or a scrape label) and the value one it
        emits; on a recorded series or a bare matcher, the value one some family emits."""
        for m in SELECTOR.finditer(STRING_FREE_BACKTICKS.sub('""', expr)):
            name = m.group(1) or ""
            family = self.family_of(name) if name else None
            if name and family is None and name not in self.records:
                continue  # reported by check_expr
            for label, op, value in label_matchers(m.group(2)):
                if label == "__name__" or label in SCRAPE_LABELS:
                    continue
                if family is not None:
                    own = self.labels.get(family, {})
                    if label == "le" and self.families[family] == "histogram" and not name.endswith("_bucket"):
                        problem(where, f"{name}: le only exists on {family}_bucket")
                        continue
                    if label not in own:
                        problem(where, f"{name}: no label {label!r} (its labels: "
                                       f"{', '.join(sorted(own)) or 'none'})")
                        continue
                    known = own[label]
                else:
                    known = self.any_labels.get(label)
                    if known is None:
                        continue  # a label of a recorded series only (e.g. none /metrics has)
                self.check_value(where, f"{name}{{{label}", known, op, value)

    def check_value(self, where, what, known, op, value):
        if "$" in value or op in ("!=", "!~"):
            return
        if op == "=":
            if value not in known:
                problem(where, f'{what}="{value}"}}: not a value /metrics emits (it emits: '
                               f'{", ".join(sorted(known))})')
            return
        try:
            pattern = re.compile(value)
        except re.error as e:
            problem(where, f'{what}=~"{value}"}}: not a valid regular expression ({e})')
            return
        if not any(pattern.fullmatch(k) for k in known):
            problem(where, f'{what}=~"{value}"}} matches none of the values /metrics emits')
        if re.fullmatch(r"[\w.+]+(\|[\w.+]+)+", value):
            for alt in value.split("|"):
                if alt not in known:
                    problem(where, f'{what}=~"...{alt}..."}}: {alt!r} is not a value /metrics emits')

    def check_series(self, where, series):
        m = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", series)
        if not m:
            problem(where, f"cannot read the series name of {series!r}")
            return
        if m.group(1) in self.records:
            problem(where, f"input series {m.group(1)!r} is a recorded rule: feed the raw series it is computed from")
        elif not self.exported(m.group(1)):
            problem(where, f"input series {m.group(1)!r} is not exported by /metrics")
        self.check_labels(where, series)


# --------------------------------------------------------------------------- runbooks
def runbook_anchors():
    anchors, seen = set(), {}
    in_code = False
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for explicit in re.findall(r'<a (?:id|name)="([^"]+)"', line):
            anchors.add(explicit)
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


# --------------------------------------------------------------------------- main
def main():
    families, labels = read_registry()
    gauges = read_gauges()

    rule_docs = {}
    for path in RULE_FILES:
        try:
            rule_docs[path] = load_yaml(path)
        except YamlError as e:
            problem(path, str(e))
    if problems:
        return
    records, alerts = set(), {}
    for path, doc in rule_docs.items():
        for group in (doc or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                if "record" in rule:
                    records.add(rule["record"])
                elif "alert" in rule:
                    alerts[rule["alert"]] = (path, rule)
    checker = Checker(families, gauges, labels, records)

    # Rule expressions and alert metadata.
    anchors = runbook_anchors()
    if "alerts-waiting-for-metrics" not in anchors:
        problem(RUNBOOKS.relative_to(ROOT), 'no "Alerts waiting for metrics" section')
    expr_count = 0
    for path, doc in rule_docs.items():
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                name = rule.get("record") or rule.get("alert")
                where = f"{path}: {name}"
                expr = rule.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    problem(where, "no expr")
                    continue
                expr_count += 1
                checker.check_expr(where, expr)
                if "alert" not in rule:
                    continue
                rule_labels = rule.get("labels") or {}
                notes = rule.get("annotations") or {}
                if not rule_labels.get("severity"):
                    problem(where, "no severity label")
                for key in ("summary", "description", "runbook_url"):
                    if not notes.get(key):
                        problem(where, f"no {key} annotation")
                url = notes.get("runbook_url") or ""
                m = re.fullmatch(r"(?:.*/)?docs/runbooks\.md#([\w-]+)", url)
                if not m:
                    problem(where, f"runbook_url {url!r} is not docs/runbooks.md#<anchor>")
                elif m.group(1) not in anchors:
                    problem(where, f"runbook_url anchor #{m.group(1)} is not a heading of docs/runbooks.md")
    if not alerts:
        problem("deploy/prometheus", "no alerting rule found")

    # Rule tests: real series in, and each alert both firing and quiet somewhere.
    fires, quiet = set(), set()
    for path in TEST_FILES:
        try:
            doc = load_yaml(path)
        except YamlError as e:
            problem(path, str(e))
            continue
        for n, case in enumerate(doc.get("tests") or [], 1):
            where = f"{path} test {n}"
            for series in case.get("input_series") or []:
                checker.check_series(where, series.get("series") or "")
            for check in case.get("promql_expr_test") or []:
                checker.check_expr(where, check.get("expr") or "")
            expected = {}
            for check in case.get("alert_rule_test") or []:
                name = check.get("alertname")
                if name not in alerts:
                    problem(where, f"alert_rule_test names {name!r}, which no rule file defines")
                expected.setdefault(name, []).append(bool(check.get("exp_alerts")))
            for name, outcomes in expected.items():
                if any(outcomes):
                    fires.add(name)
                else:
                    quiet.add(name)
    for name in sorted(alerts):
        if name not in fires:
            problem("deploy/prometheus/tests", f"{name}: no test case where it fires")
        if name not in quiet:
            problem("deploy/prometheus/tests", f"{name}: no test case with healthy series where it stays quiet")

    # Dashboards.
    if not DASHBOARDS:
        problem("deploy/grafana", "no dashboard (*.json)")
    queries = []
    for path in DASHBOARDS:
        rel = path.relative_to(ROOT)
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            problem(rel, f"not JSON: {e}")
            continue
        variables = (dash.get("templating") or {}).get("list") or []
        ds_vars = [v["name"] for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
        if not ds_vars:
            problem(rel, "no Prometheus datasource variable in templating")
        allowed_ds = {f"${{{v}}}" for v in ds_vars} | {f"${v}" for v in ds_vars}

        def uses_template(ds):
            uid = ds.get("uid") if isinstance(ds, dict) else ds
            return uid in allowed_ds

        for var in variables:
            if var.get("type") != "query":
                continue
            q = var.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if isinstance(q, str):
                queries.append((f"{rel}: variable {var.get('name')}", grafana_query(q)))
            if "datasource" in var and not uses_template(var["datasource"]):
                problem(rel, f"variable {var.get('name')}: datasource is not the templated one")

        def walk(panels):
            for panel in panels or []:
                title = panel.get("title", "?")
                targets = panel.get("targets") or []
                if targets and not uses_template(panel.get("datasource")):
                    problem(rel, f"panel {title!r}: datasource is not the templated one")
                for t in targets:
                    if "datasource" in t and not uses_template(t["datasource"]):
                        problem(rel, f"panel {title!r} target {t.get('refId')}: datasource is not the templated one")
                    if t.get("expr"):
                        queries.append((f"{rel}: panel {title!r} target {t.get('refId')}", t["expr"]))
                    elif "expr" in t or not t.get("hide"):
                        problem(rel, f"panel {title!r} target {t.get('refId')}: no expr")
                walk(panel.get("panels"))

        walk(dash.get("panels"))
    for where, expr in queries:
        checker.check_expr(where, expr)

    # Dashboard queries must parse: substitute the variables, let promtool read them as rules.
    substitutions = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                     "$job": ".+", "$operation": ".+"}
    lines = ["groups:", "  - name: dashboard-queries", "    rules:"]
    for n, (where, expr) in enumerate(queries):
        text = expr
        for var, value in substitutions.items():
            text = text.replace(var, value)
        left = re.findall(r"\$\{?\w+", text)
        if left:
            problem(where, f"variable {left[0]} is not one this checker substitutes")
            continue
        if not text.strip():
            continue
        lines.append(f"      - record: dashboard_query_{n}")
        lines.append(f"        expr: {json.dumps(text)}")
    pathlib.Path(os.environ["SCRATCH_RULES"]).write_text("\n".join(lines) + "\n")

    # Against a live scrape (OBSERVABILITY_SCRAPE=<file>, the e2e suite's): every family the
    # rules, their tests and the dashboard use is in it, and so is every family the registry
    # lists (the e2e session exercises them all), with the TYPE the registry says.
    scrape_path = os.environ.get("OBSERVABILITY_SCRAPE")
    if scrape_path:
        live = {}
        for line in pathlib.Path(scrape_path).read_text().splitlines():
            m = re.match(r"# TYPE (\S+) (\S+)$", line)
            if m:
                live[m.group(1)] = m.group(2)
        for family in sorted(checker.used):
            if family not in live:
                problem(scrape_path, f"{family} is used by the rules or the dashboard but not in the live scrape")
        for family, kind in sorted(checker.families.items()):
            if family not in live:
                problem(scrape_path, f"{family} ({kind}) is in the registry but not in the live scrape")
            elif live[family] != kind:
                problem(scrape_path, f"{family}: TYPE {live[family]} in the scrape, {kind} in the registry")

    if problems:
        return
    # Exported families that neither the rules nor the dashboard look at (informational).
    unused = sorted(set(checker.families) - checker.used)
    print(f"observability: {len(alerts)} alerts, {len(records)} recording rules, {expr_count} rule "
          f"expressions, {len(TEST_FILES)} test files, {len(queries)} dashboard queries; "
          f"{len(checker.used)} of {len(checker.families)} exported families used"
          + (f" (unused: {', '.join(unused)})" if unused else ""))


try:
    main()
except SystemExit:
    raise
except YamlError as e:
    problem("yaml", str(e))
if problems:
    for p in problems:
        print(f"check-observability: {p}", file=sys.stderr)
    sys.exit(1)
PY

if ! promtool check rules "$scratch/dashboard-queries.yml" >"$scratch/dash.log" 2>&1; then
  cat "$scratch/dash.log" >&2
  fail "a dashboard query does not parse as PromQL (dashboard_query_N is the Nth query: panels in order, variables first)"
fi
echo "check-observability: OK (promtool check + test rules, metric names against metric_registry.rs and /metrics gauges, runbook anchors, dashboard queries)"

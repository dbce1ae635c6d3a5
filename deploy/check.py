#!/usr/bin/env python3
"""Checks the deployment files in deploy/ without a cluster.

1. Every document of deploy/spinkube/*.yaml against a JSON Schema of its kind. The SpinApp
   schema below is written by hand from the SpinApp CRD (core.spinkube.dev/v1alpha1, spin-operator)
   and covers the fields used here with their types, required fields (`image`, `executor`) and
   the variable binding shape; unknown fields are errors, as in a strict `kubectl apply`. It is
   a subset of the CRD, not the CRD itself: a field it does not list is refused even if the CRD
   has it (add it here first).
2. Cross-references the schema cannot see: every variable a SpinApp sets is declared in the
   manifest of the app it runs, every secretKeyRef names a Secret and key defined alongside,
   the cart runs more than one replica with store_url from a Secret, and the runtime config the
   SpinApp loads is the one in deploy/runtime-config.toml.
3. deploy/runtime-config.toml parses and defines only the `default` store, as `spin`.

Needs PyYAML and jsonschema (`python3 -m pip install pyyaml jsonschema`). Exit status 1 with one
line per problem when anything is wrong.
"""

import pathlib
import re
import sys
import tomllib

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Spin variable names: lowercase letters, digits and underscores, starting with a letter.
SPIN_VARIABLE = r"^[a-z][a-z0-9_]*$"

KEY_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["key", "name"],
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "name": {"type": "string", "pattern": DNS_LABEL},
        "optional": {"type": "boolean"},
    },
}

PROBE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "httpGet": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path"],
            "properties": {
                "path": {"type": "string", "pattern": "^/"},
                "httpHeaders": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "value"],
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
            },
        },
        "initialDelaySeconds": {"type": "integer", "minimum": 0},
        "periodSeconds": {"type": "integer", "minimum": 1},
        "timeoutSeconds": {"type": "integer", "minimum": 1},
        "failureThreshold": {"type": "integer", "minimum": 1},
        "successThreshold": {"type": "integer", "minimum": 1},
    },
}

METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        "namespace": {"type": "string", "pattern": DNS_LABEL},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

SPIN_APP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "core.spinkube.dev/v1alpha1"},
        "kind": {"const": "SpinApp"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["executor", "image"],
            "properties": {
                "image": {"type": "string", "minLength": 1},
                "executor": {"type": "string", "minLength": 1},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 2147483647},
                "enableAutoscaling": {"type": "boolean"},
                "components": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                },
                "checks": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"liveness": PROBE, "readiness": PROBE},
                },
                "runtimeConfig": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"loadFromSecret": {"type": "string", "pattern": DNS_LABEL}},
                },
                "variables": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "pattern": SPIN_VARIABLE},
                            "value": {"type": "string"},
                            "valueFrom": {
                                "type": "object",
                                "additionalProperties": False,
                                "minProperties": 1,
                                "maxProperties": 1,
                                "properties": {
                                    "secretKeyRef": KEY_REF,
                                    "configMapKeyRef": KEY_REF,
                                },
                            },
                        },
                        # A binding has exactly one source.
                        "oneOf": [{"required": ["value"]}, {"required": ["valueFrom"]}],
                    },
                },
                "imagePullSecrets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}},
                    },
                },
                "podLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "podAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            # The CRD: replicas cannot be set when autoscaling is enabled.
            "if": {"properties": {"enableAutoscaling": {"const": True}}, "required": ["enableAutoscaling"]},
            "then": {"not": {"required": ["replicas"]}},
        },
    },
}

SECRET = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"const": "v1"},
        "kind": {"const": "Secret"},
        "metadata": METADATA,
        "type": {"type": "string"},
        "stringData": {
            "type": "object",
            "propertyNames": {"pattern": r"^[-._a-zA-Z0-9]+$"},
            "additionalProperties": {"type": "string"},
        },
    },
}

SCHEMAS = {"SpinApp": SPIN_APP, "Secret": SECRET}

# Which Spin manifest each SpinApp runs (its variables must be declared there).
APP_MANIFESTS = {
    "edge-cart": ROOT / "spin.toml",
    "edge-cart-services": DEPLOY / "services" / "spin.toml",
}


def declared_variables(manifest: pathlib.Path) -> set:
    with manifest.open("rb") as f:
        return set(tomllib.load(f).get("variables", {}))


def check_documents(path: pathlib.Path, problems: list) -> list:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for doc in docs:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        schema = SCHEMAS.get(kind)
        where = f"{path.relative_to(ROOT)}: {kind} {doc.get('metadata', {}).get('name', '?') if isinstance(doc, dict) else '?'}"
        if schema is None:
            problems.append(f"{where}: no schema for kind {kind!r}")
            continue
        for error in jsonschema.Draft202012Validator(schema).iter_errors(doc):
            location = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{where}: {location}: {error.message}")
    return docs


def check_references(docs: list, problems: list) -> None:
    secrets = {
        d["metadata"]["name"]: d.get("stringData", {}) for d in docs if d.get("kind") == "Secret"
    }
    for app in (d for d in docs if d.get("kind") == "SpinApp"):
        name = app["metadata"]["name"]
        spec = app.get("spec", {})
        manifest = APP_MANIFESTS.get(name)
        if manifest is None:
            problems.append(f"SpinApp {name}: no Spin manifest known for it in check.py")
            continue
        declared = declared_variables(manifest)
        bound = {}
        for var in spec.get("variables", []):
            if var["name"] not in declared:
                problems.append(
                    f"SpinApp {name}: variable {var['name']} is not declared in {manifest.relative_to(ROOT)}"
                )
            if var["name"] in bound:
                problems.append(f"SpinApp {name}: variable {var['name']} bound twice")
            bound[var["name"]] = var
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["key"] not in secrets.get(ref["name"], {}):
                problems.append(
                    f"SpinApp {name}: {var['name']} reads {ref['name']}/{ref['key']}, which is not defined here"
                )
        secret = spec.get("runtimeConfig", {}).get("loadFromSecret")
        if secret is not None:
            data = secrets.get(secret)
            if data is None or list(data) != ["runtime-config.toml"]:
                problems.append(
                    f"SpinApp {name}: runtime config Secret {secret} must hold exactly the key runtime-config.toml"
                )
            elif tomllib.loads(data["runtime-config.toml"]) != runtime_config():
                problems.append(
                    f"SpinApp {name}: runtime config Secret {secret} differs from deploy/runtime-config.toml"
                )
        if name == "edge-cart":
            if spec.get("replicas", 0) < 2:
                problems.append("SpinApp edge-cart: run more than one replica (that is the point)")
            for shared in ("store_url", "store_origin"):
                if "secretKeyRef" not in bound.get(shared, {}).get("valueFrom", {}):
                    problems.append(f"SpinApp edge-cart: {shared} must come from a Secret")
            if "lock_url" in bound and bound["lock_url"].get("value") == "kv":
                problems.append("SpinApp edge-cart: lock_url=kv would give each replica its own locks")


def runtime_config() -> dict:
    with (DEPLOY / "runtime-config.toml").open("rb") as f:
        return tomllib.load(f)


def check_runtime_config(problems: list) -> None:
    config = runtime_config()
    if set(config) != {"key_value_store"} or set(config["key_value_store"]) != {"default"}:
        problems.append("deploy/runtime-config.toml: expected only [key_value_store.default]")
    elif config["key_value_store"]["default"].get("type") != "spin":
        problems.append("deploy/runtime-config.toml: `default` must stay a per-instance spin store")


def main() -> int:
    problems: list = []
    docs = []
    files = sorted((DEPLOY / "spinkube").glob("*.yaml"))
    if not files:
        problems.append("deploy/spinkube: no manifests")
    for path in files:
        docs += check_documents(path, problems)
    if not problems:
        check_references(docs, problems)
    check_runtime_config(problems)
    for problem in problems:
        print(f"deploy check: {problem}")
    kinds = sorted({d.get("kind") for d in docs})
    print(f"deploy check: {len(docs)} documents ({', '.join(kinds)}), {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

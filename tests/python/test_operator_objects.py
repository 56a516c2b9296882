"""What the operator deploys, and the CRD it installs, checked against
Kubernetes' own schemas (issue #6). Offline: no cluster, no operator process.

* Every child object the operator builds: the golden snapshots
  operator/tests/golden/*.yaml are exactly what the pure builders produce for
  operator/examples/valid/*.yaml (operator/tests/golden.rs fails when they
  drift), one YAML document per object. Each document is validated with
  kubernetes-validate in strict mode (unknown fields fail) for every version
  in KUBE_VERSIONS.
* The third-party kinds the operator creates, THIRD_PARTY_KINDS
  (ServiceMonitor and PodMonitor of the Prometheus Operator, cert-manager's
  Certificate), are CRD-typed and not in kubernetes-validate's schemas (the
  test asserts it raises SchemaNotFoundError for them). They are validated
  against the hand-written partial schemas below (the fields the builders
  set, strict: an unknown spec field fails), their metadata against
  Kubernetes' ObjectMeta. No other kind may go unchecked by
  kubernetes-validate: the test asserts the kinds routed to partial schemas
  are exactly THIRD_PARTY_KINDS.
* crds/mqttbroker.yaml as an apiextensions.k8s.io/v1 CustomResourceDefinition.
* MqttBroker documents in operator/examples/valid/ and examples/ against the
  CRD's openAPIV3Schema with `jsonschema` (any other kind in those files,
  e.g. a HorizontalPodAutoscaler, with kubernetes-validate). JSON Schema
  ignores the structural-schema extensions, so `crd_json_schema` translates
  what it can: `nullable`, `x-kubernetes-int-or-string`, and unknown fields
  rejected (`additionalProperties: false` where properties are declared and
  `x-kubernetes-preserve-unknown-fields` is not set), as `kubectl apply`
  does with its default strict server-side field validation; the API server
  would otherwise prune them silently. Not translated: CEL rules
  (`x-kubernetes-validations`) and list-type/map-key uniqueness.
* operator/examples/invalid/*.yaml must be rejected by that schema, except
  the CEL_ONLY ones, whose invalidity only a CEL rule expresses. Those are
  asserted to *pass* the structural schema (so the list cannot go stale) and
  to have a CRD CEL rule whose message is their `# expect:` text; the
  rejection itself is asserted by the Rust test
  operator/tests/examples.rs::invalid_examples_are_rejected_everywhere, which
  runs every invalid example through the CRD's CEL rules (kube::core::cel)
  and the operator's own validation.

Files are found by glob, so a new golden file or example is validated
without editing this test; files with another extension in those folders
fail the test (they would be silently skipped otherwise).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import kubernetes_validate  # installed by scripts/setup; missing is an error
import kubernetes_validate.utils

# kubernetes-validate parses megabytes of schema JSON on every call; they
# never change, so parse each once.
if not hasattr(kubernetes_validate.utils.schema_contents, "cache_info"):
    kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
        kubernetes_validate.utils.schema_contents
    )

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator"
GOLDEN_DIR = OPERATOR / "tests" / "golden"
VALID_DIR = OPERATOR / "examples" / "valid"
INVALID_DIR = OPERATOR / "examples" / "invalid"
REPO_EXAMPLES_DIR = ROOT / "examples"
CRD_FILE = ROOT / "crds" / "mqttbroker.yaml"
EXAMPLES_RS = OPERATOR / "tests" / "examples.rs"

# The oldest Kubernetes the chart supports and the pinned current one (the
# k8s-openapi version the operator is built against).
KUBE_VERSIONS = ("1.30.0", "1.37.0")

GOLDEN = sorted(GOLDEN_DIR.glob("*.yaml"))
VALID = sorted(VALID_DIR.glob("*.yaml")) + sorted(REPO_EXAMPLES_DIR.glob("*.yaml"))
INVALID = sorted(INVALID_DIR.glob("*.yaml"))

# Invalid examples whose invalidity only a CEL rule (x-kubernetes-validations)
# expresses; rejected by operator/tests/examples.rs instead (see above).
CEL_ONLY = {"mqtts-without-tls", "pdb-both", "tls-both-sources"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def documents(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{rel(path)} holds no YAML document"
    for d in docs:
        assert isinstance(d, dict) and "kind" in d and "apiVersion" in d, f"{rel(path)}: not a Kubernetes object"
    return docs


def what(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# --- Kubernetes' own schemas ---------------------------------------------------


def kube_validate(obj: dict, version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        raise AssertionError(f"{what(obj)} is invalid for Kubernetes {version} at {path}: {e.message}") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise AssertionError(
            f"{what(obj)} ({obj['apiVersion']}): no schema in kubernetes-validate for Kubernetes {version}; "
            "if it is a third-party CRD kind, add a partial schema to THIRD_PARTY_SCHEMAS"
        ) from None


# --- partial schemas for the third-party kinds ------------------------------------

_STRINGS = {"type": "array", "items": {"type": "string"}}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# Prometheus Operator's monitoringv1.Duration.
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": _STRINGS,
                },
            },
        },
    },
}
_NAMESPACE_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"any": {"type": "boolean"}, "matchNames": _STRINGS},
}
_SCRAPE_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string", "minLength": 1},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
        "honorLabels": {"type": "boolean"},
    },
}


def _resource(api_version: str, spec: dict) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "required": ["name", "namespace"]},
            "spec": spec,
        },
    }


# The parts of the upstream schemas the operator's builders use
# (monitoring.coreos.com/v1 from prometheus-operator, cert-manager.io/v1).
THIRD_PARTY_SCHEMAS: dict[str, dict] = {
    "ServiceMonitor": _resource(
        "monitoring.coreos.com/v1",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": _NAMESPACE_SELECTOR,
                "jobLabel": {"type": "string"},
                "endpoints": {"type": "array", "minItems": 1, "items": _SCRAPE_ENDPOINT},
            },
        },
    ),
    "PodMonitor": _resource(
        "monitoring.coreos.com/v1",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": _NAMESPACE_SELECTOR,
                "jobLabel": {"type": "string"},
                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _SCRAPE_ENDPOINT},
            },
        },
    ),
    "Certificate": _resource(
        "cert-manager.io/v1",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["secretName", "issuerRef"],
            "anyOf": [
                {"required": ["commonName"]},
                {"required": ["dnsNames"]},
                {"required": ["ipAddresses"]},
                {"required": ["uris"]},
                {"required": ["emailAddresses"]},
            ],
            "properties": {
                "secretName": {"type": "string", "minLength": 1},
                "commonName": {"type": "string", "maxLength": 64},
                "dnsNames": {**_STRINGS, "minItems": 1},
                "ipAddresses": _STRINGS,
                "uris": _STRINGS,
                "emailAddresses": _STRINGS,
                "duration": {"type": "string"},
                "renewBefore": {"type": "string"},
                "isCA": {"type": "boolean"},
                "issuerRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "kind": {"type": "string"},
                        "group": {"type": "string"},
                    },
                },
                "usages": {
                    "type": "array",
                    "items": {
                        "enum": [
                            "signing", "digital signature", "content commitment", "key encipherment",
                            "key agreement", "data encipherment", "cert sign", "crl sign",
                            "encipher only", "decipher only", "any", "server auth", "client auth",
                            "code signing", "email protection", "s/mime", "ipsec end system",
                            "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                            "microsoft sgc", "netscape sgc",
                        ]
                    },
                },
                "privateKey": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                        "encoding": {"enum": ["PKCS1", "PKCS8"]},
                        "size": {"type": "integer"},
                        "rotationPolicy": {"enum": ["Never", "Always"]},
                    },
                },
                "secretTemplate": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"annotations": _STRING_MAP, "labels": _STRING_MAP},
                },
            },
        },
    ),
}
THIRD_PARTY_KINDS = {"Certificate", "PodMonitor", "ServiceMonitor"}


def third_party_validate(obj: dict, version: str) -> None:
    try:
        jsonschema.Draft7Validator(THIRD_PARTY_SCHEMAS[obj["kind"]]).validate(obj)
    except jsonschema.ValidationError as e:
        path = ".".join(str(p) for p in e.absolute_path)
        raise AssertionError(f"{what(obj)} does not match its partial schema at {path}: {e.message}") from None
    # Their metadata is a plain ObjectMeta: check it with Kubernetes' schema.
    kube_validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}, version)


# --- the CRD's openAPIV3Schema as JSON Schema --------------------------------------


@functools.lru_cache(maxsize=None)
def _crd_text() -> str:
    return json.dumps(yaml.safe_load(CRD_FILE.read_text()))


def crd() -> dict:
    return json.loads(_crd_text())


def crd_json_schema(definition: dict) -> dict:
    """The storage version's openAPIV3Schema, translated to JSON Schema as far
    as structural-schema semantics allow (see the module docstring)."""
    (version,) = [v for v in definition["spec"]["versions"] if v.get("storage")]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            nullable = node.get("nullable", False)
            if node.get("x-kubernetes-int-or-string"):
                node.setdefault("anyOf", []).append({"type": ["integer", "string"] + (["null"] if nullable else [])})
            elif nullable and "type" in node:
                node["type"] = [node["type"], "null"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # The API server checks apiVersion, kind and metadata itself.
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"const": f"{definition['spec']['group']}/{version['name']}"}
    props["kind"] = {"const": definition["spec"]["names"]["kind"]}
    props["metadata"] = {"type": "object"}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    return schema


@functools.lru_cache(maxsize=None)
def mqttbroker_validator() -> jsonschema.Draft7Validator:
    schema = crd_json_schema(crd())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def mqttbroker_errors(obj: dict) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in mqttbroker_validator().iter_errors(obj)
    ]


def cel_messages(node: Any) -> list[str]:
    found = []
    if isinstance(node, dict):
        found += [rule["message"] for rule in node.get("x-kubernetes-validations", []) if "message" in rule]
        for value in node.values():
            found += cel_messages(value)
    elif isinstance(node, list):
        for value in node:
            found += cel_messages(value)
    return found


def expect_line(path: Path) -> str:
    found = re.search(r"^# expect: (.+)$", path.read_text(), re.M)
    assert found, f"{rel(path)}: no `# expect:` line (operator/tests/examples.rs needs one too)"
    return found.group(1).strip()


# --- the file sets ------------------------------------------------------------------


def test_every_file_in_the_validated_folders_is_validated():
    """Only *.yaml is globbed: anything else in these folders would escape
    validation (and operator/tests/*.rs), so it fails here."""
    for folder in (GOLDEN_DIR, VALID_DIR, INVALID_DIR):
        others = sorted(p.name for p in folder.iterdir() if p.suffix != ".yaml")
        assert not others, f"{rel(folder)}: not validated (rename to .yaml): {others}"
    others = sorted(p.name for p in REPO_EXAMPLES_DIR.iterdir() if p.suffix in (".yml", ".json"))
    assert not others, f"examples/: not validated (rename to .yaml): {others}"
    assert len(GOLDEN) >= 5 and len(VALID) >= 5 and len(INVALID) >= 5, (GOLDEN, VALID, INVALID)


def test_golden_files_are_one_per_valid_example():
    """golden.rs writes one snapshot per operator/examples/valid file; a golden
    without its example (or the reverse) is stale."""
    assert sorted(p.stem for p in GOLDEN) == sorted(p.stem for p in VALID_DIR.glob("*.yaml"))


def test_cel_only_names_exist():
    assert CEL_ONLY <= {p.stem for p in INVALID}, CEL_ONLY - {p.stem for p in INVALID}


# --- generated child objects ----------------------------------------------------------


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.stem)
def test_generated_objects_are_valid(golden: Path, version: str):
    for obj in documents(golden):
        if obj["kind"] in THIRD_PARTY_SCHEMAS:
            third_party_validate(obj, version)
        else:
            kube_validate(obj, version)


def test_generated_objects_are_owned_by_their_mqttbroker():
    definition = crd()
    api_version = f"{definition['spec']['group']}/{definition['spec']['versions'][0]['name']}"
    for golden in GOLDEN:
        for obj in documents(golden):
            refs = obj["metadata"].get("ownerReferences", [])
            assert [(r["apiVersion"], r["kind"], r.get("controller")) for r in refs] == [
                (api_version, "MqttBroker", True)
            ], f"{rel(golden)}: {what(obj)} has ownerReferences {refs} (garbage collection needs one controller ref)"


def test_only_the_third_party_kinds_use_partial_schemas():
    """The kinds validated against hand-written schemas are exactly the
    third-party CRD kinds: each is generated by some example (so its schema
    is exercised), each is really absent from kubernetes-validate, and every
    other generated kind is one kubernetes-validate knows."""
    assert set(THIRD_PARTY_SCHEMAS) == THIRD_PARTY_KINDS
    generated = {obj["kind"]: obj for golden in GOLDEN for obj in documents(golden)}
    assert {k for k in generated if k in THIRD_PARTY_SCHEMAS} == THIRD_PARTY_KINDS, sorted(generated)
    for version in KUBE_VERSIONS:
        for kind, obj in generated.items():
            if kind in THIRD_PARTY_KINDS:
                with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                    kubernetes_validate.validate(obj, version, strict=True)
            else:
                kube_validate(obj, version)


@pytest.mark.parametrize(
    "kind, path, value",
    [
        ("ServiceMonitor", ("spec", "endpoints", 0, "intervall"), "30s"),
        ("ServiceMonitor", ("spec", "endpoints", 0, "interval"), "30 seconds"),
        ("PodMonitor", ("spec", "podMetricsEndpoints", 0, "port"), 9464),
        ("Certificate", ("spec", "usages", 0), "server-auth"),
        ("Certificate", ("spec", "issuerRef", "nam"), "x"),
    ],
)
def test_partial_schemas_reject_mistakes(kind: str, path: tuple, value: Any):
    """The hand-written schemas are strict enough to catch typos."""
    obj = next(copy.deepcopy(o) for g in GOLDEN for o in documents(g) if o["kind"] == kind)
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(AssertionError):
        third_party_validate(obj, KUBE_VERSIONS[-1])


def test_strict_mode_catches_an_unknown_field():
    """kubernetes-validate really runs strict (an unknown field fails)."""
    sts = next(copy.deepcopy(o) for g in GOLDEN for o in documents(g) if o["kind"] == "StatefulSet")
    sts["spec"]["replica"] = 3
    for version in KUBE_VERSIONS:
        with pytest.raises(AssertionError, match="replica"):
            kube_validate(sts, version)


# --- the CRD ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_crd_is_a_valid_custom_resource_definition(version: str):
    definition = crd()
    assert definition["apiVersion"] == "apiextensions.k8s.io/v1"
    assert definition["kind"] == "CustomResourceDefinition"
    kube_validate(definition, version)


def test_crd_schema_is_valid_json_schema():
    mqttbroker_validator()


# --- MqttBroker examples --------------------------------------------------------------------


@pytest.mark.parametrize("example", VALID, ids=rel)
def test_valid_examples_match_the_crd_schema(example: Path):
    brokers = 0
    for obj in documents(example):
        if obj["kind"] == "MqttBroker":
            brokers += 1
            errors = mqttbroker_errors(obj)
            assert not errors, f"{rel(example)}: {what(obj)} does not match the CRD schema: {errors}"
        else:
            for version in KUBE_VERSIONS:
                kube_validate(obj, version)
    assert brokers >= 1, f"{rel(example)} holds no MqttBroker"


@pytest.mark.parametrize("example", INVALID, ids=lambda p: p.stem)
def test_invalid_examples_are_rejected(example: Path):
    (obj,) = documents(example)
    assert obj["kind"] == "MqttBroker"
    errors = mqttbroker_errors(obj)
    expect = expect_line(example)
    if example.stem in CEL_ONLY:
        # Structurally fine; the CEL rule with the expected message rejects it
        # (asserted by operator/tests/examples.rs, see the module docstring).
        assert not errors, f"{example.stem} is in CEL_ONLY but the schema already rejects it: {errors}"
        assert any(expect in m for m in cel_messages(crd())), (
            f"{example.stem}: no x-kubernetes-validations rule with message containing {expect!r}"
        )
    else:
        assert errors, f"{rel(example)} passes the CRD schema ({expect!r} expected); CEL-only? add it to CEL_ONLY"


def test_cel_only_examples_are_rejected_by_the_rust_cel_test():
    """The Rust test that applies the CRD's CEL rules covers every invalid
    example (it globs the folder) and asserts each `# expect:` message."""
    text = EXAMPLES_RS.read_text()
    assert "fn invalid_examples_are_rejected_everywhere" in text
    assert 'example_names("invalid")' in text
    assert "Validator::new().validate(" in text
    assert "# expect: " in text

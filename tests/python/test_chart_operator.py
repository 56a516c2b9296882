"""The chart against the operator it installs: RBAC and command line.

RBAC. EXPECTED_API_CALLS is the exact list of Kubernetes API calls
ferrumq-operator makes (resource, verbs, where). The tests check that

  * the chart's Role/ClusterRole rules grant exactly that list: no verb
    missing (the operator would fail with 403) and none extra (least
    privilege), in both the cluster-wide and the per-namespace layout;
  * the list matches the operator's source: operator/src is scanned for every
    `Api<Kind>` / `Api::<Kind>` / `api::<Kind>` / `apply::<Kind>` type, every
    dynamic `GroupVersionKind`, and every request method called on an Api
    (get/get_opt/list/patch/patch_status/create/replace/delete/... and the
    controller's owns/watches). Each (resource, verb) the scan attributes must
    be in the list, and each request verb the code uses anywhere must be
    granted for some resource. Library calls are read from the library
    sources in cargo's registry at the version in Cargo.lock: kube-runtime's
    event Recorder and kube-lease-manager's Lease handling.

So a new `Api<Kind>`, a new verb on an existing kind or a new library helper
fails here with a message saying what to grant in templates/rbac.yaml (and
what to add to EXPECTED_API_CALLS).

Command line. Every flag the Deployment passes to `ferrumq-operator run`
exists in operator/src/main.rs (and in `run --help` when the binary is
built), and the chart's port and env match the operator's defaults.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_chart as chart_support  # noqa: E402  (shared helpers: render, CHART, ...)

helm = chart_support.helm
ROOT = chart_support.ROOT
OPERATOR_SRC = ROOT / "operator" / "src"

# --- the operator's API calls ---------------------------------------------------------

# (api group, resource) -> verbs, with where they come from. `scope` is
# "watched" for rules in every watched namespace (or the ClusterRole) and
# "lease" for the leader-election Role in the release namespace.
EXPECTED_API_CALLS: dict[tuple[str, str], dict] = {
    ("ferrumq.io", "mqttbrokers"): {
        "verbs": {"list", "watch"},
        "scope": "watched",
        "why": "runtime/controller.rs Controller::new(api::<MqttBroker>)",
    },
    ("ferrumq.io", "mqttbrokers/status"): {
        "verbs": {"patch"},
        "scope": "watched",
        "why": "reconcile/mod.rs patch_status",
    },
    ("apps", "statefulsets"): {
        "verbs": {"get", "list", "watch", "patch"},
        "scope": "watched",
        "why": "dereference get_opt; controller owns; apply (server-side apply)",
    },
    ("policy", "poddisruptionbudgets"): {
        "verbs": {"get", "list", "watch", "patch", "delete"},
        "scope": "watched",
        "why": "dereference get_opt; owns; apply; delete_orphans",
    },
    ("", "services"): {
        "verbs": {"list", "watch", "patch", "delete"},
        "scope": "watched",
        "why": "dereference list (client Services); owns; apply; delete_orphans",
    },
    ("", "configmaps"): {
        "verbs": {"list", "watch", "patch"},
        "scope": "watched",
        "why": "owns; apply",
    },
    ("", "secrets"): {
        "verbs": {"get", "list", "watch"},
        "scope": "watched",
        "why": "dereference get_opt (auth, TLS); controller watches",
    },
    ("monitoring.coreos.com", "servicemonitors"): {
        "verbs": {"get", "patch", "delete"},
        "scope": "watched",
        "why": "dereference get_opt; apply_dynamic; delete_orphans",
    },
    ("monitoring.coreos.com", "podmonitors"): {
        "verbs": {"get", "patch", "delete"},
        "scope": "watched",
        "why": "dereference get_opt; apply_dynamic; delete_orphans",
    },
    ("cert-manager.io", "certificates"): {
        "verbs": {"get", "patch", "delete"},
        "scope": "watched",
        "why": "dereference get_opt; apply_dynamic; delete_orphans",
    },
    ("events.k8s.io", "events"): {
        "verbs": {"create", "patch"},
        "scope": "watched",
        "why": "kube-runtime Recorder::publish (patch when an event repeats)",
    },
    ("coordination.k8s.io", "leases"): {
        "verbs": {"get", "create", "patch"},
        "scope": "lease",
        "why": "kube-lease-manager (runtime/leader.rs)",
    },
}

# Rust type -> (group, resource). A type missing here fails the test.
KIND_RESOURCES = {
    "MqttBroker": ("ferrumq.io", "mqttbrokers"),
    "StatefulSet": ("apps", "statefulsets"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "Lease": ("coordination.k8s.io", "leases"),
    "Event": ("events.k8s.io", "events"),
}

# kube::Api request methods -> RBAC verb (and subresource).
API_METHODS = {
    "get": ("get", ""),
    "get_opt": ("get", ""),
    "get_metadata": ("get", ""),
    "get_metadata_opt": ("get", ""),
    "get_status": ("get", "status"),
    "get_scale": ("get", "scale"),
    "list": ("list", ""),
    "list_metadata": ("list", ""),
    "watch": ("watch", ""),
    "watch_metadata": ("watch", ""),
    "create": ("create", ""),
    "patch": ("patch", ""),
    "patch_metadata": ("patch", ""),
    "patch_status": ("patch", "status"),
    "patch_scale": ("patch", "scale"),
    "replace": ("update", ""),
    "replace_status": ("update", "status"),
    "replace_scale": ("update", "scale"),
    "delete": ("delete", ""),
    "delete_collection": ("deletecollection", ""),
    "evict": ("create", "eviction"),
}
# Watch-based helpers: the Api passed in is listed and watched.
WATCH_CALLS = ("Controller::new", ".owns", ".watches", "watcher", "metadata_watcher", "reflector")


def rust_sources() -> dict[str, str]:
    """operator/src/**/*.rs without comments and without #[cfg(test)] code."""
    out = {}
    for path in sorted(OPERATOR_SRC.rglob("*.rs")):
        text = path.read_text()
        text = re.sub(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{.*", "", text, flags=re.S)
        text = re.sub(r"//[^\n]*", "", text)
        out[str(path.relative_to(ROOT))] = text
    return out


def _statement(text: str, start: int) -> str:
    """Text from `start` to the end of its statement (next `;` at depth 0)."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return text[start:i]
        elif c == ";" and depth == 0:
            return text[start:i]
    return text[start:]


def _dynamic_resources(expr: str, sources: dict[str, str]) -> set[tuple[str, str]]:
    """Resources an ApiResource expression names: certificate_resource(),
    monitor_resource(kind) (all monitor kinds)."""
    found = set()
    if "certificate_resource" in expr:
        found.add(("cert-manager.io", "certificates"))
    if "monitor_resource" in expr:
        found |= {("monitoring.coreos.com", "servicemonitors"), ("monitoring.coreos.com", "podmonitors")}
    return found


class Scan:
    """What the operator's source says about its API calls."""

    def __init__(self) -> None:
        self.sources = rust_sources()
        self.all_text = "\n".join(self.sources.values())
        self.kinds: set[str] = set()
        self.calls: set[tuple[str, str, str]] = set()  # (group, resource, verb)
        self.evidence: dict[tuple[str, str, str], str] = {}
        self.methods_used: set[str] = set()
        self.unattributed: list[str] = []
        self.groups: set[str] = set()
        self._scan()

    def add(self, resource: tuple[str, str], verb: str, sub: str, where: str) -> None:
        group, name = resource
        if sub:
            name = f"{name}/{sub}"
        key = (group, name, verb)
        self.calls.add(key)
        self.evidence.setdefault(key, where)

    def _resolve_kind(self, kind: str, where: str) -> tuple[str, str] | None:
        if kind in KIND_RESOURCES:
            return KIND_RESOURCES[kind]
        raise AssertionError(
            f"{where}: the operator uses Api<{kind}>, which this test does not know. Add {kind} to "
            "KIND_RESOURCES and its verbs to EXPECTED_API_CALLS in tests/python/test_chart_operator.py, "
            "and grant them in charts/ferrumq-operator/templates/rbac.yaml"
        )

    def _scan(self) -> None:
        method_alt = "|".join(sorted(API_METHODS, key=len, reverse=True))
        for file, text in self.sources.items():
            # Every typed Api in the code.
            for m in re.finditer(r"\b(?:Api|api|apply)\s*(?:::)?\s*<\s*([A-Z]\w*)\s*>", text):
                kind = m.group(1)
                if kind in ("K", "DynamicObject", "Self") or len(kind) == 1:
                    continue
                self.kinds.add(kind)
            for m in re.finditer(r'GroupVersionKind::gvk\(\s*"([^"]*)"', text):
                self.groups.add(m.group(1))

            # Variables with a known Api type, by position: a use belongs to
            # the closest `let` of that name before it.
            bindings: list[tuple[int, str, set[tuple[str, str]]]] = []
            for m in re.finditer(r"let\s+(?:mut\s+)?(\w+)\s*(?::\s*Api<\s*(\w+)\s*>)?\s*=", text):
                name, kind = m.group(1), m.group(2)
                rhs = _statement(text, m.end())
                if kind is None:
                    km = re.match(r"\s*Api::<\s*(\w+)\s*>", rhs)
                    kind = km.group(1) if km else None
                resources: set[tuple[str, str]] = set()
                if kind == "DynamicObject" or (kind is None and "Api::namespaced_with" in rhs):
                    resources = _dynamic_resources(rhs, self.sources)
                elif kind and kind[0].isupper() and len(kind) > 1:
                    resources = {self._resolve_kind(kind, file)}
                bindings.append((m.start(), name, resources))

            def resolve(name: str, pos: int) -> set[tuple[str, str]]:
                found: set[tuple[str, str]] = set()
                for start, bound, resources in bindings:
                    if bound == name and start < pos:
                        found = resources
                return found

            # Chained calls on a fresh Api: Api::<K>::namespaced(..).get_opt(..)
            for m in re.finditer(r"\bApi::<\s*(\w+)\s*>::\w+\(", text):
                statement = _statement(text, m.start())
                resource = self._resolve_kind(m.group(1), file)
                for call in re.finditer(rf"\.\s*({method_alt})\s*\(", statement):
                    verb, sub = API_METHODS[call.group(1)]
                    self.add(resource, verb, sub, f"{file}: Api::<{m.group(1)}>…{call.group(1)}")

            # Method calls on typed variables, and variables passed to a
            # local generic helper: helper(&name, ...).
            for name in {b[1] for b in bindings}:
                for call in re.finditer(rf"\b{re.escape(name)}\s*\.\s*({method_alt})\s*\(", text):
                    verb, sub = API_METHODS[call.group(1)]
                    for resource in resolve(name, call.start()):
                        self.add(resource, verb, sub, f"{file}: {name}.{call.group(1)}")
                for call in re.finditer(rf"(?<![.\w])(\w+)\s*\(\s*&{re.escape(name)}\b", text):
                    for verb, sub in self._helper_verbs(call.group(1)):
                        for resource in resolve(name, call.start()):
                            self.add(resource, verb, sub, f"{file}: {call.group(1)}(&{name})")

            # Generic helpers called with a turbofish: apply::<ConfigMap>(..)
            for m in re.finditer(r"\b(\w+)::<\s*([A-Z]\w+)\s*>\s*\(", text):
                helper, kind = m.group(1), m.group(2)
                if helper in ("Api", "api"):
                    continue
                verbs = self._helper_verbs(helper)
                if verbs:
                    resource = self._resolve_kind(kind, file)
                    for verb, sub in verbs:
                        self.add(resource, verb, sub, f"{file}: {helper}::<{kind}>")

            # Helpers taking an ApiResource: apply_dynamic(.., &certificate_resource())
            resource_helpers = self._resource_helpers()
            for m in re.finditer(r"(?<![.\w])(\w+)\s*\(", text):
                helper = m.group(1)
                if helper not in resource_helpers or re.match(r"\s*fn\b", text[max(0, m.start() - 4) : m.start()]):
                    continue
                statement = _statement(text, m.start())
                for resource in _dynamic_resources(statement, self.sources):
                    for verb, sub in self._helper_verbs(helper):
                        self.add(resource, verb, sub, f"{file}: {helper}(…)")

            # Controller watches: Controller::new(api::<K>(..)), .owns(api::<K>(..)), ...
            for call in WATCH_CALLS:
                for m in re.finditer(re.escape(call) + r"\s*\(\s*(?:api|Api)\s*::\s*<\s*(\w+)\s*>", text):
                    resource = self._resolve_kind(m.group(1), file)
                    for verb in ("list", "watch"):
                        self.add(resource, verb, "", f"{file}: {call}(api::<{m.group(1)}>)")
                for m in re.finditer(re.escape(call) + r"\s*\((?!\s*(?:api|Api)\b)\s*([^,)]*)", text):
                    if call in ("watcher", "reflector", "metadata_watcher") and not m.group(1).strip():
                        continue
                    if call.startswith(".") or call == "Controller::new":
                        self.unattributed.append(f"{file}: {call}({m.group(1).strip()}…) – not an api::<Kind>(…)")

            for m in re.finditer(rf"\.\s*({method_alt})\s*\(", text):
                self.methods_used.add(m.group(1))

        # Libraries that call the API on the operator's behalf.
        if re.search(r"\bRecorder\b", self.all_text):
            for verb in library_verbs("kube-runtime", "src/events.rs", r"\bevents\s*\.\s*(\w+)\s*\("):
                self.add(("events.k8s.io", "events"), verb, "", "kube-runtime Recorder (events.rs)")
        if re.search(r"\bkube_lease_manager\b|LeaseManagerBuilder", self.all_text):
            for verb in library_verbs("kube-lease-manager", "src/state.rs", r"self\.api\s*\.\s*(\w+)\s*\("):
                self.add(("coordination.k8s.io", "leases"), verb, "", "kube-lease-manager (state.rs)")

    def _function_body(self, name: str) -> str | None:
        m = re.search(rf"\bfn\s+{re.escape(name)}\b[^{{;]*\{{", self.all_text)
        if not m:
            return None
        depth, i = 1, m.end()
        while depth and i < len(self.all_text):
            depth += {"{": 1, "}": -1}.get(self.all_text[i], 0)
            i += 1
        return self.all_text[m.start() : i]

    @functools.lru_cache(maxsize=None)
    def _helper_verbs(self, name: str) -> tuple[tuple[str, str], ...]:
        """Verbs a local generic helper issues on the Api it builds or gets."""
        if name in ("Some", "Ok", "Err"):
            return ()
        body = self._function_body(name)
        if body is None or not re.search(r"Api\s*<\s*(K|DynamicObject)\s*>|Api::namespaced_with", body):
            return ()
        method_alt = "|".join(sorted(API_METHODS, key=len, reverse=True))
        return tuple(API_METHODS[m.group(1)] for m in re.finditer(rf"\bapi\s*\.\s*({method_alt})\s*\(", body))

    @functools.lru_cache(maxsize=None)
    def _resource_helpers(self) -> frozenset[str]:
        """Local functions that take an `&ApiResource` and build an Api from it."""
        return frozenset(
            m.group(1)
            for m in re.finditer(r"\bfn\s+(\w+)\s*[^{;]*?:\s*&(?:kube::api::)?ApiResource\b", self.all_text)
            if self._helper_verbs(m.group(1))
        )


def cargo_lock_version(package: str) -> str | None:
    lock = (ROOT / "Cargo.lock").read_text()
    m = re.search(rf'\[\[package\]\]\nname = "{re.escape(package)}"\nversion = "([^"]+)"', lock)
    return m.group(1) if m else None


def library_verbs(package: str, file: str, pattern: str) -> set[str]:
    """RBAC verbs of the Api calls in a library's (non-test) source, read from
    cargo's registry at the version Cargo.lock pins."""
    version = cargo_lock_version(package)
    assert version, f"{package} is used but not in Cargo.lock"
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    candidates = sorted(cargo_home.glob(f"registry/src/*/{package}-{version}/{file}"))
    assert candidates, (
        f"{package} {version} source not found under {cargo_home}/registry/src "
        "(run `cargo fetch` or build the workspace first)"
    )
    text = re.sub(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{.*", "", candidates[0].read_text(), flags=re.S)
    verbs = set()
    for m in re.finditer(pattern, text):
        if m.group(1) in API_METHODS:
            verbs.add(API_METHODS[m.group(1)][0])
    assert verbs, f"found no API calls in {candidates[0]}; has {package} changed how it calls the API?"
    return verbs


@pytest.fixture(scope="module")
def scan() -> Scan:
    return Scan()


def expected_rules() -> set[tuple[str, str, str]]:
    return {(g, r, v) for (g, r), spec in EXPECTED_API_CALLS.items() for v in spec["verbs"]}


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in rules:
        assert "nonResourceURLs" not in rule, "the operator needs no non-resource URL rule"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    out.add((group, resource, verb))
    return out


def fmt(calls) -> str:
    return "\n".join(f"  {g or 'core'}/{r}: {v}" for g, r, v in sorted(calls))


# --- source scan vs. the expected list ----------------------------------------------------


def test_every_api_kind_in_the_operator_is_known(scan):
    assert scan.kinds, "found no Api<Kind> in operator/src: has the layout changed?"
    unknown = scan.kinds - set(KIND_RESOURCES)
    assert not unknown, f"operator/src uses Api types this test does not know: {unknown}"
    for kind in scan.kinds:
        assert KIND_RESOURCES[kind] in EXPECTED_API_CALLS, f"{kind} is used but not in EXPECTED_API_CALLS"


def test_every_dynamic_group_is_expected(scan):
    expected_groups = {g for g, _ in EXPECTED_API_CALLS}
    assert scan.groups <= expected_groups, (
        f"operator/src builds objects of API groups {scan.groups - expected_groups} "
        "that EXPECTED_API_CALLS (and the chart's RBAC) do not cover"
    )


def test_every_scanned_call_is_expected(scan):
    assert scan.calls, "the scan attributed no API call: has operator/src changed shape?"
    missing = scan.calls - expected_rules()
    details = "\n".join(f"  {g or 'core'}/{r} {v}: {scan.evidence[(g, r, v)]}" for g, r, v in sorted(missing))
    assert not missing, (
        "the operator makes API calls the chart does not grant:\n"
        f"{details}\n"
        "grant them in charts/ferrumq-operator/templates/rbac.yaml and add them to EXPECTED_API_CALLS"
    )
    assert not scan.unattributed, (
        "cannot tell which resource these watches are on; pass `api::<Kind>(..)` directly or extend "
        f"the scan in tests/python/test_chart_operator.py:\n" + "\n".join(scan.unattributed)
    )


def test_every_expected_call_is_still_made(scan):
    """Least privilege in the other direction: a verb the operator stopped
    using must leave the chart too."""
    stale = expected_rules() - scan.calls
    assert not stale, (
        "EXPECTED_API_CALLS (and the chart) grant calls the operator no longer makes "
        f"(or the scan no longer sees):\n{fmt(stale)}"
    )


def test_every_request_verb_used_is_granted_somewhere(scan):
    """Backstop for calls the scan cannot attribute to a resource: a request
    method used anywhere needs its verb granted on some resource."""
    granted_verbs = {v for spec in EXPECTED_API_CALLS.values() for v in spec["verbs"]}
    used = {API_METHODS[m][0] for m in scan.methods_used}
    # `.get(`, `.list(`, `.create(`, `.delete(` also exist on maps, vectors, files.
    ambiguous = {"get", "list", "create", "delete", "watch"}
    assert used - ambiguous <= granted_verbs, (
        f"operator/src calls Api methods with verbs {sorted(used - ambiguous - granted_verbs)} "
        "that no rule grants"
    )


# --- the chart vs. the expected list ----------------------------------------------------------


def watched_rules(objects: list[dict]) -> list[list[dict]]:
    roles = [o for o in objects if o["kind"] in ("ClusterRole", "Role") and not o["metadata"]["name"].endswith("-leader-election")]
    return [r["rules"] for r in roles]


@pytest.mark.parametrize(
    "values",
    [{}, {"watchNamespaces": ["mqtt"]}, {"watchNamespaces": ["a", "b"]}, {"replicaCount": 2}],
    ids=["cluster-wide", "one-namespace", "two-namespaces", "two-replicas"],
)
def test_chart_grants_exactly_the_operator_calls(values):
    with helm.Chart.load(str(chart_support.CHART)) as chart:
        objects = chart_support.render(chart, values)
    rule_sets = watched_rules(objects)
    namespaces = values.get("watchNamespaces")
    assert len(rule_sets) == (len(namespaces) if namespaces else 1)
    want = {c for c in expected_rules() if EXPECTED_API_CALLS[c[:2]]["scope"] == "watched"}
    for rules in rule_sets:
        have = granted(rules)
        assert not want - have, f"the chart does not grant:\n{fmt(want - have)}"
        assert not have - want, f"the chart grants more than the operator uses:\n{fmt(have - want)}"
        assert all("resourceNames" not in r for r in rules)
    kinds = {o["kind"] for o in objects}
    assert ("ClusterRole" in kinds) == (not namespaces), "ClusterRole only when watching every namespace"

    (lease_role,) = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"].endswith("-leader-election")]
    assert lease_role["metadata"]["namespace"] == chart_support.NAMESPACE
    want_lease = {c for c in expected_rules() if EXPECTED_API_CALLS[c[:2]]["scope"] == "lease"}
    assert granted(lease_role["rules"]) == want_lease
    lease_name = next(a for a in chart_support.operator_container(objects)["args"] if a.startswith("--lease-name="))
    for rule in lease_role["rules"]:
        if set(rule["verbs"]) - {"create"}:
            assert rule["resourceNames"] == [lease_name.split("=", 1)[1]], "get/patch only on our own Lease"


def test_bindings_point_at_the_operator_service_account():
    with helm.Chart.load(str(chart_support.CHART)) as chart:
        objects = chart_support.render(chart, {"watchNamespaces": ["mqtt"]})
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Role"}
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        assert (binding["metadata"]["namespace"], binding["roleRef"]["name"]) in roles
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": chart_support.NAMESPACE}
        ]


# --- the command line ---------------------------------------------------------------------


def run_args_spec() -> dict[str, dict]:
    """`ferrumq-operator run` flags from operator/src/main.rs: name -> {env, default}."""
    text = (OPERATOR_SRC / "main.rs").read_text()
    m = re.search(r"struct\s+RunArgs\s*\{(.*?)\n\}", text, re.S)
    assert m, "operator/src/main.rs has no `struct RunArgs`: how does `ferrumq-operator run` take its flags now?"
    flags = {}
    for attr, field in re.findall(r"#\[arg\(([^\]]*)\)\]\s*(?:pub\s+)?(\w+)\s*:", m.group(1)):
        if not re.search(r"\blong\b", attr):
            continue
        long = re.search(r'long\s*=\s*"([^"]+)"', attr)
        env = re.search(r'env\s*=\s*"([^"]+)"', attr)
        default = re.search(r'default_value(?:_t)?\s*=\s*"?([^",)]*)"?', attr)
        flags[long.group(1) if long else field.replace("_", "-")] = {
            "env": env.group(1) if env else None,
            "default": default.group(1) if default else None,
        }
    return flags


def chart_flags(objects: list[dict]) -> dict[str, str]:
    args = chart_support.operator_container(objects)["args"]
    assert args[0] == "run"
    out = {}
    for arg in args[1:]:
        assert arg.startswith("--") and "=" in arg, f"use --flag=value, got {arg!r}"
        name, value = arg[2:].split("=", 1)
        out[name] = value
    return out


ALL_FLAG_VALUES = {"watchNamespaces": ["a"], "leaderElection": {"enabled": True}}


def test_chart_flags_exist_in_the_operator():
    spec = run_args_spec()
    with helm.Chart.load(str(chart_support.CHART)) as chart:
        objects = chart_support.render(chart, ALL_FLAG_VALUES)
    flags = chart_flags(objects)
    unknown = set(flags) - set(spec)
    assert not unknown, f"the Deployment passes flags `ferrumq-operator run` does not have: {unknown}"
    assert flags["http-addr"] == "0.0.0.0:8080"
    assert spec["http-addr"]["default"].endswith(":8080"), "the operator's default port moved: update metrics.port"
    assert flags["log-format"] in ("text", "json") and flags["leader-election"] in ("true", "false")
    env = {e["name"] for e in chart_support.operator_container(objects)["env"]}
    for needed in ("pod-name", "lease-namespace"):
        assert spec[needed]["env"] in env, f"--{needed} comes from ${spec[needed]['env']}, which the chart must set"


def operator_binary() -> Path | None:
    for candidate in (
        os.environ.get("FERRUMQ_OPERATOR_BIN"),
        ROOT / "target" / "debug" / "ferrumq-operator",
        ROOT / "target" / "release" / "ferrumq-operator",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def test_chart_flags_accepted_by_the_binary():
    """Same check against `ferrumq-operator run --help` of a built binary
    (scripts/test builds it before pytest runs)."""
    binary = operator_binary()
    if binary is None:
        pytest.skip("no ferrumq-operator binary built (cargo build -p ferrumq-operator)")
    help_text = subprocess.run(
        [str(binary), "run", "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    if help_text.returncode != 0 or "--http-addr" not in help_text.stdout:
        pytest.skip(f"{binary} predates `run` (stale build): {help_text.stdout[:200]}{help_text.stderr[:200]}")
    with helm.Chart.load(str(chart_support.CHART)) as chart:
        objects = chart_support.render(chart, ALL_FLAG_VALUES)
    for flag in chart_flags(objects):
        assert f"--{flag}" in help_text.stdout, f"`{binary.name} run --help` has no --{flag}"


def test_examples_use_the_operator_defaults():
    """The chart's image and the operator's default broker image are the
    ones scripts/build-image and the Dockerfile produce."""
    types = (OPERATOR_SRC / "crd" / "types.rs").read_text()
    repo = re.search(r'DEFAULT_IMAGE_REPOSITORY:\s*&str\s*=\s*"([^"]+)"', types).group(1)
    assert repo == "ferrumq/ferrumq-broker"
    values = yaml.safe_load((chart_support.CHART / "values.yaml").read_text())
    assert values["image"]["repository"] == "ferrumq/ferrumq-operator"

"""Observability: the broker's /metrics, the Grafana dashboards and the alert rules.

What runs here (all on loopback, bounded in time and count):

* one FerrumQ broker (the binary cargo built; FERRUMQ_BROKER_BIN) and one real
  Prometheus (Debian's package) scraping the broker's admin port every second,
  with the target labels the operator's ServiceMonitor gives broker pods
  (namespace, service = "<broker>-headless", endpoint = "admin", pod) and the
  alert rules loaded;
* a short paho-mqtt load (3.1.1 and 5.0 clients, QoS 0 and 1, a few hundred
  messages over about 5 s, some to a topic nobody subscribed to, one refused
  CONNECT, clean disconnects), so every broker metric has samples.

Then:

* ``promtool check metrics`` accepts the broker's exposition;
* every PromQL expression of every panel of the broker dashboard, with the
  template variables substituted, returns data from Prometheus, and every
  metric it names is one the broker exports;
* the operator dashboard's metric names are all registered by the operator's
  code (no operator runs here, see that test);
* the alert rules pass ``promtool check rules`` and their unit tests, load into
  Prometheus and evaluate without errors, name only exported metrics, and the
  drain alert goes pending once the broker drains.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ferrumq-operator"
BROKER_DASHBOARD = CHART / "dashboards" / "ferrumq-broker.json"
OPERATOR_DASHBOARD = CHART / "dashboards" / "ferrumq-operator.json"
RULES = CHART / "rules" / "ferrumq-alerts.yaml"
RULES_TEST = CHART / "rules" / "ferrumq-alerts.test.yaml"
OPERATOR_SRC = ROOT / "operator" / "src"

# The labels Prometheus gives the scraped broker: what the ServiceMonitor the
# operator creates for an MqttBroker named BROKER in NAMESPACE produces.
NAMESPACE = "ferrumq-obs"
BROKER = "obs"
TARGET_LABELS = {
    "namespace": NAMESPACE,
    "service": f"{BROKER}-headless",
    "endpoint": "admin",
    "pod": f"{BROKER}-0",
}
# Grafana variables and what they stand for here. $__rate_interval is at least
# four scrape intervals in Grafana; the scrape interval here is 1 s.
VARIABLES = {
    "namespace": NAMESPACE,
    "broker": BROKER,
    "__rate_interval": "10s",
    "__interval": "10s",
    "__range": "1m",
}

DEADLINE = 20.0  # seconds any single wait may take
MESSAGES_PER_PUBLISHER = 50  # ticks; each tick publishes one QoS 0 and one QoS 1 message
TICK = 0.1  # seconds between ticks: about 5 s of load


def broker_binary() -> Path:
    path = Path(os.environ.get("FERRUMQ_BROKER_BIN", ROOT / "target" / "debug" / "ferrumq-broker"))
    if not path.is_file():
        pytest.fail(f"broker binary {path} not found: run `cargo build -p ferrumq-broker` (scripts/test does)")
    return path


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if not found:
        pytest.fail(f"{name} not found: scripts/setup installs Debian's prometheus package")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, data: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(what: str, check, timeout: float = DEADLINE, interval: float = 0.2):
    """Polls `check` until it returns something truthy, failing after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError, KeyError) as error:  # not up yet
            last_error = error
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- PromQL helpers -----------------------------------------------------------

KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (a small PromQL scanner: enough
    for the expressions of these dashboards and rules)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def substitute(expr: str) -> str:
    """Replaces Grafana's template variables as the dashboard would here."""
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name == "datasource":
            return ""
        if name not in VARIABLES:
            raise AssertionError(f"unknown template variable ${name} in {expr!r}")
        return VARIABLES[name]

    out = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)
    assert "$" not in out, out
    return out


def panels(dashboard: dict):
    """Every panel, including those inside (collapsed) rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def panel_targets(dashboard: dict):
    """(panel title, refId, expr) of every PromQL target."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel["title"], target.get("refId", "?"), target["expr"]


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def rule_exprs(group_prefix: str | None = None):
    """(alert, expr) of every rule, optionally of groups whose name starts with a prefix."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        if group_prefix and not group["name"].startswith(group_prefix):
            continue
        for rule in group["rules"]:
            yield rule.get("alert") or rule.get("record"), rule["expr"]


def operator_registered_metrics() -> set[str]:
    """Metric names the operator registers, found by reading its source: the
    names given to prometheus metric constructors (Opts, HistogramOpts,
    IntCounter::new, ..., register_* macros), with the registry's prefix
    (Registry::new_custom) and a histogram's _bucket/_sum/_count series."""
    names: set[str] = set()
    constructor = re.compile(
        r"\b(HistogramOpts|Opts|IntCounter|IntGauge|Counter|Gauge|Histogram)::(?:new|with_opts)\(\s*\"([A-Za-z_:][\w:]*)\""
        r"|\bregister_(\w+)!\(\s*\"([A-Za-z_:][\w:]*)\""
    )
    for path in sorted(OPERATOR_SRC.rglob("*.rs")):
        text = path.read_text()
        prefixes = set(re.findall(r"Registry::new_custom\(\s*Some\(\s*\"([\w:]+)\"", text))
        assert len(prefixes) <= 1, f"{path}: several registry prefixes {prefixes}"
        prefix = f"{prefixes.pop()}_" if prefixes else ""
        for kind, name, macro, macro_name in constructor.findall(text):
            histogram = kind == "HistogramOpts" or "histogram" in macro
            full = prefix + (name or macro_name)
            names |= {full + s for s in ("_bucket", "_sum", "_count")} if histogram else {full}
    return names


# --- the running stack --------------------------------------------------------


class Stack:
    """A broker, a Prometheus scraping it, and the load that ran through them."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.processes: list[subprocess.Popen] = []
        self.broker_log = tmp / "broker.log"
        self.mqtt_port = 0
        self.admin = ""
        self.prometheus = ""
        self.query_time = 0.0

    # broker ---------------------------------------------------------------

    def start_broker(self) -> None:
        # MQTT on port 0 (the log tells the port); the admin listener on a free
        # port picked here, since the broker's config check rejects two ":0"
        # binds on one address. Retried if someone takes that port first.
        # Persistence on, as the operator configures it, so its metrics are exported too.
        config_path = self.tmp / "ferrumq.yaml"
        config_path.write_text(yaml.safe_dump({"persistence": {"dataDir": str(self.tmp / "data")}}))
        for attempt in range(3):
            log_path = self.tmp / f"broker-{attempt}.log"
            admin = f"127.0.0.1:{free_port()}"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [str(broker_binary()), "--config", str(config_path), "--listen", "127.0.0.1:0",
                     "--admin-listen", admin, "--log-json", "--log-level", "info"],
                    stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                )
            self.processes.append(process)

            def bound():
                if process.poll() is not None:
                    return "exited"
                for line in log_path.read_text().splitlines():
                    fields = json.loads(line).get("fields", {}) if line.startswith("{") else {}
                    if fields.get("message") == "listening for MQTT":
                        return fields["addr"]
                return None

            mqtt_addr = wait_for("the broker's MQTT listener", bound, interval=0.05)
            if mqtt_addr != "exited":
                break
        else:
            pytest.fail(f"broker did not start:\n{log_path.read_text()}")
        self.broker_log = log_path
        self.admin = admin
        self.mqtt_port = int(mqtt_addr.rsplit(":", 1)[1])
        wait_for("/readyz", lambda: http(f"http://{self.admin}/readyz")[0] == 200, interval=0.05)

    def metrics_text(self) -> str:
        status, body = http(f"http://{self.admin}/metrics")
        assert status == 200
        return body.decode()

    # prometheus -----------------------------------------------------------

    def start_prometheus(self) -> None:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{
                # A ServiceMonitor's job is its Service's name.
                "job_name": TARGET_LABELS["service"],
                "static_configs": [{"targets": [self.admin], "labels": TARGET_LABELS}],
            }],
        }
        config_file = self.tmp / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        for attempt in range(3):  # a free port can be taken before Prometheus binds it
            port = free_port()
            log = self.tmp / f"prometheus-{attempt}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [tool("prometheus"), f"--config.file={config_file}",
                     f"--storage.tsdb.path={self.tmp / f'tsdb-{attempt}'}",
                     f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            self.processes.append(process)
            url = f"http://127.0.0.1:{port}"

            def ready():
                if process.poll() is not None:
                    return "exited"
                return "ready" if http(f"{url}/-/ready", timeout=1)[0] == 200 else None

            if wait_for("Prometheus to be ready", ready, interval=0.1) == "ready":
                self.prometheus = url
                # Prometheus hands discovered targets to the scraper at most every
                # 5 s: wait for the first successful scrape, or the load would
                # end before any sample of it is stored.
                wait_for("the first scrape of the broker", lambda: any(
                    t["health"] == "up" for t in self.api("targets", state="active")["activeTargets"]))
                return
        pytest.fail(f"Prometheus did not start:\n{log.read_text()}")

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params, doseq=True)
        status, body = http(f"{self.prometheus}/api/v1/{path}?{query}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{path} {params}: {answer}"
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list:
        return self.api("query", query=expr, time=at if at is not None else time.time())["result"]

    # load -----------------------------------------------------------------

    def client(self, client_id: str, protocol: int) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        connected = threading.Event()
        client.on_connect = lambda c, u, flags, reason, props: connected.set()
        client.connect("127.0.0.1", self.mqtt_port, keepalive=30)
        client.loop_start()
        if not connected.wait(DEADLINE):
            pytest.fail(f"{client_id} did not connect")
        return client

    def refused_connect(self) -> None:
        """A CONNECT with protocol level 6: the broker refuses it (CONNACK 0x01)."""
        connect = bytes([0x10, 0x0C, 0x00, 0x04]) + b"MQTT" + bytes([0x06, 0x02, 0x00, 0x3C, 0x00, 0x00])
        with socket.create_connection(("127.0.0.1", self.mqtt_port), timeout=5) as s:
            s.sendall(connect)
            assert s.recv(4)[:2] == b"\x20\x02", "CONNACK"

    def run_load(self) -> None:
        received = {"v5": 0, "v311": 0}
        lock = threading.Lock()
        subscribers = []
        for name, protocol, qos in [("v5", mqtt.MQTTv5, 1), ("v311", mqtt.MQTTv311, 0)]:
            sub = self.client(f"obs-sub-{name}", protocol)
            subscribed = threading.Event()
            sub.on_subscribe = lambda *args, ev=subscribed: ev.set()

            def on_message(client, userdata, message, key=name):
                with lock:
                    received[key] += 1

            sub.on_message = on_message
            sub.subscribe("obs/#", qos=qos)
            if not subscribed.wait(DEADLINE):
                pytest.fail(f"subscriber {name} got no SUBACK")
            subscribers.append(sub)
        publishers = [self.client("obs-pub-v5", mqtt.MQTTv5), self.client("obs-pub-v311", mqtt.MQTTv311)]
        pending = []
        for tick in range(MESSAGES_PER_PUBLISHER):
            for i, pub in enumerate(publishers):
                pub.publish(f"obs/{i}/{tick}", b"x" * 64, qos=0)
                pending.append(pub.publish(f"obs/{i}/{tick}", b"y" * 64, qos=1))
                if tick % 5 == 0:
                    pub.publish("nobody/listens", b"z", qos=1)  # dropped: no_subscribers
            if tick == MESSAGES_PER_PUBLISHER // 2:
                self.refused_connect()
            time.sleep(TICK)
        for info in pending:
            info.wait_for_publish(timeout=DEADLINE)
        expected = 2 * len(publishers) * MESSAGES_PER_PUBLISHER
        wait_for("every message at both subscribers",
                 lambda: received["v5"] >= expected and received["v311"] >= expected)
        for client in publishers + subscribers:
            client.disconnect()
            client.loop_stop()

    def wait_for_final_scrape(self) -> None:
        """Waits until Prometheus holds the broker's final delivery count, and
        one more scrape after that."""
        def delivered(text: str) -> float:
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("ferrumq_messages_delivered_total{"))

        final = delivered(self.metrics_text())
        selector = ",".join(f'{k}="{v}"' for k, v in TARGET_LABELS.items())

        def scraped():
            result = self.query(f"sum(ferrumq_messages_delivered_total{{{selector}}})")
            return result and float(result[0]["value"][1]) == final

        wait_for("Prometheus to scrape the final counts", scraped)
        time.sleep(1.5)
        self.query_time = time.time()

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("observability"))
    try:
        stack.start_broker()
        stack.start_prometheus()
        stack.run_load()
        stack.wait_for_final_scrape()
        yield stack
    finally:
        stack.close()


# --- tests ------------------------------------------------------------------


def test_promtool_check_metrics_accepts_the_broker_exposition(stack):
    text = stack.metrics_text()
    assert "ferrumq_delivery_latency_seconds_count" in text
    count = re.search(r"^ferrumq_delivery_latency_seconds_count (\d+)", text, re.M)
    assert count and int(count.group(1)) > 0, "the load produced histogram samples"
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        f"promtool check metrics (exit {result.returncode}):\n{result.stdout}{result.stderr}")


def test_broker_dashboard_every_panel_returns_data(stack):
    """Every expression of every panel target, variables substituted, returns a
    non-empty result with at least one finite value at the end of the load,
    and every metric it names has series in Prometheus (exported by the broker,
    or Prometheus's own `up`), so an expression cannot hide a missing metric
    behind `or`."""
    dashboard = load_json(BROKER_DASHBOARD)
    exported = set(stack.api("label/__name__/values"))
    targets = list(panel_targets(dashboard))
    assert len(targets) >= 30, "the broker dashboard has its panels"
    failures = []
    for title, ref, expr in targets:
        promql = substitute(expr)
        missing = metric_names(promql) - exported
        if missing:
            failures.append(f"{title} [{ref}]: metrics not exported: {sorted(missing)}")
            continue
        result = stack.query(promql, at=stack.query_time)
        if not result:
            failures.append(f"{title} [{ref}]: empty result for {promql}")
        elif not any(math.isfinite(float(sample["value"][1])) for sample in result):
            failures.append(f"{title} [{ref}]: only NaN/Inf for {promql}: {result}")
    assert not failures, "\n".join(failures)


def test_broker_dashboard_variables_resolve_to_the_scraped_broker(stack):
    """The namespace and broker variables, resolved as Grafana would
    (label_values over the series API, then the variable's regex), offer the
    values the panel test substitutes."""
    dashboard = load_json(BROKER_DASHBOARD)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    resolved = {}
    for name in ("namespace", "broker"):
        variable = variables[name]
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
        assert match, f"{name}: {query}"
        selector, label = match.groups()
        selector = re.sub(r"\$(\w+)", lambda m: resolved.get(m.group(1), m.group(0)), selector)
        series = stack.api("series", **{"match[]": selector, "start": stack.query_time - 60,
                                        "end": stack.query_time})
        values = {s[label] for s in series if label in s}
        if variable.get("regex"):
            pattern = re.compile(variable["regex"].strip("/"))
            values = {m.group(1) for v in values if (m := pattern.search(v))}
        assert VARIABLES[name] in values, f"${name}: {values}"
        resolved[name] = VARIABLES[name]


@pytest.mark.parametrize("path", [BROKER_DASHBOARD, OPERATOR_DASHBOARD], ids=lambda p: p.stem)
def test_dashboard_structure(path):
    dashboard = load_json(path)
    assert dashboard["uid"] == path.stem
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "namespace" in variables
    if path == BROKER_DASHBOARD:
        assert variables["broker"]["regex"] == "/^(.+)-headless$/"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    occupied = set()
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel.get("description"), f"{panel['title']} explains itself"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["refId"] and target["expr"]
        # Substitution knows every variable the expressions use.
        for target in panel["targets"]:
            substitute(target["expr"])


def test_operator_dashboard_names_only_metrics_the_operator_registers():
    """No operator runs in this test (it needs a Kubernetes API server), so its
    dashboard's expressions cannot be evaluated. Instead every metric name they
    use must be one the operator's code registers: read from operator/src (the
    names passed to Opts/HistogramOpts/IntCounter::new..., with the registry's
    `ferrumq_operator` prefix and histogram suffixes)."""
    registered = operator_registered_metrics()
    assert "ferrumq_operator_reconciles_total" in registered, registered
    dashboard = load_json(OPERATOR_DASHBOARD)
    used = set()
    for title, ref, expr in panel_targets(dashboard):
        names = metric_names(substitute(expr))
        assert names, f"{title} [{ref}] names no metric"
        unknown = names - registered
        assert not unknown, f"{title} [{ref}]: not registered by the operator: {sorted(unknown)}"
        used |= names
    for base in ("reconciles_total", "reconcile_errors_total", "reconcile_duration_seconds_bucket"):
        assert f"ferrumq_operator_{base}" in used


def test_alert_rules_pass_promtool_check_and_unit_tests():
    check = subprocess.run([tool("promtool"), "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([tool("promtool"), "test", "rules", str(RULES_TEST)], capture_output=True,
                          text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    # Every alert has a unit test case.
    tested = {case["alertname"] for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    alerts = {name for name, _ in rule_exprs()}
    assert alerts == tested, f"alerts without unit tests: {alerts - tested}"
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]


def test_alert_rules_name_only_exported_or_registered_metrics(stack):
    exported = set(stack.api("label/__name__/values"))
    for alert, expr in rule_exprs("ferrumq-broker"):
        missing = metric_names(expr) - exported
        assert not missing, f"{alert}: not exported by the broker: {sorted(missing)}"
    registered = operator_registered_metrics()
    for alert, expr in rule_exprs("ferrumq-operator"):
        unknown = metric_names(expr) - registered
        assert not unknown, f"{alert}: not registered by the operator: {sorted(unknown)}"


def test_alert_rules_evaluate_in_prometheus_and_drain_goes_pending(stack):
    """Prometheus loaded every rule and evaluates it without error. A healthy
    broker raises nothing; once it drains (POST /drain), ferrumq_draining is 1
    and FerrumQDrainStuck goes pending."""
    expected = {name for name, _ in rule_exprs()}

    def evaluated():
        rules = [r for g in stack.api("rules")["groups"] for r in g["rules"]]
        done = [r for r in rules if r["health"] == "ok" and not r["lastEvaluation"].startswith("0001")]
        return rules if len(done) == len(expected) else None

    rules = wait_for("every rule to be evaluated", evaluated)
    assert {r["name"] for r in rules} == expected
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    assert stack.api("alerts")["alerts"] == [], "a healthy broker raises no alert"

    status, body = http(f"http://{stack.admin}/drain", data=b"", timeout=30)
    assert (status, body) == (200, b"drained\n")
    assert http(f"http://{stack.admin}/readyz") == (503, b"draining\n")

    def drain_pending():
        alerts = stack.api("alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "FerrumQDrainStuck"]

    (alert,) = wait_for("FerrumQDrainStuck to go pending", drain_pending)
    assert alert["state"] == "pending"
    assert {k: alert["labels"][k] for k in ("namespace", "service", "pod")} == {
        k: TARGET_LABELS[k] for k in ("namespace", "service", "pod")}

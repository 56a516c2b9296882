"""Interop with Eclipse Paho (paho-mqtt 2.x, callback API version 2): the ferrumq-broker binary
is started on a free loopback port and driven over MQTT 3.1.1 and 5.0 — pub/sub at each QoS,
retained messages, the Will on an abnormal close — then stopped with SIGTERM, after which it
must exit 0 within a few seconds.

The binary is FERRUMQ_BROKER_BIN (set by scripts/test) or target/debug/ferrumq-broker, built
with `cargo build -p ferrumq-broker` once per session if it is missing.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parents[2]
WAIT = 5.0
QUIET = 0.5
EXIT_WAIT = 5.0

PROTOCOLS = pytest.mark.parametrize(
    "protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqttv311", "mqttv5"]
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def broker_bin() -> Path:
    path = Path(os.environ.get("FERRUMQ_BROKER_BIN", ROOT / "target" / "debug" / "ferrumq-broker"))
    if not path.is_file():
        subprocess.run(["cargo", "build", "-p", "ferrumq-broker"], cwd=ROOT, check=True)
        path = ROOT / "target" / "debug" / "ferrumq-broker" if not path.is_file() else path
    assert path.is_file(), f"{path} missing after `cargo build -p ferrumq-broker`"
    return path


class Broker:
    """One ferrumq-broker process on a free port."""

    def __init__(self, binary: Path):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="ferrumq-broker-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{free_port()}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"broker exited with {self.process.returncode} at startup:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.process.kill()
                    pytest.fail(f"broker did not listen on {self.port}:\n{self.output()}")
                time.sleep(0.05)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def terminate(self) -> int:
        """SIGTERM, then the exit status (killing it and failing if it does not exit in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"broker still running {EXIT_WAIT}s after SIGTERM:\n{self.output()}")
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def broker(broker_bin: Path):
    b = Broker(broker_bin)
    yield b
    status = b.terminate()
    assert status == 0, f"broker exited {status} after SIGTERM:\n{b.output()}"
    os.unlink(b.log.name)


class Client:
    """A paho client with its network loop in a thread and received messages in a queue."""

    def __init__(self, broker: Broker, protocol: int, name: str, will: tuple | None = None):
        self.protocol = protocol
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.subscribed: queue.Queue[list] = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self.connect_rc = None
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subscribed.put(codes)
        self.client.on_disconnect = lambda _c, _u, _f, rc, _p: self.disconnects.put(rc)
        if will is not None:
            topic, payload, qos, retain = will
            self.client.will_set(topic, payload, qos=qos, retain=retain)
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "no CONNACK"
        assert not self.connect_rc.is_failure, f"CONNACK {self.connect_rc}"

    def _on_connect(self, _client, _userdata, _flags, reason_code, _properties):
        self.connect_rc = reason_code
        self.connected.set()

    def subscribe(self, topic: str, qos: int) -> None:
        self.client.subscribe(topic, qos)
        codes = self.subscribed.get(timeout=WAIT)
        assert [c.value for c in codes] == [qos], f"SUBACK {codes}"

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False, properties=None) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published(), f"publish to {topic} at QoS {qos} not completed"

    def receive(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT)

    def expect_nothing(self) -> None:
        with pytest.raises(queue.Empty):
            msg = self.messages.get(timeout=QUIET)
            pytest.fail(f"unexpected message on {msg.topic}: {msg.payload!r}")

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self) -> None:
        """Ends the connection without DISCONNECT, like a crashed client."""
        self.client.loop_stop()
        self.client.socket().close()


@PROTOCOLS
def test_pubsub_at_each_qos(broker, protocol):
    sub = Client(broker, protocol, "sub")
    pub = Client(broker, protocol, "pub")
    prefix = f"py/{protocol}/{uuid.uuid4().hex[:6]}"
    sub.subscribe(f"{prefix}/#", 2)
    for qos in (0, 1, 2):
        pub.publish(f"{prefix}/q{qos}", f"payload {qos}".encode(), qos)
        msg = sub.receive()
        assert (msg.topic, msg.payload, msg.qos, msg.retain) == (f"{prefix}/q{qos}", f"payload {qos}".encode(), qos, False)
    sub.expect_nothing()
    sub.disconnect()
    pub.disconnect()


@PROTOCOLS
def test_qos_downgraded_to_the_subscription(broker, protocol):
    sub = Client(broker, protocol, "sub")
    pub = Client(broker, protocol, "pub")
    topic = f"py/down/{uuid.uuid4().hex[:6]}"
    sub.subscribe(topic, 1)
    pub.publish(topic, b"two", 2)
    assert sub.receive().qos == 1
    sub.disconnect()
    pub.disconnect()


def test_across_versions(broker):
    v4 = Client(broker, mqtt.MQTTv311, "v4")
    v5 = Client(broker, mqtt.MQTTv5, "v5")
    tag = uuid.uuid4().hex[:6]
    v4.subscribe(f"x/{tag}/to4", 2)
    v5.subscribe(f"x/{tag}/to5", 2)
    for qos in (0, 1, 2):
        v4.publish(f"x/{tag}/to5", b"from 3.1.1", qos)
        assert (v5.receive().payload, qos) == (b"from 3.1.1", qos)
        v5.publish(f"x/{tag}/to4", b"from 5.0", qos)
        msg = v4.receive()
        assert (msg.payload, msg.qos) == (b"from 5.0", qos)
    v4.disconnect()
    v5.disconnect()


@PROTOCOLS
def test_retained(broker, protocol):
    topic = f"py/ret/{protocol}/{uuid.uuid4().hex[:6]}"
    pub = Client(broker, protocol, "pub")
    pub.publish(topic, b"kept", 1, retain=True)
    late = Client(broker, protocol, "late")
    late.subscribe(topic, 2)
    msg = late.receive()
    assert (msg.payload, msg.qos, msg.retain) == (b"kept", 1, True)
    # Live deliveries to an existing subscription have RETAIN 0.
    pub.publish(topic, b"live", 1, retain=True)
    msg = late.receive()
    assert (msg.payload, msg.retain) == (b"live", False)
    # An empty retained message deletes it.
    pub.publish(topic, b"", 1, retain=True)
    assert late.receive().payload == b""
    later = Client(broker, protocol, "later")
    later.subscribe(topic, 1)
    later.expect_nothing()
    for c in (pub, late, later):
        c.disconnect()


@PROTOCOLS
def test_will_on_abnormal_close(broker, protocol):
    topic = f"py/will/{protocol}/{uuid.uuid4().hex[:6]}"
    watcher = Client(broker, protocol, "watcher")
    watcher.subscribe(topic, 1)
    dying = Client(broker, protocol, "dying", will=(topic, b"died", 1, False))
    dying.drop()
    msg = watcher.receive()
    assert (msg.topic, msg.payload, msg.qos) == (topic, b"died", 1)
    # DISCONNECT discards the Will.
    polite = Client(broker, protocol, "polite", will=(topic, b"not sent", 1, False))
    polite.disconnect()
    watcher.expect_nothing()
    watcher.disconnect()


def test_v5_properties_pass_through(broker):
    topic = f"py/props/{uuid.uuid4().hex[:6]}"
    sub = Client(broker, mqtt.MQTTv5, "sub")
    pub = Client(broker, mqtt.MQTTv5, "pub")
    sub.subscribe(topic, 1)
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "text/plain"
    props.ResponseTopic = f"{topic}/reply"
    props.CorrelationData = b"\x01\x02"
    props.UserProperty = [("k", "v"), ("k", "w")]
    pub.publish(topic, b"with properties", 1, properties=props)
    got = sub.receive().properties
    assert got.ContentType == "text/plain"
    assert got.ResponseTopic == f"{topic}/reply"
    assert got.CorrelationData == b"\x01\x02"
    assert got.UserProperty == [("k", "v"), ("k", "w")]
    sub.disconnect()
    pub.disconnect()


def test_sigterm_disconnects_clients_and_exits_0(broker_bin):
    own = Broker(broker_bin)
    v4 = Client(own, mqtt.MQTTv311, "v4")
    v5 = Client(own, mqtt.MQTTv5, "v5")
    v5.subscribe("py/shutdown", 1)
    started = time.monotonic()
    status = own.terminate()
    assert status == 0, f"exit status {status}:\n{own.output()}"
    assert time.monotonic() - started < EXIT_WAIT
    # 5.0 clients are told why: DISCONNECT 0x8B Server shutting down.
    assert v5.disconnects.get(timeout=WAIT).value == 0x8B
    v4.disconnects.get(timeout=WAIT)
    for c in (v4, v5):
        c.client.loop_stop()
    os.unlink(own.log.name)

"""Interop with Eclipse Paho over WebSocket (`transport="websockets"`): the ferrumq-broker binary
with a `ws` listener (MQTT 5.0 chapter 6, subprotocol `mqtt`), driven over MQTT 3.1.1 and 5.0
at each QoS, including a message larger than the broker's read buffer.

The binary is FERRUMQ_BROKER_BIN (set by scripts/test) or target/debug/ferrumq-broker.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[2]
WAIT = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ws_port(tmp_path_factory):
    binary = Path(os.environ.get("FERRUMQ_BROKER_BIN", ROOT / "target" / "debug" / "ferrumq-broker"))
    if not binary.is_file():
        pytest.fail(f"broker binary {binary} not found: run `cargo build -p ferrumq-broker`")
    port = free_port()
    work = tmp_path_factory.mktemp("websocket")
    config = work / "ferrumq.yaml"
    config.write_text(
        "listeners:\n"
        f"  - {{name: ws, bind: '127.0.0.1:{port}', protocol: ws}}\n"
        f"admin: {{bind: '127.0.0.1:{free_port()}'}}\n"
    )
    log = open(work / "broker.log", "wb")
    process = subprocess.Popen([str(binary), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, (work / "broker.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the broker did not listen"
            time.sleep(0.05)
    yield port
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0, (work / "broker.log").read_text()
    log.close()


def ws_client(port: int, protocol: int, name: str) -> tuple[mqtt.Client, queue.Queue]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{name}-{uuid.uuid4().hex[:8]}",
        protocol=protocol,
        transport="websockets",
    )
    client.ws_set_options(path="/mqtt")
    messages: queue.Queue = queue.Queue()
    connected: queue.Queue = queue.Queue()
    client.on_message = lambda _c, _u, msg: messages.put(msg)
    client.on_connect = lambda _c, _u, _f, rc, _p: connected.put(rc)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    rc = connected.get(timeout=WAIT)
    assert not rc.is_failure, f"CONNACK {rc}"
    return client, messages


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqttv311", "mqttv5"])
def test_paho_pubsub_over_websocket(ws_port, protocol):
    sub, received = ws_client(ws_port, protocol, "ws-sub")
    subscribed: queue.Queue = queue.Queue()
    sub.on_subscribe = lambda _c, _u, _mid, codes, _p: subscribed.put(codes)
    sub.subscribe("paho/ws/#", qos=2)
    assert [c.value for c in subscribed.get(timeout=WAIT)] == [2]
    pub, _ = ws_client(ws_port, protocol, "ws-pub")
    sent = [(f"paho/ws/q{qos}", f"over websocket at QoS {qos}".encode(), qos) for qos in range(3)]
    sent.append(("paho/ws/large", bytes(range(256)) * 400, 1))  # 100 KiB: several reads
    for topic, payload, qos in sent:
        info = pub.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()
    got = [received.get(timeout=WAIT) for _ in sent]
    # Sorted: order is kept per topic and QoS [MQTT-4.6.0-6], not across them, and Paho hands
    # an incoming QoS 2 message over only at its PUBREL, after a later QoS 1 one may have come.
    assert sorted((m.topic, m.payload, m.qos) for m in got) == sorted(sent)
    assert received.empty(), "each message once"
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()

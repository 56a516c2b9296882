#!/usr/bin/env python3
"""Broker memory per idle TLS and WebSocket connection (plain TCP is loadgen's `storm`).

One run per transport, each against a fresh broker (release build) with an `mqtts` and a
`ws` listener on loopback: open N connections one after another (TLS handshake, or WebSocket
upgrade with subprotocol mqtt, then MQTT 3.1.1 CONNECT and its CONNACK), leave them idle for
3 s, and report (broker RSS after - RSS before) / N from /proc/PID/status, next to the live
heap per connection from the broker's counting allocator (ferrumq_heap_*_bytes_total).
One operation is one idle connection; nothing is sent after CONNACK.

    python3 benches/idle_memory_layered.py [N]       (default 2000; needs openssl and cargo)
"""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROKER = ROOT / "target" / "release" / "ferrumq-broker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(body)]) + body


def rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024


def live_heap(admin: str) -> int:
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    value = lambda name: float(re.search(rf"^{name} (\S+)", text, re.M).group(1))
    return int(value("ferrumq_heap_allocated_bytes_total") - value("ferrumq_heap_freed_bytes_total"))


def open_tls(port: int, context: ssl.SSLContext, i: int) -> socket.socket:
    s = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(connect_packet(f"tls-{i}"))
    assert s.recv(4)[:1] == b"\x20", "CONNACK"
    return s


def open_ws(port: int, i: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    packet, mask = connect_packet(f"ws-{i}"), os.urandom(4)
    s.sendall(bytes([0x82, 0x80 | len(packet)]) + mask + bytes(b ^ mask[j % 4] for j, b in enumerate(packet)))
    assert s.recv(6)[2:3] == b"\x20", "CONNACK in a binary frame"
    return s


def measure(kind: str, n: int, work: Path) -> tuple[int, int]:
    mqtts, ws, admin = free_port(), free_port(), f"127.0.0.1:{free_port()}"
    config = work / f"{kind}.yaml"
    config.write_text(
        "listeners:\n"
        f"  - {{name: mqtts, bind: '127.0.0.1:{mqtts}', protocol: mqtts,"
        f" tls: {{certFile: '{work}/tls.crt', keyFile: '{work}/tls.key'}}}}\n"
        f"  - {{name: ws, bind: '127.0.0.1:{ws}', protocol: ws}}\n"
        f"admin: {{bind: '{admin}'}}\n"
        "settings: {limits: {maxConnections: 100000}}\n"
        "log: {level: warn}\n")
    broker = subprocess.Popen([str(BROKER), "--config", str(config)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", ws), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(work / "tls.crt"))
        rss_before, heap_before = rss(broker.pid), live_heap(admin)
        sockets = [open_tls(mqtts, context, i) if kind == "tls" else open_ws(ws, i) for i in range(n)]
        time.sleep(3)
        result = ((rss(broker.pid) - rss_before) // n, (live_heap(admin) - heap_before) // n)
        for s in sockets:
            s.close()
        return result
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ferrumq-broker"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", work / "tls.key", "-out", work / "tls.crt", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                       check=True, capture_output=True)
        for kind in ("tls", "ws"):
            per_rss, per_heap = measure(kind, n, work)
            print(f"{kind}: {n} idle connections: {per_rss} B RSS and {per_heap} B live heap per connection")


if __name__ == "__main__":
    main()

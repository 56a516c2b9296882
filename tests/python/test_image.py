"""The broker and operator images, built FROM scratch and run with the local
Docker Engine.

scripts/build-image builds release binaries (a no-op when target/release is
fresh), stages them with the shared libraries they load and a passwd file,
and builds images/Dockerfile.scratch. These tests then run the images the
way Kubernetes runs the pods: read-only root filesystem, all capabilities
dropped, no privilege escalation, config mounted read-only, a data volume.

Traffic stays on this machine: the host talks to containers only through
ports published on 127.0.0.1, and the three-broker test uses an internal
Docker network (no route out) reached only from a probe container on it.

Docker is required: without it these tests fail (CI has Docker). Budget:
well under 3 minutes once the binaries exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAG = "test"
BROKER_IMAGE = f"ferrumq/ferrumq-broker:{TAG}"
OPERATOR_IMAGE = f"ferrumq/ferrumq-operator:{TAG}"
PROBE_IMAGE = f"ferrumq/test-probe:{TAG}"
NONROOT = 65532
GRACE_SECS = 5  # broker drain grace period in these tests
STOP_TIMEOUT = GRACE_SECS + 10  # docker stop -t: grace + margin, like the pod's terminationGracePeriodSeconds
PREFIX = f"ferrumq-test-{os.getpid()}"


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result


def require_docker() -> None:
    if shutil.which("docker") is None:
        pytest.fail("Docker is required for tests/python/test_image.py: the `docker` CLI is not installed")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    if info.returncode != 0:
        pytest.fail(
            "Docker is required for tests/python/test_image.py, but the Docker Engine does not answer "
            f"(`docker info`: {info.stderr.strip()[:300]}); start it (e.g. `service docker start`)"
        )


def newest_source_mtime() -> float:
    paths = [ROOT / "Cargo.toml", ROOT / "Cargo.lock"]
    for crate in ("broker", "operator"):
        paths.append(ROOT / crate / "Cargo.toml")
        paths.extend((ROOT / crate / "src").rglob("*"))
    return max(p.stat().st_mtime for p in paths if p.is_file())


def image_profile() -> str:
    """Which cargo profile's binaries go into the test images.

    FERRUMQ_IMAGE_PROFILE wins. Otherwise release when target/release holds
    binaries newer than every source file (a release build is minutes on 2
    cores, too long for the test step's budget), else debug: scripts/test has
    just built those, so cargo finds them fresh. Both are stripped of debug
    info; the figures in benches/RESULTS.md are from release images.
    """
    if os.environ.get("FERRUMQ_IMAGE_PROFILE"):
        return os.environ["FERRUMQ_IMAGE_PROFILE"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binaries = [target / "release" / b for b in ("ferrumq-broker", "ferrumq-operator")]
    if all(b.is_file() for b in binaries) and min(b.stat().st_mtime for b in binaries) > newest_source_mtime():
        return "release"
    return "debug"


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    require_docker()
    started = time.monotonic()
    profile = image_profile()
    # cargo runs first (a no-op when the binaries are fresh).
    # FERRUMQ_BUILD_IMAGE_ARGS adds options, e.g. "--no-cargo".
    extra = os.environ.get("FERRUMQ_BUILD_IMAGE_ARGS", "").split()
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-image"), "--tag", TAG, "--probe", "--profile", profile, *extra],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert build.returncode == 0, f"scripts/build-image failed:\n{build.stderr[-4000:]}"
    built = build.stdout.split()
    assert built == [BROKER_IMAGE, OPERATOR_IMAGE, PROBE_IMAGE], built
    print(f"images built from {profile} binaries in {time.monotonic() - started:.1f}s")
    yield {"broker": BROKER_IMAGE, "operator": OPERATOR_IMAGE, "probe": PROBE_IMAGE}


@pytest.fixture
def cleanup():
    """Names of containers, networks and volumes to remove after a test."""
    created: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": []}
    yield created
    if created["containers"]:
        docker("rm", "-f", *created["containers"], check=False)
    for network in created["networks"]:
        docker("network", "rm", network, check=False)
    if created["volumes"]:
        docker("volume", "rm", "-f", *created["volumes"], check=False)


# --- Dockerfile contract (no Docker needed) --------------------------------------------------


def dockerfile_stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage name, with line continuations joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            current = m.group(2) or m.group(1)
            parent = m.group(1)
            stages[current] = list(stages.get(parent, [])) if parent in stages else []
            continue
        if current is not None:  # ARGs before the first FROM are global
            stages[current].append((op, rest.strip()))
    return stages


def runtime_contract(stage: list[tuple[str, str]]) -> dict:
    out: dict = {"LABEL": set()}
    for op, rest in stage:
        if op == "LABEL":
            out["LABEL"] |= set(re.findall(r'([\w.]+)="', rest))
        elif op in ("USER", "STOPSIGNAL", "ENTRYPOINT", "CMD", "WORKDIR"):
            out[op] = rest
        elif op == "EXPOSE":
            out.setdefault("EXPOSE", set()).update(rest.split())
        elif op == "COPY" and re.search(r"\s/ferrumq-\w+$", rest):
            out["BINARY"] = rest.split()[-1]
    return out


def test_dockerfiles_agree_on_the_runtime_contract():
    multi = dockerfile_stages(ROOT / "Dockerfile")
    scratch = dockerfile_stages(ROOT / "images" / "Dockerfile.scratch")
    for target in ("broker", "operator"):
        a, b = runtime_contract(multi[target]), runtime_contract(scratch[target])
        assert a == b, f"Dockerfile and images/Dockerfile.scratch differ for {target}:\n{a}\n{b}"
        assert a["USER"] == f"{NONROOT}:{NONROOT}" and a["STOPSIGNAL"] == "SIGTERM"
        assert {"org.opencontainers.image.title", "org.opencontainers.image.version",
                "org.opencontainers.image.source", "org.opencontainers.image.licenses"} <= a["LABEL"]
    broker = runtime_contract(multi["broker"])
    assert broker["ENTRYPOINT"] == '["/ferrumq-broker"]' and broker["EXPOSE"] == {"1883/tcp", "9464/tcp"}
    assert runtime_contract(multi["operator"])["EXPOSE"] == {"8080/tcp"}
    assert "distroless/cc-debian12:nonroot" in (ROOT / "Dockerfile").read_text()


def test_images_match_what_the_operator_expects():
    """The operator's pod spec assumes the broker binary's path, the admin
    port and the non-root uid; the images must provide exactly those."""
    layout = (ROOT / "operator" / "src" / "plan" / "layout.rs").read_text()
    binary = re.search(r'BROKER_BINARY:\s*&str\s*=\s*"([^"]+)"', layout).group(1)
    sts = (ROOT / "operator" / "src" / "builders" / "statefulset.rs").read_text()
    uid = int(re.search(r"NON_ROOT_ID:\s*i64\s*=\s*(\d+)", sts).group(1))
    config = (ROOT / "broker" / "src" / "config" / "mod.rs").read_text()
    admin_port = re.search(r"DEFAULT_ADMIN_PORT:\s*u16\s*=\s*(\d+)", config).group(1)
    main = (ROOT / "operator" / "src" / "main.rs").read_text()
    http_port = re.search(r'default_value = "0\.0\.0\.0:(\d+)"', main)
    for path in (ROOT / "Dockerfile", ROOT / "images" / "Dockerfile.scratch"):
        broker = runtime_contract(dockerfile_stages(path)["broker"])
        operator = runtime_contract(dockerfile_stages(path)["operator"])
        assert broker["BINARY"] == binary, f"{path.name}: the operator runs {binary}"
        assert broker["USER"] == f"{uid}:{uid}"
        assert f"{admin_port}/tcp" in broker["EXPOSE"]
        if http_port:
            assert f"{http_port.group(1)}/tcp" in operator["EXPOSE"]


# --- the images ------------------------------------------------------------------------------------


def inspect(image: str) -> dict:
    return json.loads(docker("image", "inspect", image).stdout)[0]


def test_image_configuration(images):
    for name, image in (("broker", images["broker"]), ("operator", images["operator"])):
        config = inspect(image)["Config"]
        assert config["User"] == f"{NONROOT}:{NONROOT}", name
        assert config["StopSignal"] == "SIGTERM", name
        assert config["Entrypoint"] == [f"/ferrumq-{name}"], name
        assert config["Labels"]["org.opencontainers.image.title"] == f"ferrumq-{name}"
    assert set(inspect(images["broker"])["Config"]["ExposedPorts"]) == {"1883/tcp", "9464/tcp"}


def image_files(image: str) -> set[str]:
    container = docker("create", image).stdout.strip()
    try:
        listing = subprocess.run(
            f"docker export {container} | tar -t", shell=True, capture_output=True, text=True, timeout=60, check=True
        ).stdout
    finally:
        docker("rm", container, check=False)
    return {line.rstrip("/") for line in listing.splitlines()}


def test_image_has_no_shell_and_only_what_it_needs(images):
    files = image_files(images["broker"])
    assert "ferrumq-broker" in files and "ferrumq-operator" not in files
    for shell in ("bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"):
        assert shell not in files, f"{shell} in the broker image"
    assert "etc/passwd" in files and "lib64/ld-linux-x86-64.so.2" in files
    assert any(f.endswith("libc.so.6") for f in files)


def test_operator_image_prints_the_crd(images):
    """The operator binary in the image runs (libraries, loader, user) and
    generates the same CRD as the repository's."""
    result = docker("run", "--rm", "--read-only", "--cap-drop", "ALL", images["operator"], "crd")
    assert result.stdout == (ROOT / "crds" / "mqttbroker.yaml").read_text()
    version = docker("run", "--rm", images["operator"], "--version").stdout
    assert version.startswith("ferrumq-operator ")


# --- running the broker ---------------------------------------------------------------------------


def host_port(container: str, port: int) -> int:
    out = docker("port", container, f"{port}/tcp").stdout.strip().splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def wait_ready(url: str, timeout: float = 20) -> float:
    """Polls until `url` answers 200; returns when it did (monotonic)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = e
        time.sleep(0.01)
    raise AssertionError(f"{url} not ready after {timeout}s: {last}")


def broker_config(grace: int = GRACE_SECS) -> str:
    return (
        "listeners:\n- name: mqtt\n  bind: 0.0.0.0:1883\n  protocol: mqtt\n"
        "admin:\n  bind: 0.0.0.0:9464\n"
        f"settings:\n  shutdown:\n    gracePeriodSecs: {grace}\n"
        "log:\n  level: info\n"
    )


def k8s_like_run_args(name: str, config_dir: Path) -> list[str]:
    """`docker run` flags mirroring the operator's pod spec."""
    return [
        "--name", name,
        "--read-only",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--tmpfs", "/tmp",
        "-v", f"{config_dir}:/etc/ferrumq/config:ro",
        "-e", f"POD_NAME={name}",
    ]


def mqtt5_connect(port: int, client_id: str) -> socket.socket:
    """A raw MQTT 5.0 client: CONNECT, then expect CONNACK success."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    cid = client_id.encode()
    variable = b"\x00\x04MQTT\x05\x02\x00\x3c\x00"  # v5, clean start, keep alive 60, no properties
    payload = struct.pack("!H", len(cid)) + cid
    body = variable + payload
    sock.sendall(bytes([0x10, len(body)]) + body)
    packet_type, data = read_packet(sock)
    assert packet_type == 0x20 and data[1] == 0x00, f"CONNACK expected, got {packet_type:#x} {data!r}"
    return sock


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    first = read_exact(sock, 1)[0]
    length, shift = 0, 0
    while True:
        byte = read_exact(sock, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first & 0xF0, read_exact(sock, length)


def mosquitto(tool: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
    path = shutil.which(tool) or f"/usr/bin/{tool}"
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_broker_container(images, cleanup, tmp_path):
    """Start-up to /readyz, publish/subscribe with the mosquitto clients over
    3.1.1 and 5.0, non-root, and a clean `docker stop`: 5.0 clients get
    DISCONNECT 0x8B (server shutting down) and the process exits 0 within
    the grace period."""
    (tmp_path / "ferrumq.yaml").write_text(broker_config())
    tmp_path.chmod(0o755)
    (tmp_path / "ferrumq.yaml").chmod(0o644)
    name = f"{PREFIX}-single"
    cleanup["containers"].append(name)
    started = time.monotonic()
    docker(
        "run", "-d",
        *k8s_like_run_args(name, tmp_path),
        "-p", "127.0.0.1::1883", "-p", "127.0.0.1::9464",
        images["broker"],
        "--config", "/etc/ferrumq/config/ferrumq.yaml",
    )
    admin = host_port(name, 9464)
    ready_at = wait_ready(f"http://127.0.0.1:{admin}/readyz")
    startup = ready_at - started
    mqtt = host_port(name, 1883)
    print(f"broker container: docker run -> /readyz 200 in {startup * 1000:.0f} ms")
    assert startup < 10, f"start-up took {startup:.1f}s"

    # Runs as the non-root user: the process's real uid, seen from the host.
    state = json.loads(docker("inspect", name).stdout)[0]["State"]
    status = Path(f"/proc/{state['Pid']}/status").read_text()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M).groups()
    assert uids == (str(NONROOT), str(NONROOT)), f"broker runs as uid {uids}"
    assert re.search(r"^CapEff:\s+0+$", status, re.M), "no capabilities"

    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
        assert b"ferrumq_" in r.read()

    # Publish and subscribe with the mosquitto tools, both protocol versions.
    for version in ("mqttv311", "mqttv5"):
        topic = f"image/{version}"
        sub = subprocess.Popen(
            [shutil.which("mosquitto_sub") or "mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt),
             "-V", version, "-t", topic, "-C", "1", "-W", "15", "-q", "1", "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 10
            received = ""
            while time.monotonic() < deadline and sub.poll() is None:
                pub = mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt), "-V", version,
                                "-t", topic, "-m", f"hello {version}", "-q", "1")
                assert pub.returncode == 0, pub.stderr
                try:
                    received, err = sub.communicate(timeout=0.5)
                except subprocess.TimeoutExpired:
                    continue
            assert received.strip() == f"{topic} hello {version}", (received, sub.stderr.read() if sub.stderr else "")
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()

    # docker stop: SIGTERM, drain, exit.
    v5 = mqtt5_connect(mqtt, "image-v5-client")
    v5.settimeout(STOP_TIMEOUT + 5)
    stop_started = time.monotonic()
    stopper = subprocess.Popen(["docker", "stop", "-t", str(STOP_TIMEOUT), name],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    packet_type, data = read_packet(v5)
    told_at = time.monotonic() - stop_started
    assert packet_type == 0xE0, f"expected DISCONNECT, got {packet_type:#x}"
    assert data[0] == 0x8B, f"DISCONNECT reason {data[0]:#x}, want 0x8B (server shutting down)"
    v5.close()
    stopper.communicate(timeout=STOP_TIMEOUT + 30)
    stopped_in = time.monotonic() - stop_started
    state = json.loads(docker("inspect", name).stdout)[0]["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} (137 = killed after the grace period)"
    assert stopped_in < GRACE_SECS + 2, f"docker stop took {stopped_in:.1f}s (grace {GRACE_SECS}s)"
    print(f"broker container: DISCONNECT 0x8B after {told_at * 1000:.0f} ms, exited 0 after {stopped_in:.2f}s")
    logs = docker("logs", name).stderr + docker("logs", name).stdout
    assert "shutting down" in logs
    figures = {
        "profile": image_profile(),
        "image": images["broker"],
        "image_size_bytes": inspect(images["broker"])["Size"],
        "operator_image_size_bytes": inspect(images["operator"])["Size"],
        "startup_to_readyz_ms": round(startup * 1000),
        "stop_seconds": round(stopped_in, 3),
    }
    out = ROOT / "target" / "image-figures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")


def probe(images: dict, network: str, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return docker("run", "--rm", "--network", network, "--read-only", "--cap-drop", "ALL",
                  "--entrypoint", args[0], images["probe"], *args[1:], timeout=timeout, check=False)


def test_three_brokers_on_a_private_network(images, cleanup, tmp_path):
    """Three brokers as a StatefulSet runs them: stable names
    <name>-<ordinal> resolvable as <name>-<ordinal>.<name>-headless on a
    private network, the same read-only config, a volume each. Each starts
    and answers MQTT by its stable name. The base for clustering tests."""
    (tmp_path / "ferrumq.yaml").write_text(broker_config())
    tmp_path.chmod(0o755)
    (tmp_path / "ferrumq.yaml").chmod(0o644)
    network = f"{PREFIX}-net"
    cleanup["networks"].append(network)
    docker("network", "create", "--internal", "--driver", "bridge", network)
    names = [f"ferrumq-{i}" for i in range(3)]
    containers = [f"{PREFIX}-{n}" for n in names]
    cleanup["containers"].extend(containers)
    for pod, container in zip(names, containers):
        volume = f"{container}-data"
        cleanup["volumes"].append(volume)
        docker(
            "run", "-d",
            *k8s_like_run_args(container, tmp_path),
            "--hostname", pod,
            "--network", network,
            "--network-alias", pod,
            "--network-alias", f"{pod}.ferrumq-headless",
            "-v", f"{volume}:/var/lib/ferrumq",
            images["broker"],
            "--config", "/etc/ferrumq/config/ferrumq.yaml",
        )

    for pod, container in zip(names, containers):
        host = f"{pod}.ferrumq-headless"
        # Retained message first, then a subscriber must receive it: proves
        # name resolution, the listener and the broker's routing.
        deadline = time.monotonic() + 30
        while True:
            pub = probe(images, network, "/usr/bin/mosquitto_pub", "-h", host, "-V", "mqttv5",
                        "-t", f"cluster/{pod}", "-m", f"hello {pod}", "-r", "-q", "1")
            if pub.returncode == 0:
                break
            assert time.monotonic() < deadline, f"{host} never accepted a publish: {pub.stderr}"
            time.sleep(0.2)
        sub = probe(images, network, "/usr/bin/mosquitto_sub", "-h", host, "-V", "mqttv311",
                    "-t", f"cluster/{pod}", "-C", "1", "-W", "10", "-v")
        assert sub.stdout.strip() == f"cluster/{pod} hello {pod}", (sub.stdout, sub.stderr)
        state = json.loads(docker("inspect", container).stdout)[0]
        assert state["State"]["Running"] and state["Config"]["Hostname"] == pod
        mounts = {m["Destination"]: m for m in state["Mounts"]}
        assert mounts["/etc/ferrumq/config"]["RW"] is False and mounts["/var/lib/ferrumq"]["RW"] is True

    # Brokers are isolated: a retained message on one is not on another
    # (no clustering yet; clustering tests will flip this).
    other = probe(images, network, "/usr/bin/mosquitto_sub", "-h", "ferrumq-1.ferrumq-headless",
                  "-t", "cluster/ferrumq-0", "-C", "1", "-W", "2")
    assert other.stdout.strip() == ""

    # All three stop cleanly together (a StatefulSet scaled to zero).
    stop = docker("stop", "-t", str(STOP_TIMEOUT), *containers, timeout=STOP_TIMEOUT + 30)
    assert stop.returncode == 0
    for container in containers:
        assert json.loads(docker("inspect", container).stdout)[0]["State"]["ExitCode"] == 0

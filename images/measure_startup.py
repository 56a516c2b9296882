#!/usr/bin/env python3
"""Image size and start-up time of the FerrumQ broker image, for benches/RESULTS.md.

    scripts/build-image                      # builds ferrumq/ferrumq-broker:dev
    python3 images/measure_startup.py [--image ferrumq/ferrumq-broker:dev] [--runs 10]

Start-up time is wall time from invoking `docker run -d` to the first 200
from /readyz on the published admin port (polled every 5 ms over loopback),
so it includes Docker's container creation, not only the broker. Each
container runs as in Kubernetes (read-only root, no capabilities) and is
removed afterwards. Prints size, min/median/max start-up, and the time
`docker stop` needs with no clients connected.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import urllib.error
import urllib.request


def docker(*args: str, timeout: float = 60) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="ferrumq/ferrumq-broker:dev")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    size = json.loads(docker("image", "inspect", args.image))[0]["Size"]
    startups, stops = [], []
    for i in range(args.runs):
        name = f"ferrumq-measure-{i}"
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        started = time.monotonic()
        docker("run", "-d", "--name", name, "--read-only", "--cap-drop", "ALL", "--tmpfs", "/tmp",
               "-p", "127.0.0.1::9464", args.image)
        try:
            port = docker("port", name, "9464/tcp").split()[0].rsplit(":", 1)[1]
            url = f"http://127.0.0.1:{port}/readyz"
            deadline = started + 30
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{url} not ready after 30 s")
                time.sleep(0.005)
            startups.append(time.monotonic() - started)
            stop_started = time.monotonic()
            docker("stop", "-t", "30", name)
            stops.append(time.monotonic() - stop_started)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)

    ms = sorted(s * 1000 for s in startups)
    print(f"image {args.image}: {size} bytes ({size / 1e6:.1f} MB)")
    print(f"docker run -> /readyz 200 over {args.runs} runs: min {ms[0]:.0f} ms, "
          f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms")
    print(f"docker stop (no clients): median {statistics.median(stops) * 1000:.0f} ms")


if __name__ == "__main__":
    main()

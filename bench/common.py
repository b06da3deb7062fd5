"""Shared helpers for the benchmarks: results files, percentiles, service processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    return path


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_infra() -> None:
    subprocess.run([sys.executable, str(REPO_ROOT / "deploy/local/infra.py"), "up"], check=True)


def _address(which: str) -> str:
    from yuqing.settings import ElasticsearchSettings, KafkaSettings

    if which == "kafka":
        return KafkaSettings().servers()[0]
    return ElasticsearchSettings().url.split("://", 1)[-1].rstrip("/")


@contextmanager
def local_servers(*which: str) -> Iterator[None]:
    """The local ``kafka``/``es`` servers for a benchmark, as the test session has them.

    A server that does not answer is started (``deploy/local/infra.py up``)
    and stopped again afterwards unless ``YUQING_KEEP_INFRA=1``; one that
    answers is used as it is. A start that fails ends the benchmark with
    the launcher's own message instead of connection errors.
    """
    from yuqing.settings import reachable

    script = str(REPO_ROOT / "deploy" / "local" / "infra.py")
    started = [name for name in which if not reachable(_address(name))]
    for name in started:
        print(f"[bench] {name} is not running; starting it", flush=True)
        if subprocess.run([sys.executable, script, "up", name], check=False).returncode != 0:
            raise SystemExit(f"[bench] could not start {name}; see the lines above")
    try:
        yield
    finally:
        if os.environ.get("YUQING_KEEP_INFRA") != "1":
            for name in started:
                subprocess.run([sys.executable, script, "down", name], check=False)


def start_service(args: list[str], env: dict[str, str], health_url: str,
                  log: Path, timeout: float = 120) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", *args], env={**os.environ, **env},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(health_url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{args} not healthy in {timeout}s")

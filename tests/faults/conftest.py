"""Fault-injection suite: real services, real Kafka and Elasticsearch, processes killed on purpose.

Slow and disruptive (it stops the shared local Kafka and Elasticsearch for up to
30 s), so it only runs with ``-m faults`` or ``YUQING_FAULTS=1``; otherwise every
test here is skipped and ``make test`` stays fast.

Knobs: ``YUQING_FAULTS_POSTS`` (posts streamed by the kill test), ``YUQING_FAULTS_RATE``
(posts per second offered), ``YUQING_FAULTS_KILLS`` (SIGKILLs), ``YUQING_FAULTS_SEED``,
``YUQING_FAULTS_OUTAGE_S`` (Kafka/Elasticsearch outage length); for the load run
``YUQING_LOAD_SECONDS`` (600), ``YUQING_LOAD_RATE`` (posts per second offered, 60)
and ``YUQING_LOAD_BATCH`` (posts per request, 10).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import INFRA
from tests.integration.conftest import Pipeline, pipeline
from yuqing.settings import ElasticsearchSettings, KafkaSettings, reachable

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault-injection tests (make test-faults)")


def _enabled(config: pytest.Config) -> bool:
    return os.environ.get("YUQING_FAULTS") == "1" or "faults" in (config.getoption("markexpr") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _enabled(config):
        return
    skip = pytest.mark.skip(reason="fault suite: run with -m faults or YUQING_FAULTS=1")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _wait_reachable(which: str, timeout: float, output: str) -> None:
    address = KafkaSettings().servers()[0] if which == "kafka" else (
        ElasticsearchSettings().url.split("://", 1)[-1].rstrip("/"))
    deadline = time.monotonic() + timeout
    while not reachable(address):
        if time.monotonic() > deadline:
            raise RuntimeError(f"could not bring {which} back up:\n{output[-3000:]}")
        time.sleep(1)


@contextmanager
def outage(which: str, seconds: float) -> Iterator[dict[str, float]]:
    """Stop the local ``kafka`` or ``es`` server, and always start it again."""
    times: dict[str, float] = {}
    started = time.monotonic()
    subprocess.run([*INFRA, "down", which], check=True, capture_output=True)
    times["down_s"] = time.monotonic() - started
    try:
        yield times
        remaining = seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
    finally:
        back = time.monotonic()
        done = subprocess.run([*INFRA, "up", which], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            # Another test run may have started it at the same moment; accept it once it answers.
            _wait_reachable(which, 60, done.stdout + done.stderr)
        times["up_s"] = time.monotonic() - back
        times["outage_s"] = time.monotonic() - started


__all__ = ["Pipeline", "env_int", "outage", "pipeline"]

"""``yuqing run``: the whole pipeline on one machine, under one supervisor process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.demo.stream import demo_environment, replay_demo, start_demo_forum
from yuqing.settings import EXIT_RESTART, cache_home

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]
    health_url: str


SERVICES = (
    Service("ingest", ("ingest", "serve"), "http://127.0.0.1:8001/healthz"),
    Service("nlp", ("nlp", "worker"), "http://127.0.0.1:9102/metrics"),
    Service("alerts", ("alerts", "worker"), "http://127.0.0.1:9103/metrics"),
    Service("indexer", ("search", "indexer"), "http://127.0.0.1:9104/metrics"),
    Service("search", ("search", "serve"), "http://127.0.0.1:8003/healthz"),
)


def _watch(procs: dict[str, subprocess.Popen[bytes]], env: dict[str, str], logs: Path) -> list[str]:
    """Until a service exits for good: restart those that ask for it (EXIT_RESTART)."""
    by_name = {service.name: service for service in SERVICES}
    while True:
        time.sleep(1)
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
        if any(procs[name].returncode != EXIT_RESTART for name in dead):
            return dead
        for name in dead:
            _say(f"{name} asked to be restarted; restarting")
            procs[name] = _start(by_name[name], env, logs)


def _say(message: str) -> None:
    print(f"[yuqing] {message}", flush=True)


def _infra(action: str) -> int:
    return subprocess.call([sys.executable, str(REPO_ROOT / "deploy/local/infra.py"), action])


def _wait_healthy(service: Service, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {proc.returncode}")
        try:
            if httpx.get(service.health_url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{service.name} not healthy after {timeout:.0f}s ({service.health_url})")


def _start(service: Service, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{service.name}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "yuqing.cli", *service.args], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def run(*, demo: bool = True) -> int:
    if _infra("up") != 0:
        return 1
    env = dict(os.environ)
    env.update(demo_environment(env))
    # Local demo only: the search API answers without a key, as a responder.
    env.setdefault("YUQING_SEARCH_ANONYMOUS_ROLE", "responder")
    logs = cache_home() / "run" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    subprocess.check_call([sys.executable, "-m", "yuqing.cli", "topics"], env=env, cwd=REPO_ROOT)
    if demo:  # 14 days of past posts first, so that alerts start with baselines (docs/alerts.md)
        past = cache_home() / "run" / "demo-history.jsonl"
        for command in (["services.demo.history", str(past)],
                        ["yuqing.cli", "alerts", "warm", "--since", "14d", "--posts", str(past)]):
            subprocess.check_call([sys.executable, "-m", *command], env=env, cwd=REPO_ROOT)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    forum = start_demo_forum() if demo else None  # before the services, so the poller finds it
    try:
        for service in SERVICES:
            procs[service.name] = _start(service, env, logs)
        for service in SERVICES:
            _wait_healthy(service, procs[service.name], timeout=180)
            _say(f"{service.name} up")
        if demo:
            report = replay_demo("http://127.0.0.1:8001", env, forum=forum)
            _say(f"demo stream: {report}")
        _say("search:  http://127.0.0.1:8003/v1/posts/search?q=停电")
        _say("API docs: http://127.0.0.1:8001/docs  http://127.0.0.1:8003/docs")
        _say("metrics: :8001/metrics :9102 (nlp) :9103 (alerts) :9104 (indexer) :8003/metrics")
        _say(f"logs:    {logs}  — Ctrl-C stops everything")
        dead = _watch(procs, env, logs)
        _say(f"service exited: {', '.join(dead)}; see {logs}")
        return 1
    except KeyboardInterrupt:
        _say("stopping")
        return 0
    except RuntimeError as exc:
        _say(f"error: {exc}; see {logs}")
        return 1
    except (httpx.HTTPError, TimeoutError) as exc:
        _say(f"demo replay failed: {exc}; see {logs}")
        return 1
    finally:
        _stop(procs)
        if forum is not None:
            forum.close()
        if os.environ.get("YUQING_KEEP_INFRA") != "1":
            _infra("down")

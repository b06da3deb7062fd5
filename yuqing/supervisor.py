"""``yuqing run``: the whole pipeline on one machine, under one supervisor process.

The services run in their own process group, so Ctrl-C in the terminal
reaches only the supervisor, which then stops every service (SIGTERM, then
SIGKILL after a grace period), the demo forum and the local servers if it
started them (servers already running are left running), prints
one summary line and exits 0. A service that exits with 75 is restarted
(it stopped uncommitted on purpose); any other exit stops the run with 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import httpx

from services.demo.stream import demo_environment, replay_demo, start_demo_forum
from yuqing.paths import project_paths
from yuqing.settings import EXIT_RESTART, cache_home

STOP_GRACE_S = 20.0


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]
    port_variable: str
    default_port: int
    health_path: str

    def health_url(self, env: Mapping[str, str]) -> str:
        return f"http://127.0.0.1:{env.get(self.port_variable, self.default_port)}{self.health_path}"


SERVICES = (
    Service("ingest", ("ingest", "serve"), "YUQING_INGEST_PORT", 8001, "/healthz"),
    Service("nlp", ("nlp", "worker"), "YUQING_NLP_METRICS_PORT", 9102, "/metrics"),
    Service("alerts", ("alerts", "worker"), "YUQING_ALERTS_METRICS_PORT", 9103, "/metrics"),
    Service("indexer", ("search", "indexer"), "YUQING_SEARCH_INDEXER_METRICS_PORT", 9104, "/metrics"),
    Service("search", ("search", "serve"), "YUQING_SEARCH_PORT", 8003, "/healthz"),
)


class StopRequested(Exception):
    """Ctrl-C or SIGTERM reached the supervisor."""


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


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


def _infra(action: str, *, quiet: bool = False) -> int:
    output = subprocess.DEVNULL if quiet else None
    return subprocess.call([sys.executable, str(project_paths().infra_script), action],
                           stdout=output, stderr=output)


def _wait_healthy(service: Service, proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{service.name} not healthy after {timeout:.0f}s ({url})")


def _start(service: Service, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{service.name}.log").open("ab")
    # A session of its own: the terminal's Ctrl-C goes to the supervisor only, which stops
    # the services in order instead of each dying on its own and being reported as a failure.
    return subprocess.Popen([sys.executable, "-m", "yuqing.cli", *service.args], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=project_paths().root,
                            start_new_session=True)


def stop_all(procs: Mapping[str, subprocess.Popen[bytes]], grace_s: float = STOP_GRACE_S) -> list[str]:
    """SIGTERM every running service, SIGKILL those still running after ``grace_s``; the killed."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    killed = []
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            killed.append(name)
    return killed


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(demo_environment(env))
    # Local demo only: the search API answers without a key, as a responder.
    env.setdefault("YUQING_SEARCH_ANONYMOUS_ROLE", "responder")
    return env


def example_search_url(base: str) -> str:
    """A search for 停电, percent-encoded: the server refuses raw UTF-8 in a request line (400),
    so the URL works pasted into curl as well as into a browser."""
    return f"{base}/v1/posts/search?q={quote('停电')}"


def _serve(procs: dict[str, subprocess.Popen[bytes]], env: dict[str, str], logs: Path,
           demo: bool, forum: Any) -> list[str]:
    """Start every service, replay the demo, and watch until one exits for good."""
    for service in SERVICES:
        procs[service.name] = _start(service, env, logs)
    for service in SERVICES:
        _wait_healthy(service, procs[service.name], service.health_url(env), timeout=180)
        _say(f"{service.name} up")
    if demo:
        report = replay_demo(SERVICES[0].health_url(env).removesuffix("/healthz"), env, forum=forum)
        _say(f"demo stream: {report}")
    search = SERVICES[-1].health_url(env).removesuffix("/healthz")
    _say(f"search:  {example_search_url(search)}")
    _say(f"API docs: {SERVICES[0].health_url(env).removesuffix('/healthz')}/docs  {search}/docs")
    _say("metrics: " + "  ".join(f"{s.name} {s.health_url(env).removesuffix('/healthz')}"
                                  for s in SERVICES if s.health_path == "/metrics"))
    _say(f"logs:    {logs}  — Ctrl-C stops everything")
    return _watch(procs, env, logs)


@contextmanager
def foreground_job() -> Iterator[None]:
    """Make this process the terminal's foreground job while it runs, as a shell does for a job.

    Then Ctrl-C reaches the supervisor alone, not ``make`` around it: make
    would otherwise stop on the interrupt itself and report the target as
    failed whatever the supervisor's exit status. Nothing changes when there
    is no terminal, or this process cannot take it over.
    """
    try:
        terminal = sys.stdin.fileno()
        previous = os.tcgetpgrp(terminal)
    except (OSError, ValueError):
        yield
        return
    # Taking and giving back the terminal from a background group raises SIGTTOU otherwise.
    hangup = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    taken = False
    try:
        os.setpgid(0, 0)
        os.tcsetpgrp(terminal, os.getpgrp())
        taken = True
    except OSError:
        pass
    try:
        yield
    finally:
        if taken:
            with suppress(OSError):
                os.tcsetpgrp(terminal, previous)
        signal.signal(signal.SIGTTOU, hangup)


def run(*, demo: bool = True, logs: Path | None = None) -> int:
    """The whole pipeline until Ctrl-C (exit 0) or a service fails (exit 1)."""
    with foreground_job():
        return _run(demo=demo, logs=logs)


def _run(*, demo: bool, logs: Path | None) -> int:
    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = logs or cache_home() / "run" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    forum = None
    status, outcome = 1, "stopped"
    # servers that answered before the run are someone else's (make infra-up, a test session): left up
    started_servers = _infra("status", quiet=True) != 0
    try:
        if _infra("up") != 0:
            outcome = "the local servers did not start"
            return 1
        env = _environment()
        subprocess.check_call([sys.executable, "-m", "yuqing.cli", "topics"], env=env,
                              cwd=project_paths().root)
        if demo:  # 14 days of past posts first, so that alerts start with baselines (docs/alerts.md)
            past = cache_home() / "run" / "demo-history.jsonl"
            for command in (["services.demo.history", str(past)],
                            ["yuqing.cli", "alerts", "warm", "--since", "14d", "--posts", str(past)]):
                subprocess.check_call([sys.executable, "-m", *command], env=env, cwd=project_paths().root)
        forum = start_demo_forum() if demo else None  # before the services, so the poller finds it
        dead = _serve(procs, env, logs, demo, forum)
        outcome = f"service exited: {', '.join(dead)}; see {logs}"
    except StopRequested:
        status, outcome = 0, "stopped on request"
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        outcome = f"error: {exc}; see {logs}"
    except (httpx.HTTPError, TimeoutError) as exc:
        outcome = f"demo replay failed: {exc}; see {logs}"
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        _say(_shut_down(procs, forum, outcome, stop_servers=started_servers))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _shut_down(procs: dict[str, subprocess.Popen[bytes]], forum: Any, outcome: str, *,
               stop_servers: bool) -> str:
    """Stop everything this run started; the one summary line."""
    started = time.monotonic()
    killed = stop_all(procs)
    if forum is not None:
        forum.close()
    servers = "local servers left running"
    if stop_servers and os.environ.get("YUQING_KEEP_INFRA") != "1":
        servers = "local servers stopped" if _infra("down", quiet=True) == 0 else "local servers: stop failed"
    forced = f", {len(killed)} killed after {STOP_GRACE_S:.0f}s ({', '.join(killed)})" if killed else ""
    return (f"{outcome}: {len(procs)} services stopped{forced}, {servers} "
            f"in {time.monotonic() - started:.1f}s")

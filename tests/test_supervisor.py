"""`yuqing run`: restarts a service that asks for it (exit 75), stops on any other exit, and
stops everything cleanly on Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import REPO_ROOT, drop_topics, free_port, unique
from yuqing import supervisor
from yuqing.settings import EXIT_RESTART, ElasticsearchSettings, KafkaSettings, reachable


def _exits_with(code: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({code})"])


def test_a_service_exiting_with_75_is_restarted_and_any_other_exit_stops_the_run(monkeypatch, tmp_path: Path):
    started: list[str] = []

    def start(service: supervisor.Service, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
        started.append(service.name)
        return _exits_with(1)  # the restarted one then fails for good

    monkeypatch.setattr(supervisor, "_start", start)
    name = supervisor.SERVICES[0].name
    procs = {name: _exits_with(EXIT_RESTART)}
    assert supervisor._watch(procs, {}, tmp_path) == [name]
    assert started == [name]
    assert procs[name].returncode == 1


def _reading(stream: IO[str], lines: queue.Queue[str]) -> threading.Thread:
    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def _wait_for_line(lines: queue.Queue[str], seen: list[str], marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        if marker in seen[-1]:
            return
    raise AssertionError(f"no {marker!r} line within {timeout:.0f}s:\n" + "\n".join(seen[-30:]))


@pytest.mark.integration
def test_ctrl_c_stops_every_service_with_one_line_and_exit_0_and_leaves_running_servers_up(
        kafka_settings: KafkaSettings,
                                                            es_settings: ElasticsearchSettings,
                                                            tmp_path: Path):
    ports = {s.port_variable: free_port() for s in supervisor.SERVICES}
    # the servers were up before the run (the session's): the run must leave them up without being told
    env = {**{k: v for k, v in os.environ.items() if k != "YUQING_KEEP_INFRA"},
           **{k: str(v) for k, v in ports.items()}, "PYTHONPATH": str(REPO_ROOT),
           "YUQING_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
           "YUQING_ES_INDEX_PREFIX": es_settings.index_prefix,
           "YUQING_NLP_APP_ID": unique("nlp-"), "YUQING_ALERTS_APP_ID": unique("alerts-"),
           "YUQING_SEARCH_INDEXER_GROUP_ID": unique("indexer-"), "YUQING_NLP_CLASSIFIER": "placeholder",
           "YUQING_NLP_STATE_DIR": str(tmp_path / "state"),
           "YUQING_ALERTS_STATE_DIR": str(tmp_path / "state"),
           "YUQING_INGEST_POLL_FORUMS": "false", "YUQING_INGEST_CURSOR_DIR": str(tmp_path / "cursors")}
    # Its own process group, as a shell gives a foreground job: Ctrl-C is SIGINT to that group.
    run = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run", "--no-demo", "--logs", str(tmp_path)],
                           env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    pump = _reading(run.stdout, lines)  # type: ignore[arg-type]
    try:
        _wait_for_line(lines, seen, "Ctrl-C stops everything", 300)
        urls = [s.health_url(env) for s in supervisor.SERVICES]
        assert all(httpx.get(url, timeout=5).status_code == 200 for url in urls)
        before = len(seen)
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 0
        pump.join(timeout=10)
        while not lines.empty():
            seen.append(lines.get())
        after = seen[before:]
        assert len(after) == 1, after
        assert re.fullmatch(r"\[yuqing\] stopped on request: 5 services stopped, local servers left "
                            r"running in \d+\.\ds", after[0]), after[0]
        for url in urls:
            with pytest.raises(httpx.HTTPError):
                httpx.get(url, timeout=2)
        assert reachable(kafka_settings.servers()[0])
        assert reachable(es_settings.url.split("://", 1)[-1].rstrip("/"))
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        drop_topics(kafka_settings, [env["YUQING_NLP_APP_ID"], env["YUQING_ALERTS_APP_ID"]])


def test_ctrl_c_in_a_terminal_reaches_the_supervisor_and_not_make(tmp_path: Path):
    """`make run` exits 0 on Ctrl-C: the supervisor is the terminal's foreground job, not make."""
    import pty

    job = tmp_path / "job.py"
    job.write_text(
        "import signal, sys, time\n"
        "from yuqing.supervisor import foreground_job\n"
        "stop = []\n"
        "signal.signal(signal.SIGINT, lambda *_: stop.append(1))\n"
        "with foreground_job():\n"
        "    print('ready', flush=True)\n"
        "    while not stop:\n"
        "        time.sleep(0.05)\n"
        "print('stopped cleanly', flush=True)\n")
    (tmp_path / "Makefile").write_text(f"run:\n\t{sys.executable} {job}\n")
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty, like a shell's job
        os.chdir(tmp_path)
        os.environ["PYTHONPATH"] = str(REPO_ROOT)
        os.execvp("make", ["make", "-s", "run"])
    output = b""
    deadline = time.monotonic() + 60
    while b"ready" not in output and time.monotonic() < deadline:
        output += os.read(terminal, 1024)
    os.write(terminal, b"\x03")  # Ctrl-C, as typed
    while time.monotonic() < deadline:
        try:
            chunk = os.read(terminal, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert b"stopped cleanly" in output, output
    assert os.waitstatus_to_exitcode(status) == 0, output

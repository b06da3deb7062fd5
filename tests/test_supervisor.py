"""`yuqing run` restarts a service that asks for it (exit 75) and stops on any other exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from yuqing import supervisor
from yuqing.settings import EXIT_RESTART


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

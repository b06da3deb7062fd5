"""Running a Faust app as this process's worker (the NLP and alerts workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def state_dir(path: Path, setting: str) -> str:
    """``path`` created with its parents, as Faust's ``datadir``; a ``ValueError`` naming
    ``setting`` when it cannot be. Faust creates the folder alone, not its parents: under a
    YUQING_HOME that did not exist yet (a fresh machine, a worker without the model there)
    the worker ended in a FileNotFoundError traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{setting}={str(path)!r}: cannot create the worker's state folder "
                         f"({exc.strerror or exc})") from None
    return str(path)


def run_faust(app: Any, log_level: str) -> None:
    """Run ``app`` until it stops; Faust handles SIGTERM and SIGINT."""
    from faust.worker import Worker

    Worker(app, loglevel=log_level.lower(), quiet=True).execute_from_commandline()

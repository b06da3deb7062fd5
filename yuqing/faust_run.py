"""Running a Faust app as this process's worker (the NLP and alerts workers)."""

from __future__ import annotations

from typing import Any


def run_faust(app: Any, log_level: str) -> None:
    """Run ``app`` until it stops; Faust handles SIGTERM and SIGINT."""
    from faust.worker import Worker

    Worker(app, loglevel=log_level.lower(), quiet=True).execute_from_commandline()

"""Progress lines for long jobs whose output is a log, not a terminal.

``ProgressLines`` takes the ``(done, total, description)`` calls of training
and prediction and prints a line at most every ``interval`` seconds, at the
start and end of each phase and whenever a description reports a dev metric, with the
time left estimated from the rate so far in the current phase (a phase is a
run of calls with the same ``total``).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressLines:
    """A ``ProgressFn`` that writes plain, rate-limited lines through ``emit``."""

    def __init__(self, emit: Callable[[str], None], interval: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.interval, self.clock = emit, interval, clock
        self._total: int | None = None
        self._phase_start = 0.0
        self._phase_done = 0
        self._last_line = float("-inf")

    def __call__(self, done: int, total: int, description: str) -> None:
        now = self.clock()
        started = total != self._total
        if started:
            self._total, self._phase_start, self._phase_done = total, now, done
        finished = done >= total
        if not (started or finished or "dev" in description
                or now - self._last_line >= self.interval):
            return
        self._last_line = now
        self.emit(self.line(done, total, description, now))

    def line(self, done: int, total: int, description: str, now: float) -> str:
        elapsed = now - self._phase_start
        rate = (done - self._phase_done) / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else None
        eta = "" if left is None or done >= total else f", about {format_seconds(left)} left"
        return f"{description}: {done}/{total} ({format_seconds(elapsed)} elapsed{eta})"

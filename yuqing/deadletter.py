"""Older home of the dead-letter helpers, kept until the alerts worker moves onto the runtime.

The dead letters and their cap now live in :mod:`yuqing.consumer.dlq`;
``DeadLetterBudget`` is the older form of that cap (the alerts worker's).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from yuqing.consumer.dlq import DeadLetterRateExceeded, make_dead_letter

__all__ = ["DeadLetterBudget", "DeadLetterRateExceeded", "make_dead_letter"]


@dataclass
class DeadLetterBudget:
    window: int = 200
    max_ratio: float = 0.5
    min_failures: int = 20
    _outcomes: deque[bool] = field(default_factory=deque)

    def record(self, *, failed: bool) -> None:
        self._outcomes.append(failed)
        if len(self._outcomes) > self.window:
            self._outcomes.popleft()
        failures = sum(self._outcomes)
        if failures >= self.min_failures and failures / len(self._outcomes) > self.max_ratio:
            raise DeadLetterRateExceeded(
                f"{failures} of the last {len(self._outcomes)} messages failed; "
                "stopping instead of dead-lettering the whole topic"
            )

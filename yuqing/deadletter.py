"""The error boundary's other half: dead letters with a capped rate.

A consumer turns any failure on one message into a ``DeadLetter`` on
``posts.dlq``. If a bad deploy makes *everything* fail, draining the topic into
the dead-letter queue would be worse than stopping, so the rate is capped: once
more than ``max_ratio`` of the last ``window`` messages failed (and at least
``min_failures`` of them), the consumer stops with ``DeadLetterRateExceeded``.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from yuqing.contracts import DeadLetter


class DeadLetterRateExceeded(RuntimeError):
    pass


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


def make_dead_letter(
    *, value: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
    error: BaseException, service: str,
) -> DeadLetter:
    return DeadLetter(
        original_b64=base64.b64encode(value or b"").decode(),
        original_key_b64=base64.b64encode(key).decode() if key else None,
        topic=topic,
        partition=partition,
        offset=offset,
        error_class=type(error).__name__,
        error_message=str(error)[:4000] or type(error).__name__,
        service=service,
        failed_at=datetime.now(UTC),
    )

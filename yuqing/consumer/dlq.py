"""Dead letters and their cap, applied once by the runtime for every worker.

A bad message becomes a dead letter with its reason. If a bad deploy makes
*everything* fail, draining the topic into the dead letters would be worse
than stopping, so the volume is capped: the worker stops, without
committing, once more than ``max_consecutive_count`` messages in a row are
invalid, or once more than ``max_invalid_ratio`` of the last ``window``
messages were (judged only when that many have been seen).
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from yuqing.contracts import DeadLetter
from yuqing.contracts.codec import encode

MAX_ERROR_CHARS = 4_000


class DeadLetterRateExceeded(RuntimeError):
    """Too many invalid messages: the worker stops instead of dead-lettering its input."""


@dataclass(frozen=True)
class DlqLimit:
    max_invalid_ratio: float = 0.5
    max_consecutive_count: int = 20
    window: int = 200

    def __post_init__(self) -> None:
        if not 0.0 < self.max_invalid_ratio <= 1.0:
            raise ValueError("max_invalid_ratio must be in (0, 1]")
        if self.max_consecutive_count < 0 or self.window < 1:
            raise ValueError("max_consecutive_count must be >= 0 and window >= 1")


@dataclass
class DlqPolicy:
    """Counts valid and invalid messages against a :class:`DlqLimit` (pure)."""

    limit: DlqLimit = field(default_factory=DlqLimit)
    _recent: deque[bool] = field(default_factory=deque)
    _consecutive: int = 0

    def record(self, *, invalid: bool) -> None:
        """Count one message; raises DeadLetterRateExceeded past the limit."""
        self._recent.append(invalid)
        if len(self._recent) > self.limit.window:
            self._recent.popleft()
        self._consecutive = self._consecutive + 1 if invalid else 0
        if self._consecutive > self.limit.max_consecutive_count:
            raise DeadLetterRateExceeded(
                f"{self._consecutive} invalid messages in a row (limit "
                f"{self.limit.max_consecutive_count}); stopping instead of dead-lettering the topic")
        invalid_count = sum(self._recent)
        if (len(self._recent) >= self.limit.window
                and invalid_count / len(self._recent) > self.limit.max_invalid_ratio):
            raise DeadLetterRateExceeded(
                f"{invalid_count} of the last {len(self._recent)} messages were invalid (limit "
                f"{self.limit.max_invalid_ratio:.0%}); stopping instead of dead-lettering the topic")


def make_dead_letter(
    *, value: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
    error: BaseException, service: str, max_bytes: int | None = None, error_class: str | None = None,
) -> DeadLetter:
    """The dead letter of one message; with ``max_bytes``, one whose encoding fits in that many.

    A dead letter must itself fit on the topic: an original too large to
    travel base64-encoded is cut to a prefix that fits, and the reason says
    how many of how many bytes were kept (the full message stays on its topic
    at ``topic[partition]@offset`` for the topic's retention).
    """
    error_class = error_class or type(error).__name__
    letter = DeadLetter(
        original_b64=base64.b64encode(value or b"").decode(),
        original_key_b64=base64.b64encode(key).decode() if key else None,
        topic=topic, partition=partition, offset=offset, error_class=error_class,
        error_message=str(error)[:MAX_ERROR_CHARS] or error_class,
        service=service, failed_at=datetime.now(UTC),
    )
    if max_bytes is None or len(encode(letter)) <= max_bytes:
        return letter
    return _cut_original(letter, value or b"", max_bytes)


def _cut_original(letter: DeadLetter, value: bytes, max_bytes: int) -> DeadLetter:
    note = " [original cut to {kept} of {total} bytes to fit the dead-letter topic]"
    error = letter.error_message[:MAX_ERROR_CHARS - len(note) - 40]
    envelope = len(encode(letter.model_copy(update={"original_b64": "", "error_message": error})))
    room = max(0, max_bytes - envelope - len(note) - 40)
    kept = room // 4 * 3  # base64 grows 3 bytes into 4
    return letter.model_copy(update={
        "original_b64": base64.b64encode(value[:kept]).decode(),
        "error_message": error + note.format(kept=kept, total=len(value)),
    })

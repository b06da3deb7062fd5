"""A context-based anomaly score for any single series, row by row (pure).

:class:`ContextDetector` follows the idea of the Contextual Anomaly Detector
(CAD OSE, Smirnov and Kuz'min, the "contextOSE" entry of NAB): a series is
normal while what happens next was seen to follow the same recent past.

1. **Facts.** Each value is quantised into ``2 ** bits`` levels over the range
   observed so far. Its facts are the level read at every resolution: the top
   bit (2 levels), the top two bits (4 levels), ..., all bits.
2. **Contexts.** The left context of a row is the sequence of the previous
   ``max_order`` rows' facts; at each resolution and each order ``k`` (the last
   ``k`` rows) it is one *active context*. A context learns the facts that
   followed it: its dictionary of predicted next facts.
3. **Score.** The share of active contexts (those met before) that did not
   predict the row's fact at their resolution. A row whose every known
   context foresaw it scores 0; a row that no known context foresaw scores 1.
   A value outside the observed range has no context at all and scores 1.
4. **Restarted contexts.** When the range grows the levels shift, so the
   learned contexts are dropped and learning starts again from the new range
   (the outlier that grew it has already scored 1).
5. **NAB-style reporting.** A score at or above ``base_threshold`` is reported
   once: for ``rest_rows`` rows after it, other scores are 0, so a score near
   1 is rare and marks the start of an event.

There is nothing fitted to a data set beyond these structural constants.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

# A flat history gives no range; levels need a positive width.
MIN_RANGE = 1e-9


@dataclass(frozen=True)
class ContextConfig:
    """The structural constants of a :class:`ContextDetector` (docs/alerts.md)."""

    bits: int = 3
    max_order: int = 3
    warmup_rows: int = 50
    base_threshold: float = 0.75
    rest_rows: int = 100
    range_margin: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 8 or self.max_order < 1:
            raise ValueError("need 1 <= bits <= 8 and max_order >= 1")
        if self.warmup_rows < 1 or self.rest_rows < 0 or self.range_margin < 0:
            raise ValueError("warmup_rows must be positive, rest_rows and range_margin not negative")


Context = tuple[int, int, tuple[int, ...]]  # (resolution, order, facts of the last rows)


class ContextDetector:
    """Causal context-novelty scores for one series, one row at a time."""

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = config or ContextConfig()
        self._low = math.inf
        self._high = -math.inf
        self._seen = 0
        self._past: deque[int] = deque(maxlen=self.config.max_order)
        self._predictions: dict[Context, set[int]] = {}
        self._rest = 0

    def update(self, value: float) -> float:
        """The reported score in [0, 1] of the row holding ``value``, from the rows before it."""
        raw = self.raw_score(value)
        if self._rest > 0:
            self._rest -= 1
            return 0.0
        if raw >= self.config.base_threshold:
            self._rest = self.config.rest_rows
        return raw

    def raw_score(self, value: float) -> float:
        """The share of known contexts that did not foresee ``value`` (0 during warm-up); then learn it."""
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value!r}")
        self._seen += 1
        warm = self._seen > self.config.warmup_rows
        if value < self._low or value > self._high:
            self._grow_range(value)
            return 1.0 if warm else 0.0
        level = self._level(value)
        score = self._novelty(level)
        self._learn(level)
        return score if warm else 0.0

    def _grow_range(self, value: float) -> None:
        """Widen the range past ``value`` and restart the contexts on the new levels."""
        low, high = min(self._low, value), max(self._high, value)
        if math.isfinite(self._low):
            margin = self.config.range_margin * max(high - low, MIN_RANGE)
            low = low - margin if value < self._low else low
            high = high + margin if value > self._high else high
        self._low, self._high = low, high
        self._predictions.clear()
        self._past.clear()
        self._past.append(self._level(value))

    def _level(self, value: float) -> int:
        top = 2**self.config.bits
        width = max(self._high - self._low, MIN_RANGE)
        level: int = min(int((value - self._low) / width * top), top - 1)
        return level

    def _contexts(self) -> list[tuple[Context, int]]:
        """Each active context with the bit shift of its resolution."""
        bits, past = self.config.bits, list(self._past)
        contexts = []
        for resolution in range(1, bits + 1):
            shift = bits - resolution
            coarse = tuple(level >> shift for level in past)
            for order in range(1, len(coarse) + 1):
                contexts.append(((resolution, order, coarse[-order:]), shift))
        return contexts

    def _novelty(self, level: int) -> float:
        known = missed = 0
        for context, shift in self._contexts():
            predicted = self._predictions.get(context)
            if predicted is not None:
                known += 1
                missed += (level >> shift) not in predicted
        return missed / known if known else 1.0

    def _learn(self, level: int) -> None:
        for context, shift in self._contexts():
            self._predictions.setdefault(context, set()).add(level >> shift)
        self._past.append(level)

"""A streaming anomaly score for any single series, row by row (pure).

:class:`NoveltyScorer` is what ``yuqing alerts replay --input`` runs over a
``timestamp,value`` file. It assumes nothing about the series: not counts, not
a cadence, not a season, not a scale. Every row is judged from the rows
before it only, in four steps (docs/alerts.md has the reasoning and numbers):

1. **Robust yardstick.** The last ``history_rows`` values give a median and an
   inter-quantile spread (``spread_quantile`` and its mirror).
2. **Surprise.** How far the value lies from the median, in spreads. Both
   sides count: a drop is as surprising as a rise. Rank statistics only, so
   any offset and any positive scale of the values give the same scores;
   negative and fractional values are fine. This is the documented
   transform: none is needed.
3. **Rarity.** The surprise is ranked among the surprises of the last
   ``rarity_rows`` rows: ``log((n + 1) / (k + 1))`` for ``k`` of ``n`` past
   surprises at least as large, plus the log of how far it beats the largest
   when it beats them all. This puts every series on one scale (how rare, not
   how big), so one threshold means the same false-alert rate everywhere.
4. **One report per event.** A rarity is reported only when it beats the last
   reported one (decaying with a half-life of ``report_half_life_rows``) by
   ``report_margin``; other rows score 0. An event is reported at its start,
   and again only if it grows markedly: a detection rate limit that needs no
   threshold.

Scores are ``r / (r + 1)`` for a rarity ``r``, in [0, 1).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

# Spreads never shrink below this share of the values' range (a flat history
# would make every change infinitely surprising).
MIN_SPREAD_SHARE = 1e-3


@dataclass(frozen=True)
class NoveltyConfig:
    """The few settings of a :class:`NoveltyScorer`, chosen by leave-one-series-out (docs/alerts.md)."""

    history_rows: int = 5000
    min_history_rows: int = 100
    spread_quantile: float = 0.97
    rarity_rows: int = 10000
    report_half_life_rows: float = 288.0
    report_margin: float = 0.2

    def __post_init__(self) -> None:
        if not 1 < self.min_history_rows <= self.history_rows:
            raise ValueError("need 1 < min_history_rows <= history_rows")
        if not 0.5 < self.spread_quantile < 1.0:
            raise ValueError("spread_quantile must be in (0.5, 1)")
        if self.rarity_rows < 1 or self.report_half_life_rows <= 0:
            raise ValueError("rarity_rows and report_half_life_rows must be positive")


@dataclass
class _Window:
    """The last values in arrival order and in sorted order."""

    arrival: deque[float] = field(default_factory=deque)
    ordered: list[float] = field(default_factory=list)

    def push(self, value: float, limit: int) -> None:
        self.arrival.append(value)
        bisect.insort(self.ordered, value)
        if len(self.arrival) > limit:
            old = self.arrival.popleft()
            del self.ordered[bisect.bisect_left(self.ordered, old)]

    def quantile(self, q: float) -> float:
        position = q * (len(self.ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(self.ordered) - 1)
        return self.ordered[low] + (position - low) * (self.ordered[high] - self.ordered[low])

    def at_least(self, value: float) -> int:
        return len(self.ordered) - bisect.bisect_left(self.ordered, value)


class NoveltyScorer:
    """Causal anomaly scores for one series, one row at a time."""

    def __init__(self, config: NoveltyConfig | None = None) -> None:
        self.config = config or NoveltyConfig()
        self._values = _Window()
        self._surprises = _Window()
        self._reference = 0.0

    def update(self, value: float) -> float:
        """The score in [0, 1) of the row holding ``value``, from the rows before it."""
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value!r}")
        surprise = self.surprise(value)
        return self._report(self._rarity(surprise))

    def rarity(self, value: float) -> float:
        """How rare the row holding ``value`` is (log odds, 0 while learning), unreported; then learn it."""
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value!r}")
        return self._rarity(self.surprise(value))

    def surprise(self, value: float) -> float:
        """How far ``value`` lies from the history, in spreads (0 until there is history); then learn it."""
        config = self.config
        surprise = 0.0
        if len(self._values.ordered) >= config.min_history_rows:
            surprise = self._measure(value)
        self._values.push(value, config.history_rows)
        return surprise

    def _measure(self, value: float) -> float:
        config, values = self.config, self._values
        q = config.spread_quantile
        median = values.quantile(0.5)
        floor = max(MIN_SPREAD_SHARE * (values.ordered[-1] - values.ordered[0]), 1e-9 * max(abs(median), 1.0))
        return abs(value - median) / max(values.quantile(q) - values.quantile(1.0 - q), floor)

    def _rarity(self, surprise: float) -> float:
        """How rare the surprise is among the recent ones (log odds of being beaten)."""
        past = self._surprises
        if surprise <= 0.0:
            return 0.0
        seen = len(past.ordered)
        beaten_by = past.at_least(surprise)
        rarity = math.log((seen + 1) / (beaten_by + 1))
        if beaten_by == 0 and seen:
            rarity += math.log(surprise / max(past.ordered[-1], 1e-12))
        past.push(surprise, self.config.rarity_rows)
        return rarity if seen >= self.config.min_history_rows else 0.0

    def _report(self, rarity: float) -> float:
        config = self.config
        self._reference *= 0.5 ** (1.0 / config.report_half_life_rows)
        if rarity > 0.0 and rarity > self._reference * (1.0 + config.report_margin):
            self._reference = rarity
            return rarity / (rarity + 1.0)
        return 0.0

"""The surge detector's yardsticks: the median and upper quantile of a log ratio over past days.

Each is a histogram over fixed ``EDGES``, refreshed once a day, so that today's
buckets (a surge in progress) do not move the yardstick they are measured by.
Part of :class:`services.alerts.detector.SurgeDetector`'s state.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# Histogram edges for log ratios: symmetric, geometric from 0.01 to about 9.
_POSITIVE_EDGES = [0.01 * 1.15**i for i in range(50)]
EDGES = [-edge for edge in reversed(_POSITIVE_EDGES)] + [0.0] + _POSITIVE_EDGES


class SpreadSettings(Protocol):
    """The settings a yardstick reads (a ``DetectorConfig``)."""

    @property
    def spread_half_life_days(self) -> float: ...

    @property
    def spread_quantile(self) -> float: ...

    @property
    def spread_clip(self) -> float: ...


@dataclass
class Spread:
    """Median and upper quantile of one log ratio, refreshed once a day."""

    day: str | None = None
    past: list[float] = field(default_factory=lambda: [0.0] * (len(EDGES) + 1))
    today: list[float] = field(default_factory=lambda: [0.0] * (len(EDGES) + 1))
    center: float | None = None
    scale: float | None = None
    weight: float = 0.0


def observe(spread: Spread, day: str, value: float, config: SpreadSettings) -> float:
    """Standardise a value against the past days, then count it for today."""
    _roll_over(spread, day, config)
    z = _standardise(spread, value)
    if spread.center is not None and spread.scale is not None:
        # Winsorised, so a surge cannot widen the yardstick it is measured by.
        value = min(value, spread.center + config.spread_clip * spread.scale)
    spread.today[bisect.bisect_left(EDGES, value)] += 1.0
    return z


def _roll_over(spread: Spread, day: str, config: SpreadSettings) -> None:
    """On a new day, fold the finished days into the past and refresh the yardstick."""
    if spread.day is None:
        spread.day = day
    elif day != spread.day:
        elapsed = max((datetime.fromisoformat(day) - datetime.fromisoformat(spread.day)).days, 1)
        decay = 0.5 ** (elapsed / config.spread_half_life_days)
        spread.past = [p * decay + t for p, t in zip(spread.past, spread.today, strict=True)]
        spread.today = [0.0] * len(spread.today)
        spread.day = day
        spread.weight = sum(spread.past)
        spread.center = _quantile(spread.past, 0.5)
        upper = _quantile(spread.past, config.spread_quantile)
        spread.scale = max(upper - spread.center, EDGES[len(EDGES) // 2 + 1])


def _standardise(spread: Spread, value: float) -> float:
    if spread.center is None or spread.scale is None:
        return 0.0
    return (value - spread.center) / spread.scale


def _quantile(histogram: list[float], q: float) -> float:
    """Quantile of a histogram over ``EDGES``, interpolated inside a bin."""
    target = q * sum(histogram)
    cumulative = 0.0
    for i, weight in enumerate(histogram):
        if weight > 0.0 and cumulative + weight >= target:
            low = EDGES[i - 1] if i > 0 else EDGES[0] * 1.15
            high = EDGES[i] if i < len(EDGES) else EDGES[-1] * 1.15
            return low + (target - cumulative) / weight * (high - low)
        cumulative += weight
    return EDGES[-1]

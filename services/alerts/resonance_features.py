"""The inputs of ARTime's algorithm: downsampling, levels and Haar features (pure, numpy).

Steps 1 to 3 of :mod:`services.alerts.resonance`, each one row of the
downsampled series at a time:

1. :class:`Downsampler`: every ``step`` rows, one value stands for them: the
   block's maximum or minimum, whichever lies farther from a moving average of
   the block means, so a spike survives the downsampling; the block's mean
   instead when that extreme is within 10% of the mean (no spike).
2. :class:`Levels`: the value scaled to [0, 1] over the file's range, rounded
   to one of ``levels`` + 1 levels, and drawn to an approximate running median
   of the levels when within ``chomp`` of it (small wiggles around the usual
   level read as the usual level).
3. :func:`window_features`: the last ``window`` levels, rescaled to [0, 1],
   through a full Haar wavelet transform, rescaled to [0, 1] again, followed
   by the raw levels themselves: ``2 × window`` features, the last of which is
   the newest level (the fuzzy ART's energy component).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]
SQRT_HALF = math.sqrt(0.5)


class Downsampler:
    """One representative value per ``step`` rows, spikes kept."""

    def __init__(self, step: int) -> None:
        if step < 1:
            raise ValueError("step must be at least 1")
        self.step = step
        # Zeros before the first row, as in the reference; the first block is full anyway.
        self._block: deque[float] = deque([0.0] * step, maxlen=step)
        self._rows = 0
        self._average: float | None = None

    def update(self, value: float) -> float | None:
        """The block's representative on every ``step``-th row, else None."""
        self._block.append(value)
        self._rows += 1
        if self._rows % self.step:
            return None
        return self._represent()

    def _represent(self) -> float:
        mean = sum(self._block) / self.step
        high, low = max(self._block), min(self._block)
        average = mean if self._average is None else self._average
        self._average = (average + mean) / 2
        chosen = low if abs(high - self._average) < abs(low - self._average) else high
        # A spike must stand at least 10% off the block mean to be kept.
        return mean if abs(chosen - mean) < 0.1 * mean else chosen


class Levels:
    """A value on ``levels`` + 1 levels over a known range, drawn to the running median."""

    def __init__(self, minimum: float, maximum: float, levels: int = 80, chomp: float = 0.075) -> None:
        if levels < 1:
            raise ValueError("need at least one level")
        self.minimum, self.span = minimum, maximum - minimum
        self.levels, self.chomp = levels, chomp
        self._counts = [0] * (levels + 1)
        self._seen = 0
        self._median = 0
        self._below = 0
        self._above = 0

    def update(self, value: float) -> float:
        """The value as a level in [0, 1], or the running median's when within ``chomp`` of it."""
        scaled = value - self.minimum
        if self.span != 0:
            scaled /= self.span
        # round() rounds halves to even, as the reference does.
        level = min(max(round(scaled * self.levels), 0), self.levels)
        self._count(level)
        median = self._median / self.levels
        quantised = level / self.levels
        return median if abs(quantised - median) < self.chomp else quantised

    @property
    def median_level(self) -> int:
        return self._median

    def _count(self, level: int) -> None:
        """An approximate running median: moves at most one occupied level per value."""
        self._seen += 1
        self._counts[level] += 1
        if self._seen == 1:
            self._median = level
        if self._median > level:
            self._below += 1
        elif self._median < level:
            self._above += 1
        half = self._seen // 2
        if half < self._above:
            self._below += self._counts[self._median]
            self._median = self._next_occupied(+1)
            self._above -= self._counts[self._median]
        elif half < self._below:
            self._above += self._counts[self._median]
            self._median = self._next_occupied(-1)
            self._below -= self._counts[self._median]

    def _next_occupied(self, direction: int) -> int:
        level = self._median + direction
        while self._counts[level] == 0:
            level += direction
        return level


def haar(values: Vector) -> Vector:
    """The full orthonormal Haar transform of ``2^k`` values.

    Laid out coarsest first: the overall scaling coefficient, then the
    details from the coarsest level to the finest (each level's details in
    time order). A detail is ``(later − earlier) / √2``: the sign of the
    reference's transform, which the features' rescaling does not undo.
    """
    approximation = np.asarray(values, dtype=np.float64)
    if len(approximation) & (len(approximation) - 1) or len(approximation) < 2:
        raise ValueError("the Haar transform needs a power of two values, at least 2")
    details: list[Vector] = []
    while len(approximation) > 1:
        earlier, later = approximation[0::2], approximation[1::2]
        details.append((later - earlier) * SQRT_HALF)
        approximation = (earlier + later) * SQRT_HALF
    transform: Vector = np.concatenate([approximation, *reversed(details)])
    return transform


def unit_range(values: Vector) -> Vector:
    """Shifted to a minimum of 0 and scaled to a maximum of 1 (only shifted when flat)."""
    shifted: Vector = values - values.min()
    top = float(shifted.max())
    return shifted / top if top != 0 else shifted


def window_features(window: Vector) -> Vector:
    """ARTime's features of a window of levels: its rescaled Haar transform, then the levels."""
    return np.concatenate([unit_range(haar(unit_range(window))), window])

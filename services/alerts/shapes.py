"""How new the recent shape of a series is: the distance to the nearest past window (pure).

:class:`PastShapes` reads the last ``blocks × block_rows`` rows as ``blocks``
block means (a short, smoothed shape of the series) and measures how far that
shape lies from the nearest shape the series has shown before (root mean
square of the differences of the block means). Only past windows that no
longer overlap the current one are compared, so the answer is "has this
pattern been seen before", not "did the last row move". The last
``memory`` such windows are kept.

The distance is in the series' own units; the gated detector ranks it among
the series' earlier distances (a rarity), so neither the scale nor the offset
of the values matters. It is the idea of ARTime and of nearest-neighbour
novelty detectors on NAB (a pattern unlike any stored one is an anomaly),
reduced to its core.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt


class PastShapes:
    """The distance of the current window's shape to the nearest earlier one, row by row."""

    def __init__(self, block_rows: int, blocks: int, memory: int) -> None:
        if block_rows < 1 or blocks < 1 or memory < 1:
            raise ValueError("need block_rows, blocks and memory >= 1")
        self.block_rows, self.blocks, self.memory = block_rows, blocks, memory
        self._recent: deque[float] = deque(maxlen=block_rows * blocks)
        self._store = np.zeros((memory, blocks))
        self._stored = 0
        self._waiting: deque[tuple[int, npt.NDArray[np.float64]]] = deque()
        self._row = 0

    def update(self, value: float) -> float | None:
        """The distance of the window ending at ``value`` to the nearest stored one (None before there
        is one); then keep the window, to be compared once it no longer overlaps the current one."""
        self._recent.append(value)
        self._row += 1
        span = self.block_rows * self.blocks
        if len(self._recent) < span:
            return None
        rows = np.fromiter(self._recent, float, count=span)
        shape = rows.reshape(self.blocks, self.block_rows).mean(axis=1)
        distance = self._nearest(shape)
        self._waiting.append((self._row, shape))
        while self._waiting and self._waiting[0][0] <= self._row - span:
            self._store[self._stored % self.memory] = self._waiting.popleft()[1]
            self._stored += 1
        return distance

    def _nearest(self, shape: npt.NDArray[np.float64]) -> float | None:
        known = min(self._stored, self.memory)
        if known == 0:
            return None
        return float(np.sqrt(((self._store[:known] - shape) ** 2).mean(axis=1)).min())

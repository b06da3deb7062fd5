"""ARTime's algorithm: an adaptive-resonance anomaly detector for one series (pure, numpy).

:class:`ResonanceDetector` is our implementation of **ARTime's algorithm**
(ARTime, by markNZed, the leading detector of the Numenta Anomaly Benchmark,
written in Julia): a dual-vigilance fuzzy ART
(:mod:`services.alerts.fuzzy_art`) learns the shapes of short windows of the
series, and a window that no category can take in, even at the lower
vigilance, is a candidate anomaly. Its constants are the author's (window 8,
13 windows per probation, 80 levels, chomp 0.075, initial vigilance 0.8, the
vigilance updates' 0.19, 0.05, 0.37, 0.97 and the confidence's 0.35, 0.65,
1.5); none was fitted here.

**It reads the file's range and length.** The detector is built with the
series' minimum, maximum and number of rows, as NAB hands every detector
``inputMin`` and ``inputMax`` and the data file: the values are levelled over
that range, and the length sizes the probation (15% of the rows, at most 750)
and with it the downsampling step. It therefore needs the whole file before
the first row is scored (the replay reads it anyway); each score still comes
from the rows at or before it.

Per row:

1. Every ``step`` rows (``probation // (window × 13)``, at least 1) one
   downsampled value, its level, and from the second window on, the features
   of the last 8 levels (:mod:`services.alerts.resonance_features`).
2. The first ``trend`` downsampled values (``probation / step``) are only
   collected; at the last one the initial vigilance is found (the windows
   ordered from the least to the most typical, learnt by a fresh memory at
   vigilance 0.8, and the mean best match over its second half) and the
   memory learns them all in order, with no anomaly reported.
3. Afterwards a window that founds a new cluster is an anomaly unless
   detection is masked (for 12 downsampled values after an anomaly, or after
   a new cluster or a vigilance update until 12 values in a row found none);
   masked, it still counts when its match is below 90% (70% after the first
   12 values) of the last anomaly's.
4. An anomaly scores its **confidence**: how far its match lies below both
   vigilances, relative to its distance from a perfect match (weights 0.35 for
   the upper, 0.65 for the lower), plus 1.5 times the shortfall of its
   energy similarity (the newest value's fit), at most 1. Other rows score 0.
5. The vigilances adapt every ``trend / 2`` values and 12 values after each
   anomaly: the upper one to the mean best match so far (at most 0.97), the
   lower one up by 19% of its distance to the smallest recent match, or down
   by half the mean recent shortfall below the upper one (at least 0.01, at
   most 0.37 per match), but not below the mean match of past anomalies.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from services.alerts.fuzzy_art import DualVigilanceArt, Resonance
from services.alerts.resonance_features import Downsampler, Levels, Vector, window_features

SCORE_DECIMALS = 6


@dataclass(frozen=True)
class ResonanceConfig:
    """ARTime's constants, as its author set them (none fitted on NAB here)."""

    window: int = 8
    windows_per_probation: int = 13
    levels: int = 80
    chomp: float = 0.075
    initial_rho: float = 0.80
    max_probation_rows: int = 750
    probation_share: float = 0.15
    short_file_rows: int = 5000
    mask_windows: float = 1.5


@dataclass(frozen=True)
class Plan:
    """The sizes ARTime derives from the file's length."""

    probation: int
    step: int
    trend: int
    mask: int


def plan_for(length: int, config: ResonanceConfig) -> Plan:
    """Probation (15% of the rows, at most 750, made even), downsampling step, trend and mask."""
    probation = math.floor(config.probation_share * length) if length < config.short_file_rows \
        else config.max_probation_rows
    probation -= probation % 2
    step = max(1, probation // (config.window * config.windows_per_probation))
    return Plan(probation, step, probation // step, int(config.window * config.mask_windows))


def confidence(similarity: float, energy: float, rho_lb: float, rho_ub: float) -> float:
    """ARTime's score of an anomaly: below both vigilances, and the newest value's misfit."""
    similarity = min(0.999, similarity)
    gap = 1.0 - similarity
    upper = (gap - (1.0 - rho_ub)) / gap
    lower = (gap - (1.0 - rho_lb)) / gap
    return min(1.0, upper * 0.35 + lower * 0.65 + (1.0 - energy) * 1.5)


def similarity(first: Vector, second: Vector) -> float:
    """Cosine similarity; against an all-zero window, one minus the other's norm (the reference's)."""
    return _paired(first, second, float(np.linalg.norm(first)), float(np.linalg.norm(second)))


def initial_vigilance(windows: NDArray[np.float64], trend: int, rho: float) -> float:
    """The mean best match of a fresh memory learning the probation's windows at vigilance ``rho``,
    from the least typical window (the smallest summed similarity to the others) to the most
    typical, counted from the ``trend // 2``-th window on; ``rho`` itself for fewer than two."""
    count = len(windows)
    if count < 2:
        return rho
    norms = np.linalg.norm(windows, axis=1)
    matrix = np.ones((count, count))
    for i in range(count):
        for j in range(i):
            matrix[i, j] = matrix[j, i] = _paired(windows[i], windows[j], norms[i], norms[j])
    order = np.argsort(matrix.sum(axis=0), kind="stable")
    memory = DualVigilanceArt(windows.shape[1], rho, rho)
    matches = [memory.learn(windows[k]).similarity for k in order]
    return float(np.mean(matches[trend // 2 - 1:]))


def _paired(first: Vector, second: Vector, norm_first: float, norm_second: float) -> float:
    if norm_first == 0.0:
        return 1.0 - norm_second
    if norm_second == 0.0:
        return 1.0 - norm_first
    return float(np.dot(first, second) / (norm_first * norm_second))


class _MeanMatch:
    """The running mean of every best match (equal weights, updated as the reference does)."""

    def __init__(self) -> None:
        self.count, self.value = 0, 0.0

    def add(self, match: float) -> None:
        self.count += 1
        self.value += (match - self.value) / self.count


@dataclass
class _Vigil:
    """The detection state between windows (ARTime's masking and vigilance bookkeeping)."""

    recent: deque[float]
    shortfalls: deque[float]
    last_anomaly: int = 0
    last_anomaly_match: float = 0.0
    last_update: int = 0
    mask_after_cluster: bool = False
    quiet: int = 0
    mean_match: _MeanMatch = field(default_factory=_MeanMatch)
    anomaly_matches: list[float] = field(default_factory=list)


class ResonanceDetector:
    """ARTime's algorithm over one file: ``update(value)`` per row, in file order.

    ``minimum``, ``maximum`` and ``length`` are the file's (see the module's
    docstring: the detector reads the whole file's range and length, as NAB
    allows). Scores are in [0, 1], positive only at a detected anomaly.
    """

    def __init__(self, minimum: float, maximum: float, length: int,
                 config: ResonanceConfig | None = None) -> None:
        self.config = config = config or ResonanceConfig()
        self.plan = plan_for(length, config)
        self._downsampler = Downsampler(self.plan.step)
        self._levels = Levels(minimum, maximum, config.levels, config.chomp)
        self._window: deque[float] = deque([0.0] * config.window, maxlen=config.window)
        self.memory = DualVigilanceArt(2 * config.window, 0.0, 0.0)
        if self.plan.trend == 0:
            self.memory.set_vigilance(config.initial_rho, config.initial_rho)
        self._probation: list[Vector] = []
        self._index = 0
        self._vigil = _Vigil(deque([1.0] * (self.plan.trend // 2 + 1)),
                             deque([0.0] * (self.plan.trend + 1)))

    def update(self, value: float) -> float:
        """The score of the row holding ``value``: 0 unless it completes an anomalous window."""
        sample = self._downsampler.update(value)
        if sample is None:
            return 0.0
        self._window.append(self._levels.update(sample))
        self._index += 1
        if self._index >= self.config.window:
            features = window_features(np.fromiter(self._window, dtype=np.float64))
        else:
            features = np.zeros(2 * self.config.window)
        if self._index > self.plan.trend:
            return round(self._detect(features, self._index), SCORE_DECIMALS)
        self._probation.append(features)
        if self._index == self.plan.trend:
            self._start()
        return 0.0

    def _start(self) -> None:
        """The probation's windows, learnt at once after finding the initial vigilance."""
        window, trend = self.config.window, self.plan.trend
        windows = np.array(self._probation[window - 1:trend])
        rho = initial_vigilance(windows, trend, self.config.initial_rho) if len(windows) \
            else self.config.initial_rho
        self.memory.set_vigilance(rho, rho)
        for index, features in enumerate(self._probation, start=1):
            self._detect(features, index)
        self._probation = []

    def _detect(self, features: Vector, index: int) -> float:
        vigil, plan = self._vigil, self.plan
        since = index - vigil.last_anomaly
        masked_after_anomaly = since <= plan.mask
        adapt = index > plan.trend and (since == plan.mask or index - vigil.last_update >= plan.trend // 2)
        if index > plan.trend + plan.mask and vigil.mask_after_cluster and vigil.quiet >= plan.mask:
            vigil.mask_after_cluster = False
        resonance = self._present(features, index)
        self._record(resonance, since)
        score = 0.0
        if index > plan.trend and resonance.new_cluster and self._unmasked(resonance, masked_after_anomaly):
            score = confidence(resonance.similarity, resonance.energy, self.memory.rho_lb, self.memory.rho_ub)
            self._remember_anomaly(resonance.similarity, index)
        vigil.mask_after_cluster = resonance.new_cluster or vigil.mask_after_cluster
        if adapt:
            self._adapt(index)
        return score

    def _present(self, features: Vector, index: int) -> Resonance:
        # Windows before the first full one are read, not learnt, to keep the histories aligned.
        learning = index >= self.config.window
        resonance = self.memory.learn(features, learning=learning)
        if not learning:
            return Resonance(True, resonance.similarity, resonance.energy)
        return resonance

    def _record(self, resonance: Resonance, since: int) -> None:
        vigil = self._vigil
        vigil.quiet = 0 if resonance.new_cluster else vigil.quiet + 1
        vigil.mean_match.add(resonance.similarity)
        vigil.recent.append(resonance.similarity)
        vigil.recent.popleft()
        vigil.shortfalls.append(self.memory.rho_ub - resonance.similarity)
        vigil.shortfalls.popleft()
        # An anomaly's match is the smallest one met while it is masked.
        if since < self.plan.mask and vigil.anomaly_matches:
            vigil.anomaly_matches[-1] = min(vigil.anomaly_matches[-1], resonance.similarity)

    def _unmasked(self, resonance: Resonance, masked_after_anomaly: bool) -> bool:
        vigil = self._vigil
        if not (vigil.mask_after_cluster or masked_after_anomaly):
            return True
        scale = 0.90 if masked_after_anomaly else 0.70
        return resonance.similarity < vigil.last_anomaly_match * scale

    def _remember_anomaly(self, match: float, index: int) -> None:
        vigil = self._vigil
        vigil.anomaly_matches.append(match)
        vigil.last_anomaly_match = match
        vigil.last_anomaly = index

    def _adapt(self, index: int) -> None:
        """ARTime's vigilance update (no labels: NAB allows none)."""
        vigil, memory = self._vigil, self.memory
        upper = min(0.97, vigil.mean_match.value)
        lowest = min(vigil.recent)
        if memory.rho_lb <= lowest:
            lower = memory.rho_lb + (lowest - memory.rho_lb) * 0.19
        else:
            step = 0.0
            if index > 2 * self.plan.trend:
                shortfalls = [min(0.37, s) for s in vigil.shortfalls if s > 0.05]
                step = sum(shortfalls) / len(shortfalls) if shortfalls else 0.0
            lower = memory.rho_lb - max(0.01, step) / 2
            if vigil.anomaly_matches:
                lower = max(sum(vigil.anomaly_matches) / len(vigil.anomaly_matches), lower)
        memory.set_vigilance(min(upper, lower), upper)
        vigil.last_update = index
        vigil.mask_after_cluster = True


def resonance_scores(values: list[float], config: ResonanceConfig | None = None) -> list[float]:
    """ARTime's scores for a whole file (its range and length read from ``values``)."""
    if not values:
        return []
    detector = ResonanceDetector(min(values), max(values), len(values), config)
    return [detector.update(value) for value in values]

"""Where a Poisson CUSUM must fire to keep a false-alert budget.

The surge detector's CUSUMs add, per bucket, the log-likelihood ratio of "the
rate is ``ratio`` times the baseline", ``(k ln ratio - rate (ratio - 1)) /
dispersion``, and fire when the sum, floored at 0, reaches a threshold. On a
steady stream the number of buckets until that first happens (the average run
length) must be at least the budget's: buckets per month over false alerts
per month. Lorden's bound (run length at least ``e**threshold``) guarantees
it but is loose: it ignores how far the sum overshoots the threshold, which
grows with the rate per bucket. This module computes the run length itself,
by Brook and Evans' Markov chain (the sum on a grid of ``STEPS`` states, each
bucket's count moving it from state to state), and the smallest threshold
that keeps it.

Counts are Poisson around the baseline at dispersion 1, and negative binomial
with variance ``dispersion * mean`` above (a bursty key, or a baseline known
only approximately). Thresholds are cached per band of rate (``BANDS_PER_DOUBLING``
a doubling), of dispersion and of variance, so a key pays a few milliseconds
once per band and two dictionary lookups per bucket afterwards.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

STEPS = 80  # grid states: run lengths 0-10% short of the exact ones (the safe side), solved in a millisecond
BANDS_PER_DOUBLING = 4
DISPERSION_BANDS_PER_DOUBLING = 16
VARIANCE_BANDS_PER_DOUBLING = 8
LOWEST_THRESHOLD = 0.05
HIGHEST_THRESHOLD = 100.0  # nats: a key this uncertain is left to the other rules
SEARCH_STEPS = 40
TOLERANCE = 0.005  # nats
LENGTH_TOLERANCE = 0.02  # in log run length
TAIL_SIGMAS = 12.0  # counts beyond the mean by this many standard deviations are ignored


def run_length(rate: float, ratio: float, threshold: float, *, dispersion: float = 1.0,
               variance: float | None = None, true_rate: float | None = None, steps: int = STEPS) -> float:
    """Average number of buckets until the CUSUM, started at 0, reaches ``threshold``.

    The CUSUM looks for a rise from ``rate`` to ``ratio * rate``, its steps
    divided by ``dispersion``. Counts have mean ``true_rate`` (``rate`` by
    default) and variance ``variance`` times their mean (``dispersion`` by
    default).
    """
    variance = dispersion if variance is None else variance
    if rate <= 0.0 or ratio <= 1.0 or threshold <= 0.0 or min(dispersion, variance) < 1.0:
        raise ValueError("need rate > 0, ratio > 1, threshold > 0, dispersion and variance >= 1")
    mean = rate if true_rate is None else true_rate
    jump, drift = math.log(ratio) / dispersion, rate * (ratio - 1.0) / dispersion
    width = threshold / steps
    # A count past (threshold + drift) / jump crosses from any state: no need to list larger ones.
    spread = TAIL_SIGMAS * math.sqrt(mean * variance)
    most = int(min(mean + spread + 25.0, (threshold + drift) / jump + 1.0))
    probabilities = count_probabilities(mean, variance, most)
    # The counts not listed move the sum at least as far as the last one: lumped there, not lost
    # (lost mass would read as alarms, and a heavy tail would cap the run length).
    probabilities[-1] = max(0.0, 1.0 - float(probabilities[:-1].sum()))
    states = np.arange(steps) * width
    after = np.maximum(states[:, None] + np.arange(most + 1)[None, :] * jump - drift, 0.0) / width
    # Each move's mass is shared between the two grid points around where it lands, so that the
    # chain drifts exactly as the CUSUM does (rounding to the nearest point loses the small drift
    # of a quiet key, a fraction of a grid step, and the run length with it).
    below = np.floor(after).astype(np.int64)
    upper_share = after - below
    weights = np.broadcast_to(probabilities, after.shape)
    rows = np.broadcast_to(np.arange(steps)[:, None], after.shape)
    flat_transitions = np.zeros(steps * steps)
    for target, share in ((below, 1.0 - upper_share), (below + 1, upper_share)):
        stays = target < steps  # the grid's end is the threshold: landing there fires
        flat = (rows * steps + target)[stays]
        flat_transitions += np.bincount(flat, weights=(weights * share)[stays], minlength=steps * steps)
    transitions = flat_transitions.reshape(steps, steps)
    try:
        lengths = np.linalg.solve(np.eye(steps) - transitions, np.ones(steps))
    except np.linalg.LinAlgError:  # no listed count reaches the threshold: it is never reached
        return math.inf
    return float(lengths[0])


def count_probabilities(mean: float, variance: float, most: int) -> np.ndarray:
    """P(count = 0 .. most): Poisson at ``variance`` 1, else negative binomial (variance over mean)."""
    counts = np.arange(most + 1)
    log_factorials = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, most + 1)))))
    if variance <= 1.0:
        poisson: np.ndarray = np.exp(counts * math.log(mean) - mean - log_factorials)
        return poisson
    size = mean / (variance - 1.0)  # negative binomial: variance mean * (1 + mean / size)
    log_rising = np.concatenate(([0.0], np.cumsum(np.log(size + np.arange(most)))))
    log_p = math.log(size / (size + mean))
    negative_binomial: np.ndarray = np.exp(
        log_rising - log_factorials + size * log_p + counts * math.log1p(-size / (size + mean)))
    return negative_binomial


def threshold_for(rate: float, ratio: float, buckets: float, *, dispersion: float = 1.0,
                  variance: float | None = None) -> float:
    """The smallest threshold whose run length on a steady stream is at least ``buckets``.

    Read from bands, each cached, all on the safe side (a higher threshold,
    a longer run length): the larger of the thresholds at the two rate bands
    around ``rate`` (a quarter of a doubling apart; the threshold rises with
    the rate at low rates and falls at high ones); the dispersion (as in
    :func:`run_length`) rounded down to a sixteenth of a doubling; and the
    threshold interpolated between the two variance bands around
    ``variance``, an eighth of a doubling apart (it grows about as the
    variance does, faster than the log-variance the bands are spaced by, so
    the line between two bands lies above it).
    """
    variance = dispersion if variance is None else variance
    rate_position = BANDS_PER_DOUBLING * math.log2(rate)
    dispersion_band = math.floor(DISPERSION_BANDS_PER_DOUBLING * math.log2(max(dispersion, 1.0)))
    variance_position = VARIANCE_BANDS_PER_DOUBLING * math.log2(max(variance, 1.0))
    rate_band = math.floor(rate_position)
    return max(_interpolated(band, ratio, buckets, dispersion_band, variance_position)
               for band in {rate_band, math.ceil(rate_position)})


def _interpolated(rate_band: int, ratio: float, buckets: float, dispersion_band: int,
                  variance_position: float) -> float:
    below = math.floor(variance_position)
    share = variance_position - below
    low = _banded_threshold(rate_band, ratio, buckets, dispersion_band, below)
    if share <= 0.0:
        return low
    high = _banded_threshold(rate_band, ratio, buckets, dispersion_band, below + 1)
    return low + share * (high - low)


@lru_cache(maxsize=16384)
def _banded_threshold(rate_band: int, ratio: float, buckets: float, dispersion_band: int,
                      variance_band: int) -> float:
    rate = 2.0 ** (rate_band / BANDS_PER_DOUBLING)
    dispersion = 2.0 ** (dispersion_band / DISPERSION_BANDS_PER_DOUBLING)
    variance = 2.0 ** (variance_band / VARIANCE_BANDS_PER_DOUBLING)
    return solve_threshold(rate, ratio, buckets, dispersion=dispersion, variance=variance)


def solve_threshold(rate: float, ratio: float, buckets: float, *, dispersion: float = 1.0,
                    variance: float | None = None) -> float:
    """The threshold by regula falsi on the log run length (nearly linear in it), uncached.

    Kept bracketed (the Illinois variant), so it converges in a handful of
    run lengths even where the line bends, as at low rates.
    """
    def gap(threshold: float) -> float:
        length = run_length(rate, ratio, threshold, dispersion=dispersion, variance=variance)
        # Far past the budget the linear system loses its precision: any huge answer is "long enough".
        return math.log(length) - math.log(buckets) if 0.0 < length < 1e12 else 1.0

    low, high = LOWEST_THRESHOLD, math.log(buckets) + 1.0  # just past Lorden's bound
    low_gap, high_gap = gap(low), gap(high)
    if low_gap >= 0.0:
        return LOWEST_THRESHOLD  # a busy key: even a tiny excess over a large, known rate is rare
    while high_gap < 0.0:  # burstier counts than the statistic allows for: beyond Lorden's bound
        if high > HIGHEST_THRESHOLD:
            return high
        low, low_gap = high, high_gap
        high += 2.0
        high_gap = gap(high)
    for _ in range(SEARCH_STEPS):
        middle = high - high_gap * (high - low) / (high_gap - low_gap)
        middle_gap = gap(middle)
        if 0.0 <= middle_gap < LENGTH_TOLERANCE:
            return middle  # long enough, by less than 2%: the smallest threshold for all purposes
        if middle_gap >= 0.0:
            high, high_gap = middle, middle_gap
            low_gap *= 0.5  # Illinois: do not let the other end stall
        else:
            low, low_gap = middle, middle_gap
            high_gap *= 0.5
        if high - low < TOLERANCE:
            break
    return high

"""The Poisson CUSUM's run length (Brook and Evans' Markov chain) and the thresholds it gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.alerts.cusum_calibration import (
    count_probabilities,
    run_length,
    solve_threshold,
    threshold_for,
)

MONTH_OF_BUCKETS = 30 * 288


def simulated_run_length(rate: float, ratio: float, threshold: float, runs: int,
                         seed: int) -> tuple[float, float]:
    """The CUSUM run directly on Poisson counts: mean run length and its standard error."""
    rng = np.random.default_rng(seed)
    jump, drift = math.log(ratio), rate * (ratio - 1.0)
    sums, lengths = np.zeros(runs), np.zeros(runs)
    alive = np.ones(runs, dtype=bool)
    bucket = 0
    while alive.any():
        bucket += 1
        sums = np.where(alive, np.maximum(0.0, sums + rng.poisson(rate, runs) * jump - drift), sums)
        crossed = alive & (sums >= threshold)
        lengths[crossed] = bucket
        alive &= ~crossed
    return float(lengths.mean()), float(lengths.std() / math.sqrt(runs))


@pytest.mark.parametrize(("rate", "ratio", "threshold"), [
    (2.0, 2.0, 3.0), (0.5, 2.0, 3.0), (0.15, 2.0, 3.0), (10.0, 2.0, 4.0), (0.5, 6.0, 4.0)])
def test_the_run_length_agrees_with_a_direct_simulation(rate: float, ratio: float, threshold: float) -> None:
    computed = run_length(rate, ratio, threshold)
    simulated, error = simulated_run_length(rate, ratio, threshold, runs=3000, seed=5)
    # The grid errs short (a lower run length asks for a higher threshold: the safe side), by a few
    # percent, up to 17% where one post jumps across much of a low threshold (ln 6 of 4 nats).
    assert 0.8 * simulated - 4 * error < computed < simulated + 4 * error


def test_a_finer_grid_converges_from_below() -> None:
    coarse, fine = run_length(0.15, 2.0, 7.0), run_length(0.15, 2.0, 7.0, steps=400)
    assert 0.85 * fine < coarse <= fine


def test_lordens_bound_holds_and_is_loose() -> None:
    # A CUSUM of log-likelihood ratios runs at least e**h buckets; with the overshoot it runs longer.
    for rate in (0.2, 2.0, 20.0):
        assert run_length(rate, 2.0, 6.0) > math.exp(6.0)
    assert run_length(20.0, 2.0, 6.0) > 5 * math.exp(6.0)


def test_the_threshold_rises_as_the_budget_falls() -> None:
    thresholds = [solve_threshold(2.0, 2.0, MONTH_OF_BUCKETS / budget) for budget in (4.0, 1.0, 0.25)]
    assert thresholds[0] < thresholds[1] < thresholds[2]
    assert thresholds[1] < math.log(MONTH_OF_BUCKETS)  # below Lorden's 9.06
    assert run_length(2.0, 2.0, thresholds[1]) >= MONTH_OF_BUCKETS
    assert run_length(2.0, 2.0, thresholds[1] - 0.05) < MONTH_OF_BUCKETS


def test_a_bursty_or_uncertain_key_needs_a_higher_threshold() -> None:
    plain = solve_threshold(5.0, 2.0, MONTH_OF_BUCKETS)
    assert solve_threshold(5.0, 2.0, MONTH_OF_BUCKETS, dispersion=1.0, variance=1.5) > plain + 0.5
    # The steps divided by the dispersion, the counts as bursty as that: about where Poisson was.
    assert solve_threshold(5.0, 2.0, MONTH_OF_BUCKETS, dispersion=1.5) == pytest.approx(plain, abs=1.0)


@pytest.mark.parametrize("ratio", [2.0, 4.0])
def test_the_banded_threshold_keeps_the_budget_between_bands(ratio: float) -> None:
    # Rates and variances between bands: the threshold read from the bands still keeps the run
    # length (at high rates the threshold falls steeply with the rate, and the nearest band fell short).
    for rate in (0.07, 0.3, 0.35, 0.4, 3.3, 41.0, 50.0, 60.0, 75.0):
        threshold = threshold_for(rate, ratio, MONTH_OF_BUCKETS)
        assert run_length(rate, ratio, threshold, steps=400) > 0.99 * MONTH_OF_BUCKETS
    for variance in (1.03, 1.2, 2.0):
        threshold = threshold_for(2.0, ratio, MONTH_OF_BUCKETS, variance=variance)
        assert run_length(2.0, ratio, threshold, variance=variance, steps=400) > 0.99 * MONTH_OF_BUCKETS


def test_the_negative_binomial_has_the_mean_and_variance_asked_for() -> None:
    probabilities = count_probabilities(4.0, 2.5, 200)
    counts = np.arange(201)
    mean = float((probabilities * counts).sum())
    assert probabilities.sum() == pytest.approx(1.0)
    assert mean == pytest.approx(4.0)
    assert float((probabilities * (counts - mean) ** 2).sum()) == pytest.approx(10.0)


def test_nonsense_is_rejected() -> None:
    with pytest.raises(ValueError):
        run_length(0.0, 2.0, 5.0)
    with pytest.raises(ValueError):
        run_length(1.0, 1.0, 5.0)

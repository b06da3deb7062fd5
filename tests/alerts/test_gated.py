"""The gated detector's pure logic: one report per event, the shape and short-mean views, causality."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from services.alerts.gated import VALUES_DEFAULT, GatedConfig, GatedDetector


def scores(values: list[float], config: GatedConfig | None = None) -> list[float]:
    detector = GatedDetector(config)
    return [detector.update(value) for value in values]


def noise(rows: int, seed: int = 7) -> list[float]:
    return [float(v) for v in np.random.default_rng(seed).normal(100.0, 5.0, size=rows)]


def test_a_spike_is_reported_once_at_its_start() -> None:
    # A gate above the noise's own events (at the default, one may rest over the spike: below).
    values = noise(3000)
    for i in range(2500, 2510):
        values[i] = 200.0
    out = scores(values, GatedConfig(rarity_threshold=8.0))
    assert out[2500] > 0.0
    assert max(out[2501:2600]) == 0.0, "the rest silences the rows after an event"


def test_a_steady_series_raises_events_at_most_one_per_rest() -> None:
    # The documented price of the shape view's lower gate: plain noise has a rare-enough shape
    # about every 200 rows; the previous default fired about every 550.
    rest = GatedConfig().rest_rows
    events = [i for i, score in enumerate(scores(noise(6000, seed=3))) if score > 0.0]
    before = [i for i, score in enumerate(scores(noise(6000, seed=3), VALUES_DEFAULT)) if score > 0.0]
    assert len(before) < 6000 / rest / 3 < len(events) <= 6000 / rest / 2
    assert all(b - a > rest for a, b in pairwise(events))


def wave_that_flattens(rows: int = 4000, flat: tuple[int, int] = (3000, 3200)) -> list[float]:
    rng = np.random.default_rng(2)
    values = [10.0 * math.sin(2 * math.pi * i / 96) + rng.normal(0.0, 0.5) for i in range(rows)]
    return [rng.normal(0.0, 0.5) if flat[0] <= i < flat[1] else v for i, v in enumerate(values)]


def test_a_wave_that_stops_inside_its_range_is_reported_by_its_shape() -> None:
    # No value of the flat stretch is unusual, nor is its mean; its shape was never seen.
    shape = scores(wave_that_flattens())
    values = scores(wave_that_flattens(), VALUES_DEFAULT)
    assert max(shape[3000:3005]) > 0.85
    assert max(values[3000:3020]) == 0.0


def test_a_small_sustained_shift_is_reported_soon_after_it_starts() -> None:
    # Each shifted row alone stays inside the usual spread; the short mean does not.
    values = noise(3000, seed=11)
    shifted = [*values[:2500], *(v + 8.0 for v in values[2500:])]
    out = scores(shifted)
    assert max(out[2500:2520]) > 0.0


def test_a_weak_event_hides_a_strong_one_within_its_rest() -> None:
    # The documented price of the strict rest: one report per rest, whatever follows.
    values = noise(3000, seed=11)
    values[2400], values[2450] = 130.0, 400.0
    out = scores(values)
    assert out[2400] > 0.0 and out[2450] == 0.0
    assert scores(values, GatedConfig(rest_rows=5))[2450] == 1.0


def test_scores_are_causal() -> None:
    values = noise(2000)
    assert scores(values)[:1500] == scores(values[:1500])


def test_a_higher_rarity_threshold_reports_a_subset_of_rarity_events() -> None:
    values = noise(4000, seed=5)
    low = scores(values, GatedConfig(rarity_threshold=3.0))
    high = scores(values, GatedConfig(rarity_threshold=8.0))
    assert sum(s > 0 for s in high) <= sum(s > 0 for s in low)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        GatedConfig(rarity_threshold=0.0)
    with pytest.raises(ValueError):
        GatedConfig(smooth_rows=1)
    with pytest.raises(ValueError, match="view"):
        GatedConfig(view="both")  # type: ignore[arg-type]

"""The context detector's pure logic: warm-up, novelty, reporting, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.alerts.context_detector import ContextConfig, ContextDetector


def scores(values: list[float], config: ContextConfig | None = None) -> list[float]:
    detector = ContextDetector(config)
    return [detector.update(value) for value in values]


def cycle(rows: int, period: int = 12) -> list[float]:
    return [10.0 + 5.0 * math.sin(2 * math.pi * i / period) for i in range(rows)]


def test_a_constant_series_gives_no_anomaly_after_warm_up() -> None:
    assert max(scores([7.0] * 2000)[60:]) == 0.0


def test_a_learned_cycle_scores_zero_once_learned() -> None:
    assert max(scores(cycle(2000))[500:]) == 0.0


def test_a_level_jump_scores_one() -> None:
    values = [*cycle(1000), 60.0, *cycle(50)]
    assert scores(values)[1000] == 1.0


def test_a_shape_change_inside_the_range_scores_high() -> None:
    # The cycle stops at its mid level: every value was seen, the sequence was not.
    # A context longer than half the period tells a stop from a crest.
    values = cycle(1000) + [10.0] * 30
    assert max(scores(values, ContextConfig(max_order=7))[1000:]) >= ContextConfig().base_threshold


def test_a_report_rests_before_the_next() -> None:
    config = ContextConfig(rest_rows=20)
    values = [*cycle(1000), 60.0, *cycle(10), 200.0, *cycle(30)]
    out = scores(values, config)
    assert out[1000] == 1.0
    assert out[1011] == 0.0  # 200 is new again, but it falls in the rest after 60
    assert ContextDetector(config).raw_score(1.0) == 0.0  # warm-up: nothing to compare with


def test_scores_are_deterministic_and_bounded() -> None:
    rng = np.random.default_rng(3)
    values = [float(v) for v in rng.normal(0.0, 1.0, 3000)]
    first, second = scores(values), scores(values)
    assert first == second
    assert all(0.0 <= s <= 1.0 for s in first)


def test_a_non_finite_value_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        ContextDetector().update(math.nan)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ContextConfig(bits=0)
    with pytest.raises(ValueError):
        ContextConfig(warmup_rows=0)

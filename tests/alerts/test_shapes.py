"""The nearest-past-window distance of the gated detector's shape view (pure)."""

from __future__ import annotations

import pytest

from services.alerts.shapes import PastShapes


def distances(values: list[float], block_rows: int = 2, blocks: int = 2, memory: int = 100
              ) -> list[float | None]:
    shapes = PastShapes(block_rows, blocks, memory)
    return [shapes.update(value) for value in values]


def test_no_distance_until_a_past_window_no_longer_overlaps() -> None:
    out = distances([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    # Windows of 4 rows: the first ends at row 3, is kept at row 7, first compared at row 8.
    assert out[:8] == [None] * 8
    assert out[8] == pytest.approx(5.0)  # block means (6.5, 8.5) against (1.5, 3.5)


def test_a_repeated_pattern_is_at_distance_0_and_a_new_one_is_not() -> None:
    period = [0.0, 0.0, 4.0, 4.0]
    out = distances(period * 6 + [9.0, 9.0])
    assert out[8] == pytest.approx(2.0), "only one phase of the pattern is known yet"
    assert out[11:24] == [0.0] * 13, "every phase is known from row 11 on"
    assert out[24] is not None and out[24] > 0.0


def test_distances_follow_the_scale_of_the_values() -> None:
    values = [float(v % 7) for v in range(60)]
    small, large = distances(values), distances([10.0 * v for v in values])
    pairs = list(zip(small, large, strict=True))
    assert all(b is None if a is None else b == pytest.approx(10.0 * a) for a, b in pairs)
    assert any(a for a, _ in pairs)


def test_only_the_last_memory_windows_are_kept() -> None:
    values = [0.0] * 10 + [1.0] * 30 + [0.0, 0.0, 0.0, 0.0]
    assert distances(values, memory=1000)[-1] == 0.0, "the zeros of the start are remembered"
    assert distances(values, memory=5)[-1] == pytest.approx(1.0), "forgotten: the nearest is the ones"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        PastShapes(0, 8, 10)

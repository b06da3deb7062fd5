"""The NAB scorer: hand-checked cases, and the published reference scores."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.nab_scoring import (  # noqa: E402
    PROFILES,
    README_REFERENCES,
    DetectorOutput,
    load_result_dir,
    nab_dir,
    probationary_length,
    scaled_sigmoid,
    score_all_profiles,
    score_at_threshold,
    score_outputs,
)

NAB_DIR = nab_dir()
STANDARD = PROFILES["standard"]


def series(scores: dict[int, float], rows: int = 100, window: tuple[int, int] = (50, 59)) -> DetectorOutput:
    timestamps = [f"2015-03-01 00:{i // 60:02d}:{i % 60:02d}" for i in range(rows)]
    values = [scores.get(i, 0.0) for i in range(rows)]
    return DetectorOutput("f.csv", timestamps, values, [(timestamps[window[0]], timestamps[window[1]])])


def test_scaled_sigmoid_shape() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(3.5) == -1.0
    assert scaled_sigmoid(-0.5) > scaled_sigmoid(-0.1) > 0.0 > scaled_sigmoid(0.5)


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probationary_length(100) == 15
    assert probationary_length(15_900) == 750


def test_detection_at_window_start_is_perfect() -> None:
    result = score_outputs([series({50: 1.0})], STANDARD)
    assert result.raw == pytest.approx(1.0)
    assert result.normalised == pytest.approx(100.0)
    assert (result.true_positives, result.false_negatives, result.false_positives) == (1, 0, 0)


def test_only_the_first_detection_in_a_window_counts() -> None:
    early_only = score_at_threshold([series({52: 1.0})], STANDARD, 0.5)
    early_and_late = score_at_threshold([series({52: 1.0, 58: 1.0})], STANDARD, 0.5)
    assert early_and_late.raw == pytest.approx(early_only.raw)
    # Row 52 of a 10-row window: position -(59 - 52 + 1) / 10.
    assert early_only.raw == pytest.approx(scaled_sigmoid(-0.8) / scaled_sigmoid(-1.0))


def test_detections_in_probation_are_ignored() -> None:
    result = score_at_threshold([series({3: 1.0})], STANDARD, 0.5)
    assert result.false_positives == 0
    assert result.normalised == pytest.approx(0.0)


def test_false_positive_costs_fp_weight_far_from_windows_and_less_just_after() -> None:
    far = score_at_threshold([series({20: 1.0})], STANDARD, 0.5)
    just_after = score_at_threshold([series({61: 1.0})], STANDARD, 0.5)
    assert far.raw == pytest.approx(-1.0 - 0.11)
    assert -1.0 - 0.11 < just_after.raw < -1.0


def test_threshold_is_optimised_over_files_together() -> None:
    # The false positive scores higher than the true one: the best threshold
    # sits low enough to take both, since a window is worth more than 0.11.
    outputs = [series({20: 0.9, 50: 0.4})]
    result = score_outputs(outputs, STANDARD)
    assert result.threshold == pytest.approx(0.4)
    assert result.raw == pytest.approx(1.0 - 0.11)


def test_reward_low_fn_profile_doubles_the_missed_window_cost() -> None:
    result = score_at_threshold([series({})], PROFILES["reward_low_FN_rate"], 0.5)
    assert result.raw == pytest.approx(-2.0)
    assert result.normalised == pytest.approx(0.0)


@pytest.mark.skipif(not NAB_DIR.exists(), reason="NAB dev benchmark not found (set YUQING_NAB_DIR)")
@pytest.mark.parametrize("detector", sorted(README_REFERENCES))
def test_reproduces_published_reference_scores(detector: str) -> None:
    outputs = load_result_dir(NAB_DIR / "reference-results" / detector, NAB_DIR / "combined_windows_dev.json")
    assert len(outputs) == 5
    results = score_all_profiles(outputs)
    for profile, expected in README_REFERENCES[detector].items():
        assert results[profile].normalised == pytest.approx(expected, abs=0.1), profile

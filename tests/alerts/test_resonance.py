"""ARTime's algorithm: the fuzzy ART memory, the features, the score, and the published outputs."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from services.alerts.fuzzy_art import DualVigilanceArt, complement_code
from services.alerts.resonance import (
    ResonanceConfig,
    confidence,
    initial_vigilance,
    plan_for,
    resonance_scores,
    similarity,
)
from services.alerts.resonance_features import Downsampler, Levels, haar, window_features

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.nab_scoring import nab_dir  # noqa: E402

NAB_DIR = nab_dir()


def art(rho_lb: float = 0.6, rho_ub: float = 0.9) -> DualVigilanceArt:
    """A memory that has taken its first input (which only commits the all-ones category)."""
    memory = DualVigilanceArt(2, rho_lb, rho_ub)
    memory.learn(np.array([0.0, 0.0]))
    return memory


# -- the dual-vigilance fuzzy ART -----------------------------------------------------------


def test_complement_coding_appends_one_minus_each_feature() -> None:
    assert complement_code(np.array([0.25, 1.0])).tolist() == [0.25, 1.0, 0.75, 0.0]


def test_the_first_input_commits_an_all_ones_category_without_learning_it() -> None:
    memory = DualVigilanceArt(2, 0.6, 0.9)
    first = memory.learn(np.array([0.2, 0.4]))
    assert (first.new_cluster, first.similarity, first.energy) == (False, 0.0, 0.0)
    assert memory.categories == 1
    # Every input matches the all-ones box by half in features and in energy: 0.5^3 * 0.5^2.
    assert memory.learn(np.array([0.9, 0.1]), learning=False).similarity == pytest.approx(0.5**5)


def test_the_match_is_feature_similarity_cubed_times_energy_similarity_squared() -> None:
    memory = art()
    memory.learn(np.array([0.2, 0.4]))  # founds a cluster: weights [0.2, 0.4, 0.8, 0.6]
    probe = memory.learn(np.array([0.3, 0.4]), learning=False)
    # min(x, w) = [0.2, 0.4, 0.7, 0.6]: features 1.9 / 2.0; the last feature fits exactly.
    assert probe.similarity == pytest.approx(0.95**3)
    assert probe.energy == pytest.approx(1.0)
    moved = memory.learn(np.array([0.2, 0.3]), learning=False)
    # Now the last feature (the energy pair) misfits: (0.3 + 0.6) / (0.4 + 0.6).
    assert moved.energy == pytest.approx(0.9)
    assert moved.similarity == pytest.approx(0.95**3 * 0.9**2)


def test_a_far_input_founds_a_new_cluster_and_a_near_one_resonates() -> None:
    memory = art()
    assert memory.learn(np.array([0.2, 0.4])).new_cluster
    clusters = memory.clusters
    again = memory.learn(np.array([0.2, 0.4]))
    assert not again.new_cluster and again.similarity == pytest.approx(1.0)
    far = memory.learn(np.array([0.95, 0.95]))
    assert far.new_cluster and far.similarity < 0.6
    assert memory.clusters == clusters + 1


def test_between_the_vigilances_an_input_founds_a_category_of_the_same_cluster() -> None:
    memory = art(rho_lb=0.5, rho_ub=0.99)
    memory.learn(np.array([0.2, 0.4]))
    categories, clusters = memory.categories, memory.clusters
    middle = memory.learn(np.array([0.3, 0.4]))  # match 0.857: between 0.5 and 0.99
    assert not middle.new_cluster
    assert (memory.categories, memory.clusters) == (categories + 1, clusters)


def test_resonance_grows_the_box_so_that_inputs_inside_it_match_fully() -> None:
    memory = art(rho_lb=0.5, rho_ub=0.8)
    memory.learn(np.array([0.2, 0.4]))
    memory.learn(np.array([0.3, 0.4]))  # match 0.857 >= 0.8: the box now spans 0.2 to 0.3
    assert memory.learn(np.array([0.25, 0.4]), learning=False).similarity == pytest.approx(1.0)


def test_reading_without_learning_changes_nothing() -> None:
    memory = art()
    memory.learn(np.array([0.2, 0.4]))
    categories = memory.categories
    assert memory.learn(np.array([0.9, 0.9]), learning=False).new_cluster
    assert memory.categories == categories
    assert memory.learn(np.array([0.9, 0.9]), learning=False).similarity < 0.6


# -- the features -------------------------------------------------------------------------


def test_haar_lays_out_the_coarsest_coefficients_first_with_later_minus_earlier_details() -> None:
    assert haar(np.array([0.0, 1.0])) == pytest.approx([math.sqrt(0.5), math.sqrt(0.5)])
    step = haar(np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]))
    assert step == pytest.approx([math.sqrt(2), math.sqrt(2), 0, 0, 0, 0, 0, 0])
    ramp = haar(np.array([0.0, 1.0, 2.0, 3.0]))
    assert ramp == pytest.approx([3.0, 2.0, math.sqrt(0.5), math.sqrt(0.5)])


def test_haar_is_orthonormal_and_refuses_other_lengths() -> None:
    values = np.random.default_rng(1).normal(size=8)
    assert np.linalg.norm(haar(values)) == pytest.approx(np.linalg.norm(values))
    with pytest.raises(ValueError):
        haar(np.zeros(6))


def test_window_features_are_the_rescaled_transform_then_the_levels() -> None:
    window = np.array([0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75])
    features = window_features(window)
    assert features[8:].tolist() == window.tolist()
    # The step rescaled to 0..1 is [0]*4 + [1]*4; its transform is [√2, √2, 0 ...] rescaled.
    assert features[:8] == pytest.approx([1, 1, 0, 0, 0, 0, 0, 0])


def test_downsampling_keeps_a_spike_and_smooths_small_wiggles() -> None:
    down = Downsampler(4)
    assert [down.update(v) for v in (10.0, 10.0, 50.0, 10.0)] == [None, None, None, 50.0]
    assert [down.update(v) for v in (10.0, 10.0, 10.0, 10.4)] == [None, None, None, pytest.approx(10.1)]
    dip = [down.update(v) for v in (10.0, 10.0, 1.0, 10.0)]
    assert dip[-1] == 1.0


def test_levels_quantise_over_the_range_and_snap_to_the_running_median() -> None:
    levels = Levels(0.0, 80.0, levels=80, chomp=0.075)
    for _ in range(5):
        assert levels.update(40.0) == 0.5
    assert levels.update(44.0) == 0.5  # 0.55 is within 0.075 of the median level
    assert levels.update(60.0) == 0.75
    assert levels.update(40.6) == 0.5  # rounded to level 41, then snapped


# -- the score and the sizes --------------------------------------------------------------


def test_confidence_weighs_the_gaps_below_both_vigilances_and_the_energy_misfit() -> None:
    assert confidence(0.5, 1.0, rho_lb=0.6, rho_ub=0.8) == pytest.approx(0.6 * 0.35 + 0.2 * 0.65)
    assert confidence(0.5, 0.9, rho_lb=0.6, rho_ub=0.8) == pytest.approx(0.34 + 0.15)
    assert confidence(0.1, 0.2, rho_lb=0.6, rho_ub=0.8) == 1.0
    # A perfect match is read as 0.999, so the gaps stay finite.
    assert math.isfinite(confidence(1.0, 1.0, rho_lb=0.6, rho_ub=0.8))


def test_the_plan_follows_the_file_length() -> None:
    config = ResonanceConfig()
    assert plan_for(15902, config) == plan_for(5000, config)
    long = plan_for(15902, config)
    assert (long.probation, long.step, long.trend, long.mask) == (750, 7, 107, 12)
    short = plan_for(1010, config)  # 15% is 151 rows, made even
    assert (short.probation, short.step, short.trend) == (150, 1, 150)


def test_similarity_is_cosine_and_special_cases_an_empty_window() -> None:
    assert similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(math.sqrt(0.5))
    assert similarity(np.zeros(2), np.array([0.6, 0.8])) == pytest.approx(0.0)


def test_initial_vigilance_is_high_for_windows_that_repeat() -> None:
    same = np.tile(window_features(np.linspace(0.2, 0.4, 8)), (40, 1))
    assert initial_vigilance(same, trend=40, rho=0.8) == pytest.approx(1.0)
    mixed = np.random.default_rng(2).uniform(size=(40, 16))
    assert initial_vigilance(mixed, trend=40, rho=0.8) < 0.9


# -- the detector ---------------------------------------------------------------------------


def wave(rows: int = 3000, seed: int = 3) -> list[float]:
    rng = np.random.default_rng(seed)
    return [10 + 5 * math.sin(2 * math.pi * i / 48) + float(rng.normal(0, 0.2)) for i in range(rows)]


def test_a_spike_after_a_steady_probation_is_flagged_and_the_steady_rows_are_not() -> None:
    values = wave()
    values[2000] += 30
    scores = resonance_scores(values)
    flagged = [i for i, score in enumerate(scores) if score > 0]
    # The spike's downsampled block (4 rows on a 3,000-row file) ends at row 2003.
    assert flagged == [2003]
    assert scores[2003] == 1.0


@pytest.mark.skipif(not NAB_DIR.exists(), reason="NAB dev benchmark not found (set YUQING_NAB_DIR)")
@pytest.mark.parametrize("name", ["Twitter_volume_FB.csv", "Twitter_volume_CVS.csv"])
def test_reproduces_the_published_artime_output_row_for_row(name: str) -> None:
    with (NAB_DIR / "reference-results" / "ARTime" / name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ours = resonance_scores([float(row["value"]) for row in rows])
    theirs = [float(row["anomaly_score"]) for row in rows]
    assert sum(score > 0 for score in theirs) > 5
    assert ours == pytest.approx(theirs, abs=1e-6)

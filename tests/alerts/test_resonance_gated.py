"""The replay's default: ARTime's detections, scored with the gated detector's evidence too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.alerts.resonance import resonance_scores
from services.alerts.resonance_gated import (
    RepeatRule,
    ResonanceGatedDetector,
    evidence_score,
    resonance_gated_scores,
)


def series(rows: int = 6000, seed: int = 4) -> list[float]:
    """Poisson counts with a daily rhythm (288 rows a day), a surge and a dip."""
    rng = np.random.default_rng(seed)
    values = [float(rng.poisson(20 * (0.4 + 0.6 * math.sin(math.pi * (i % 288) / 288)))) for i in range(rows)]
    for i in range(4200, 4212):
        values[i] = values[i] * 5 + 30
    for i in range(5000, 5060):
        values[i] = 0.0
    return values


def test_evidence_is_the_rarity_on_the_score_scale_or_the_context() -> None:
    assert evidence_score(4.0, 0.1) == pytest.approx(0.8)
    assert evidence_score(1.0, 0.75) == pytest.approx(0.75)
    assert evidence_score(0.0, 0.0) == 0.0


def test_a_close_repeat_counts_only_when_it_scores_more() -> None:
    rule = RepeatRule(span_rows=10)
    assert rule.admit(100, 0.7) == 0.7
    assert rule.admit(105, 0.7) == 0.0, "as strong, within the span: silenced"
    assert rule.admit(110, 0.8) == 0.8, "stronger than the previous detection"
    assert rule.admit(121, 0.5) == 0.5, "beyond the span of the previous one"


def test_a_silenced_repeat_is_still_the_reference_for_the_next() -> None:
    rule = RepeatRule(span_rows=10)
    assert rule.admit(0, 0.9) == 0.9
    assert rule.admit(8, 0.6) == 0.0
    assert rule.admit(16, 0.6) == 0.0, "within 10 rows of the silenced one, and not stronger"
    assert rule.admit(24, 0.65) == 0.65


def test_only_artime_decides_where_and_the_evidence_only_raises_a_score() -> None:
    values = series()
    alone, scores = resonance_scores(values), resonance_gated_scores(values)
    flagged = [i for i, score in enumerate(scores) if score > 0]
    assert set(flagged) <= {i for i, score in enumerate(alone) if score > 0}
    assert all(scores[i] >= alone[i] for i in flagged)
    assert any(scores[i] > alone[i] for i in flagged), "some detection is promoted by the evidence"
    assert any(4200 <= i < 4200 + 2 * 7 for i in flagged), "the surge is found within two steps"


def test_scores_do_not_depend_on_the_scale() -> None:
    values = series()
    assert resonance_gated_scores([4 * v for v in values]) == resonance_gated_scores(values)


def test_given_the_file_range_and_length_each_score_comes_from_the_rows_up_to_it() -> None:
    values = series()
    full = resonance_gated_scores(values)
    detector = ResonanceGatedDetector(min(values), max(values), len(values))
    assert [detector.update(v) for v in values[:4300]] == full[:4300]


def test_the_cli_offers_every_replay_detector() -> None:
    from services.alerts.cli import SERIES_DETECTORS
    from services.alerts.replay import DEFAULT_DETECTOR, DETECTORS

    assert SERIES_DETECTORS == DETECTORS
    assert DEFAULT_DETECTOR == "resonance_gated"


def test_a_second_burst_within_artimes_mask_is_silenced_when_no_stronger() -> None:
    rng = np.random.default_rng(1)
    values = [float(rng.poisson(20 * (0.4 + 0.6 * math.sin(math.pi * (i % 288) / 288)))) for i in range(6000)]
    for start, factor in ((4200, 3), (4260, 7), (4330, 5)):  # bursts 60 and 70 rows apart
        for i in range(start, start + 12):
            values[i] = values[i] * factor + 30
    alone, scores = resonance_scores(values), resonance_gated_scores(values)
    plan = ResonanceGatedDetector(min(values), max(values), len(values)).resonance.plan
    flagged = [i for i, score in enumerate(alone) if score > 0]
    silenced = [i for i in flagged if scores[i] == 0]
    assert any(4260 <= i < 4330 for i in silenced), "ARTime finds the second burst; it is not reported again"
    for i in silenced:
        previous = max(j for j in flagged if j < i)
        assert i - previous <= plan.mask * plan.step

"""The quick leave-one-series-out evaluator of NAB trials, and the bench's kept low-volume table."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.bench_alerts import kept_lowvolume  # noqa: E402
from bench.nab_loo import Loaded, ScoreFn, _score, breakdown, evaluate  # noqa: E402

ROWS, WINDOW = 200, (100, 119)


def synthetic(name: str, spike_at: int) -> Loaded:
    """A flat series with one spike, labelled with one window at rows 100 to 119."""
    stamps = [f"2015-03-01 {i // 60:02d}:{i % 60:02d}:00" for i in range(ROWS)]
    values = [10.0 if i == spike_at else 0.0 for i in range(ROWS)]
    return Loaded(name, stamps, values, [(stamps[WINDOW[0]], stamps[WINDOW[1]])])


def spikes(values: list[float]) -> list[float]:
    return [1.0 if value > 5.0 else 0.0 for value in values]


def silent(values: list[float]) -> list[float]:
    return [0.0] * len(values)


def run(series: list[Loaded], candidates: list[ScoreFn]) -> dict[str, float]:
    return evaluate("test", candidates, series, workers=1, verbose=False, cache=None)


def test_a_detector_at_every_window_start_scores_100_and_the_null_one_0() -> None:
    names = ["realTweets/t0.csv", "realTweets/t1.csv", "x/a.csv"]
    series = [synthetic(name, WINDOW[0]) for name in names]
    assert run(series, [spikes]) == {"corpus": 100.0, "tweets": 100.0}
    assert run(series, [silent]) == {"corpus": 0.0, "tweets": 0.0}


def test_the_folds_choose_the_candidate_without_the_held_out_series() -> None:
    # Two series reward the spike detector, one series is harmed by it (a spike outside its
    # window): held out, that one is still scored with the spike detector its folds chose.
    series = [synthetic("x/a.csv", WINDOW[0]), synthetic("x/b.csv", WINDOW[0]), synthetic("x/c.csv", 60)]
    scores = run(series, [silent, spikes])
    # Held out: +1, +1, then -1 (missed) - 0.11 (the spike outside); null -3, perfect 3.
    assert scores["corpus"] == pytest.approx(round(100 * (1 + 1 - 1.11 + 3) / 6, 2))
    assert math.isnan(scores["tweets"])


def test_breakdown_counts_detections_outside_windows_and_missed_windows() -> None:
    outcome = breakdown([_score((spikes, synthetic("x/c.csv", 60)))], threshold=0.5)
    assert outcome["c.csv"] == {"fp": 1, "fn": 1, "tp": 0, "raw": -1.11}


def test_skipping_the_simulation_keeps_the_earlier_lowvolume_table(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    assert kept_lowvolume(path) == []
    path.write_text(json.dumps({"loo": {}, "lowvolume": [{"baseline": 0.5}]}), encoding="utf-8")
    assert kept_lowvolume(path) == [{"baseline": 0.5}]
    path.write_text("not json", encoding="utf-8")
    assert kept_lowvolume(path) == []

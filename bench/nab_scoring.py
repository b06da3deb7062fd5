"""Scoring of anomaly detectors with the Numenta Anomaly Benchmark (NAB) method.

An independent implementation of the scoring rules published with NAB
(https://github.com/numenta/NAB, Lavin and Ahmad 2015, "Evaluating Real-time
Anomaly Detection Algorithms"):

* every labelled anomaly window rewards its first detection with a scaled
  sigmoid of the detection's position: ``tp_weight`` at the left edge, close
  to 0 at the right edge;
* a window without any detection costs ``fn_weight``;
* a detection outside every window costs up to ``fp_weight`` (less when it
  follows a window closely, along the same sigmoid);
* the first 15% of each file's rows (at most 750) are a probationary period
  and are not scored;
* one threshold on the anomaly score is chosen to maximise the total over all
  scored files together (a detection is a row whose score is at or above it);
* the total is normalised as ``100 * (raw - null) / (perfect - null)``, where
  the null detector never detects and the perfect detector detects every
  window at its left edge.

Detector output files follow NAB's format: ``timestamp,value,anomaly_score``.
Label files follow NAB's ``combined_windows.json``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The dev half of the benchmark, next to the repository unless $YUQING_NAB_DIR says otherwise.
DEFAULT_NAB_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nab-realtweets-dev"
# Published in the benchmark's README (NAB protocol on these five files).
README_REFERENCES = {
    "ARTime": {"standard": 88.14, "reward_low_FP_rate": 82.3, "reward_low_FN_rate": 92.1},
    "contextOSE": {"standard": 76.01, "reward_low_FP_rate": 75.7, "reward_low_FN_rate": 77.8},
    "numenta": {"standard": 67.39, "reward_low_FP_rate": 63.8, "reward_low_FN_rate": 69.9},
}
PROBATION_PERCENT = 0.15
PROBATION_MAX_ROWS_BASE = 5000  # NAB caps probation at 15% of 5000 rows
TIMESTAMP_FORMAT_LENGTH = 19  # "YYYY-MM-DD HH:MM:SS", NAB's labels add microseconds


@dataclass(frozen=True)
class Profile:
    """One NAB application profile (its cost matrix)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
}


@dataclass(frozen=True)
class ScoredRow:
    """One row of a detector's output with the reward it earns if detected.

    ``window`` is ``None`` outside every window, otherwise ``(file, index)``.
    """

    file: str
    index: int
    anomaly_score: float
    reward: float
    window: tuple[str, int] | None


@dataclass(frozen=True)
class DetectorOutput:
    """A detector's scores for one data file, with that file's labelled windows."""

    name: str
    timestamps: list[str]
    scores: list[float]
    windows: list[tuple[str, str]]


@dataclass(frozen=True)
class WindowHit:
    """The first detection inside a window, in rows of its file."""

    file: str
    window: int
    row: int
    left: int
    right: int

    @property
    def rows_after_start(self) -> int:
        return self.row - self.left

    @property
    def rows_after_centre(self) -> float:
        """Rows after the window's centre, where NAB's labelled anomaly point lies."""
        return self.row - (self.left + self.right) / 2


@dataclass
class ProfileResult:
    """The outcome of scoring a set of files under one profile."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    true_positives: int
    false_negatives: int
    false_positives: int
    hits: list[WindowHit] = field(default_factory=list)

    @property
    def normalised(self) -> float:
        """NAB's normalised score: 0 for the null detector, 100 for the perfect one."""
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)

    @property
    def precision(self) -> float:
        """Detected windows over detected windows plus detections outside windows."""
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 0.0

    @property
    def recall(self) -> float:
        """Detected windows over all windows."""
        windows = self.true_positives + self.false_negatives
        return self.true_positives / windows if windows else 0.0


def nab_dir(argument: str | None = None) -> Path:
    """The benchmark directory: ``argument``, else ``$YUQING_NAB_DIR``, else the default."""
    return Path(argument or os.environ.get("YUQING_NAB_DIR") or DEFAULT_NAB_DIR)


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's reward curve: about +1 at -1 (window start), 0 at 0, down to -1 after 3."""
    if relative_position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probationary_length(num_rows: int) -> int:
    """Rows at the start of a file that are not scored."""
    return int(min(math.floor(PROBATION_PERCENT * num_rows), PROBATION_PERCENT * PROBATION_MAX_ROWS_BASE))


def _normalise_timestamp(value: str) -> str:
    return value.strip()[:TIMESTAMP_FORMAT_LENGTH]


def _window_bounds(timestamps: Sequence[str], windows: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    position = {ts: i for i, ts in enumerate(timestamps)}
    bounds = []
    for start, end in windows:
        left, right = position[_normalise_timestamp(start)], position[_normalise_timestamp(end)]
        bounds.append((left, right))
    return sorted(bounds)


def row_rewards(output: DetectorOutput, profile: Profile) -> list[ScoredRow]:
    """The reward each scored row would earn if it were a detection.

    Rows in the probationary period are left out.
    """
    bounds = _window_bounds(output.timestamps, output.windows)
    window_at: dict[int, int] = {}
    for number, (left, right) in enumerate(bounds):
        window_at.update(dict.fromkeys(range(left, right + 1), number))
    max_tp = scaled_sigmoid(-1.0)
    probation = probationary_length(len(output.timestamps))
    rows: list[ScoredRow] = []
    previous: tuple[int, int] | None = None
    for i, score in enumerate(output.scores):
        inside = window_at.get(i)
        if inside is not None:
            left, right = bounds[inside]
            position = -(right - i + 1) / (right - left + 1)
            reward = scaled_sigmoid(position) * profile.tp_weight / max_tp
            window: tuple[str, int] | None = (output.name, inside)
        else:
            reward = profile.fp_weight * _false_positive_reward(i, previous)
            window = None
        if inside is not None and i == bounds[inside][1]:
            previous = bounds[inside]
        if i >= probation:
            rows.append(ScoredRow(output.name, i, score, reward, window))
    return rows


def _false_positive_reward(index: int, previous_window: tuple[int, int] | None) -> float:
    if previous_window is None:
        return -1.0
    left, right = previous_window
    return scaled_sigmoid(abs(right - index) / (right - left))


def _windows_in(rows: Iterable[ScoredRow]) -> set[tuple[str, int]]:
    return {row.window for row in rows if row.window is not None}


def sweep_thresholds(rows: Sequence[ScoredRow], profile: Profile) -> list[tuple[float, float]]:
    """Total raw score at every distinct threshold, highest threshold first.

    A row is a detection when its score is at or above the threshold; inside a
    window only the earliest detection (the largest reward) counts.
    """
    windows = _windows_in(rows)
    best_in_window = dict.fromkeys(windows, -profile.fn_weight)
    fp_total = 0.0
    results: list[tuple[float, float]] = []
    current = math.inf
    for row in sorted(rows, key=lambda r: r.anomaly_score, reverse=True):
        if row.anomaly_score != current:
            results.append((current, fp_total + sum(best_in_window.values())))
            current = row.anomaly_score
        if row.window is None:
            fp_total += row.reward
        else:
            best_in_window[row.window] = max(best_in_window[row.window], row.reward)
    results.append((current, fp_total + sum(best_in_window.values())))
    return results


def best_threshold(rows: Sequence[ScoredRow], profile: Profile) -> tuple[float, float]:
    """The threshold with the highest total (the highest such threshold on ties)."""
    sweep = sweep_thresholds(rows, profile)
    return max(sweep, key=lambda item: item[1])


def score_at_threshold(
    outputs: Sequence[DetectorOutput], profile: Profile, threshold: float
) -> ProfileResult:
    """Score files at a fixed threshold, with counts and each window's first detection.

    As in NAB, the perfect detector catches every labelled window, while the
    null detector's penalty covers the windows that reach past the
    probationary period (in practice, all of them).
    """
    raw = 0.0
    tp = fn = fp = 0
    hits: list[WindowHit] = []
    all_windows = scorable_windows = 0
    for output in outputs:
        bounds = _window_bounds(output.timestamps, output.windows)
        rows = row_rewards(output, profile)
        all_windows += len(bounds)
        first_hit: dict[tuple[str, int], ScoredRow] = {}
        for row in rows:
            if row.anomaly_score < threshold:
                continue
            if row.window is None:
                raw += row.reward
                fp += 1
            elif row.window not in first_hit:
                first_hit[row.window] = row
        for window in sorted(_windows_in(rows)):
            scorable_windows += 1
            hit = first_hit.get(window)
            if hit is None:
                raw -= profile.fn_weight
                fn += 1
                continue
            raw += hit.reward
            tp += 1
            left, right = bounds[window[1]]
            hits.append(WindowHit(output.name, window[1], hit.index, left, right))
    return ProfileResult(
        profile=profile.name, threshold=threshold, raw=raw,
        null=-profile.fn_weight * scorable_windows, perfect=profile.tp_weight * all_windows,
        true_positives=tp, false_negatives=fn, false_positives=fp, hits=hits,
    )


def score_outputs(outputs: Sequence[DetectorOutput], profile: Profile) -> ProfileResult:
    """Optimise the threshold over all files together, then score them at it."""
    rows = [row for output in outputs for row in row_rewards(output, profile)]
    threshold, _ = best_threshold(rows, profile)
    return score_at_threshold(outputs, profile, threshold)


def score_all_profiles(outputs: Sequence[DetectorOutput]) -> dict[str, ProfileResult]:
    """Scores under NAB's three profiles, each with its own optimised threshold."""
    return {name: score_outputs(outputs, profile) for name, profile in PROFILES.items()}


def load_windows(labels_path: Path) -> dict[str, list[tuple[str, str]]]:
    """Windows by data file name (the last path part of NAB's relative path)."""
    raw: Mapping[str, list[list[str]]] = json.loads(labels_path.read_text(encoding="utf-8"))
    return {Path(key).name: [(start, end) for start, end in value] for key, value in raw.items()}


def load_detector_output(path: Path, windows: Sequence[tuple[str, str]]) -> DetectorOutput:
    """Read a ``timestamp,value,anomaly_score`` file."""
    timestamps: list[str] = []
    scores: list[float] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            timestamps.append(_normalise_timestamp(record["timestamp"]))
            scores.append(float(record["anomaly_score"]))
    return DetectorOutput(name=path.name, timestamps=timestamps, scores=scores, windows=list(windows))


def load_result_dir(results_dir: Path, labels_path: Path) -> list[DetectorOutput]:
    """Every labelled file's detector output found in ``results_dir``."""
    windows = load_windows(labels_path)
    return [
        load_detector_output(results_dir / name, file_windows)
        for name, file_windows in sorted(windows.items())
        if (results_dir / name).exists()
    ]


@dataclass(frozen=True)
class ThresholdCurve:
    """One file's raw score at each threshold of a grid, with its null and perfect totals."""

    name: str
    raw: list[float]
    null: float
    perfect: float


def threshold_curve(output: DetectorOutput, profile: Profile, thresholds: Sequence[float]) -> ThresholdCurve:
    """The file's raw score at every threshold of ``thresholds`` (what :func:`score_at_threshold` gives).

    Used to choose a threshold on some files and apply it to another one
    (leave-one-series-out) without rescoring every row for every choice.
    """
    rows = row_rewards(output, profile)
    outside = sorted((row.anomaly_score, row.reward) for row in rows if row.window is None)
    scores_outside = [score for score, _ in outside]
    suffix = [0.0] * (len(outside) + 1)
    for i in range(len(outside) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + outside[i][1]
    inside: dict[tuple[str, int], list[ScoredRow]] = {}
    for row in rows:
        if row.window is not None:
            inside.setdefault(row.window, []).append(row)
    raw = []
    for threshold in thresholds:
        total = suffix[bisect_left(scores_outside, threshold)]
        for window_rows in inside.values():
            first = next((row for row in window_rows if row.anomaly_score >= threshold), None)
            total += first.reward if first is not None else -profile.fn_weight
        raw.append(total)
    windows = len(_window_bounds(output.timestamps, output.windows))
    return ThresholdCurve(output.name, raw, -profile.fn_weight * len(inside), profile.tp_weight * windows)

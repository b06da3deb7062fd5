"""A quick leave-one-series-out evaluator for single-series detector trials on NAB.

``make bench-alerts`` (:mod:`bench.bench_alerts`) scores the replay's detectors
through the replay's own code path. Trying a variant does not need all of it:
this module scores every corpus series once per candidate with any function
``values -> scores`` (the whole file's values are given, so a variant may use
the file's length or range, as NAB lets a detector do), caches the scores, and
reports the leave-one-series-out standard score on the 53-series corpus and on
the five realTweets dev series (the same files, a subset of the corpus), with
the threshold (and the candidate, when there are several) chosen on the
training folds only, exactly as the bench does.

    from bench.nab_loo import evaluate
    evaluate("my variant", [my_scores])            # one candidate
    evaluate("knob", [partial(f, k=k) for k in ...])  # the folds choose among them
"""

from __future__ import annotations

import hashlib
import math
import pickle
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_alerts import CORPUS_DIR, CORPUS_LABELS, STANDARD, THRESHOLDS, leave_one_out, series_of
from bench.nab_scoring import DetectorOutput, ThresholdCurve, score_at_threshold, threshold_curve
from services.alerts.replay import check_order, read_counts_csv

ScoreFn = Callable[[list[float]], list[float]]
CACHE = Path(tempfile.gettempdir()) / "yuqing-nab-loo"


@dataclass(frozen=True)
class Loaded:
    name: str
    timestamps: list[str]
    values: list[float]
    windows: list[tuple[str, str]]


def load_corpus() -> list[Loaded]:
    """Every corpus series, read and checked as the replay reads it."""
    loaded = []
    for series in series_of(CORPUS_DIR, CORPUS_LABELS, "data"):
        rows = read_counts_csv(series.path)
        check_order(series.path, rows)
        stamps, values = [r.text[:19] for r in rows], [r.number for r in rows]
        loaded.append(Loaded(series.name, stamps, values, series.windows))
    return loaded


def _score(item: tuple[ScoreFn, Loaded]) -> tuple[DetectorOutput, ThresholdCurve]:
    function, series = item
    scores = [round(s, 6) for s in function(series.values)]
    output = DetectorOutput(Path(series.name).name, series.timestamps, scores, series.windows)
    return output, threshold_curve(output, STANDARD, THRESHOLDS)


def _cached(key: str, jobs: list[tuple[ScoreFn, Loaded]], workers: int, cache: Path | None) -> list[Any]:
    path = cache / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.pkl" if cache is not None else None
    if path is not None and path.exists():
        result: list[Any] = pickle.loads(path.read_bytes())
        return result
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_score, jobs))
    else:
        results = [_score(job) for job in jobs]
    if path is not None:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(pickle.dumps(results))
    return results


def evaluate(label: str, candidates: Sequence[ScoreFn], series: list[Loaded] | None = None,
             workers: int = 2, cache_key: str | None = None, verbose: bool = True,
             cache: Path | None = CACHE) -> dict[str, float]:
    """Leave-one-series-out standard scores (corpus 53, realTweets dev 5) of a trial.

    ``cache_key`` (default: ``label``) names the cached scores in ``cache``
    (None: no cache); change it when the trial's code changes. ``tweets`` is
    NaN when ``series`` holds no realTweets series.
    """
    series = series or load_corpus()
    table: dict[int, dict[str, tuple[DetectorOutput, ThresholdCurve]]] = {}
    for c, function in enumerate(candidates):
        results = _cached(f"{cache_key or label}#{c}", [(function, s) for s in series], workers, cache)
        table[c] = {s.name: r for s, r in zip(series, results, strict=True)}
    names = [s.name for s in series]
    tweets = [n for n in names if n.startswith("realTweets/")]
    corpus = leave_one_out(table, names)
    dev = leave_one_out(table, tweets)["standard"] if tweets else math.nan
    scores = {"corpus": corpus["standard"], "tweets": dev}
    if verbose:
        picks = sorted({(p["candidate"], p["threshold"]) for p in corpus["picks"].values()})
        print(f"{label:<60} corpus {scores['corpus']:6.2f}  tweets {scores['tweets']:6.2f}"
              f"  picks {picks[:4]}", flush=True)
    return scores


def breakdown(candidate: Sequence[tuple[DetectorOutput, ThresholdCurve]], threshold: float) -> dict[str, Any]:
    """Detections outside windows and missed windows per series at one threshold."""
    out = {}
    for output, _ in candidate:
        result = score_at_threshold([output], STANDARD, threshold)
        out[output.name] = {"fp": result.false_positives, "fn": result.false_negatives,
                            "tp": result.true_positives, "raw": round(result.raw, 3)}
    return out

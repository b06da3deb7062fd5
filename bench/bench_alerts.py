"""make bench-alerts: the surge detector on NAB's realTweets dev files.

Each series goes through ``services.alerts.replay.replay_counts_csv``, the same
code path as ``yuqing alerts replay``: one streaming detector, every score
computed from the rows at or before it. The scores are written in NAB's
detector-output format and scored with ``bench/nab_scoring.py`` (threshold
optimised over the files together, per profile), next to the published
detectors whose outputs ship with the benchmark data.

    .venv/bin/python bench/bench_alerts.py [--data DIR]

``DIR`` defaults to ``$YUQING_NAB_DIR``, else ``../shared/benchmarks/nab-realtweets-dev``
next to the repository. Results go to ``bench/results/alerts.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import RESULTS, write_results  # noqa: E402
from bench.nab_scoring import (  # noqa: E402
    PROFILES,
    README_REFERENCES,
    ProfileResult,
    load_result_dir,
    load_windows,
    nab_dir,
    score_all_profiles,
    score_at_threshold,
)
from services.alerts.detector import DetectorConfig  # noqa: E402
from services.alerts.replay import replay_counts_csv  # noqa: E402

LABELS = "combined_windows_dev.json"
DETECTOR_NAME = "yuqing"


def data_dir(argument: str | None) -> Path:
    path = nab_dir(argument)
    if not (path / LABELS).exists():
        raise SystemExit(f"no {LABELS} in {path}: pass --data or set YUQING_NAB_DIR")
    return path


def run_detector(data: Path, scores_dir: Path, config: DetectorConfig) -> float:
    """Replay every labelled series; returns seconds per 1,000 buckets."""
    rows = 0
    start = time.perf_counter()
    for name in sorted(load_windows(data / LABELS)):
        replay_counts_csv(data / "realTweets" / name, scores_dir / name, config)
        rows += sum(1 for _ in (data / "realTweets" / name).open()) - 1
    return 1000 * (time.perf_counter() - start) / rows


def summarise(result: ProfileResult, bucket_minutes: float) -> dict:
    after_centre = [hit.rows_after_centre * bucket_minutes for hit in result.hits]
    after_start = [hit.rows_after_start * bucket_minutes for hit in result.hits]
    return {
        "normalised": round(result.normalised, 2),
        "raw": round(result.raw, 4),
        "threshold": result.threshold,
        "windows_detected": result.true_positives,
        "windows_missed": result.false_negatives,
        "false_positives": result.false_positives,
        "precision": round(result.precision, 3),
        "recall": round(result.recall, 3),
        "median_minutes_after_labelled_point": _median(after_centre),
        "median_minutes_after_window_start": _median(after_start),
        "hits": [asdict(hit) for hit in result.hits],
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def print_table(ours: dict[str, ProfileResult], references: dict[str, dict[str, ProfileResult]]) -> None:
    names = list(PROFILES)
    print(f"{'detector':<16}" + "".join(f"{name:>20}" for name in names) + "   (README)")
    rows = [(DETECTOR_NAME, ours, None)] + [(n, r, README_REFERENCES.get(n)) for n, r in references.items()]
    for name, results, published in rows:
        cells = "".join(f"{results[p].normalised:>20.2f}" for p in names)
        note = "   " + " / ".join(str(published[p]) for p in names) if published else ""
        print(f"{name:<16}{cells}{note}")
    print("\nat each detector's standard-profile threshold:")
    for name, results, _ in rows:
        standard = results["standard"]
        windows = standard.true_positives + standard.false_negatives
        print(
            f"{name:<16}threshold {standard.threshold:.4f}: {standard.true_positives}/{windows} windows, "
            f"{standard.false_positives} false positives, precision {standard.precision:.3f}, "
            f"recall {standard.recall:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="benchmark directory (default: $YUQING_NAB_DIR)")
    args = parser.parse_args()
    data = data_dir(args.data)
    labels = data / LABELS
    config = DetectorConfig()
    scores_dir = RESULTS / "alerts-nab"
    seconds_per_1000 = run_detector(data, scores_dir, config)
    outputs = load_result_dir(scores_dir, labels)
    ours = score_all_profiles(outputs)
    shipped = score_at_threshold(outputs, PROFILES["standard"], config.fire_score)
    references = {
        folder.name: score_all_profiles(load_result_dir(folder, labels))
        for folder in sorted((data / "reference-results").iterdir())
        if folder.is_dir()
    }
    print_table(ours, references)
    bucket_minutes = config.bucket_seconds / 60
    summary = summarise(ours["standard"], bucket_minutes)
    print(
        f"median detection: {summary['median_minutes_after_labelled_point']} min after the "
        f"labelled point, {summary['median_minutes_after_window_start']} min after the window "
        f"start; {seconds_per_1000 * 1000:.0f} ms per 1,000 buckets"
    )
    print(
        f"at the shipped fire_score {config.fire_score}: standard {shipped.normalised:.2f}, "
        f"{shipped.true_positives} windows, {shipped.false_positives} false positives"
    )
    path = write_results("alerts", {
        "benchmark": "NAB realTweets dev (AAPL, AMZN, CRM, CVS, FB)",
        "detector_config": asdict(config),
        "seconds_per_1000_buckets": round(seconds_per_1000, 4),
        DETECTOR_NAME: {name: summarise(result, bucket_minutes) for name, result in ours.items()},
        "at_fire_score": summarise(shipped, bucket_minutes),
        "references_rescored": {
            name: {p: round(r.normalised, 2) for p, r in results.items()}
            | {"standard_detail": summarise(results["standard"], bucket_minutes)}
            for name, results in references.items()
        },
        "references_readme": README_REFERENCES,
    })
    print(f"wrote {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

"""Low volumes: the live detector on simulated Poisson streams, beside the statistical limit.

One key at a time: posts per 5-minute bucket are Poisson around a baseline
with a day rhythm (quiet nights, a daytime hump, local time) and a week rhythm
(weekends at 70%), mean ``baseline`` per bucket. After 14 days of history,
twelve weeks follow with a surge every three days on average: the rate times
``ratio`` for 30 to 120 minutes, at a random time.

The live detector (:class:`SurgeDetector` with the service's settings) fires
when a bucket's score reaches the tracker's ``fire_score``. Per cell:

* detection rate: surges with a fire between their start and their end;
* median delay: minutes from the surge's start to the end of the bucket that fired;
* false alerts per key per week: fires more than two hours from any surge,
  measured on the same streams; and fires on their surge-free twins (the same
  rhythm, no surge). The second is the one a quiet key lives with: a reported
  surge raises the onset bar for a day or two, which hides false alerts on
  streams with a surge every three days;
* the optimum: a one-sided Poisson CUSUM that knows the true baseline and the
  surge ratio, its threshold set on surge-free streams to the same false-alert
  rate (at least one per key per month, so that a silent detector is compared
  with a useful one), run on the same streams.

Goal: median delay within 1.5 times the optimum's at at most one false alert per key per month.

The streams are random. The detector's design was settled on streams of seeds
11 to 14; the reported table uses seeds 41 to 44 (the default), which played no
part in it. Another draw: ``--seed N`` (streams N, N+1, ...; their surge-free
twins, for the optimum's threshold, 100 above). Run with the default seeds,
the table also replaces the ``lowvolume`` list of ``bench/results/alerts.json``
(the rest of that file, the NAB tables, is left as it is).

    PYTHONPATH=. .venv/bin/python bench/bench_alerts_lowvolume.py [--seed 41] [--streams 4]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, write_results
from services.alerts.detector import DetectorConfig, SurgeDetector
from services.alerts.lifecycle import TrackerConfig

BUCKET_SECONDS = 300
BUCKETS_PER_DAY = 86_400 // BUCKET_SECONDS
WARM_DAYS, WEEKS = 14, 12
BASELINES = (0.5, 2.0, 10.0, 50.0)
RATIOS = (2.0, 3.0, 5.0)
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
QUIET_AROUND_SURGE = 24  # buckets (two hours) around a surge where a fire is not false
MONTH_WEEKS = 30 / 7
BUDGET_PER_WEEK = 1 / MONTH_WEEKS  # one false alert per key per month
DELAY_GOAL = 1.5  # times the optimum's median delay
REPORTED_SEED = 41  # the detector was designed on seeds 11 to 14, never on these
STREAMS = 4
QUIET_SEED_OFFSET = 100
LONG_SEED_OFFSET = 1000


@dataclass(frozen=True)
class Stream:
    rates: np.ndarray  # the true baseline per bucket
    counts: np.ndarray
    surges: list[tuple[int, int]]  # [start, end) in buckets


def rhythm(n: int, baseline: float) -> np.ndarray:
    """The baseline per bucket: day hump (UTC+8) times weekend factor, mean ``baseline``."""
    minutes = np.arange(n) * BUCKET_SECONDS / 60 + 8 * 60
    hour = (minutes / 60) % 24
    day = 0.25 + 1.5 * np.maximum(0.0, np.sin(np.pi * (hour - 6) / 16))
    weekday = (minutes // (24 * 60)) % 7
    week = np.where(weekday >= 5, 0.7, 1.0)
    shape = day * week
    out: np.ndarray = baseline * shape / shape.mean()
    return out


def simulate(baseline: float, ratio: float, seed: int, with_surges: bool = True) -> Stream:
    rng = np.random.default_rng(seed)
    n = (WARM_DAYS + 7 * WEEKS) * BUCKETS_PER_DAY
    rates = rhythm(n, baseline)
    lam = rates.copy()
    surges: list[tuple[int, int]] = []
    moment = WARM_DAYS * BUCKETS_PER_DAY
    while with_surges:
        moment += int(rng.exponential(3 * BUCKETS_PER_DAY)) + QUIET_AROUND_SURGE * 2
        length = int(rng.integers(6, 25))  # 30 to 120 minutes
        if moment + length + QUIET_AROUND_SURGE >= n:
            break
        surges.append((moment, moment + length))
        lam[moment:moment + length] *= ratio
        moment += length
    return Stream(rates, rng.poisson(lam), surges)


def live_fires(counts: np.ndarray) -> list[int]:
    """Buckets where the service's detector fires (after the warm-up)."""
    detector = SurgeDetector(DetectorConfig(bucket_seconds=BUCKET_SECONDS))
    fire = TrackerConfig().fire_score
    step = timedelta(seconds=BUCKET_SECONDS)
    fires = []
    for i, count in enumerate(counts.tolist()):
        if detector.update(START + i * step, count).score >= fire and i >= WARM_DAYS * BUCKETS_PER_DAY:
            fires.append(i)
    return fires


def cusum_statistic(counts: np.ndarray, rates: np.ndarray, ratio: float) -> np.ndarray:
    """The Poisson CUSUM for a rate change from ``rates`` to ``ratio * rates`` (reset at 0)."""
    increments = counts * math.log(ratio) - rates * (ratio - 1.0)
    out = np.empty(len(counts))
    s = 0.0
    for i, step in enumerate(increments.tolist()):
        s = max(0.0, s + step)
        out[i] = s
    return out


def cusum_fires(statistic: np.ndarray, threshold: float) -> list[int]:
    """One fire per excursion above the threshold, after the warm-up."""
    above = statistic >= threshold
    starts = np.flatnonzero(above & ~np.concatenate(([False], above[:-1])))
    return [int(i) for i in starts if i >= WARM_DAYS * BUCKETS_PER_DAY]


def false_per_week(fires: list[int], surges: list[tuple[int, int]]) -> float:
    false = [f for f in fires
             if not any(s - QUIET_AROUND_SURGE <= f < e + QUIET_AROUND_SURGE for s, e in surges)]
    return len(false) / WEEKS


def delays(fires: list[int], surges: list[tuple[int, int]]) -> list[float]:
    """Minutes from each detected surge's start to the end of its first firing bucket."""
    out = []
    for start, end in surges:
        hit = next((f for f in fires if start <= f < end), None)
        if hit is not None:
            out.append((hit - start + 1) * BUCKET_SECONDS / 60)
    return out


def calibrate(rates_streams: list[Stream], ratio: float, per_week: float) -> float:
    """The CUSUM threshold with ``per_week`` false alerts on surge-free streams (bisection)."""
    stats = [cusum_statistic(s.counts, s.rates, ratio) for s in rates_streams]
    low, high = 0.0, 60.0
    for _ in range(30):
        mid = (low + high) / 2
        rate = statistics.mean(false_per_week(cusum_fires(st, mid), []) for st in stats)
        low, high = (mid, high) if rate > per_week else (low, mid)
    return high


@lru_cache(maxsize=len(BASELINES))
def quiet_false_per_week(baseline: float, seeds: tuple[int, ...]) -> float:
    """The live detector's fires per key per week on surge-free streams (the same for every ratio)."""
    quiet = [simulate(baseline, 1.0, QUIET_SEED_OFFSET + seed, with_surges=False) for seed in seeds]
    return statistics.mean(false_per_week(live_fires(s.counts), []) for s in quiet)


def cell(baseline: float, ratio: float, seeds: tuple[int, ...]) -> dict[str, Any]:
    streams = [simulate(baseline, ratio, seed) for seed in seeds]
    quiet = [simulate(baseline, ratio, QUIET_SEED_OFFSET + seed, with_surges=False) for seed in seeds]
    quiet_false = quiet_false_per_week(baseline, seeds)
    fires = [live_fires(s.counts) for s in streams]
    surges = sum(len(s.surges) for s in streams)
    live_delays = [d for s, f in zip(streams, fires, strict=True) for d in delays(f, s.surges)]
    live_false = statistics.mean(false_per_week(f, s.surges) for s, f in zip(streams, fires, strict=True))
    target = max(live_false, BUDGET_PER_WEEK)
    threshold = calibrate(quiet, ratio, target)
    best = [cusum_fires(cusum_statistic(s.counts, s.rates, ratio), threshold) for s in streams]
    best_delays = [d for s, f in zip(streams, best, strict=True) for d in delays(f, s.surges)]
    return {
        "baseline_per_bucket": baseline, "surge_ratio": ratio, "surges": surges,
        "detection_rate": round(len(live_delays) / surges, 3),
        "median_delay_minutes": _median(live_delays),
        "false_alerts_per_key_week": round(live_false, 3),
        "false_alerts_per_key_week_surge_free": round(quiet_false, 3),
        "optimum_detection_rate": round(len(best_delays) / surges, 3),
        "optimum_median_delay_minutes": _median(best_delays),
        "optimum_false_alerts_per_key_week": round(target, 3),
        "goal_met": _goal_met(_median(live_delays), _median(best_delays), max(live_false, quiet_false)),
    }


def _goal_met(delay: float | None, optimum: float | None, false_per_week: float) -> bool:
    """Within the false-alert budget (with and without surges), and detecting within the delay goal."""
    if false_per_week > BUDGET_PER_WEEK or delay is None:
        return False
    return optimum is None or delay <= DELAY_GOAL * optimum


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def run_lowvolume(seed: int = REPORTED_SEED, streams: int = STREAMS) -> list[dict[str, Any]]:
    seeds = tuple(range(seed, seed + streams))
    rows = [cell(b, r, seeds) for b in BASELINES for r in RATIOS]
    print(f"\nlow volumes (Poisson, day and week rhythm, 5-minute buckets, surges of 30-120 min; "
          f"seeds {seeds[0]}-{seeds[-1]}):")
    print(f"{'baseline':>8} {'ratio':>5} | {'detected':>8} {'delay':>6} {'false/wk':>8} {'quiet/wk':>8} | "
          f"{'optimum':>8} {'delay':>6} {'at /wk':>7} | goal")
    for row in rows:
        print(f"{row['baseline_per_bucket']:>8g} {row['surge_ratio']:>5g} | {row['detection_rate']:>8.2f} "
              f"{_fmt(row['median_delay_minutes'])} {row['false_alerts_per_key_week']:>8.3f} "
              f"{row['false_alerts_per_key_week_surge_free']:>8.3f} | "
              f"{row['optimum_detection_rate']:>8.2f} {_fmt(row['optimum_median_delay_minutes'])} "
              f"{row['optimum_false_alerts_per_key_week']:>7.3f} | {'met' if row['goal_met'] else 'short'}")
    print(f"goal met in {sum(row['goal_met'] for row in rows)} of {len(rows)} cells")
    return rows


def _fmt(value: float | None) -> str:
    return f"{value:>6.1f}" if value is not None else f"{'-':>6}"


def surge_free_spend(seed: int, streams: int, weeks: int) -> dict[float, float]:
    """False alerts per key per week on long surge-free streams, per baseline: the budget a quiet key spends.

    Streams ``LONG_SEED_OFFSET + seed`` onwards, ``weeks`` long after the usual history.
    """
    spend = {}
    for baseline in BASELINES:
        fires = 0
        for k in range(streams):
            rng = np.random.default_rng(LONG_SEED_OFFSET + seed + k)
            rates = rhythm((WARM_DAYS + 7 * weeks) * BUCKETS_PER_DAY, baseline)
            fires += len(live_fires(rng.poisson(rates)))
        spend[baseline] = fires / (streams * weeks)
    return spend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=REPORTED_SEED, help="first stream's seed")
    parser.add_argument("--streams", type=int, default=STREAMS, help="streams per cell")
    parser.add_argument("--surge-free-weeks", type=int, default=0,
                        help="instead of the table: false alerts per key per week on this many weeks of "
                             "surge-free streams per baseline (seeds 1000 above)")
    args = parser.parse_args()
    if args.surge_free_weeks:
        spend = surge_free_spend(args.seed, args.streams, args.surge_free_weeks)
        print("surge-free false alerts per key per week:",
              ", ".join(f"{b:g}/bucket {v:.3f}" for b, v in spend.items()), f"(budget {BUDGET_PER_WEEK:.3f})")
        return
    rows = run_lowvolume(args.seed, args.streams)
    path = write_results("alerts_lowvolume", {"seed": args.seed, "streams": args.streams, "lowvolume": rows})
    print(f"wrote {path}")
    if (args.seed, args.streams) == (REPORTED_SEED, STREAMS):
        print(f"refreshed the lowvolume table of {refresh_alerts_results(rows)}")


def refresh_alerts_results(rows: list[dict[str, Any]], path: Path = RESULTS / "alerts.json") -> Path:
    """Replace only the ``lowvolume`` key of ``alerts.json``: the NAB tables (``loo``, ...) stay."""
    results = json.loads(path.read_text()) if path.exists() else {}
    results["lowvolume"] = rows
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    return path


if __name__ == "__main__":
    main()

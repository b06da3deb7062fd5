"""make bench-counting: the alerts worker's counting stage (stage 2), without Kafka.

Observations go through the same path as in ``watch_surges``: the JSON dict of
the internal topic -> ``Observation.from_dict`` -> ``SurgeWatch.add`` and
``advance`` per observation, then ``persist`` and a write-back flush per batch of
200, every flushed value serialised to JSON as Faust's changelog would. Posts
arrive at ``--event-rate`` per second of event time (100 by default), so
5-minute windows close, detectors run and post ids are forgotten while the
stream runs.

The figure to compare with is the 100x peak of ``docs/scaling.md`` (2,000
posts/s into one counting stage); the ratio printed is throughput / that peak.

    .venv/bin/python bench/bench_counting.py [--posts N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import write_results  # noqa: E402
from services.alerts.detector import DetectorConfig  # noqa: E402
from services.alerts.evidence import Observation  # noqa: E402
from services.alerts.lifecycle import TrackerConfig  # noqa: E402
from services.alerts.watch import SurgeWatch, WatchConfig  # noqa: E402
from services.alerts.windows import WindowPolicy  # noqa: E402
from services.alerts.writeback import WriteBack  # noqa: E402
from yuqing.contracts import AlertKey, Topic  # noqa: E402

PEAK_100X = 2000.0  # posts/s, docs/scaling.md
BATCH = 200
BUCKET, GRACE = 300, 120
START = datetime(2026, 11, 23, tzinfo=UTC).timestamp()


class ChangelogTable(dict):
    """A table whose writes pay what a changelog message costs here: JSON encoding."""

    encoded_bytes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        ChangelogTable.encoded_bytes += len(json.dumps(value, ensure_ascii=False))
        super().__setitem__(key, value)


def observations(n: int, event_rate: float, seed: int = 7) -> list[dict]:
    """The internal topic's messages: 10 topics, 200 regions, 50 sources, 256 clusters."""
    rng = random.Random(seed)
    topics = list(Topic)
    regions = [f"区域{i:03d}" for i in range(200)]
    sources = [f"source-{i:02d}" for i in range(50)]
    out = []
    for i in range(n):
        topic, region, source = rng.choice(topics), rng.choice(regions), rng.choice(sources)
        fingerprint = f"{rng.getrandbits(64):016x}"
        keys = [AlertKey(family="overall"), AlertKey(family="topic", topic=topic),
                AlertKey(family="source", source=source), AlertKey(family="cluster", cluster=fingerprint[:2]),
                AlertKey(family="topic_region", topic=topic, region=region)]
        event_time = START + i / event_rate + rng.uniform(-30, 0)
        obs = Observation(event_time=event_time, post_id=f"{rng.getrandbits(128):032x}",
                          fingerprint=fingerprint, source=source, negative=rng.random() < 0.4,
                          keywords=("停电", "电费", "抢修")[: rng.randint(1, 3)], keys=tuple(keys),
                          sentiment="negative")
        out.append({**obs.to_dict(), "p": i % 6, "o": i // 6, "n": 6})
    return out


def run(messages: list[dict]) -> dict[str, float]:
    tables = {name: WriteBack(ChangelogTable()) for name in ("windows", "detectors", "desk", "posts")}
    config = WatchConfig(window=WindowPolicy(BUCKET, GRACE), detector=DetectorConfig(bucket_seconds=BUCKET),
                         tracker=TrackerConfig(bucket_seconds=BUCKET))
    watch = SurgeWatch(config, **tables)
    now = datetime.now(UTC)
    ChangelogTable.encoded_bytes = 0
    writes = 0
    started = time.perf_counter()
    watermark = float("-inf")
    for i in range(0, len(messages), BATCH):
        for value in messages[i:i + BATCH]:
            obs = Observation.from_dict(value)
            watch.add(obs, partition=value["p"], offset=value["o"])
            watermark = max(watermark, obs.event_time)
            watch.advance(watermark, now=now)
        watch.persist()
        writes += sum(table.flush() for table in tables.values())
    elapsed = time.perf_counter() - started
    return {"posts": len(messages), "seconds": elapsed, "posts_per_s": len(messages) / elapsed,
            "changelog_messages_per_post": writes / len(messages),
            "changelog_bytes_per_post": ChangelogTable.encoded_bytes / len(messages),
            "posts_in_open_windows_at_end": len(tables["posts"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=60_000)
    parser.add_argument("--event-rate", type=float, default=100.0, help="posts per second of event time")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    messages = observations(args.posts, args.event_rate)
    passes = [run(messages) for _ in range(args.repeat)]
    best = max(passes, key=lambda r: r["posts_per_s"])
    median = sorted(p["posts_per_s"] for p in passes)[len(passes) // 2]
    print(f"counting stage: {args.posts} posts at {args.event_rate:g}/s of event time, batches of {BATCH}")
    print(f"  throughput median {median:,.0f} posts/s, best {best['posts_per_s']:,.0f} posts/s "
          f"(ratio to the 100x peak of {PEAK_100X:,.0f}/s: {median / PEAK_100X:.2f})")
    print(f"  changelog: {best['changelog_messages_per_post']:.2f} messages and "
          f"{best['changelog_bytes_per_post']:,.0f} bytes per post")
    path = write_results("counting", {"event_rate": args.event_rate, "passes": passes,
                                      "median_posts_per_s": round(median, 1),
                                      "ratio_to_100x_peak": round(median / PEAK_100X, 3)})
    print(f"wrote {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

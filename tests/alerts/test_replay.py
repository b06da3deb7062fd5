"""Backtests through the service's own detector and lifecycle."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.alerts.detector import DetectorConfig
from services.alerts.replay import (
    events_to_jsonl,
    format_event,
    replay_counts_csv,
    replay_posts_jsonl,
)
from yuqing.contracts import (
    AlertKey,
    AlertState,
    Channel,
    EnrichedPost,
    Sentiment,
    Topic,
    make_post_id,
)

START = datetime(2015, 3, 2, 0, 2, 53)


def write_counts(path: Path, counts: list[int], start: datetime = START, minutes: int = 5) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i, count in enumerate(counts):
            writer.writerow([(start + timedelta(minutes=minutes * i)).strftime("%Y-%m-%d %H:%M:%S"), count])


def read_scores(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def surge_counts(days: int = 4, seed: int = 1) -> list[int]:
    rng = np.random.default_rng(seed)
    rates = [20 * (0.4 + 0.6 * math.sin(math.pi * (i % 288) / 288)) for i in range(days * 288)]
    counts = [int(rng.poisson(rate)) for rate in rates]
    surge = 3 * 288 + 150
    for i in range(surge, surge + 12):
        counts[i] = counts[i] * 6 + 20
    return counts


def test_counts_replay_writes_nab_format(tmp_path: Path) -> None:
    write_counts(tmp_path / "in.csv", surge_counts())
    replay_counts_csv(tmp_path / "in.csv", tmp_path / "out.csv")
    rows = read_scores(tmp_path / "out.csv")
    source = read_scores(tmp_path / "in.csv")
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
    assert [(r["timestamp"], r["value"]) for r in rows] == [(r["timestamp"], r["value"]) for r in source]
    scores = [float(r["anomaly_score"]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    fire = DetectorConfig().fire_score
    first_alert = next(i for i, score in enumerate(scores) if score >= fire)
    assert first_alert in range(3 * 288 + 150, 3 * 288 + 153)


def test_counts_replay_is_causal(tmp_path: Path) -> None:
    counts = surge_counts()
    write_counts(tmp_path / "full.csv", counts)
    write_counts(tmp_path / "prefix.csv", counts[: 3 * 288 + 151])
    replay_counts_csv(tmp_path / "full.csv", tmp_path / "full-out.csv")
    replay_counts_csv(tmp_path / "prefix.csv", tmp_path / "prefix-out.csv")
    full, prefix = read_scores(tmp_path / "full-out.csv"), read_scores(tmp_path / "prefix-out.csv")
    assert full[: len(prefix)] == prefix


def test_counts_replay_rejects_a_config_with_another_bucket_size(tmp_path: Path) -> None:
    write_counts(tmp_path / "in.csv", [1, 2, 3], minutes=1)
    with pytest.raises(ValueError, match="60 s apart"):
        replay_counts_csv(tmp_path / "in.csv", tmp_path / "out.csv", DetectorConfig(bucket_seconds=300))


def test_counts_replay_reads_the_bucket_size_from_the_file(tmp_path: Path) -> None:
    write_counts(tmp_path / "in.csv", [1] * 100, minutes=1)
    replay_counts_csv(tmp_path / "in.csv", tmp_path / "out.csv")
    assert len(read_scores(tmp_path / "out.csv")) == 100


def enriched(i: int, created_at: datetime, topic: Topic, region: str | None) -> str:
    post = EnrichedPost(
        post_id=make_post_id("app-main", str(i)),
        source="app-main",
        channel=Channel.APP,
        external_id=str(i),
        text="停电了",
        created_at=created_at,
        received_at=created_at,
        region=region,
        topic=topic,
        topic_scores={topic: 1.0},
        sentiment=Sentiment.NEGATIVE,
        sentiment_scores={Sentiment.NEGATIVE: 1.0},
        fingerprint="0" * 16,
        redacted_text="停电了",
        model_version="test",
        enriched_at=created_at,
    )
    return post.model_dump_json()


def write_posts(path: Path) -> datetime:
    """Three quiet days of billing and outage posts, then an outage surge in 城东."""
    rng = np.random.default_rng(5)
    start = datetime(2024, 5, 6, tzinfo=UTC)
    lines, n = [], 0
    for bucket in range(4 * 288):
        moment = start + timedelta(minutes=5 * bucket)
        counts = {(Topic.BILLING, "城西"): rng.poisson(6), (Topic.OUTAGE, "城东"): rng.poisson(3)}
        for (topic, region), count in counts.items():
            for _ in range(int(count)):
                lines.append(enriched(n, moment + timedelta(seconds=int(rng.integers(300))), topic, region))
                n += 1
    surge = start + timedelta(days=3, hours=10)
    for k in range(12 * 40):
        lines.append(enriched(n + k, surge + timedelta(seconds=int(k * 7.5)), Topic.OUTAGE, "城东"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return surge


def test_posts_replay_reports_the_regional_surge_once(tmp_path: Path) -> None:
    surge = write_posts(tmp_path / "posts.jsonl")
    printed: list[str] = []
    events = replay_posts_jsonl(tmp_path / "posts.jsonl", echo=printed.append)
    fired = [e for e in events if e.state is AlertState.FIRING and not e.escalation]
    assert [e.key for e in fired] == [AlertKey(family="topic_region", topic=Topic.OUTAGE, region="城东")]
    event = fired[0]
    assert surge <= event.window_start < surge + timedelta(minutes=15)
    assert AlertKey(family="topic", topic=Topic.OUTAGE) in event.parents
    assert any(e.state is AlertState.RESOLVED and e.alert_id == event.alert_id for e in events)
    assert len(printed) == len(events) and "城东" in printed[0]
    assert printed[0] == format_event(events[0])
    assert json.loads(events_to_jsonl(events)[0])["alert_id"] == events[0].alert_id


def test_posts_replay_rejects_records_without_a_topic(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"created_at": "2024-05-06T00:00:00Z"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        replay_posts_jsonl(tmp_path / "bad.jsonl")

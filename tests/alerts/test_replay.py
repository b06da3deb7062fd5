"""Backtests through the service's own detector and lifecycle."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from services.alerts.replay import (
    SeriesError,
    events_to_jsonl,
    format_event,
    read_counts_csv,
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
    surge = 3 * 288 + 150
    assert scores[surge] == 1.0 == max(scores), "the surge is reported at its start, the strongest"
    assert max(scores[surge + 1:]) == 0.0, "and once"


def test_the_gated_detector_reports_once_per_rest(tmp_path: Path) -> None:
    write_counts(tmp_path / "in.csv", surge_counts())
    replay_counts_csv(tmp_path / "in.csv", tmp_path / "out.csv", detector="gated")
    scores = [float(r["anomaly_score"]) for r in read_scores(tmp_path / "out.csv")]
    events = [i for i, score in enumerate(scores) if score > 0.0]
    assert all(b - a > 100 for a, b in pairwise(events)), "one report per rest"
    surge = 3 * 288 + 150
    assert scores[surge] == 1.0, "the surge is reported at its start"
    assert max(scores[surge - 100:surge]) == 0.0
    replay_counts_csv(tmp_path / "in.csv", tmp_path / "combined.csv", detector="combined")
    combined = [float(r["anomaly_score"]) for r in read_scores(tmp_path / "combined.csv")]
    assert max(combined[surge:surge + 3]) == 1.0, "the surge is reported at its start"
    assert max(combined[surge + 12:]) < 1.0


def test_the_novelty_detector_stays_selectable(tmp_path: Path) -> None:
    write_counts(tmp_path / "in.csv", surge_counts())
    replay_counts_csv(tmp_path / "in.csv", tmp_path / "out.csv", detector="novelty")
    scores = [float(r["anomaly_score"]) for r in read_scores(tmp_path / "out.csv")]
    surge = 3 * 288 + 150
    assert max(range(len(scores)), key=scores.__getitem__) in range(surge, surge + 3)
    assert max(scores[surge + 12:]) < scores[surge], "the surge is reported at its start"
    with pytest.raises(ValueError, match="unknown detector"):
        replay_counts_csv(tmp_path / "in.csv", tmp_path / "out.csv", detector="htm")


def test_gated_replay_is_causal(tmp_path: Path) -> None:
    # The default reads the file's range and length first (tests/alerts/test_resonance_gated.py).
    counts = surge_counts()
    write_counts(tmp_path / "full.csv", counts)
    write_counts(tmp_path / "prefix.csv", counts[: 3 * 288 + 151])
    replay_counts_csv(tmp_path / "full.csv", tmp_path / "full-out.csv", detector="gated")
    replay_counts_csv(tmp_path / "prefix.csv", tmp_path / "prefix-out.csv", detector="gated")
    full, prefix = read_scores(tmp_path / "full-out.csv"), read_scores(tmp_path / "prefix-out.csv")
    assert full[: len(prefix)] == prefix


def test_counts_replay_takes_any_cadence_repeated_times_and_negative_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    moments = np.cumsum(rng.choice([0, 1, 7, 60], size=600))  # minutes: repeats and gaps
    values = rng.normal(-50.0, 2.0, size=600)
    values[500] = 40.0  # a jump far above anything seen
    path = tmp_path / "in.csv"
    path.write_text("timestamp,value\n" + "".join(
        f"{(START + timedelta(minutes=int(m))).isoformat(sep=' ')},{v:.4f}\n"
        for m, v in zip(moments, values, strict=True)))
    assert replay_counts_csv(path, tmp_path / "out.csv") == 600
    scores = [float(r["anomaly_score"]) for r in read_scores(tmp_path / "out.csv")]
    assert scores[500] == 1.0 and max(scores[501:]) < 1.0
    assert replay_counts_csv(path, tmp_path / "novelty.csv", detector="novelty") == 600
    scores = [float(r["anomaly_score"]) for r in read_scores(tmp_path / "novelty.csv")]
    assert max(range(600), key=scores.__getitem__) == 500


def test_gated_scores_do_not_depend_on_offset_or_scale(tmp_path: Path) -> None:
    # ARTime's levels are not mirror-symmetric; the default's scale invariance is in test_resonance_gated.py.
    counts = surge_counts()
    write_counts(tmp_path / "a.csv", counts)
    shifted = tmp_path / "b.csv"
    shifted.write_text((tmp_path / "a.csv").read_text().replace(",", ",-").replace("timestamp,-value",
                                                                                  "timestamp,value"))
    replay_counts_csv(tmp_path / "a.csv", tmp_path / "a-out.csv", detector="gated")
    replay_counts_csv(shifted, tmp_path / "b-out.csv", detector="gated")
    a = [float(r["anomaly_score"]) for r in read_scores(tmp_path / "a-out.csv")]
    b = [float(r["anomaly_score"]) for r in read_scores(tmp_path / "b-out.csv")]
    assert a == b, "a mirrored series is as surprising (drops count as much as rises)"


@pytest.mark.parametrize(("body", "message"), [
    ("time,count\n2015-03-01 00:00:00,1\n", r"expected the columns timestamp,value"),
    ("timestamp,value\n2015-03-01 00:00:00,1\n2015-03-01 00:05:00,lots\n", r"in\.csv:3: value 'lots'"),
    ("timestamp,value\n2015-03-01 00:00:00,1\n2015-03-01 00:05:00,nan\n", r"in\.csv:3: value 'nan'"),
    ("timestamp,value\nyesterday,1\n2015-03-01 00:05:00,2\n", r"in\.csv:2: timestamp 'yesterday'"),
    ("timestamp,value\n2015-03-01 00:05:00,1\n2015-03-01 00:00:00+08:00,2\n", r"time zone and some do not"),
    ("timestamp,value\n2015-03-01 00:05:00,1\n", r"need at least two rows"),
    # each finite, their span not: the detectors' levels came out NaN ('cannot convert float NaN')
    ("timestamp,value\n2015-03-01 00:00:00,1e308\n2015-03-01 00:05:00,-1e308\n",
     r"in\.csv: the values span -1e\+308 to 1e\+308"),
])
def test_a_series_that_cannot_be_used_is_one_clear_error(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "in.csv").write_text(body)
    with pytest.raises(SeriesError, match=message) as caught:
        replay_counts_csv(tmp_path / "in.csv", tmp_path / "out.csv")
    assert "\n" not in str(caught.value)


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


@pytest.mark.parametrize("line", [
    '{"created_at": "2024-05-06T00:00:00Z"}',
    # a region that is no name: "AlertKey: region: Input should be a valid string", naming no line
    '{"created_at": "2024-05-06T00:00:00Z", "topic": "outage", "region": 123}',
    '{"created_at": "2024-05-06T00:00:00Z", "topic": "outage", "received_at": 5}',
])
def test_posts_replay_names_the_line_of_a_record_it_cannot_read(tmp_path: Path, line: str) -> None:
    (tmp_path / "bad.jsonl").write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not an enriched post"):
        replay_posts_jsonl(tmp_path / "bad.jsonl")


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("timestamp,value\n2015-02-26 21:42:53,57\n2015-02-26 21:47:53,43\n", encoding="utf-8-sig")
    assert [r.number for r in read_counts_csv(path)] == [57.0, 43.0]


def test_the_command_reports_an_unusable_series_in_one_line_and_exit_status_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from yuqing.cli import app

    (tmp_path / "in.csv").write_text("timestamp,value\n2015-03-01 00:00:00,1\n2015-03-01 00:05:00,lots\n")
    result = CliRunner().invoke(app, ["alerts", "replay", "--input", str(tmp_path / "in.csv"),
                                      "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    expected = f"error: {tmp_path / 'in.csv'}:3: value 'lots' is not a finite number"
    assert result.output.strip().splitlines() == [expected]


def test_a_post_the_dump_holds_twice_counts_once(tmp_path: Path) -> None:
    # A posts.enriched dump holds a post once per write (enriched again after a restart, replayed);
    # the worker counts it once, and the backtest counted every copy.
    write_posts(tmp_path / "posts.jsonl")
    lines = (tmp_path / "posts.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "twice.jsonl").write_text("\n".join(lines + lines[-12 * 40:]) + "\n", encoding="utf-8")
    assert replay_posts_jsonl(tmp_path / "twice.jsonl") == replay_posts_jsonl(tmp_path / "posts.jsonl")


class _Steps:
    """Counts the detectors' steps, and stops a replay that would step for ever."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
        from services.alerts.detector import SurgeDetector

        self.count, step = 0, SurgeDetector._step

        def counted(detector: SurgeDetector, *args: object) -> object:
            self.count += 1
            if self.count > limit:
                raise AssertionError(f"more than {limit} detector steps")
            return step(detector, *args)

        monkeypatch.setattr(SurgeDetector, "_step", counted)


def test_posts_years_apart_or_dated_ahead_replay_as_the_worker_counts_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker forgets the recent history of a key silent for longer than max_gap_hours instead of
    # stepping through every empty bucket, and counts a post at most 300 s after its arrival, its
    # arrival at most now. The replay stepped every key through every 5-minute bucket between the
    # dump's first post and its last: posts 26 years apart took minutes per key, and one dated and
    # received "9999" never ended.
    now = datetime.now(UTC)
    ahead = json.loads(enriched(2, now - timedelta(days=1), Topic.OUTAGE, "城东"))
    ahead["created_at"] = ahead["received_at"] = "9999-01-01T00:00:00Z"
    posts = [enriched(0, datetime(2000, 1, 3, tzinfo=UTC), Topic.OUTAGE, "城东"),
             enriched(1, now - timedelta(days=1), Topic.OUTAGE, "城东"), json.dumps(ahead)]
    (tmp_path / "posts.jsonl").write_text("\n".join(posts) + "\n", encoding="utf-8")
    steps = _Steps(monkeypatch, limit=3 * 12 * 24 * 3)  # three keys, three days of buckets
    assert replay_posts_jsonl(tmp_path / "posts.jsonl") == []
    assert steps.count > 0

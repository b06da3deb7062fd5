"""Cold start: detectors warmed from stored posts, then a burst on a quiet township."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.detector import DetectorConfig, SurgeDetector
from services.alerts.warm import PastPost, changelog_records, parse_since, since_start, warm_detectors
from tests.alerts.streams import steady_posts, surge_posts
from tests.alerts.test_watch import NOW, _feed, _watch
from yuqing.contracts import AlertState

BUCKET = 1800
BURST_AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # noon local time


def test_a_burst_on_a_quiet_township_over_a_warmed_baseline_fires_one_alert_with_its_key():
    history = steady_posts(BURST_AT - timedelta(days=14), BURST_AT - timedelta(hours=2), mean=2.0, seed=3)
    entries = warm_detectors((PastPost.of(p) for p in history), DetectorConfig(bucket_seconds=BUCKET),
                             until=BURST_AT - timedelta(hours=2))
    assert "topic_region|topic=outage|region=河口镇" in entries
    tables: dict = {"detectors": {label: e.to_dict() for label, e in entries.items()}}
    live = steady_posts(BURST_AT - timedelta(hours=2), BURST_AT + timedelta(hours=3), mean=2.0, seed=4)
    burst = surge_posts(BURST_AT, region="河口镇", count=11, minutes=8)
    alerts = _feed(_watch(tables), sorted(live + burst, key=lambda p: p.created_at))
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    assert [a.key.label() for a in firing] == ["topic_region|topic=outage|region=河口镇"]
    assert firing[0].window_start == BURST_AT


def test_without_warming_the_new_key_rule_still_reports_the_burst():
    live = steady_posts(BURST_AT - timedelta(hours=2), BURST_AT + timedelta(hours=3), mean=2.0, seed=4)
    burst = surge_posts(BURST_AT, region="河口镇", count=11, minutes=8)
    alerts = _feed(_watch(), sorted(live + burst, key=lambda p: p.created_at))
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    assert firing and all(a.key.topic == "outage" for a in firing)
    assert min(a.window_start for a in firing) <= BURST_AT + timedelta(seconds=BUCKET)


def test_a_new_township_borrows_its_parents_rhythm():
    history = steady_posts(BURST_AT - timedelta(days=14), BURST_AT, mean=2.0, seed=3)
    newcomer = surge_posts(BURST_AT - timedelta(hours=20), region="新塘镇", count=6, minutes=600)
    config = DetectorConfig(bucket_seconds=BUCKET)
    entries = warm_detectors((PastPost.of(p) for p in history + newcomer), config, until=BURST_AT)
    topic = SurgeDetector.from_dict(entries["topic|topic=outage"].state, config)
    township = SurgeDetector.from_dict(entries["topic_region|topic=outage|region=新塘镇"].state, config)
    night, noon = BURST_AT - timedelta(hours=10), BURST_AT  # 02:00 and 12:00 local time
    assert township.expected(noon) / township.expected(night) == pytest.approx(
        topic.expected(noon) / topic.expected(night), rel=0.35)
    assert township.expected(noon) < topic.expected(noon) / 3


def test_records_are_what_the_table_writes():
    entries = warm_detectors([PastPost.of(p) for p in steady_posts(NOW - timedelta(days=1), NOW)],
                             DetectorConfig(bucket_seconds=BUCKET), until=NOW)
    key, value = next(changelog_records(entries))
    assert key.startswith(b'"') and b'"last_bucket"' in value


@pytest.mark.parametrize(("text", "seconds"), [("14d", 14 * 86_400), ("36h", 36 * 3600), ("90m", 5400)])
def test_since_takes_days_hours_or_minutes(text: str, seconds: int):
    assert parse_since(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "14", "d", "-3d", "0d", "2w"])
def test_a_bad_since_is_one_clear_error(text: str):
    with pytest.raises(ValueError, match="--since"):
        parse_since(text)


@pytest.mark.parametrize("text", ["99999999d", "9999999999d", "99999999999999999999h"])
def test_a_since_reaching_before_the_calendar_is_one_clear_error(text: str):
    with pytest.raises(ValueError, match=f"--since '{text}': reaches back before the year 1"):
        since_start(text, NOW)
    assert since_start("14d", NOW) == NOW - timedelta(days=14)


def test_the_command_says_so_in_one_line():
    from typer.testing import CliRunner

    from yuqing.cli import app

    result = CliRunner().invoke(app, ["alerts", "warm", "--since", "99999999d"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == "error: --since '99999999d': reaches back before the year 1"


def test_a_dump_is_warmed_through_the_bucket_of_its_last_post():
    posts = steady_posts(BURST_AT - timedelta(days=3), BURST_AT - timedelta(hours=1, minutes=20), mean=2.0)
    entries = warm_detectors((PastPost.of(p) for p in posts), DetectorConfig(bucket_seconds=BUCKET),
                             until=None)
    last_post = max(p.created_at for p in posts).timestamp()
    assert {e.last_bucket for e in entries.values()} == {int(last_post // BUCKET * BUCKET)}


def test_a_post_the_dump_holds_twice_is_warmed_once(tmp_path):
    # Enriched again after a restart, or replayed, a post is on posts.enriched twice; the worker
    # counts it once, and warming from a dump counted every copy into the baseline.
    from services.alerts.warm import posts_from_jsonl

    history = steady_posts(BURST_AT - timedelta(days=3), BURST_AT - timedelta(hours=2), mean=2.0)
    once, twice = tmp_path / "once.jsonl", tmp_path / "twice.jsonl"
    once.write_text("".join(p.model_dump_json() + "\n" for p in history), encoding="utf-8")
    twice.write_text("".join(p.model_dump_json() + "\n" for p in history + history[len(history) // 2:]),
                     encoding="utf-8")
    since = BURST_AT - timedelta(days=4)
    assert len(list(posts_from_jsonl(twice, since))) == len(history)
    config = DetectorConfig(bucket_seconds=BUCKET)
    assert (warm_detectors(posts_from_jsonl(twice, since), config, until=None)
            == warm_detectors(posts_from_jsonl(once, since), config, until=None))


def test_a_post_dated_ahead_in_the_dump_counts_when_the_worker_counts_it(tmp_path):
    # The worker counts a post at most max_future_seconds after its arrival, and its arrival at
    # most at its own clock. Warming read created_at alone: one post of a dump dated "9999" made
    # the warm-up step every bucket up to then (it never ended), and a post a month ahead left the
    # warmed detectors' last bucket a month ahead, where the worker judged none of those keys'
    # buckets (each already judged, it took) until that month had passed.
    from services.alerts.warm import posts_from_jsonl

    history = steady_posts(BURST_AT - timedelta(days=2), BURST_AT - timedelta(hours=2), mean=2.0)
    last = history[-1]
    far = datetime(9999, 1, 1, tzinfo=UTC)
    month = last.received_at + timedelta(days=30)
    ahead = [last.model_copy(update={"post_id": "a" * 32, "created_at": month}),
             last.model_copy(update={"post_id": "b" * 32, "received_at": far, "created_at": far})]
    dump = tmp_path / "posts.jsonl"
    dump.write_text("".join(p.model_dump_json() + "\n" for p in history + ahead), encoding="utf-8")
    posts = list(posts_from_jsonl(dump, BURST_AT - timedelta(days=4)))  # the worker's default bound
    assert len(posts) == len(history) + 2
    month_ahead = next(p for p in posts if p.created_at > last.created_at + timedelta(seconds=1))
    assert month_ahead.created_at <= last.received_at + timedelta(seconds=300)
    assert max(p.created_at for p in posts).timestamp() <= time.time() + 300  # arrival at most now
    entries = warm_detectors(posts, DetectorConfig(bucket_seconds=BUCKET), until=None)
    assert max(e.last_bucket for e in entries.values()) <= time.time() + 300

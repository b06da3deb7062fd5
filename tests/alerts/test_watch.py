"""The counting stage without Kafka: windows, detection, lifecycle, explanations."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from services.alerts.detector import DetectorConfig
from services.alerts.evidence import Observation
from services.alerts.lifecycle import TrackerConfig
from services.alerts.watch import STORE_ORDER, Counted, SurgeWatch, WatchConfig
from services.alerts.windows import WindowPolicy
from services.alerts.writeback import WriteBack
from tests.alerts.streams import SOURCES, make_post, steady_posts, surge_posts
from yuqing.contracts import Alert, AlertState, EnrichedPost, Sentiment, Topic

BUCKET = 1800
SURGE_AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 12:00 local time
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def _config(bucket: int = BUCKET) -> WatchConfig:
    return WatchConfig(window=WindowPolicy(bucket, 60), detector=DetectorConfig(bucket_seconds=bucket),
                       tracker=TrackerConfig(bucket_seconds=bucket, resolve_after_buckets=2))


def _watch(tables: dict | None = None, bucket: int = BUCKET) -> SurgeWatch:
    tables = tables if tables is not None else {}
    for name in ("windows", "detectors", "desk", "posts"):
        tables.setdefault(name, {})
    return SurgeWatch(_config(bucket), **tables)


def _feed(watch: SurgeWatch, posts: list[EnrichedPost], first_offset: int = 0) -> list[Alert]:
    alerts = []
    for offset, post in enumerate(posts, start=first_offset):
        observation = Observation.of(post, max_future_seconds=300)
        watch.add(observation, partition=0, offset=offset)
        advance = watch.advance(observation.event_time, now=NOW)
        alerts += [alert for closed in advance.closed for alert in closed.alerts]
        if offset % 1000 == 0:
            watch.persist()
    watch.persist()
    return alerts


@pytest.fixture(scope="module")
def surge_run() -> tuple[list[Alert], set[str]]:
    surge = surge_posts(SURGE_AT)
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(hours=3)) + surge,
                   key=lambda p: p.created_at)
    return _feed(_watch(), posts), {p.post_id for p in surge}


def test_a_township_surge_raises_one_explained_alert_that_resolves(surge_run):
    alerts, surge_ids = surge_run
    assert [(a.state, a.key.label()) for a in alerts] == [
        (AlertState.FIRING, "topic_region|topic=outage|region=青山乡"),
        (AlertState.RESOLVED, "topic_region|topic=outage|region=青山乡")]
    firing, resolved = alerts
    assert firing.alert_id == resolved.alert_id and firing.window_start == SURGE_AT
    assert firing.observed >= 40 and set(firing.sample_post_ids) <= surge_ids
    assert "停电" in firing.explanation.top_keywords and firing.explanation.negative_share == 1.0
    assert "topic|topic=outage" in firing.explanation.parents
    assert resolved.explanation == firing.explanation and resolved.window_end > firing.window_end
    # The same complaints made a source surge: folded in, not re-alerted (no issue ids are given
    # here, so there is no cluster key; tests/alerts/test_issue_keys.py folds an issue's surge).
    assert any(parent.startswith("source|") for parent in firing.explanation.parents)


def test_a_steady_stream_raises_nothing():
    posts = steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(hours=6), seed=5)
    assert _feed(_watch(), posts) == []


def test_a_restart_from_the_tables_gives_the_same_alerts(surge_run):
    surge = surge_posts(SURGE_AT)
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(hours=3)) + surge,
                   key=lambda p: p.created_at)
    tables: dict = {}
    half = len(posts) // 2
    first = _feed(_watch(tables), posts[:half])
    # A new instance on the same tables; the last 50 posts are read again, as after a crash.
    replay_from = half - 50
    second = _feed(_watch(tables), posts[replay_from:], first_offset=replay_from)
    assert first + second == surge_run[0]


def test_a_new_instance_on_the_tables_knows_the_alerts_firing_before_any_window_closes():
    surge = surge_posts(SURGE_AT)
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(minutes=40)) + surge,
                   key=lambda p: p.created_at)
    tables: dict = {}
    assert _watch(tables).firing() == {}
    alerts = _feed(_watch(tables), posts)
    assert [a.state for a in alerts] == [AlertState.FIRING]
    assert _watch(tables).firing() == {alerts[0].severity.value: 1}


def _post(minute: int, n: int) -> EnrichedPost:
    return make_post(index=f"w-{n}", created_at=SURGE_AT + timedelta(minutes=minute), topic=Topic.BILLING,
                     region="城关镇", source="app-main", text="电费", keywords=["电费"],
                     fingerprint=n, sentiment=Sentiment.NEUTRAL)


def test_late_and_replayed_posts_are_not_counted():
    watch = _watch(bucket=300)
    observe = [Observation.of(_post(minute, n), max_future_seconds=300) for n, minute in enumerate([0, 1, 7])]
    assert watch.add(observe[0], partition=0, offset=0) is Counted.COUNTED
    assert watch.add(observe[0], partition=0, offset=0) is Counted.REPLAYED
    assert watch.add(observe[0], partition=1, offset=5) is Counted.DUPLICATE  # written twice upstream
    assert watch.add(observe[2], partition=1, offset=6) is Counted.COUNTED
    closed = watch.advance(observe[2].event_time, now=NOW)  # 7 min: the first bucket closed at 6 min
    assert closed.closed_through == int(SURGE_AT.timestamp())
    assert watch.add(observe[1], partition=0, offset=1) is Counted.LATE
    assert watch.add(observe[0], partition=0, offset=2) is Counted.LATE
    def buckets() -> list[int]:
        return sorted(int(b) for entry in watch.windows.values() for b in entry["buckets"])

    start = int(SURGE_AT.timestamp())
    assert watch.totals() == {"counted": 2, "late": 2, "duplicate": 1}
    watch.persist()
    assert set(watch.posts) == {observe[0].post_id, observe[2].post_id}, "kept until the close is stored"
    # the closed bucket's evidence too (a batch read again closes it again); no issue given: no
    # cluster key
    assert buckets() == [start] * 4 + [start + 300] * 4
    watch.persist()
    assert set(watch.posts) == {observe[2].post_id}, "post ids of closed buckets are forgotten"
    assert buckets() == [start + 300] * 4


def _kill_stream(seed: int, n: int, spacing_s: int) -> tuple[list[EnrichedPost], list]:
    """Posts on two topics, two regions, two sources; every fifth written twice upstream."""
    rng = random.Random(seed)
    posts = [make_post(index=f"k-{i}", created_at=SURGE_AT + timedelta(seconds=i * spacing_s),
                       topic=rng.choice([Topic.BILLING, Topic.OUTAGE]),
                       region=rng.choice(["城关镇", "青山乡"]), source=rng.choice(["app-main", "wechat-gzh"]),
                       text="电费", keywords=["电费"], fingerprint=i, sentiment=Sentiment.NEUTRAL)
             for i in range(n)]
    stream = []
    for i, post in enumerate(posts):  # a copy follows its original closely, on the other partition
        stream.append((post, 0))
        if i % 5 == 0:
            stream.append((post, 1))
    offsets, messages = {0: 0, 1: 0}, []
    for post, partition in stream:
        messages.append((Observation.of(post, max_future_seconds=300), partition, offsets[partition]))
        offsets[partition] += 1
    return posts, messages


def _run_with_kills(messages: list, config: WatchConfig, seed: int, kill_rate: float) -> tuple[dict, int]:
    """Batches as the worker runs them; a killed batch stores a prefix of STORE_ORDER
    (the last table of it only in part), then the batch is read again."""
    rng = random.Random(seed)
    stores: dict[str, dict] = {name: {} for name in STORE_ORDER}
    committed, kills = 0, 0
    while committed < len(messages):
        tables = {name: WriteBack(store) for name, store in stores.items()}
        watch = SurgeWatch(config, **tables)
        batch = messages[committed:committed + rng.randint(5, 40)]
        watermark = float("-inf")
        for obs, partition, offset in batch:
            watch.add(obs, partition=partition, offset=offset)
            watermark = max(watermark, obs.event_time)
            watch.advance(watermark, now=NOW)
        watch.persist()
        killed = rng.random() < kill_rate
        stored = rng.randint(0, len(STORE_ORDER) - 1) if killed else len(STORE_ORDER)
        for position, name in enumerate(STORE_ORDER):
            table = tables[name]
            if position == stored:
                table._pending = {k: v for k, v in table._pending.items() if rng.random() < 0.5}
            elif position > stored:
                table._pending.clear()
            table.flush()
        kills += killed
        committed += 0 if killed else len(batch)
    return stores, kills


@pytest.mark.parametrize("seed", range(5))
def test_counts_match_a_recount_whatever_a_kill_leaves_behind(seed):
    """Windows still open: every key's count in every bucket equals a recount of the distinct posts."""
    posts, messages = _kill_stream(seed, 300, spacing_s=3)
    config = WatchConfig(window=WindowPolicy(300, 10 * 86400), detector=DetectorConfig(bucket_seconds=300),
                         tracker=TrackerConfig(bucket_seconds=300))
    stores, kills = _run_with_kills(messages, config, seed, kill_rate=0.5)
    recount: dict[str, dict[str, int]] = {}
    for post in posts:
        obs = Observation.of(post, max_future_seconds=300)
        bucket = str(int(obs.event_time) // 300 * 300)
        for key in obs.keys:
            counts = recount.setdefault(key.label(), {})
            counts[bucket] = counts.get(bucket, 0) + 1
    counted = {label: {b: v["count"] for b, v in entry["buckets"].items()}
               for label, entry in stores["windows"].items()}
    assert kills > 3
    assert counted == recount
    assert SurgeWatch(config, **stores).totals() == {"counted": 300, "late": 0, "duplicate": 60}


@pytest.mark.parametrize("seed", range(5))
def test_detectors_see_the_counts_of_a_clean_run_whatever_a_kill_leaves_behind(seed):
    """Windows closing all along: every detector ends in the state a run without kills gives."""
    _, messages = _kill_stream(seed, 600, spacing_s=7)
    config = WatchConfig(window=WindowPolicy(300, 30), detector=DetectorConfig(bucket_seconds=300),
                         tracker=TrackerConfig(bucket_seconds=300))
    clean, _ = _run_with_kills(messages, config, seed, kill_rate=0.0)
    killed, kills = _run_with_kills(messages, config, seed, kill_rate=0.5)
    assert kills > 10
    assert len(clean["detectors"]) >= 6
    assert killed["detectors"] == clean["detectors"]
    assert SurgeWatch(config, **killed).totals() == SurgeWatch(config, **clean).totals()


RUMOUR_REGIONS = ("青山乡", "城关镇", "河口镇", "柳塘镇", "白沙乡", "石桥镇",
                  "东坝镇", "西岭乡", "南湖镇", "北山乡", "新塘镇", "高桥乡")


def _rumour_posts(start: datetime, per_region: int = 3) -> list[EnrichedPost]:
    """One billing rumour, a few posts from each of many townships: no township surges on its own."""
    rng = random.Random(23)
    posts = [make_post(index=f"rumour-{region}-{i}",
                       created_at=start + timedelta(seconds=rng.uniform(0, 600)),
                       topic=Topic.BILLING, region=region, source=SOURCES[(i + len(region)) % len(SOURCES)],
                       text=f"听说{region}下个月电价要涨一倍", keywords=["电价", "涨价"],
                       fingerprint=rng.getrandbits(64), sentiment=Sentiment.NEGATIVE)
             for region in RUMOUR_REGIONS for i in range(per_region)]
    return sorted(posts, key=lambda p: p.created_at)


def test_a_topic_surge_spread_over_many_townships_fires_one_topic_alert():
    # _feed closes every bucket in its own advance() call, as the live worker does.
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(hours=3), seed=9)
                   + _rumour_posts(SURGE_AT), key=lambda p: p.created_at)
    firing = [a for a in _feed(_watch(), posts) if a.state is AlertState.FIRING]
    assert [a.key.label() for a in firing] == ["topic|topic=billing"]
    assert firing[0].window_start == SURGE_AT and firing[0].observed >= 36


def test_the_channels_of_a_topic_surge_fold_into_its_alert():
    # Four posts a township, through each source in its usual share, in 15-minute buckets:
    # the sources surge too, wait for the topic, and are listed in its alert instead.
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(hours=3), seed=9)
                   + _rumour_posts(SURGE_AT, per_region=4), key=lambda p: p.created_at)
    alerts = _feed(_watch(bucket=900), posts)
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    assert [a.key.label() for a in firing] == ["topic|topic=billing"]
    assert any(parent.startswith("source|") for parent in firing[0].explanation.parents)


def test_notifications_are_held_in_the_desk_until_delivered(surge_run):
    # The worker holds a batch's notifications in the desk, stored with the batch, and forgets
    # each once delivered: a restart from the tables sends those its predecessor did not.
    from services.alerts.outbox import MAX_OUTBOX_BYTES, transition_id

    alerts, _ = surge_run
    firing, resolved = alerts
    tables: dict = {}
    watch = _watch(tables)
    watch.hold_notifications([firing, resolved])
    restarted = _watch(tables)
    assert restarted.notifications() == [firing, resolved]
    assert transition_id(firing) != transition_id(resolved)
    restarted.notified([transition_id(firing)])
    assert _watch(tables).notifications() == [resolved]
    watch.hold_notifications([resolved])  # published again (a batch read again): held once
    assert _watch(tables).notifications() == [resolved]
    class Writes(dict):
        count = 0

        def __setitem__(self, key: str, value: object) -> None:
            Writes.count += 1
            super().__setitem__(key, value)

    quiet = _watch({"desk": Writes(tables["desk"])})
    quiet.hold_notifications([])
    quiet.notified(["no such notification"])
    assert Writes.count == 0  # a batch that changes nothing writes no desk to the changelog
    # bounded, the latest kept: the desk is one changelog message, within the broker's limit
    many = [firing.model_copy(update={"alert_id": f"{k:032x}"}) for k in range(2_000)]
    left_out = watch.hold_notifications(many)
    held = _watch(tables).notifications()
    assert 0 < len(held) < len(many) and held == many[-len(held):]
    # said (the worker logs them): a restart would not send these
    assert left_out == [transition_id(a) for a in [resolved, *many[:len(many) - len(held)]]]
    assert len(json.dumps(tables["desk"]["desk"]["outbox"])) <= MAX_OUTBOX_BYTES + 1000


def test_a_firing_alert_is_notified_again_before_alertmanager_would_end_it():
    # The worker posted a firing alert to Alertmanager once, ending a day later (endsAt); a surge
    # at three times the usual level fires for as long as it lasts, and after a day Alertmanager
    # told the duty desk it was resolved while it went on.
    from services.alerts.notify import FIRING_TTL, alertmanager_payload

    tables: dict = {}
    watch = _watch(tables)
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(minutes=40))
                   + surge_posts(SURGE_AT), key=lambda p: p.created_at)
    [firing] = _feed(watch, posts)
    watch.hold_notifications([firing])
    every = FIRING_TTL / 2
    assert watch.due_refreshes(firing.emitted_at + every - timedelta(minutes=1), every) == []
    later = firing.emitted_at + every
    [again] = _watch(tables).due_refreshes(later, every)  # from the stored desk
    assert again == firing.model_copy(update={"emitted_at": later})
    [posted] = alertmanager_payload(again)
    assert posted["endsAt"] == (later + FIRING_TTL).isoformat()  # a day past the last post
    watch.hold_notifications([again])
    assert watch.due_refreshes(later + every - timedelta(minutes=1), every) == []
    assert watch.due_refreshes(later + every, every) != []
    quiet = steady_posts(SURGE_AT + timedelta(minutes=40), SURGE_AT + timedelta(hours=4), seed=2)
    [resolved] = _feed(watch, quiet, first_offset=len(posts))
    assert resolved.state is AlertState.RESOLVED
    assert watch.due_refreshes(later + 10 * every, every) == []  # resolved: never again


def _alert_count(state: str, severity: str) -> float:
    from services.alerts import metrics

    return metrics.REGISTRY.get_sample_value(
        "yuqing_alerts_alerts_total", {"state": state, "severity": severity}) or 0.0


@pytest.mark.parametrize("stored", range(len(STORE_ORDER)))
def test_each_alert_event_is_counted_once_though_a_killed_batch_publishes_it_again(surge_run, stored):
    # yuqing_alerts_alerts_total was counted as alerts were published: a batch killed before it
    # was stored is read again and publishes its alerts again, and the restarted worker counted
    # them again (Prometheus' increase() adds both processes). The worker counts what a stored
    # batch added to the desk's tally.
    # A batch killed after its detectors (and windows) were stored and before its desk was: read
    # again, the close found its keys judged already and no evidence left, so the surge did not
    # fire again; the desk never knew the alert the killed batch had published, which was never
    # notified and never resolved. Each closed bucket's verdicts and evidence are kept until the
    # close is stored, and the batch read again fires it as before.
    from services.alerts.worker import record_published

    clean, _ = surge_run
    kinds = {(a.state.value, a.severity.value) for a in clean}
    before = {kind: _alert_count(*kind) for kind in kinds}
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(hours=3))
                   + surge_posts(SURGE_AT), key=lambda p: p.created_at)
    messages = [(Observation.of(post, max_future_seconds=300), offset) for offset, post in enumerate(posts)]
    stores: dict[str, dict] = {name: {} for name in STORE_ORDER}
    rng = random.Random(3)
    committed, published, killed = 0, [], set()
    while committed < len(messages):
        tables = {name: WriteBack(store) for name, store in stores.items()}
        watch = SurgeWatch(_config(), **tables)
        stored_tally = watch.published()
        batch = messages[committed:committed + rng.randint(20, 200)]
        alerts = []
        for obs, offset in batch:
            watch.add(obs, partition=0, offset=offset)
            alerts += [a for closed in watch.advance(obs.event_time, now=NOW).closed for a in closed.alerts]
        watch.persist()
        published += alerts
        if alerts and committed not in killed:
            killed.add(committed)  # killed before the desk was stored: read again
            for name in STORE_ORDER[:stored]:
                tables[name].flush()
            continue
        for name in STORE_ORDER:
            tables[name].flush()
        record_published(stored_tally, SurgeWatch(_config(), **stores).published())
        committed += len(batch)
    assert len(killed) >= 2 and len(published) > len(clean)  # alerts published again
    assert {(a.alert_id, a.state) for a in published} == {(a.alert_id, a.state) for a in clean}
    assert SurgeWatch(_config(), **stores).firing() == {}  # resolved
    assert SurgeWatch(_config(), **stores).published() == {
        f"{state}:{severity}": 1 for state, severity in kinds}
    assert {kind: _alert_count(*kind) - before[kind] for kind in kinds} == {kind: 1.0 for kind in kinds}


def test_a_restarted_worker_reports_the_surge_scores_of_the_last_closed_window_at_once():
    # The surge score gauge was set only when a window closed: a restarted worker exported none
    # until its next close, and YuqingSurgeScoreSustained (30 minutes at the firing level) began
    # its 30 minutes again after every restart. The desk keeps the scores; a restart sets them.
    from services.alerts import metrics
    from services.alerts.worker import FAMILIES, record_stored_state

    def exported() -> dict[str, float | None]:
        return {family: metrics.REGISTRY.get_sample_value("yuqing_alerts_surge_score", {"family": family})
                for family in FAMILIES}

    tables: dict = {}
    watch = _watch(tables)
    assert watch.surge_scores() is None  # nothing closed yet: nothing to report
    posts = sorted(steady_posts(SURGE_AT - timedelta(days=3), SURGE_AT + timedelta(minutes=40))
                   + surge_posts(SURGE_AT), key=lambda p: p.created_at)
    last: dict[str, float] = {}
    for offset, post in enumerate(posts):
        observation = Observation.of(post, max_future_seconds=300)
        watch.add(observation, partition=0, offset=offset)
        advance = watch.advance(observation.event_time, now=NOW)
        last = advance.closed[-1].family_max if advance.closed else last
    watch.persist()
    assert last["topic_region"] >= 0.6  # the surge's window was the last closed
    for family in FAMILIES:
        metrics.SURGE_SCORE.labels(family=family).set(0.0)  # a new process

    record_stored_state(_watch(tables))
    assert exported() == {family: last.get(family, 0.0) for family in FAMILIES}
    record_stored_state(None)  # a worker that gave the counting stage up reports no score
    assert exported() == dict.fromkeys(FAMILIES, 0.0)

"""Acceptance of the alerts worker: the real process, real Kafka, replayed history.

Enriched posts are written straight into the test's ``posts.enriched`` with
event times in the past: three days of a steady stream with a day rhythm
(15-minute windows), then, for one test, 40 outage complaints from one township
within ten minutes, then more quiet hours so that the surge's windows close.
The surge test also kills the worker (SIGKILL) half-way through the history:
the restarted worker resumes from its changelog-backed tables.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from kafka import KafkaConsumer

from services.alerts.notify import idempotency_key
from services.alerts.windows import WindowPolicy
from tests.alerts.streams import steady_posts, surge_posts
from tests.alerts.test_watch import _rumour_posts
from tests.conftest import free_port
from tests.integration.conftest import Pipeline, wait_until
from yuqing.contracts import Alert, AlertState, EnrichedPost
from yuqing.contracts.codec import decode, encode
from yuqing.kafka import make_producer
from yuqing.settings import KafkaSettings
from yuqing.topics import LogicalTopic

pytestmark = pytest.mark.integration

BUCKET_SECONDS = 900
GRACE_SECONDS = 60
SURGE_AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # a Wednesday, 12:00 local time
HISTORY = timedelta(days=3)
AFTER = timedelta(hours=3)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list]]:
    """An Alertmanager stand-in: records the bodies posted to /api/v2/alerts."""
    received: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/api/v2/alerts", received
    server.shutdown()


def _start_alerts(pipeline: Pipeline) -> None:
    pipeline.env.update({
        "YUQING_ALERTS_BUCKET_SECONDS": str(BUCKET_SECONDS),
        "YUQING_ALERTS_GRACE_SECONDS": str(GRACE_SECONDS),
        "YUQING_ALERTS_IDLE_CLOSE_SECONDS": "0",  # replayed history is never live anyway
        "YUQING_ALERTS_SESSION_TIMEOUT_S": "10",  # the killed worker leaves the group sooner
    })
    pipeline.start("alerts")


def _produce(settings: KafkaSettings, posts: list[EnrichedPost]) -> None:
    producer = make_producer(settings, client_id="test-alerts", linger_ms=20)
    topic = settings.topic(LogicalTopic.POSTS_ENRICHED)
    for post in posts:
        producer.send(topic, key=post.post_id.encode(), value=encode(post))
    producer.flush(timeout=60)
    producer.close()


def _alert_reader(settings: KafkaSettings) -> Callable[[], list[Alert]]:
    consumer = KafkaConsumer(settings.topic(LogicalTopic.ALERTS), bootstrap_servers=settings.servers(),
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=500)
    seen: list[Alert] = []

    def read() -> list[Alert]:
        for batch in consumer.poll(timeout_ms=500).values():
            seen.extend(decode(Alert, record.value) for record in batch)
        return seen

    return read


def _closed_bucket(pipeline: Pipeline) -> float:
    text = httpx.get(pipeline.url("alerts") + "/metrics", timeout=5).text
    found = re.search(r"^yuqing_alerts_closed_bucket_timestamp_seconds (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_surge_raises_one_explained_alert_and_then_resolves(
    pipeline: Pipeline, kafka_settings: KafkaSettings, webhook: tuple[str, list]
):
    url, notifications = webhook
    pipeline.env.update({"YUQING_ALERTS_WEBHOOK_URL": url, "YUQING_ALERTS_WEBHOOK_FORMAT": "alertmanager"})
    _start_alerts(pipeline)
    surge = surge_posts(SURGE_AT, region="青山乡", count=40, minutes=10)
    baseline = steady_posts(SURGE_AT - HISTORY, SURGE_AT + AFTER)
    _produce(kafka_settings, sorted(baseline + surge, key=lambda p: p.created_at))
    read = _alert_reader(kafka_settings)
    halfway = (SURGE_AT - HISTORY / 2).timestamp()
    wait_until(lambda: _closed_bucket(pipeline) >= halfway, 120, "half of the history to be counted")
    pipeline.kill("alerts")
    pipeline.start("alerts")

    wait_until(lambda: any(a.state is AlertState.RESOLVED for a in read()), 150, "the surge to resolve")
    alerts = read()
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    assert len({a.alert_id for a in alerts}) == 1, [a.key.label() for a in alerts]
    alert = firing[0]
    assert (alert.key.family, alert.key.topic.value, alert.key.region) == ("topic_region", "outage", "青山乡")
    assert alert.window_start >= SURGE_AT and alert.observed > 3 * alert.expected
    assert 40 <= alert.observed <= 43  # the surge and the odd regular post, each counted once
    surge_ids = {p.post_id for p in surge}
    assert 1 <= len(alert.sample_post_ids) <= 5 and set(alert.sample_post_ids) <= surge_ids
    assert "停电" in alert.explanation.top_keywords and "app-main" in alert.explanation.top_sources
    assert alert.explanation.negative_share == 1.0 and "青山乡" in alert.explanation.summary
    assert "topic|topic=outage" in alert.explanation.parents
    resolved = [a for a in alerts if a.state is AlertState.RESOLVED]
    assert len(resolved) == 1 and resolved[0].window_end > alert.window_end

    wait_until(lambda: len(notifications) == 2, 30, "the firing and resolved notifications")
    assert [path for path, _ in notifications] == ["/api/v2/alerts"] * 2
    [[firing_note], resolved_notes] = [body for _, body in notifications]
    assert firing_note["labels"]["region"] == "青山乡" and firing_note["labels"]["alert_id"] == alert.alert_id
    # every severity the alert may have fired with is ended, its last one included
    assert resolved_notes[-1]["labels"]["severity"] == resolved[0].severity.value
    assert {note["endsAt"] for note in resolved_notes} == {resolved[0].window_end.isoformat()}


def test_steady_stream_with_day_rhythm_raises_no_alert(pipeline: Pipeline, kafka_settings: KafkaSettings):
    _start_alerts(pipeline)
    end = SURGE_AT + AFTER
    _produce(kafka_settings, steady_posts(SURGE_AT - HISTORY, end, seed=23))
    last_closable = (end - timedelta(seconds=2 * BUCKET_SECONDS + GRACE_SECONDS)).timestamp()
    wait_until(lambda: _closed_bucket(pipeline) >= last_closable, 150, "the last windows to close")
    read = _alert_reader(kafka_settings)
    for _ in range(6):  # a few polls: the first ones may only join the topic
        alerts = read()
    assert alerts == [], [a.explanation.summary for a in alerts]


def test_a_rumour_over_many_townships_raises_one_topic_alert(
    pipeline: Pipeline, kafka_settings: KafkaSettings,
):
    # Buckets close one at a time in the live worker: the pending topic alert must survive between them.
    _start_alerts(pipeline)
    rumour = _rumour_posts(SURGE_AT, per_region=4)  # through each source in its usual share
    _produce(kafka_settings, sorted(steady_posts(SURGE_AT - HISTORY, SURGE_AT + AFTER, seed=9) + rumour,
                                    key=lambda p: p.created_at))
    read = _alert_reader(kafka_settings)
    wait_until(lambda: any(a.state is AlertState.FIRING for a in read()), 150, "the rumour to fire")
    last_closable = (SURGE_AT + AFTER - timedelta(seconds=2 * BUCKET_SECONDS + GRACE_SECONDS)).timestamp()
    wait_until(lambda: _closed_bucket(pipeline) >= last_closable, 150, "the last windows to close")
    firing = [a for a in read() if a.state is AlertState.FIRING]
    assert [a.key.label() for a in firing] == ["topic|topic=billing"]  # its channels fold into it
    assert firing[0].observed >= len(rumour) and firing[0].window_start == SURGE_AT


def _firing(pipeline: Pipeline) -> dict[str, float]:
    text = httpx.get(pipeline.url("alerts") + "/metrics", timeout=5).text
    return {severity: float(value) for severity, value
            in re.findall(r'^yuqing_alerts_firing\{severity="(\w+)"\} (\S+)$', text, re.M)}


def _surge_scores(pipeline: Pipeline) -> dict[str, float]:
    text = httpx.get(pipeline.url("alerts") + "/metrics", timeout=5).text
    return {family: float(value) for family, value
            in re.findall(r'^yuqing_alerts_surge_score\{family="(\w+)"\} (\S+)$', text, re.M)}


def _surge_fired(pipeline: Pipeline, kafka_settings: KafkaSettings
                 ) -> tuple[list[EnrichedPost], Callable[[], list[Alert]]]:
    """Start the worker and wait for 青山乡's surge to fire over the history, which goes on to just
    after it (no quiet half hour follows to resolve it); the posts and the alert reader."""
    _start_alerts(pipeline)
    surge = surge_posts(SURGE_AT, region="青山乡", count=40, minutes=10)
    baseline = steady_posts(SURGE_AT - HISTORY, SURGE_AT + timedelta(minutes=40))
    posts = sorted(baseline + surge, key=lambda p: p.created_at)
    _produce(kafka_settings, posts)
    read = _alert_reader(kafka_settings)
    wait_until(lambda: any(a.state is AlertState.FIRING for a in read()), 150, "the surge to fire")
    return posts, read


def test_a_restarted_worker_reports_the_alerts_still_firing_before_any_window_closes(
    pipeline: Pipeline, kafka_settings: KafkaSettings
):
    posts, read = _surge_fired(pipeline, kafka_settings)
    wait_until(lambda: sum(_firing(pipeline).values()) == 1, 30, "the gauge to count the alert")
    # Every window the history can close, closed: the last ones close only once the other
    # partition has gone idle (wall clock), so the value read too early moves on after the restart.
    last = max(p.created_at for p in posts).timestamp()
    final = WindowPolicy(BUCKET_SECONDS, GRACE_SECONDS).closable_through(last)
    wait_until(lambda: _closed_bucket(pipeline) == final, 60, f"the windows through {final} to close")
    before, closed, scores = _firing(pipeline), _closed_bucket(pipeline), _surge_scores(pipeline)
    assert set(scores) == {"overall", "topic", "topic_region", "source", "cluster"}
    assert max(scores.values()) > 0
    pipeline.kill("alerts")

    pipeline.start("alerts")  # no post arrives after the restart: no window closes
    wait_until(lambda: _firing(pipeline) == before, 60, f"the gauge to show {before} again")
    assert not any(a.state is AlertState.RESOLVED for a in read())
    # the surge scores too (YuqingSurgeScoreSustained began its 30 minutes again after a restart)
    assert _surge_scores(pipeline) == scores
    # the last closed window and the open windows too (they read 0 until a window closed)
    assert _closed_bucket(pipeline) == closed > 0
    metrics = httpx.get(pipeline.url("alerts") + "/metrics", timeout=5).text
    open_windows = re.search(r"^yuqing_alerts_window_keys (\S+)$", metrics, re.M)
    assert open_windows and float(open_windows.group(1)) > 0


def test_a_firing_notification_the_worker_did_not_deliver_before_it_died_is_delivered_once(
    pipeline: Pipeline, kafka_settings: KafkaSettings
):
    # The webhook is down (503) when the surge fires; the worker retries, and is killed meanwhile.
    # The notification waited in memory only: the restarted worker never sent it, and the duty desk
    # never heard of the surge (its alert stayed in the alerts topic and the search API).
    answers: list[tuple[int, dict]] = []
    up = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = 200 if up.is_set() else 503
            answers.append((status, body[0]))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pipeline.env.update({"YUQING_ALERTS_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/api/v2/alerts",
                             "YUQING_ALERTS_WEBHOOK_FORMAT": "alertmanager",
                             "YUQING_ALERTS_WEBHOOK_MAX_ATTEMPTS": "20"})
        _, read = _surge_fired(pipeline, kafka_settings)
        wait_until(lambda: len(answers) >= 2, 30, "the webhook to be tried and retried")
        pipeline.kill("alerts")
        up.set()

        pipeline.start("alerts")  # no post arrives after the restart: no window closes
        [alert] = [a for a in read() if a.state is AlertState.FIRING]
        delivered = lambda: [body for status, body in answers if status == 200]  # noqa: E731
        wait_until(lambda: delivered(), 60, "the firing notification to be delivered")
        time.sleep(5)  # a second delivery, if any, comes within the retries' first waits
        [note] = delivered()
        assert note["labels"]["alert_id"] == alert.alert_id and note["endsAt"] > note["startsAt"]
        # every attempt, before the kill and from the restarted worker's outbox, is one notification
        assert {body["annotations"]["idempotency_key"] for _, body in answers} == {idempotency_key(alert)}
    finally:
        server.shutdown()

"""The worker's pure parts: routing posts (the error boundary) and wiring settings."""

import base64
import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.alerts import metrics, worker
from services.alerts.evidence import Observation
from services.alerts.keys import OTHER, BoundedLabel, SourceLags
from services.alerts.settings import AlertsSettings
from services.alerts.worker import SERVICE, ChangelogReceipts, route, watch_config
from yuqing.consumer import InvalidMessage, Record, Runtime
from yuqing.contracts import DeadLetter, EnrichedPost
from yuqing.contracts.codec import decode
from yuqing.settings import KafkaSettings
from yuqing.topics import SCHEMAS_DIR


def _message(value: bytes | None, offset: int = 0) -> Record:
    return Record("t.posts.enriched", 1, offset, b"k", value)


def test_every_enriched_example_becomes_an_observation():
    examples = sorted((SCHEMAS_DIR / "posts.enriched" / "examples").glob("*.json"))
    assert examples
    for i, path in enumerate(examples):
        routed = route(_message(path.read_bytes(), i), AlertsSettings())
        assert isinstance(routed, Observation) and {k.family for k in routed.keys} >= {"overall", "topic"}


def test_poison_messages_become_dead_letters_with_their_reason():
    settings = AlertsSettings()
    runtime = Runtime.create(SERVICE, KafkaSettings(), settings.consumer)
    for value in (None, b"\xff\xfe", b"[1, 2]", b'{"post_id": "x"}'):
        record = _message(value, offset=7)
        invalid = route(record, settings)
        assert isinstance(invalid, InvalidMessage)
        assert (invalid.partition, invalid.offset, invalid.error_class) == (1, 7, "ContractError")
        output = runtime.dead_letter(record, invalid)
        letter = decode(DeadLetter, output.value)
        assert output.topic == runtime.dlq_topic and output.key == b"k"
        assert (letter.partition, letter.offset, letter.service) == (1, 7, "alerts")
        assert letter.error_class == "ContractError" and letter.error_message == invalid.reason
        assert base64.b64decode(letter.original_b64) == (value or b"")


def _dead_letters(reason: str) -> float:
    return metrics.DEAD_LETTERS.labels(reason=reason)._value.get()


def test_dead_letters_are_counted_under_the_documented_reasons(monkeypatch):
    example = next((SCHEMAS_DIR / "posts.enriched" / "examples").glob("*.json")).read_bytes()
    before = {reason: _dead_letters(reason) for reason in worker.DEAD_LETTER_REASONS}
    poison = route(_message(b'{"post_id": "x"}'), AlertsSettings())
    assert isinstance(poison, InvalidMessage) and poison.reason.startswith("contract: ")
    worker._count_dead_letter(poison)

    def unusable(*args: object, **kwargs: object) -> Observation:
        raise ValueError("year 10000 is out of range")

    monkeypatch.setattr(Observation, "of", unusable)
    failed = route(_message(example), AlertsSettings())
    assert isinstance(failed, InvalidMessage) and failed.reason == "processing: year 10000 is out of range"
    assert failed.error_class == "ValueError"  # the dead letter keeps the exception's class
    worker._count_dead_letter(failed)
    after = {reason: _dead_letters(reason) for reason in worker.DEAD_LETTER_REASONS}
    assert after == {reason: before[reason] + 1 for reason in worker.DEAD_LETTER_REASONS}
    labels = {sample.labels["reason"]
              for metric in metrics.DEAD_LETTERS.collect() for sample in metric.samples}
    assert labels <= set(worker.DEAD_LETTER_REASONS)


def test_the_dead_letter_cap_is_the_shared_consumer_setting(monkeypatch):
    monkeypatch.setenv("YUQING_CONSUMER_DLQ_MAX_CONSECUTIVE", "3")
    monkeypatch.setenv("YUQING_CONSUMER_DLQ_WINDOW", "50")
    limit = AlertsSettings().consumer.dlq_limit()
    assert (limit.max_consecutive_count, limit.window) == (3, 50)


def test_settings_reach_the_detector_and_the_lifecycle():
    config = watch_config(AlertsSettings(bucket_seconds=900, resolve_after_seconds=1800, min_count=3))
    assert config.detector.bucket_seconds == config.tracker.bucket_seconds == 900
    assert config.tracker.resolve_after_buckets == 2 and config.detector.min_count == 3
    assert config.tracker.realert_after_buckets == 96


def test_buckets_must_divide_an_hour():
    with pytest.raises(ValidationError):
        AlertsSettings(bucket_seconds=420)


@pytest.mark.parametrize("offset", [24, -30, 15])
def test_a_utc_offset_no_clock_uses_is_refused_at_start(offset):
    # A day or more was accepted and every window's detection failed on it (timezone() refuses it).
    with pytest.raises(ValidationError, match="utc_offset_hours"):
        AlertsSettings(utc_offset_hours=offset)
    assert watch_config(AlertsSettings(utc_offset_hours=-12)).detector.utc_offset_hours == -12
    assert watch_config(AlertsSettings(utc_offset_hours=5.5)).detector.utc_offset_hours == 5.5


def _regions_keyed(post: dict, tmp_path) -> dict[str, list[str]]:
    places = tmp_path / "places.toml"
    places.write_text('[[regions]]\nname = "河口镇"\n', encoding="utf-8")
    none = tmp_path / "none.toml"
    none.write_text("", encoding="utf-8")  # no regions
    record = _message(json.dumps(post, ensure_ascii=False).encode())
    return {settings.places_file.name: [k.region for k in route(record, settings).keys if k.region]
            for settings in (AlertsSettings(places_file=places), AlertsSettings(places_file=none))}


def _example_without_region() -> dict:
    example = SCHEMAS_DIR / "posts.enriched" / "examples" / "outage-complaint.json"
    post = json.loads(example.read_text(encoding="utf-8"))
    post.update({"region": None, "text": "河口停电+1", "redacted_text": "河口停电+1"})
    return post


def test_an_older_post_without_a_region_is_keyed_by_the_configured_places(tmp_path):
    post = _example_without_region()
    del post["inferred_region"]  # written before the NLP worker inferred regions
    assert _regions_keyed(post, tmp_path) == {"places.toml": ["河口镇"], "none.toml": []}


def test_a_post_without_a_region_is_keyed_by_the_region_the_nlp_worker_inferred(tmp_path):
    post = _example_without_region()
    assert _regions_keyed({**post, "inferred_region": "河口镇"}, tmp_path) == {
        "places.toml": ["河口镇"], "none.toml": ["河口镇"]}
    # The NLP worker found none: the alerts worker does not guess again.
    assert _regions_keyed({**post, "inferred_region": None}, tmp_path) == {
        "places.toml": [], "none.toml": []}


def test_a_table_write_names_its_changelog_partition_so_faust_never_hashes_with_stale_metadata():
    # Faust's own partitioner reads the producer's cached metadata without waiting, and a
    # changelog created a moment before a start was not in it yet (the worker stopped).
    sent: list[tuple[object, ...]] = []

    class Table:
        name = "windows"

        def send_changelog(self, *args: object) -> str:
            sent.append(args)
            return "future"

    table = Table()
    receipts = ChangelogReceipts(table, timeout_s=1.0)
    table.send_changelog(None, b"key", b"value")
    table.send_changelog(0, b"other", b"value")
    assert sent == [(0, b"key", b"value"), (0, b"other", b"value")]
    assert receipts.pending == ["future", "future"]


def test_every_notification_outcome_is_exported_before_the_first_notification():
    # YuqingAlertsNotificationsFailing reads increase() of the outcomes; a series born at its first
    # failure (value 1) shows no increase, so one surge notified while the webhook was down, the
    # case that matters, raised no platform alert, and the duty desk heard of nothing at all.
    def value(outcome: str) -> float | None:
        return metrics.REGISTRY.get_sample_value("yuqing_alerts_notifications_total", {"outcome": outcome})

    before = {outcome: value(outcome) or 0.0 for outcome in ("sent", "rejected", "failed", "dropped")}
    assert worker.make_notifier(AlertsSettings(webhook_url="http://127.0.0.1:9/api/v2/alerts")) is not None
    assert {outcome: value(outcome) for outcome in before} == before


def _lag(source: str) -> float | None:
    return metrics.REGISTRY.get_sample_value("yuqing_alerts_event_lag_seconds", {"source": source})


def _post_from(source: str, lag_seconds: float) -> EnrichedPost:
    example = next((SCHEMAS_DIR / "posts.enriched" / "examples").glob("*.json")).read_bytes()
    post = decode(EnrichedPost, example)
    return post.model_copy(update={"source": source,
                                   "received_at": post.created_at + timedelta(seconds=lag_seconds)})


def test_the_event_lag_of_a_late_source_is_not_overwritten_by_on_time_ones():
    lags, sources = SourceLags(period=60, expiry=3 * 3600), BoundedLabel(2)
    worker.record_lag(_post_from("lag-test-forum", 1200), lags, sources, now=0)
    for t in range(1, 50):
        worker.record_lag(_post_from("lag-test-weibo", 20), lags, sources, now=t)
    worker.record_lag(_post_from("lag-test-rare-a", 30), lags, sources, now=50)
    worker.record_lag(_post_from("lag-test-rare-b", 900), lags, sources, now=51)
    assert (_lag("lag-test-forum"), _lag("lag-test-weibo")) == (1200, 20)
    assert _lag(OTHER) == 900  # past the source cap, the highest of the rarer sources
    assert _lag("lag-test-rare-b") is None

    worker.record_lag(_post_from("lag-test-weibo", 20), lags, sources, now=3 * 3600 + 10)
    worker.expire_lags(lags, now=3 * 3600 + 10)
    assert _lag("lag-test-forum") is None and _lag("lag-test-weibo") == 20

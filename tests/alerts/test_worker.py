"""The worker's pure parts: routing posts (the error boundary) and wiring settings."""

import pytest
from faust.types.tuples import Message
from pydantic import ValidationError

from services.alerts.evidence import Observation
from services.alerts.settings import AlertsSettings
from services.alerts.worker import route, watch_config
from yuqing.contracts import DeadLetter
from yuqing.topics import SCHEMAS_DIR


def _message(value: bytes | None, offset: int = 0) -> Message:
    return Message("t.posts.enriched", 1, offset, 0.0, 0, None, b"k", value, None)


def test_every_enriched_example_becomes_an_observation():
    examples = sorted((SCHEMAS_DIR / "posts.enriched" / "examples").glob("*.json"))
    assert examples
    for i, path in enumerate(examples):
        routed = route(_message(path.read_bytes(), i), AlertsSettings())
        assert isinstance(routed, Observation) and {k.family for k in routed.keys} >= {"overall", "topic"}


def test_poison_messages_become_dead_letters_with_their_reason():
    for value in (None, b"\xff\xfe", b"[1, 2]", b'{"post_id": "x"}'):
        letter = route(_message(value, offset=7), AlertsSettings())
        assert isinstance(letter, DeadLetter)
        assert (letter.partition, letter.offset, letter.service) == (1, 7, "alerts")
        assert letter.error_class == "ContractError" and letter.error_message


def test_settings_reach_the_detector_and_the_lifecycle():
    config = watch_config(AlertsSettings(bucket_seconds=900, resolve_after_seconds=1800, min_count=3))
    assert config.detector.bucket_seconds == config.tracker.bucket_seconds == 900
    assert config.tracker.resolve_after_buckets == 2 and config.detector.min_count == 3
    assert config.tracker.realert_after_buckets == 96


def test_buckets_must_divide_an_hour():
    with pytest.raises(ValidationError):
        AlertsSettings(bucket_seconds=420)

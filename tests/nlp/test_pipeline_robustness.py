"""Odd posts either become enriched records or dead letters with a reason; never a crash."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from services.nlp.pipeline import BatchProcessor
from yuqing.consumer import Record
from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.contracts.codec import encode


@pytest.fixture(scope="module")
def processor() -> BatchProcessor:
    if os.environ.get("YUQING_NLP_CLASSIFIER") == "placeholder":
        from services.nlp.placeholder import KeywordPlaceholderClassifier

        return BatchProcessor(KeywordPlaceholderClassifier())
    from services.nlp.classifier import load_classifier

    return BatchProcessor(load_classifier())


def _record(text: str, offset: int = 0) -> Record:
    now = datetime.now(UTC)
    post = RawPost(post_id=make_post_id("app-main", f"r{offset}"), source="app-main",
                   channel=Channel.APP, external_id=f"r{offset}", text=text, created_at=now,
                   received_at=now)
    return Record("posts.raw", 0, offset, None, encode(post))


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t ", "😡😡😡🔥🔥", "停電了！台電怎麼還沒來修？", "停电" * 16_000,
     "APP登录不了 login failed 404 !!!", "\u200b\u200b"],
    ids=["empty", "whitespace", "emoji", "traditional", "100kB", "mixed", "zero-width"],
)
def test_odd_text_is_enriched(processor: BatchProcessor, text: str):
    result = processor.process([_record(text)])
    assert result.dead_letters == []
    (post,) = result.enriched
    assert abs(sum(post.topic_scores.values()) - 1) < 0.01
    assert abs(sum(post.sentiment_scores.values()) - 1) < 0.01


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"\x00\xff\xfe garbage \x81", "UTF-8"), (b"\xe5\x81", "UTF-8"), (b"not json", "JSON"),
     (json.dumps({"post_id": "short"}).encode(), "post_id"), (None, "tombstone")],
    ids=["binary", "truncated-utf8", "not-json", "schema", "tombstone"],
)
def test_invalid_messages_are_dead_lettered_with_reason(processor: BatchProcessor, value, reason):
    good = _record("城关镇停电了", offset=1)
    bad = Record("posts.raw", 3, 42, b"k", value)
    result = processor.process([bad, good])
    assert len(result.enriched) == 1
    (letter,) = result.dead_letters
    assert reason in letter.error_message
    assert (letter.topic, letter.partition, letter.offset, letter.service) == ("posts.raw", 3, 42, "nlp")


def test_warm_up_loads_the_keyword_segmenter_before_the_first_batch():
    from services.nlp import enrich
    from services.nlp.placeholder import KeywordPlaceholderClassifier

    enrich._jieba.cache_clear()
    BatchProcessor(KeywordPlaceholderClassifier()).warm_up()
    assert enrich._jieba.cache_info().currsize == 1


def test_a_dead_letter_is_logged_once(processor: BatchProcessor, caplog):
    # The batch processor and the runtime that sends the letter each logged it, so the worker's
    # log said every dead letter twice.
    from services.nlp.pipeline import SERVICE
    from services.nlp.worker import outcome_of
    from yuqing.consumer.runtime import Runtime
    from yuqing.consumer.settings import ConsumerSettings
    from yuqing.settings import KafkaSettings

    records = [Record("posts.raw", 0, 7, b"k", b"not json"), _record("城关镇停电了", offset=8)]
    runtime = Runtime.create(SERVICE, KafkaSettings(), ConsumerSettings())
    with caplog.at_level("WARNING"):
        outputs = runtime.settle(records, outcome_of(processor.process(records), "posts.enriched"))
    assert len(outputs) == 2
    assert [r.getMessage()[:30] for r in caplog.records if "dead-lettering" in r.getMessage()] == [
        "dead-lettering posts.raw[0]@7:"]

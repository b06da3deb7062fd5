"""The rule that cuts an enriched post to fit under the message size limit (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.nlp.enrich import ATTRIBUTE_CHARS, TooLarge, enrich, fit_to_size
from services.nlp.pipeline import BatchProcessor
from services.nlp.placeholder import KeywordPlaceholderClassifier
from yuqing.consumer import Record
from yuqing.contracts import Channel, DeadLetter, EnrichedPost, RawPost, make_post_id
from yuqing.contracts.codec import decode, encode

LIMIT = 1_000_000


def _raw(text: str, attributes: dict[str, str | int | None] | None = None, ext: str = "big-1") -> RawPost:
    now = datetime.now(UTC)
    return RawPost(post_id=make_post_id("app-main", ext), source="app-main", channel=Channel.APP,
                   external_id=ext, text=text, created_at=now, received_at=now,
                   attributes=attributes or {})


def _enriched(raw: RawPost) -> EnrichedPost:
    return enrich(raw, topic="outage", topic_scores={"outage": 1.0}, sentiment="negative",
                  sentiment_scores={"negative": 1.0}, rule_hits=[], model_version="test")


def test_a_post_that_fits_is_left_alone():
    post = _enriched(_raw("城关镇停电了", {"a": "x" * 5_000}))
    assert fit_to_size(post, LIMIT) == (post, [])


def test_the_issue_reproduction_is_cut_attributes_first_and_keeps_the_text():
    # 100,000 x 停 (300 kB) and 50 attributes of 13,000 characters: under 1 MB raw, 1.25 MB enriched.
    raw = _raw("停" * 100_000, {f"k{i}": "a" * 13_000 for i in range(50)})
    assert len(encode(raw)) < LIMIT < len(encode(_enriched(raw)))
    fitted, cuts = fit_to_size(_enriched(raw), LIMIT)
    assert cuts == ["attributes"] and len(encode(fitted)) <= LIMIT
    assert fitted.text == raw.text and fitted.redacted_text == raw.text
    assert all(len(str(v)) == ATTRIBUTE_CHARS for v in fitted.attributes.values())
    assert len(fitted.attributes) == 50


def test_text_is_cut_when_cutting_attributes_is_not_enough():
    raw = _raw("停" * 99_000 + "电话13812345678", {"k": "a" * 20_000})
    fitted, cuts = fit_to_size(_enriched(raw), 500_000)
    assert cuts == ["attributes", "text"]
    size = len(encode(fitted))
    assert 499_000 < size <= 500_000  # as much text as fits is kept
    assert raw.text.startswith(fitted.text) and len(fitted.text) == len(fitted.redacted_text)


def test_attributes_are_dropped_largest_first_as_the_last_resort():
    raw = _raw("短", {f"k{i:04}": "b" * 900 for i in range(300)} | {"small": 1})
    fitted, cuts = fit_to_size(_enriched(raw), 100_000)
    assert cuts == ["text", "attributes dropped"] and len(encode(fitted)) <= 100_000
    assert fitted.attributes["small"] == 1 and 50 < len(fitted.attributes) < 300


def test_a_post_that_cannot_fit_says_why():
    with pytest.raises(TooLarge, match="the limit is 300"):
        fit_to_size(_enriched(_raw("停电")), 300)


def test_the_pipeline_delivers_the_batch_mates_and_dead_letters_only_what_cannot_fit():
    processor = BatchProcessor(KeywordPlaceholderClassifier(), max_message_bytes=2_000)
    records = [Record("posts.raw", 0, i, None, encode(_raw(text, ext=f"p{i}")))
               for i, text in enumerate(["停电了", "停" * 3_000, "电费太贵"])]
    result = processor.process(records)
    assert [p.external_id for p in result.enriched] == ["p0", "p1", "p2"]
    assert len(encode(result.enriched[1])) <= 2_000 and result.dead_letters == []
    tiny = BatchProcessor(KeywordPlaceholderClassifier(), max_message_bytes=300).process(records[:1])
    [letter] = tiny.dead_letters
    assert isinstance(letter, DeadLetter) and letter.error_class == "TooLarge"
    assert decode(RawPost, records[0].value).external_id == "p0"

"""The edge's bounds as pure logic: the size budget, the event-time window, control characters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.admission import Admission, PostRefused, strip_control_characters
from services.ingest.publisher import PublishError
from services.ingest.runtime import unavailable_detail
from services.search.mappings import DEFAULT_RETENTION_MONTHS, OutsideRetentionError, retained_posts_index
from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.contracts.limits import (
    BROKER_MAX_MESSAGE_BYTES,
    DEFAULT_BACKFILL_MAX_AGE,
    ENRICHMENT_RESERVE_BYTES,
    INDEX_KEPT_MONTHS,
    MAX_RAW_MESSAGE_BYTES,
    first_kept_instant,
)
from yuqing.topics import SCHEMAS_DIR

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def raw(**fields: object) -> RawPost:
    values: dict[str, object] = {
        "post_id": make_post_id("partner", "t-1"), "source": "partner",
        "channel": Channel.INTEGRATION, "external_id": "t-1", "text": "城关镇又停电了",
        "created_at": NOW, "received_at": NOW, **fields}
    return RawPost.model_validate(values)


def test_the_raw_budget_leaves_room_for_the_enriched_copy() -> None:
    assert 2 * MAX_RAW_MESSAGE_BYTES + ENRICHMENT_RESERVE_BYTES <= BROKER_MAX_MESSAGE_BYTES
    registry = json.loads((SCHEMAS_DIR / "posts.raw" / "topic.json").read_text())
    assert registry["max_message_bytes"] == BROKER_MAX_MESSAGE_BYTES
    assert str(MAX_RAW_MESSAGE_BYTES) in registry["message_budget"]


@pytest.mark.parametrize(("created_at", "admitted"), [
    (NOW, True), (NOW - timedelta(days=30), True), (NOW + timedelta(minutes=5), True),
    (NOW - timedelta(days=30, seconds=1), False), (NOW + timedelta(minutes=5, seconds=1), False),
    (datetime(1, 1, 2, tzinfo=UTC), False), (datetime(9999, 12, 31, tzinfo=UTC), False),
])
def test_event_time_window_around_arrival(created_at: datetime, admitted: bool) -> None:
    post = raw(created_at=created_at)
    if admitted:
        assert Admission().admit(post) == post
    else:
        with pytest.raises(PostRefused) as refused:
            Admission().admit(post)
        assert (refused.value.status, refused.value.field) == (422, "created_at")


def test_back_fills_widen_the_window_into_the_past() -> None:
    old = raw(created_at=NOW - timedelta(days=200))
    assert Admission(max_age=timedelta(days=396)).admit(old) == old


def test_the_first_post_over_the_budget_is_named_by_its_index() -> None:
    big = raw(text="停" * 100_000, attributes={f"k{i}": "停" * 2_000 for i in range(50)})
    with pytest.raises(PostRefused) as refused:
        Admission().admit_all([raw(), big])
    assert (refused.value.status, refused.value.index) == (413, 1)


def test_control_characters_are_removed_from_free_text_only() -> None:
    post = raw(text="a\x00b\x01c\x02d\te\nf\u0085", title="t\x7f", thread_id="x",
               attributes={"k": "v\x1b", "n": 3})
    clean = strip_control_characters(post)
    assert (clean.text, clean.title, clean.attributes) == ("abcd\te\nf", "t", {"k": "v", "n": 3})
    assert strip_control_characters(clean) is clean


@pytest.mark.parametrize(("acknowledged", "says_nothing"), [(0, True), (None, False), (2, False)])
def test_nothing_was_accepted_is_said_only_when_true(acknowledged: int | None,
                                                     says_nothing: bool) -> None:
    detail = unavailable_detail(PublishError("down", acknowledged=acknowledged))
    assert ("nothing was accepted" in detail) is says_nothing


def test_the_largest_admitted_post_still_fits_the_broker_once_enriched() -> None:
    from services.nlp.enrich import enrich
    from yuqing.contracts.codec import encode

    # Text that redaction touches, JSON escapes and UTF-8 makes long, then attributes
    # up to the budget: the worst the edge lets through.
    text = ("投诉电话13812345678邮箱ab@x.cn\"引号\"\\𠀀" * 4_000)[:100_000]
    attributes = {f"k{i:02d}": "𠀀" * 2_000 for i in range(50)}
    post = raw(text=text, title="标" * 1_000, attributes=attributes)
    while len(encode(post)) > MAX_RAW_MESSAGE_BYTES:
        attributes.popitem()
        post = raw(text=text, title="标" * 1_000, attributes=attributes)
    admitted = Admission().admit(post)
    assert len(encode(admitted)) > MAX_RAW_MESSAGE_BYTES - 10_000

    enriched = enrich(admitted, topic="outage", topic_scores={"outage": 0.9}, sentiment="negative",
                      sentiment_scores={"negative": 0.9}, rule_hits=["r"] * 50, model_version="m" * 200)

    assert len(encode(enriched)) <= BROKER_MAX_MESSAGE_BYTES



def test_a_back_fill_admits_no_post_the_search_index_would_not_keep() -> None:
    # 396 days back reach into a 14th month; the indexer dead-letters a post dated there, and a
    # back-fill (oldest first) sends enough of them in a row to stop it at the dead-letter cap.
    back_fill = Admission(max_age=DEFAULT_BACKFILL_MAX_AGE)
    for now in (datetime(year, 1, 1, 3, tzinfo=UTC) + timedelta(hours=6 * i)
                for year in (2026, 2028) for i in range(366 * 4)):
        oldest = raw(created_at=now - DEFAULT_BACKFILL_MAX_AGE, received_at=now)
        first_kept = raw(created_at=first_kept_instant(now, INDEX_KEPT_MONTHS), received_at=now)
        try:
            # the index's months at the instant the edge admitted the post (it keeps them RETENTION_GRACE
            # longer, for posts indexed after a month's turn; tests/search/test_retention.py)
            retained_posts_index("yq", oldest.created_at, keep_months=DEFAULT_RETENTION_MONTHS, now=now,
                                 grace=timedelta(0))
        except OutsideRetentionError:
            with pytest.raises(PostRefused, match="13 months the search index keeps"):
                back_fill.admit(oldest)
            assert back_fill.admit(first_kept) == first_kept, now
            retained_posts_index("yq", first_kept.created_at, keep_months=DEFAULT_RETENTION_MONTHS, now=now)
        else:
            assert back_fill.admit(oldest) == oldest, now

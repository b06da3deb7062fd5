"""Date-times the contract refuses are refused with a message that names the reason."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.contracts.codec import decode, encode
from yuqing.contracts.models import DateTime

ADAPTER: TypeAdapter[datetime] = TypeAdapter(DateTime)


@pytest.mark.parametrize(("text", "reason"), [
    ("2026-12-31T23:59:60Z", "leap second"),
    ("2026-12-06T10:00:00+24:00", "offset"),
    ("2026-12-06T10:00:00-25:30", "offset"),
    ("2026-12-06T10:00:00+08:60", "offset"),
    ("2026-12-06T24:00:00Z", "hour"),
    ("2026-12-06T23:61:00Z", "minute"),
])
def test_an_impossible_time_of_day_or_offset_is_named(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python(text)
    message = caught.value.errors()[0]["msg"]
    assert reason in message and "extra characters" not in message, message


@pytest.mark.parametrize("text", ["2026-12-06T23:59:59+23:59", "2026-12-06t10:00:00z",
                                  "2026-12-06 10:00Z", "2026-12-06T10:00:00.123456789+08:00"])
def test_every_rfc3339_spelling_of_a_real_moment_is_read(text: str) -> None:
    assert ADAPTER.validate_python(text).tzinfo is not None


def test_a_datetime_built_in_code_passes_as_it_is() -> None:
    moment = datetime(2026, 12, 6, tzinfo=UTC)
    assert ADAPTER.validate_python(moment) == moment


def test_a_datetime_whose_offset_has_seconds_keeps_its_moment_through_the_topic() -> None:
    # a feed's "+05:30:15", read by Python: the message carried "+05:30", 15 s off the moment
    moment = datetime(2026, 12, 6, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15)))
    post = RawPost(post_id=make_post_id("forum-x", "1"), source="forum-x", channel=Channel.FORUM,
                   external_id="1", created_at=moment, received_at=moment)

    assert decode(RawPost, encode(post)).created_at == moment

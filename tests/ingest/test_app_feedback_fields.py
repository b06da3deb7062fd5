"""APP feedback fields as mobile apps send them: blank optional fields, phone numbers written
with separators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.ingest.app_webhook import PayloadError, feedback_to_raw_post, parse_feedback

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _parse(**fields: Any) -> Any:
    body = {"feedback_id": "fb-1", "content": "电费怎么这么高", "created_at": NOW.isoformat(), **fields}
    return parse_feedback(orjson.dumps(body))


@pytest.mark.parametrize("blank", ["", "  ", "\u3000"])
def test_a_blank_optional_field_counts_as_absent(blank: str) -> None:
    # A form whose region was left unchosen sends "": the source's default applies.
    fields = {name: blank for name in ("region", "unit", "category", "user", "title", "device",
                                       "app_version", "platform", "reply_to")}
    post = feedback_to_raw_post(_parse(**fields), source_id="app-main", received_at=NOW,
                                default_region="城关镇", default_unit="城关供电所")

    assert (post.region, post.unit, post.author, post.title) == ("城关镇", "城关供电所", None, None)
    assert post.attributes == {"attachment_count": 0}


def test_invisible_characters_leave_region_and_unit() -> None:
    # "城关镇\u200b" (a zero-width space pasted along) was a region of its own, out of the scope
    # of 城关镇's responders; "\u200b" alone kept the feedback out of the source's default region.
    pasted = feedback_to_raw_post(_parse(region="\ufeff城关\u200b镇", unit="城关供电所\u200d"),
                                  source_id="app-main", received_at=NOW, default_region="河口镇")
    blank = feedback_to_raw_post(_parse(region="\u200b", unit="\u2060"), source_id="app-main",
                                 received_at=NOW, default_region="河口镇", default_unit="河口供电所")

    assert (pasted.region, pasted.unit) == ("城关镇", "城关供电所")
    assert (blank.region, blank.unit) == ("河口镇", "河口供电所")


@pytest.mark.parametrize("user", ["138-1234-5678", "138 1234 5678", "+86 13812345678",
                                  "+86-138-1234-5678", "11010119900307123X", "110101 19900307 1234"])
def test_a_phone_or_id_number_written_with_separators_is_no_pseudonym(user: str) -> None:
    with pytest.raises(PayloadError) as caught:
        _parse(user=user)

    assert caught.value.errors[0]["field"] == "user"


def test_a_pseudonym_with_dashes_is_kept() -> None:
    assert _parse(user="u-2026-0042").user == "u-2026-0042"

"""``author`` on ``POST /v1/posts`` (and ``yuqing publish``) is a pseudonym: a phone or ID number
is refused, as on the APP webhook; a blank optional field is absent (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ingest.models import PostIn
from yuqing.contracts import Channel

POST = {"external_id": "t-1", "text": "城关镇又停电了", "created_at": "2026-11-28T20:15:00+08:00"}


@pytest.mark.parametrize("author", ["13812345678", "138-1234-5678", "+86 138 1234 5678",
                                    "11010119900307123X"])
def test_a_phone_or_id_number_is_refused_on_author(author: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PostIn.model_validate({**POST, "author": author})

    [error] = caught.value.errors()
    assert error["loc"] == ("author",) and "pseudonym" in error["msg"]


@pytest.mark.parametrize("author", ["u-2026-0042", "crm:8842", "张工"])
def test_a_pseudonym_is_kept(author: str) -> None:
    assert PostIn.model_validate({**POST, "author": author}).author == author


@pytest.mark.parametrize("field", ["author", "title", "thread_id", "reply_to"])
@pytest.mark.parametrize("blank", ["", "   ", "\u3000"])
def test_a_blank_optional_field_is_absent(field: str, blank: str) -> None:
    # a blank thread id made every post sent with one a reply in one thread; they were kept as ""
    post = PostIn.model_validate({**POST, field: blank})

    assert getattr(post, field) is None
    assert getattr(post.to_raw(source="crm", channel=Channel.INTEGRATION), field) is None


@pytest.mark.parametrize("field", ["title", "thread_id", "reply_to"])
def test_a_given_optional_field_is_kept_as_sent(field: str) -> None:
    assert getattr(PostIn.model_validate({**POST, field: " t-7 "}), field) == " t-7 "

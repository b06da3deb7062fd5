"""What integrators send to ``POST /v1/posts``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.contracts.limits import (
    MAX_ATTRIBUTE_KEY_CHARS,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
)
from yuqing.contracts.models import AttributeValue, DateTime, Place, Reference, Url
from yuqing.text import CONTROL_CHARACTERS, place_name

_WEB_LINK = re.compile(r"https?://[^\s/]", re.IGNORECASE)
# Mainland mobile numbers and resident ID numbers: never acceptable as a pseudonym.
_PERSONAL_NUMBER = re.compile(r"(\+?86)?1[3-9][0-9]{9}|[0-9]{17}[0-9Xx]")
_SEPARATORS = re.compile(r"[\s-]")


def is_personal_number(value: str) -> bool:
    """A mobile or ID-card number in any spacing ("138-1234-5678", "+86 138 1234 5678")."""
    return bool(_PERSONAL_NUMBER.fullmatch(_SEPARATORS.sub("", value)))


def _pseudonymous(author: str | None) -> str | None:
    # Responders see the author: the contract's "never a phone number" was not checked here.
    if author is not None and is_personal_number(author):
        raise ValueError("must be a pseudonym, not a phone or ID number")
    return author


def _web_link(url: str | None) -> str | None:
    # Responders open the link: a javascript: or data: URL would run in their console.
    if url is not None and not _WEB_LINK.match(url):
        raise ValueError("must be an http or https URL (https://...)")
    return url


WebLink = Annotated[Url, AfterValidator(_web_link)]


TrimmedPlace = Annotated[Place, BeforeValidator(place_name)]


def blank_is_absent(value: object) -> object:
    """A blank text (``""``, spaces) as absent: a blank thread id would make every post sent with one
    a reply in one thread, a blank author or title says nothing (the APP webhook's optional fields
    likewise)."""
    return None if isinstance(value, str) and not value.strip() else value


def _exact_number(value: object) -> object:
    # JSON parsers read an integer beyond 64 bits as a float: 12345678901234567890123 would be
    # published as 1.2345678901234568e+22. Such a number (or a float that large and whole) is
    # refused rather than kept approximately.
    too_large = ((isinstance(value, int) and not isinstance(value, bool)
                  and not -(2**63) <= value < 2**63)
                 or (isinstance(value, float) and value.is_integer() and abs(value) >= 2**63))
    if too_large:
        raise ValueError("a whole number of 2^63 or more is kept only approximately: send it as a string")
    return value


def _one_attribute_error(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    # A value fits none of the union's members: pydantic would list one error per member
    # ("valid string", "valid integer", "valid number", "valid boolean"), naming none of the fixes.
    try:
        return handler(value)
    except ValidationError:
        if isinstance(value, str):
            raise ValueError(f"a string value has at most {MAX_ATTRIBUTE_VALUE_CHARS:,} characters "
                             f"(this one has {len(value):,})") from None
        raise ValueError("must be a string, number, boolean or null: attributes are a flat map, "
                         "send a list or an object as a string") from None


def _not_blank(value: str) -> str:
    # "   " would be an id like any other, and the id is what makes a resend a duplicate.
    if not value.strip():
        raise ValueError("must not be blank: send the id the source system knows the post by")
    return value


def _printable_key(key: str) -> str:
    # Keys are carried to every consumer as they are; a control character in one breaks logs and CSV exports.
    if any(ord(c) in CONTROL_CHARACTERS or c in "\t\n\r" for c in key):
        raise ValueError("attribute keys must not contain control characters")
    return key


def _printable_names(schema: dict[str, Any]) -> None:
    # documents the key rule in the OpenAPI schema; the validator gives the message
    schema.setdefault("propertyNames", {})["pattern"] = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"


AttributeName = Annotated[str, Field(min_length=1, max_length=MAX_ATTRIBUTE_KEY_CHARS),
                          AfterValidator(_printable_key)]
ExactAttributes = Annotated[
    dict[AttributeName,
         Annotated[AttributeValue, WrapValidator(_one_attribute_error), BeforeValidator(_exact_number)]],
    Field(max_length=MAX_ATTRIBUTES, json_schema_extra=_printable_names)]


_SET_BY_YUQING = {
    "post_id": "set by Yuqing (md5 of the source and external_id): leave it out",
    "source": "set by Yuqing from the registered source: leave it out",
    "channel": "set by Yuqing from the registered source: leave it out",
    "received_at": "set by Yuqing when the post arrives: leave it out",
    "schema_version": "set by Yuqing: every post is published in the contract's current version "
                      "(v1): leave it out",
}


def _named_if_set_by_yuqing(error: Any) -> InitErrorDetails:
    # The posts.raw schema lists these fields: "Extra inputs are not permitted" reads as a typo.
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden" and len(loc) == 1 and loc[0] in _SET_BY_YUQING:
        return {"type": PydanticCustomError("set_by_yuqing", _SET_BY_YUQING[str(loc[0])]),
                "loc": loc, "input": error["input"]}
    details: InitErrorDetails = {"type": error["type"], "loc": loc, "input": error["input"]}
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    return details


def _json_kind(value: object) -> str:
    kinds = ((bool, "a boolean"), (int | float, "a number"), (str, "a string"), (list, "an array"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "external_id": "ticket-20261128-0042",
        "text": "城关镇幸福小区今晚又停电了，已经第三次了！",
        "created_at": "2026-11-28T20:15:00+08:00",
        "region": "城关镇", "unit": "城关供电所",
    }]})

    # the pattern documents the rule in the OpenAPI schema; the validator gives the message
    external_id: Annotated[str, Field(min_length=1, max_length=256, json_schema_extra={"pattern": "\\S"}),
                           AfterValidator(_not_blank)]
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
    created_at: DateTime
    author: Annotated[str | None, Field(max_length=128), BeforeValidator(blank_is_absent),
                      AfterValidator(_pseudonymous)] = None
    title: Annotated[str | None, Field(max_length=MAX_TITLE_CHARS), BeforeValidator(blank_is_absent)] = None
    msg_type: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] = "text"
    region: TrimmedPlace = None
    unit: TrimmedPlace = None
    thread_id: Annotated[Reference, BeforeValidator(blank_is_absent)] = None
    reply_to: Annotated[Reference, BeforeValidator(blank_is_absent)] = None
    url: WebLink = None
    attributes: ExactAttributes = Field(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _errors_a_sender_can_act_on(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict | PostIn):
            # pydantic's "valid dictionary or instance of PostIn" names a class of this code
            raise PydanticCustomError(
                "model_type", "must be a post object ({\"external_id\": ..., \"text\": ..., "
                "\"created_at\": ...}), not {kind}", {"kind": _json_kind(data)})
        try:
            return handler(data)
        except ValidationError as exc:
            if not (isinstance(data, dict) and _SET_BY_YUQING.keys() & data.keys()):
                raise
            errors = [_named_if_set_by_yuqing(error) for error in exc.errors()]
            raise ValidationError.from_exception_data(exc.title, errors) from None

    def to_raw(self, *, source: str, channel: Channel, region: str | None = None,
               unit: str | None = None, now: datetime | None = None) -> RawPost:
        return RawPost(
            post_id=make_post_id(source, self.external_id), source=source, channel=channel,
            external_id=self.external_id, author=self.author, msg_type=self.msg_type,
            title=self.title, text=self.text, created_at=self.created_at,
            received_at=now or datetime.now(UTC), region=self.region or region,
            unit=self.unit or unit, thread_id=self.thread_id, reply_to=self.reply_to,
            url=self.url, attributes=self.attributes,
        )


class PostBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    posts: Annotated[list[PostIn], Field(min_length=1)]


class Accepted(BaseModel):
    accepted: int
    duplicates: int
    post_ids: list[str]

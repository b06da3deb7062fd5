"""Mobile APP feedback webhook: request signing, verification and payload mapping.

Signing (the APP backend does this for every request)::

    canonical = X-Yuqing-Timestamp + "." + X-Yuqing-Request-Id + "." + raw request body
                (bytes, no re-encoding)
    X-Yuqing-Signature: sha256=<lowercase hex HMAC-SHA256(secret, canonical)>
    X-Yuqing-Timestamp: Unix time in whole seconds, ASCII digits
    X-Yuqing-Request-Id: unique per request, 1-128 chars of [A-Za-z0-9._:-]

The server checks, in this order: headers present and well formed, signature
(constant-time, against the current and the previous secret), timestamp within
the replay window, request id not seen before. Only then is the body parsed.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from services.ingest.dedup import TtlSet
from services.ingest.models import blank_is_absent, is_personal_number
from yuqing.contracts import Channel, RawPost, make_post_id
from yuqing.contracts.limits import MAX_TEXT_CHARS
from yuqing.contracts.models import DateTime
from yuqing.text import place_name

HEADER_TIMESTAMP = "X-Yuqing-Timestamp"
HEADER_SIGNATURE = "X-Yuqing-Signature"
HEADER_REQUEST_ID = "X-Yuqing-Request-Id"
SIGNATURE_PREFIX = "sha256="
DEFAULT_REPLAY_WINDOW_S = 300

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^sha256=[0-9a-f]{64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class AppWebhookError(Exception):
    """Base of the webhook errors; ``status_code`` and ``code`` are what the view returns."""

    status_code = 400
    code = "bad_request"


class SignatureError(AppWebhookError):
    """Missing or malformed auth headers, or a signature that does not match."""

    status_code = 401
    code = "bad_signature"


class StaleRequestError(AppWebhookError):
    """The signed timestamp is outside the replay window (either direction)."""

    status_code = 401
    code = "stale_timestamp"


class ReplayError(AppWebhookError):
    """The request id was already accepted within the replay window."""

    status_code = 409
    code = "replayed_request"


class RequestInProgressError(AppWebhookError):
    """The request id's first attempt is still waiting for Kafka: its outcome is not known yet."""

    status_code = 503
    code = "request_in_progress"


class PayloadError(AppWebhookError):
    """The body is not a valid APP feedback object; ``errors`` lists the field problems
    (``field``, ``message`` and pydantic's error ``type``)."""

    status_code = 422
    code = "invalid_payload"

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class MalformedPayloadError(PayloadError):
    """The body is not UTF-8 JSON at all."""

    status_code = 400
    code = "malformed_body"


def canonical_string(timestamp: str, request_id: str, body: bytes) -> bytes:
    """The exact bytes that are signed: ``timestamp + "." + request_id + "." + body``.

    The request id is signed so that a captured request cannot be sent again under a
    new id: the replay check holds for the whole timestamp window, not only for as
    long as the server remembers ids.
    """
    return timestamp.encode("ascii") + b"." + request_id.encode("ascii") + b"." + body


def sign_app_request(secret: str | bytes, body: bytes, timestamp: int | str,
                     request_id: str) -> str:
    """The ``X-Yuqing-Signature`` header value for ``body`` sent at ``timestamp`` as ``request_id``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, canonical_string(str(timestamp), request_id, body),
                      hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signed_headers(secret: str | bytes, body: bytes, *, timestamp: int, request_id: str,
                   ) -> dict[str, str]:
    """All three auth headers plus the content type, for clients, the demo and tests."""
    return {
        "Content-Type": "application/json",
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign_app_request(secret, body, timestamp, request_id),
        HEADER_REQUEST_ID: request_id,
    }


@dataclass(frozen=True)
class VerifiedRequest:
    request_id: str
    timestamp: int


class AppRequestVerifier:
    """Verifies signed APP requests and remembers request ids to refuse replays.

    Request ids are remembered for twice the replay window (a timestamp may be
    up to one window in the future), at most ``max_request_ids`` of them.
    Keep one verifier per process; it is thread-safe.
    """

    def __init__(self, *, replay_window_s: int = DEFAULT_REPLAY_WINDOW_S,
                 max_request_ids: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._window_s = replay_window_s
        self._clock = clock
        self._request_ids = TtlSet(ttl_s=2 * replay_window_s, max_entries=max_request_ids,
                                   clock=clock)
        # claimed ids whose feedback is not yet in Kafka: a retry of one is not "already accepted"
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def verify(self, *, source_id: str, secrets: Sequence[str | bytes],
               headers: Mapping[str, str], body: bytes,
               replay_window_s: int | None = None) -> VerifiedRequest:
        """Check the request and claim its id; raises a :class:`AppWebhookError` subclass.

        ``secrets`` are the source's accepted secrets (current first, then the one
        being rotated out). ``replay_window_s`` overrides the default per source.
        """
        lowered = {key.lower(): value for key, value in headers.items()}
        timestamp_text = _header(lowered, HEADER_TIMESTAMP, _TIMESTAMP)
        signature = _header(lowered, HEADER_SIGNATURE, _SIGNATURE, lower=True)
        request_id = _header(lowered, HEADER_REQUEST_ID, _REQUEST_ID)
        if not any(hmac.compare_digest(sign_app_request(secret, body, timestamp_text, request_id),
                                       signature)
                   for secret in secrets):
            raise SignatureError("signature does not match")
        timestamp = int(timestamp_text)
        window = replay_window_s or self._window_s
        if abs(self._clock() - timestamp) > window:
            raise StaleRequestError(f"timestamp is more than {window} s away from server time")
        self._claim(_replay_key(source_id, request_id), request_id)
        return VerifiedRequest(request_id=request_id, timestamp=timestamp)

    def _claim(self, key: str, request_id: str) -> None:
        # A retry that arrives while the first attempt waits for Kafka was answered 409, "already
        # accepted, do not retry"; the first attempt could still fail (503, to nobody), and the
        # feedback was lost. Until the first is answered, the retry is told to retry.
        with self._lock:
            if self._request_ids.add(key):
                self._in_flight.add(key)
            elif key in self._in_flight:
                raise RequestInProgressError(
                    f"request id {request_id!r} is still being published by an earlier attempt: "
                    "retry, and a 409 then means it was accepted")
            else:
                raise ReplayError(f"request id {request_id!r} was already used")

    def accepted(self, *, source_id: str, request_id: str) -> None:
        """The claimed request id's feedback is in Kafka: a request with the id again is a replay."""
        with self._lock:
            self._in_flight.discard(_replay_key(source_id, request_id))

    def release(self, *, source_id: str, request_id: str) -> None:
        """Forget a claimed request id, when publishing failed and the client should retry."""
        key = _replay_key(source_id, request_id)
        with self._lock:
            self._in_flight.discard(key)
            self._request_ids.discard(key)


def _header(headers: Mapping[str, str], name: str, pattern: re.Pattern[str], *,
            lower: bool = False) -> str:
    value = headers.get(name.lower())
    if value is None:
        raise SignatureError(f"missing header {name}")
    value = value.strip().lower() if lower else value.strip()
    if not pattern.fullmatch(value):
        raise SignatureError(f"malformed header {name}")
    return value


def _replay_key(source_id: str, request_id: str) -> str:
    return f"{source_id}\x00{request_id}"


Label = Annotated[str | None, Field(min_length=1, max_length=64)]


_OPTIONAL_TEXT = frozenset({"user", "title", "category", "app_version", "platform", "device",
                            "reply_to"})
_PLACES = frozenset({"region", "unit"})


class AppFeedback(BaseModel):
    """One feedback item as the APP sends it (``Content-Type: application/json``).

    Unknown fields are ignored so that newer APP versions keep working.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    feedback_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
    user: Annotated[str | None, Field(min_length=1, max_length=128)] = None  # APP's pseudonym
    content: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] = ""
    title: Annotated[str | None, Field(max_length=1_000)] = None
    created_at: DateTime
    region: Label = None
    unit: Label = None
    category: Label = None
    app_version: Annotated[str | None, Field(max_length=32)] = None
    platform: Annotated[str | None, Field(pattern=r"^[a-z_]{1,32}$")] = None
    device: Annotated[str | None, Field(max_length=128)] = None
    reply_to: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")] = None
    attachment_count: Annotated[int, Field(ge=0, le=100)] = 0

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        # Apps send "" for a field the user left empty (a region not chosen): refusing the
        # feedback for it lost the user's words; absent, the source's default applies.
        if not isinstance(data, dict):
            return data
        return {key: place_name(value) if key in _PLACES else
                blank_is_absent(value) if key in _OPTIONAL_TEXT else value
                for key, value in data.items()}

    @field_validator("user")
    @classmethod
    def _user_is_pseudonymous(cls, value: str | None) -> str | None:
        if value is not None and is_personal_number(value):
            raise ValueError("user must be a pseudonym, not a phone or id number")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> AppFeedback:
        if not self.content and self.attachment_count == 0:
            raise ValueError("content is empty and there are no attachments")
        return self


def parse_feedback(body: bytes) -> AppFeedback:
    """Decode and validate the request body; raises :class:`PayloadError`.

    A leading UTF-8 byte order mark is skipped; the signature was checked over the body as sent."""
    try:
        # orjson refuses invalid UTF-8 and nesting deeper than 1,024
        data: Any = orjson.loads(body.removeprefix(codecs.BOM_UTF8))
    except orjson.JSONDecodeError as exc:
        raise MalformedPayloadError(f"body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object",
                           [{"field": "<body>", "message": "must be a JSON object", "type": "model_type"}])
    try:
        return AppFeedback.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "<body>", "message": e["msg"],
                   "type": e["type"]} for e in exc.errors()]
        raise PayloadError("invalid feedback", errors) from exc


def feedback_to_raw_post(feedback: AppFeedback, *, source_id: str, received_at: datetime,
                         default_region: str | None = None, default_unit: str | None = None,
                         ) -> RawPost:
    """Map a verified feedback item to the ``posts.raw`` contract."""
    attributes = {
        "app_version": feedback.app_version,
        "platform": feedback.platform,
        "device": feedback.device,
        "category": feedback.category,
        "attachment_count": feedback.attachment_count,
    }
    return RawPost(
        post_id=make_post_id(source_id, feedback.feedback_id),
        source=source_id,
        channel=Channel.APP,
        external_id=feedback.feedback_id,
        author=feedback.user,
        msg_type="text" if feedback.content else "attachment",
        title=feedback.title,
        text=feedback.content,
        created_at=feedback.created_at,
        received_at=received_at,
        region=feedback.region or default_region,
        unit=feedback.unit or default_unit,
        reply_to=feedback.reply_to,
        attributes={key: value for key, value in attributes.items() if value is not None},
    )

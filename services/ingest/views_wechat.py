"""``GET/POST /v1/wechat/{source_id}``: a WeChat official account's server URL.

WeChat waits 5 s for an answer and retries a message up to three times. The POST
publishes the message and answers ``success``; if Kafka cannot take it within
``wechat_timeout_s`` the answer is 503, so WeChat retries, and retries of a message
already published (same ``MsgId``) are answered ``success`` without publishing again.
Events (subscribe, menu clicks, location reports...) are answered but not published:
they carry no words from the public and would only inflate the volumes.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from services.ingest import metrics
from services.ingest.registry import RegisteredSource
from services.ingest.runtime import IngestRuntime, Runtime, WeChatSource
from services.ingest.wechat import (
    ACK,
    MAX_XML_BYTES,
    WeChatError,
    WeChatMessage,
    parse_message,
    to_raw_post,
)
from yuqing.contracts import Channel, RawPost
from yuqing.http_edge import XML_TYPES, Problem, field_errors, read_body, request_body

router = APIRouter(tags=["WeChat official accounts"])

QueryText = Annotated[str, Query(max_length=128)]
OptionalQueryText = Annotated[str | None, Query(max_length=128)]
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_KNOWN_EVENTS = frozenset({"subscribe", "unsubscribe", "scan", "location", "click", "view"})
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "not WeChat XML, or undecryptable"},
    401: {"description": "signature or msg_signature does not match, stale timestamp, or a "
                         "plaintext push to an account in safe mode"},
    403: {"description": "source disabled, or message for another AppID"},
    404: {"description": "no such WeChat source"},
    413: {"description": "body, or the post as a message, too large"},
    415: {"description": "not text/xml"},
    422: {"description": "message does not fit the contract, or CreateTime is outside the window "
                         "around arrival"},
    429: {"description": "over the source's rate limit"},
    503: {"description": "Kafka unavailable; WeChat retries"},
}
_XML_BODY = request_body("text/xml", {"type": "string", "maxLength": MAX_XML_BYTES},
                         example="<xml><Encrypt><![CDATA[...]]></Encrypt></xml>")


@router.get("/v1/wechat/{source_id}", response_class=PlainTextResponse, responses=_ERRORS)
async def wechat_verify(source: WeChatSource, runtime: Runtime, signature: QueryText,
                        timestamp: QueryText, nonce: QueryText,
                        echostr: Annotated[str, Query(max_length=512)]) -> str:
    """Server URL check: echoes ``echostr`` when ``signature`` matches the token."""
    _check_fresh(timestamp, runtime)
    try:
        return runtime.wechat_crypto(source).verify_url(signature=signature, timestamp=timestamp,
                                                       nonce=nonce, echostr=echostr)
    except WeChatError as exc:
        raise Problem(exc.status_code, str(exc)) from exc


@router.post("/v1/wechat/{source_id}", response_class=PlainTextResponse, responses=_ERRORS,
             openapi_extra=_XML_BODY)
async def wechat_message(request: Request, source: WeChatSource, runtime: Runtime,
                         signature: QueryText, timestamp: QueryText, nonce: QueryText,
                         openid: OptionalQueryText = None,  # sent by WeChat; the XML has it too
                         encrypt_type: OptionalQueryText = None,
                         msg_signature: OptionalQueryText = None) -> str:
    """A pushed message (plaintext, compatible or safe mode); answers ``success`` once it is kept."""
    body = await read_body(request, limit=MAX_XML_BYTES, media_types=XML_TYPES)
    _check_fresh(timestamp, runtime)
    if encrypt_type != "aes" and source.optional_secret("encoding_aes_key") is not None:
        raise Problem(401, "this account is in safe mode: plaintext pushes are refused")
    query = {"signature": signature, "timestamp": timestamp, "nonce": nonce,
             "encrypt_type": encrypt_type or "raw", "msg_signature": msg_signature or ""}
    try:
        xml = runtime.wechat_crypto(source).open_message(body, query)
    except WeChatError as exc:
        raise Problem(exc.status_code, str(exc)) from exc
    runtime.check_rate(source)
    message = _parse(xml)
    if message.msg_type.strip().lower() == "event":
        event = (message.get("Event") or "").lower()
        metrics.WECHAT_EVENTS_IGNORED.labels(event=event if event in _KNOWN_EVENTS else "other").inc()
        return ACK
    await runtime.publish([_to_post(message, source)], channel=Channel.WECHAT,
                          timeout_s=runtime.settings.wechat_timeout_s)
    return ACK


def _check_fresh(timestamp: str, runtime: IngestRuntime) -> None:
    """401 unless the signed timestamp is within the allowed clock skew: a captured push
    cannot be replayed later (the MsgId dedup window is shorter than forever)."""
    skew = runtime.settings.wechat_max_clock_skew_s
    # ASCII digits only: str.isdigit() also takes "¹", which int() refuses.
    if not _TIMESTAMP.fullmatch(timestamp) or abs(time.time() - int(timestamp)) > skew:
        raise Problem(401, f"timestamp is more than {skew} s away from server time")


def _parse(xml: bytes) -> WeChatMessage:
    try:
        return parse_message(xml)
    except WeChatError as exc:
        raise Problem(exc.status_code, str(exc)) from exc


def _to_post(message: WeChatMessage, source: RegisteredSource) -> RawPost:
    try:
        return to_raw_post(message, source_id=source.id, author_salt=source.secret("author_salt"),
                           received_at=datetime.now(UTC), region=source.config.region,
                           unit=source.config.unit)
    except ValidationError as exc:
        raise Problem(422, field_errors(exc.errors())) from exc

"""``POST /v1/app/{source_id}``: the mobile APP's HMAC-signed feedback webhook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from services.ingest.app_webhook import (
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    AppFeedback,
    AppWebhookError,
    PayloadError,
    RequestInProgressError,
    feedback_to_raw_post,
    parse_feedback,
)
from services.ingest.models import Accepted
from services.ingest.registry import RegisteredSource
from services.ingest.runtime import AppSource, Runtime
from yuqing.contracts import Channel, RawPost
from yuqing.http_edge import JSON_TYPES, Problem, field_errors, read_body, request_body

router = APIRouter(tags=["mobile APP"])

_SIGNING_HEADERS = [
    {"name": HEADER_TIMESTAMP, "in": "header", "required": True,
     "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"}, "description": "Unix time, seconds"},
    {"name": HEADER_SIGNATURE, "in": "header", "required": True,
     "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
     "description": 'hex HMAC-SHA256(secret, timestamp + "." + body)'},
    {"name": HEADER_REQUEST_ID, "in": "header", "required": True,
     "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
     "description": "unique per request"},
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "body is not JSON"},
    401: {"description": "missing or bad signature headers, wrong signature, or stale timestamp"},
    403: {"description": "source disabled"},
    404: {"description": "no such APP source"},
    409: {"description": "request id already accepted"},
    413: {"description": "body, or the post as a message, too large"},
    415: {"description": "not application/json"},
    422: {"description": "invalid feedback (field list), or created_at outside the window around arrival"},
    429: {"description": "over the source's rate limit; see Retry-After"},
    503: {"description": "Kafka did not acknowledge the post, or an earlier attempt with this request "
                         "id is still waiting for it; see Retry-After"},
}
_OPENAPI = request_body("application/json", AppFeedback.model_json_schema()) | {
    "parameters": _SIGNING_HEADERS}


@router.post("/v1/app/{source_id}", status_code=202, response_model=Accepted, responses=_ERRORS,
             openapi_extra=_OPENAPI)
async def app_feedback(request: Request, runtime: Runtime, source: AppSource) -> Accepted:
    """One feedback item, signed with the source's secret; 202 once Kafka has it."""
    body = await read_body(request, limit=runtime.settings.max_body_bytes, media_types=JSON_TYPES)
    config = source.config
    secrets = [source.secret("hmac_secret")]
    if source.optional_secret("hmac_secret_previous") is not None:
        secrets.append(source.secret("hmac_secret_previous"))
    try:
        verified = runtime.verifier.verify(
            source_id=source.id, secrets=secrets, headers=request.headers, body=body,
            replay_window_s=config.replay_window_s)  # type: ignore[union-attr]
    except RequestInProgressError as exc:
        raise Problem(exc.status_code, str(exc), {"Retry-After": str(runtime.settings.retry_after_s)}
                      ) from exc
    except AppWebhookError as exc:
        raise _problem(exc) from exc
    try:
        runtime.check_rate(source)
        outcome = await runtime.publish([_to_post(body, source)], channel=Channel.APP,
                                        fields_at=["body"])
    except BaseException:
        # A refused request does not use up its id: the APP may retry with the same one.
        runtime.verifier.release(source_id=source.id, request_id=verified.request_id)
        raise
    runtime.verifier.accepted(source_id=source.id, request_id=verified.request_id)
    return Accepted(accepted=outcome.accepted, duplicates=outcome.duplicates,
                    post_ids=outcome.post_ids)


def _to_post(body: bytes, source: RegisteredSource) -> RawPost:
    try:
        feedback = parse_feedback(body)
        return feedback_to_raw_post(feedback, source_id=source.id, received_at=datetime.now(UTC),
                                    default_region=source.config.region,
                                    default_unit=source.config.unit)
    except AppWebhookError as exc:
        raise _problem(exc) from exc
    except ValidationError as exc:
        raise Problem(422, field_errors(exc.errors())) from exc


def _problem(exc: AppWebhookError) -> Problem:
    if isinstance(exc, PayloadError) and exc.status_code == 422:
        # The same keys as POST /v1/posts; the loc keeps its documented "body" prefix.
        detail: Any = [{"loc": _loc(e["field"]), "msg": e["message"], "type": e["type"]}
                       for e in exc.errors] or str(exc)
        return Problem(422, detail)
    return Problem(exc.status_code, str(exc))



def _loc(field: str) -> list[str]:
    return ["body"] if field == "<body>" else ["body", *field.split(".")]

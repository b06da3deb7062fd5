"""``POST /v1/posts``: partner systems push posts with an API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import ValidationError

from services.ingest.models import Accepted, PostBatchIn, PostIn
from services.ingest.registry import InvalidApiKeyError, RegisteredSource, SourceDisabledError
from services.ingest.runtime import Runtime
from yuqing.contracts import Channel, RawPost
from yuqing.http_edge import JSON_TYPES, Problem, field_errors, parse_json, read_body, request_body

router = APIRouter(tags=["partner systems"])

_POST_SCHEMA = PostIn.model_json_schema()
_BODY_SCHEMA: dict[str, Any] = {"anyOf": [_POST_SCHEMA, {
    "type": "object", "additionalProperties": False, "required": ["posts"],
    "properties": {"posts": {"type": "array", "minItems": 1, "items": _POST_SCHEMA}},
}]}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "not JSON"},
    401: {"description": "missing or invalid X-Api-Key"},
    403: {"description": "the key's source is disabled"},
    413: {"description": "body or batch too large, or a post over the message size limit (named)"},
    415: {"description": "not application/json"},
    422: {"description": "a post does not satisfy the contract (field list), or its created_at "
                         "is outside the window around arrival; nothing published"},
    429: {"description": "over the source's rate limit; see Retry-After"},
    503: {"description": "Kafka did not acknowledge every post (the detail says whether any was "
                         "kept); retry the whole request after Retry-After"},
}


async def integration_source(runtime: Runtime,
                             x_api_key: Annotated[str | None, Header()] = None) -> RegisteredSource:
    if not x_api_key:
        raise Problem(401, "missing X-Api-Key header", {"WWW-Authenticate": "ApiKey"})
    try:
        return runtime.registry.authenticate_api_key(x_api_key)
    except InvalidApiKeyError as exc:
        raise Problem(401, str(exc), {"WWW-Authenticate": "ApiKey"}) from exc
    except SourceDisabledError as exc:
        raise Problem(403, str(exc)) from exc


IntegrationSource = Annotated[RegisteredSource, Depends(integration_source)]


@router.post("/v1/posts", status_code=202, response_model=Accepted, responses=_ERRORS,
             openapi_extra=request_body("application/json", _BODY_SCHEMA))
async def publish_posts(request: Request, runtime: Runtime, source: IntegrationSource) -> Accepted:
    """Publish one post (a JSON object) or a batch (``{"posts": [...]}``); 202 once Kafka has them."""
    runtime.check_rate(source)
    data = parse_json(await read_body(request, limit=runtime.settings.max_body_bytes,
                                      media_types=JSON_TYPES))
    max_posts = min(runtime.settings.max_batch_posts, source.config.max_batch)  # type: ignore[union-attr]
    posts = to_raw_posts(parse_posts(data, max_posts), source)
    in_batch = isinstance(data, dict) and "posts" in data
    outcome = await runtime.publish(posts, channel=Channel.INTEGRATION, fields_at=None if in_batch else [])
    return Accepted(accepted=outcome.accepted, duplicates=outcome.duplicates,
                    post_ids=outcome.post_ids)


def parse_posts(data: object, max_posts: int) -> list[PostIn]:
    """One post object or ``{"posts": [...]}``: 422 with the fields at fault, 413 over ``max_posts``.

    The count is checked first: validating every post of an over-long batch would answer
    about the first post's fields, after seconds spent on the event loop."""
    batch = data.get("posts") if isinstance(data, dict) else None
    if isinstance(batch, list) and len(batch) > max_posts:
        raise Problem(413, f"at most {max_posts} posts per request (this one has {len(batch)})")
    if isinstance(data, list):
        raise Problem(422, [{"loc": [], "msg": 'a batch is sent as {"posts": [...]}, not as a bare array',
                             "type": "model_type"}])
    try:
        if isinstance(data, dict) and "posts" in data:
            posts = PostBatchIn.model_validate(data).posts
        else:
            posts = [PostIn.model_validate(data)]
    except ValidationError as exc:
        raise Problem(422, field_errors(exc.errors())) from exc
    return posts


def to_raw_posts(posts: list[PostIn], source: RegisteredSource) -> list[RawPost]:
    config = source.config
    try:
        return [p.to_raw(source=source.id, channel=source.channel, region=config.region,
                         unit=config.unit) for p in posts]
    except ValidationError as exc:
        raise Problem(422, field_errors(exc.errors())) from exc

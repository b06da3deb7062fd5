"""Bytes on a topic <-> contract models, with errors that say what is wrong."""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ContractError(ValueError):
    """A message that does not satisfy its topic's contract."""


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=False).encode()


def decode(model_type: type[M], value: bytes | None) -> M:
    if value is None:
        raise ContractError("empty message (tombstone)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(f"message is not valid UTF-8 at byte {exc.start}") from exc
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return model_type.model_validate(data)
    except ValidationError as exc:
        raise ContractError(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")

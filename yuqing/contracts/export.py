"""Render the JSON Schemas in ``schemas/`` from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yuqing.contracts.models import CONTRACTS
from yuqing.topics import SCHEMAS_DIR

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render_schema(topic: str) -> dict[str, Any]:
    model = CONTRACTS[topic]
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://yuqing.dev/schemas/{topic}/v1.schema.json",
        **schema,
    }


def schema_path(topic: str, root: Path = SCHEMAS_DIR) -> Path:
    return root / topic / "v1.schema.json"


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def export_all(root: Path = SCHEMAS_DIR) -> list[Path]:
    written = []
    for topic in CONTRACTS:
        path = schema_path(topic, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(render_schema(topic)))
        written.append(path)
    return written


def stale_schemas(root: Path = SCHEMAS_DIR) -> list[str]:
    """Topics whose committed schema differs from the model's."""
    return [
        topic for topic in CONTRACTS
        if not schema_path(topic, root).exists()
        or schema_path(topic, root).read_text() != dumps(render_schema(topic))
    ]

"""schemathesis hooks for ``api_conformance.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

A post's ``created_at`` must lie near its arrival (30 days back, 5 minutes ahead):
no JSON Schema keyword can say "near now", so a generated date-time that parses
is moved to now. Malformed ones are left as generated, so negative cases stay
negative.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis


def _fresh(value: Any) -> Any:
    if isinstance(value, list):
        return [_fresh(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: _now_if_date_time(item) if key == "created_at" else _fresh(item)
            for key, item in value.items()}


def _now_if_date_time(value: Any) -> Any:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return value
    if parsed is None or parsed.tzinfo is None or not value[:4].isdigit():
        return value
    return datetime.now(UTC).isoformat()


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    return _fresh(body)

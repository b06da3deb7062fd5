"""Dead-letter lines: when, where, whose and why."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from services.ingest.dlq import describe
from tests.conftest import REPO_ROOT
from yuqing.contracts import DeadLetter

EXAMPLE = REPO_ROOT / "schemas" / "posts.dlq" / "examples" / "invalid-json.json"


def letter(original: bytes, **fields: object) -> DeadLetter:
    return DeadLetter(original_b64=base64.b64encode(original).decode(), topic="posts.raw",
                      partition=3, offset=1207, error_class="ContractError",
                      error_message="created_at: Input should have timezone info", service="nlp",
                      failed_at=datetime(2026, 11, 28, 12, 15, 2, tzinfo=UTC), **fields)


def test_line_names_the_source_and_post_of_a_readable_original() -> None:
    original = json.dumps({"post_id": "a" * 32, "source": "crm-95598", "created_at": "yesterday"})
    line = describe(letter(original.encode()))

    assert (line.source, line.post_id, line.where) == ("crm-95598", "a" * 32, "posts.raw[3]@1207")
    assert str(line) == ("2026-11-28T12:15:02+00:00  nlp      posts.raw[3]@1207  source=crm-95598 "
                         f"post_id={'a' * 32}  ContractError: created_at: Input should have timezone info")


def test_unreadable_original_still_gives_a_line() -> None:
    line = describe(letter(b"\xff\xfe not json"))

    assert (line.source, line.post_id) == (None, None)
    assert "source=? post_id=?" in str(line)


def test_the_contract_example_describes() -> None:
    example = DeadLetter.model_validate_json(EXAMPLE.read_bytes())

    assert describe(example).service == example.service

"""The count limit of ``POST /v1/posts`` is checked before a single post is validated.

A batch over the limit is a 413 that says so, whatever its posts hold: validating
every post of an over-long batch first answered a 422 about the first post's fields
and spent seconds of the event loop on a body of a few hundred thousand ``{}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.views_posts import parse_posts
from yuqing.http_edge import Problem


def _post(i: int) -> dict[str, Any]:
    return {"external_id": f"e-{i}", "text": "城关镇又停电了", "created_at": datetime.now(UTC).isoformat()}


def test_a_batch_exactly_at_the_limit_is_read() -> None:
    assert len(parse_posts({"posts": [_post(i) for i in range(50)]}, 50)) == 50


@pytest.mark.parametrize("posts", [[_post(i) for i in range(51)], [{}] * 51, [None] * 51])
def test_one_post_over_the_limit_is_a_413_whatever_the_posts_hold(posts: list[Any]) -> None:
    with pytest.raises(Problem) as raised:
        parse_posts({"posts": posts}, 50)

    assert raised.value.status_code == 413
    assert raised.value.detail == "at most 50 posts per request (this one has 51)"


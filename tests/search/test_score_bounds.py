"""A post whose scores are no probabilities is refused by the contract, its batch mates indexed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.search.bulk import build_actions
from services.search.issue_live import LiveIssues
from tests.search.factory import make_post
from yuqing.consumer import Record
from yuqing.contracts import Sentiment, Topic
from yuqing.contracts.codec import encode


@pytest.mark.parametrize("scores", [{"topic_scores": {Topic.OUTAGE: -0.5}},
                                    {"topic_scores": {Topic.OUTAGE: 1.5}},
                                    {"sentiment_scores": {Sentiment.NEGATIVE: -1.0}}])
def test_a_score_outside_zero_to_one_is_a_contract_refusal_not_a_failed_batch(
        scores: dict[str, dict[str, float]]) -> None:
    # the grouping took the logarithm of a negative topic score: "math domain error" failed the whole
    # batch, and the indexer stopped uncommitted on it after every restart
    now = datetime.now(UTC)
    odd = make_post("城关镇又停电了", external_id="odd").model_copy(
        update={**scores, "created_at": now, "received_at": now})
    normal = make_post("河口镇营业厅排队太久", external_id="normal", created_at=now)
    records = [Record("posts.enriched", 0, 0, None, encode(odd)),
               Record("posts.enriched", 0, 1, None, encode(normal))]

    actions, kept, rejected = build_actions(records, "yq", issues=LiveIssues())

    assert [a["_id"] for a in actions] == [normal.post_id] and kept == records[1:]
    assert [(r.offset, why.split(":")[0]) for r, why in rejected] == [(0, "contract")]
    assert "_scores." in rejected[0][1]

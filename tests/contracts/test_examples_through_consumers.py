"""Every example message goes through the consumer that reads its topic."""

import json

from services.alerts.keys import keys_for
from services.nlp.pipeline import BatchProcessor
from services.nlp.placeholder import KeywordPlaceholderClassifier
from services.search.bulk import build_actions
from yuqing.consumer import Record
from yuqing.contracts import EnrichedPost
from yuqing.contracts.codec import decode
from yuqing.topics import SCHEMAS_DIR


def _examples(topic: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((SCHEMAS_DIR / topic / "examples").glob("*.json"))]


def test_raw_examples_are_enriched_by_the_nlp_pipeline():
    records = [Record("posts.raw", 0, i, None, value) for i, value in enumerate(_examples("posts.raw"))]
    result = BatchProcessor(KeywordPlaceholderClassifier()).process(records)
    assert result.dead_letters == []
    assert len(result.enriched) == len(records)
    for post in result.enriched:
        assert len(post.fingerprint) == 16


def test_enriched_examples_become_documents_and_alert_keys():
    values = _examples("posts.enriched")
    messages = [Record("posts.enriched", 0, i, None, v) for i, v in enumerate(values)]
    actions, _kept, rejected = build_actions(messages, "yuqing")
    assert rejected == [] and len(actions) == len(values)
    for value in values:
        post = decode(EnrichedPost, value)
        assert {"overall", "topic", "source"} <= {k.family for k in keys_for(post)}
        # the cluster family is the post's issue, given by the grouping in stage 1
        issue_keys = [k for k in keys_for(post, issue_id="outage-0123456789abcdef") if k.family == "cluster"]
        assert [k.cluster for k in issue_keys] == ["outage-0123456789abcdef"]


def test_dead_letter_example_keeps_original_bytes():
    for value in _examples("posts.dlq"):
        assert json.loads(value)["original_b64"]


def test_enriched_messages_from_before_inferred_region_are_still_consumed():
    olders = []
    for value in _examples("posts.enriched"):
        data = json.loads(value)
        data.pop("inferred_region", None)  # an NLP worker before the field did not write it
        olders.append(json.dumps(data, ensure_ascii=False).encode())
    messages = [Record("posts.enriched", 0, i, None, v) for i, v in enumerate(olders)]
    actions, _kept, rejected = build_actions(messages, "yuqing")
    assert rejected == [] and len(actions) == len(olders)
    for value in olders:
        post = decode(EnrichedPost, value)
        assert not post.region_inferred_upstream
        assert {"overall", "topic", "source"} <= {k.family for k in keys_for(post)}

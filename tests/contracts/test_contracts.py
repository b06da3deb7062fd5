import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from yuqing.contracts import CONTRACTS, DeadLetter, EnrichedPost, RawPost
from yuqing.contracts.codec import ContractError, decode
from yuqing.contracts.export import render_schema, schema_path, stale_schemas
from yuqing.topics import SCHEMAS_DIR, LogicalTopic, topic_spec

EXAMPLES = sorted(SCHEMAS_DIR.glob("*/examples/*.json"))


def test_every_topic_has_schema_registry_and_examples():
    for topic in LogicalTopic:
        assert schema_path(topic.value).exists()
        spec = topic_spec(topic)
        assert spec.partitions >= 1 and spec.producers and spec.consumers
        assert list((SCHEMAS_DIR / topic.value / "examples").glob("*.json")), topic


def test_committed_schemas_match_models():
    assert stale_schemas() == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_example_valid_against_schema_and_model(path: Path):
    topic = path.parent.parent.name
    data = json.loads(path.read_text())
    schema = json.loads(schema_path(topic).read_text())
    Draft202012Validator.check_schema(schema)
    errors = list(Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
                  .iter_errors(data))
    assert errors == []
    model = CONTRACTS[topic].model_validate(data)
    assert model.schema_version == "v1"


def test_schema_rejects_unknown_field_like_the_model():
    data = json.loads((SCHEMAS_DIR / "posts.raw/examples/app-feedback.json").read_text())
    data["surprise"] = 1
    schema = render_schema("posts.raw")
    assert list(Draft202012Validator(schema).iter_errors(data))
    with pytest.raises(ContractError, match="surprise"):
        decode(RawPost, json.dumps(data).encode())


@pytest.mark.parametrize("topic", ["posts.raw", "posts.enriched"])
@pytest.mark.parametrize("created_at", ["2026-11-28T20:15:00", "1764332100", "28/11/2026 20:15", "yesterday"])
def test_committed_schema_refuses_a_date_time_the_model_refuses(topic: str, created_at: str):
    # A standard validator checks "format" only when asked to: the schema must say it otherwise.
    data = json.loads(sorted((SCHEMAS_DIR / topic / "examples").glob("*.json"))[0].read_text())
    data["created_at"] = created_at
    schema = json.loads(schema_path(topic).read_text())
    assert list(Draft202012Validator(schema).iter_errors(data))
    with pytest.raises(ContractError, match="created_at"):
        decode(CONTRACTS[LogicalTopic(topic)], json.dumps(data).encode())


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"\xff\xfe", "UTF-8"), (b"{not json", "invalid JSON"), (b"[1, 2]", "JSON object"),
     (None, "tombstone"), (b'{"post_id": "x"}', "post_id")],
)
def test_decode_errors_say_what_is_wrong(payload, reason):
    with pytest.raises(ContractError, match=reason):
        decode(RawPost, payload)


def test_enriched_is_a_superset_of_raw():
    assert set(RawPost.model_fields) < set(EnrichedPost.model_fields)
    assert "original_b64" in DeadLetter.model_fields

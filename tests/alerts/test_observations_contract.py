"""The internal observations topic: its examples go through the counting stage."""

from __future__ import annotations

import json

from services.alerts.evidence import Observation
from services.alerts.watch import Counted
from tests.alerts.test_watch import _watch
from yuqing.contracts.models import AlertsObservation, ObservedPost, PartitionStatus
from yuqing.topics import SCHEMAS_DIR

EXAMPLES = sorted((SCHEMAS_DIR / "alerts.observations" / "examples").glob("*.json"))


def _bodies() -> list[ObservedPost | PartitionStatus]:
    return [AlertsObservation.model_validate(json.loads(path.read_text())).body for path in EXAMPLES]


def test_there_are_post_and_status_examples():
    assert {type(body) for body in _bodies()} == {ObservedPost, PartitionStatus}


def test_post_examples_are_counted_once_into_their_keys():
    for body in _bodies():
        if isinstance(body, ObservedPost):
            watch = _watch(bucket=300)
            observation = Observation.of_message(body)
            assert watch.add(observation, partition=body.source_partition, offset=body.source_offset) \
                is Counted.COUNTED
            assert watch.add(observation, partition=body.source_partition, offset=body.source_offset) \
                is Counted.REPLAYED
            assert {key.label() for key in body.keys} == set(watch.windows)


def test_an_observation_survives_the_message_round_trip():
    for body in _bodies():
        if isinstance(body, ObservedPost):
            observation = Observation.of_message(body)
            message = {**observation.to_dict(), "source_partition": 0, "source_offset": 1,
                       "source_partitions": 1}
            again = AlertsObservation(body=ObservedPost.model_validate(message))
            assert Observation.of_message(again.body) == observation  # type: ignore[arg-type]


def test_cluster_keys_are_issue_ids_and_old_simhash_band_keys_are_still_read():
    posts = [body for body in _bodies() if isinstance(body, ObservedPost)]
    clusters = {body.issue_id: [k.cluster for k in body.keys if k.family == "cluster"] for body in posts}
    # today's message names its issue, an old one (no issue_id) carries a SimHash band
    assert clusters == {"outage-9f2c41d07a3be815": ["outage-9f2c41d07a3be815"], None: ["9f"]}

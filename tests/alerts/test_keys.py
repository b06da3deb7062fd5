from datetime import UTC, datetime

from services.alerts.keys import OTHER, BoundedLabel, cluster_of, keys_for, volume_labels
from tests.alerts.streams import make_post
from yuqing.contracts import AlertKey, Sentiment, Topic

MOMENT = datetime(2026, 11, 25, 4, tzinfo=UTC)


def _post(region: str | None) -> object:
    post = make_post(index="k-1", created_at=MOMENT, topic=Topic.OUTAGE, region="青山乡",
                     source="app-main", text="青山乡停电了", keywords=["停电"],
                     fingerprint=0xABCDEF0123456789, sentiment=Sentiment.NEGATIVE)
    return post.model_copy(update={"region": region})


def test_a_post_with_a_region_counts_for_five_keys():
    labels = [key.label() for key in keys_for(_post("青山乡"))]
    assert labels == ["overall", "topic|topic=outage", "source|source=app-main", "cluster|cluster=ab",
                      "topic_region|topic=outage|region=青山乡"]


def test_a_post_without_a_region_has_no_topic_region_key():
    assert {key.family for key in keys_for(_post(None))} == {"overall", "topic", "source", "cluster"}


def test_near_duplicates_share_a_cluster_band():
    assert cluster_of("ab12ffffffffffff") == cluster_of("ab34000000000000") == "ab"


def test_bounded_label_keeps_the_first_values_and_buckets_the_rest():
    label = BoundedLabel(cap=2)
    assert [label(v) for v in ("a", "b", "c", "a", None)] == ["a", "b", OTHER, "a", ""]


def test_volume_labels_bound_region_and_source():
    regions, sources = BoundedLabel(1), BoundedLabel(1)
    first, second = (volume_labels(AlertKey(family="topic_region", topic=Topic.OUTAGE, region=region),
                                   regions, sources) for region in ("青山乡", "城关镇"))
    assert first == {"family": "topic_region", "topic": "outage", "region": "青山乡", "source": ""}
    assert second["region"] == OTHER
    assert volume_labels(AlertKey(family="cluster", cluster="ab"), regions, sources) == {
        "family": "cluster", "topic": "", "region": "", "source": ""}

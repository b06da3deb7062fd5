from datetime import UTC, datetime

from services.alerts.keys import (
    OTHER,
    BoundedLabel,
    SourceLags,
    band_of,
    is_band,
    keys_for,
    volume_labels,
)
from services.alerts.warm import PastPost
from tests.alerts.streams import make_post
from yuqing.contracts import AlertKey, Sentiment, Topic
from yuqing.places import Gazetteer

PLACES = Gazetteer.of(["青山乡", "河口镇", "城关镇"], {"河口镇": ["滨河小区"]})

MOMENT = datetime(2026, 11, 25, 4, tzinfo=UTC)


def _post(region: str | None, text: str = "青山乡停电了") -> object:
    post = make_post(index="k-1", created_at=MOMENT, topic=Topic.OUTAGE, region="青山乡",
                     source="app-main", text=text, keywords=["停电"],
                     fingerprint=0xABCDEF0123456789, sentiment=Sentiment.NEGATIVE)
    return post.model_copy(update={"region": region})


def _region(post: object) -> str | None:
    regions = [key.region for key in keys_for(post, PLACES) if key.family == "topic_region"]
    assert len(regions) <= 1
    return regions[0] if regions else None


def test_a_post_with_a_region_and_an_issue_counts_for_five_keys():
    labels = [key.label() for key in keys_for(_post("青山乡"), issue_id="outage-0123456789abcdef")]
    assert labels == ["overall", "topic|topic=outage", "source|source=app-main",
                      "cluster|cluster=outage-0123456789abcdef", "topic_region|topic=outage|region=青山乡"]


def test_a_post_without_a_region_has_no_topic_region_key():
    keys = keys_for(_post(None), issue_id="outage-0123456789abcdef")
    assert {key.family for key in keys} == {"overall", "topic", "source", "cluster"}


def test_a_post_without_an_issue_has_no_cluster_key():
    assert {key.family for key in keys_for(_post("青山乡"))} == {"overall", "topic", "source",
                                                                  "topic_region"}


def test_a_post_without_a_region_counts_under_the_one_known_region_its_text_names():
    assert _region(_post(None, "河口停电+1")) == "河口镇"
    assert _region(_post(None, "我家也停了，滨河小区，这都第二次了")) == "河口镇"
    assert _region(_post(None, "城关镇和河口镇都停电了")) is None  # two places: no region
    assert _region(_post(None, "停电了！！冰箱里刚买的肉啊")) is None  # none
    assert _region(_post(None, "白沙乡停电了")) is None  # not a known region
    assert _region(_post("城关镇", "河口停电+1")) == "城关镇"  # the post's own region comes first


def test_warming_keys_a_stored_post_as_the_live_worker_does():
    post = _post(None, "河口这边突然停电了，啥情况？")
    assert keys_for(PastPost.of(post), PLACES) == keys_for(post, PLACES)
    document = {"created_at": MOMENT.isoformat(), "topic": "outage", "source": "app-main",
                "fingerprint": "abcdef0123456789", "text": "河口这边突然停电了，啥情况？"}
    assert keys_for(PastPost.of_document(document), PLACES) == keys_for(post, PLACES)


def test_old_cluster_keys_are_simhash_bands_and_new_ones_issue_ids():
    assert band_of("ab12ffffffffffff") == band_of("ab34000000000000") == "ab"
    assert is_band(AlertKey(family="cluster", cluster="ab"))
    assert not is_band(AlertKey(family="cluster", cluster="outage-0123456789abcdef"))
    assert not is_band(AlertKey(family="source", source="ab"))


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


def test_the_region_the_nlp_worker_inferred_is_the_one_counted():
    inferred = _post(None, "河口停电+1").model_copy(update={"inferred_region": "河口镇"})
    assert _region(inferred) == "河口镇"
    # the worker's inference wins over this worker's gazetteer: one inference, the index's
    assert _region(inferred.model_copy(update={"inferred_region": "城关镇"})) == "城关镇"
    nothing = _post(None, "河口停电+1").model_copy(update={"inferred_region": None})
    assert _region(nothing) is None  # inferred upstream, nothing found: not placed again here
    assert _region(_post("青山乡", "河口停电+1").model_copy(update={"inferred_region": None})) == "青山乡"


def test_warming_from_the_index_keys_an_inferred_region_as_the_live_worker_does():
    live = _post(None, "停电+1").model_copy(update={"inferred_region": "河口镇"})
    document = {"created_at": MOMENT.isoformat(), "topic": "outage", "source": "app-main",
                "fingerprint": "abcdef0123456789", "text": "停电+1", "region": "河口镇",
                "region_source": "text"}
    assert keys_for(PastPost.of_document(document), PLACES) == keys_for(live, PLACES)
    assert keys_for(PastPost.of(live), PLACES) == keys_for(live, PLACES)
    unplaced = {**document, "text": "河口停电+1", "region": None, "region_source": None}
    assert _region(PastPost.of_document(unplaced)) is None


def test_a_late_post_is_held_for_a_period_whatever_comes_after_it():
    lags = SourceLags(period=60, expiry=3600)
    assert lags.observe("forum", 1200, now=0) == 1200
    # on-time posts of the same source within the period do not overwrite it
    assert [lags.observe("forum", 30, now=t) for t in (10, 50)] == [1200, 1200]
    # nor those of another source
    assert lags.observe("weibo", 5, now=55) == 5
    # the next period still reports the one before; the one after that only on-time posts
    assert lags.observe("forum", 30, now=70) == 1200
    assert lags.observe("forum", 20, now=140) == 30
    assert lags.observe("forum", 20, now=200) == 20


def test_a_source_keeping_late_posts_keeps_a_high_lag():
    lags = SourceLags(period=60, expiry=3600)
    reported = [lags.observe("forum", 1200 if t % 120 == 0 else 10, now=t) for t in range(0, 1200, 20)]
    assert min(reported) == 1200


def test_a_silent_source_keeps_its_value_until_it_expires():
    lags = SourceLags(period=60, expiry=3600)
    lags.observe("forum", 1200, now=0)
    lags.observe("weibo", 5, now=3000)
    assert lags.expired(now=3599) == []
    assert lags.expired(now=3600) == ["forum"]
    assert lags.expired(now=3601) == []
    # once expired, the source starts over
    assert lags.observe("forum", 40, now=3700) == 40

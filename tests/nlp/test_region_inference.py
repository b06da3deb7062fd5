"""The NLP worker infers a post's region from its words once, when the sender gave none."""

from datetime import UTC, datetime

import orjson

from services.alerts.keys import region_of
from services.nlp.enrich import enrich, infer_region, model_input
from services.nlp.pipeline import BatchProcessor
from services.nlp.placeholder import KeywordPlaceholderClassifier
from tests.alerts.streams import demo_posts
from yuqing.consumer import Record
from yuqing.contracts import Channel, EnrichedPost, RawPost, make_post_id
from yuqing.contracts.codec import decode, encode
from yuqing.paths import project_paths
from yuqing.places import Gazetteer, load_gazetteer

PLACES = Gazetteer.of(["青山乡", "河口镇", "城关镇"], {"河口镇": ["滨河小区"]})
MOMENT = datetime(2026, 11, 28, 11, 45, tzinfo=UTC)
HEKOU_POSTS = (16, 9)  # the demo's posts placed in 河口镇, and those of them without a region


def _raw(text: str, region: str | None = None, title: str | None = None, external_id: str = "m1") -> RawPost:
    return RawPost(post_id=make_post_id("wechat-county", external_id), source="wechat-county",
                   channel=Channel.WECHAT, external_id=external_id, text=text, title=title,
                   region=region, created_at=MOMENT, received_at=MOMENT)


def _enriched(post: RawPost, places: Gazetteer = PLACES) -> EnrichedPost:
    return enrich(post, topic="outage", topic_scores={"outage": 1.0}, sentiment="negative",
                  sentiment_scores={"negative": 1.0}, rule_hits=[], model_version="t", now=MOMENT,
                  places=places)


def test_a_post_without_a_region_gets_the_one_region_its_text_names():
    post = _enriched(_raw("河口这边突然停电了，啥情况？"))
    assert post.region is None and post.inferred_region == "河口镇"
    assert post.effective_region == "河口镇" and post.region_inferred_upstream


def test_the_senders_region_is_kept_and_nothing_is_inferred():
    post = _enriched(_raw("河口停电+1", region="城关镇"))
    assert post.region == "城关镇" and post.inferred_region is None
    assert post.effective_region == "城关镇"


def test_no_region_when_the_text_names_none_several_or_an_unknown_one():
    for text in ("停电了！！冰箱里刚买的肉啊", "城关镇和河口镇都停电了", "白沙乡停电了", "桃花开了"):
        post = _enriched(_raw(text))
        assert post.inferred_region is None, text
        assert post.region_inferred_upstream  # inferred, and nothing found: not a message to redo


def test_a_place_listed_under_a_region_and_the_title_count():
    assert _enriched(_raw("我家也停了，滨河小区，这都第二次了")).inferred_region == "河口镇"
    titled = _raw("整条街都黑了", title="青山乡停电")
    assert infer_region(titled, model_input(titled), PLACES) == "青山乡"


def test_without_a_gazetteer_nothing_is_inferred():
    assert _enriched(_raw("河口这边突然停电了"), places=Gazetteer()).inferred_region is None


def test_the_field_survives_the_topic_and_a_message_without_it_is_still_read():
    post = _enriched(_raw("河口这边突然停电了"))
    again = decode(EnrichedPost, encode(post))
    assert again.inferred_region == "河口镇" and again.region_inferred_upstream
    older = orjson.loads(encode(post))
    del older["inferred_region"]  # what an NLP worker before the field wrote
    old = decode(EnrichedPost, orjson.dumps(older))
    assert old.inferred_region is None and not old.region_inferred_upstream
    assert old.effective_region is None


def test_the_batch_processor_infers_with_its_gazetteer():
    raw = _raw("河口镇停电了，什么时候来电？")
    record = Record("posts.raw", 0, 0, None, encode(raw))
    result = BatchProcessor(KeywordPlaceholderClassifier(), places=PLACES).process([record])
    assert [p.inferred_region for p in result.enriched] == ["河口镇"]



def test_the_demo_stream_is_placed_as_the_alerts_worker_placed_it_before():
    configured = load_gazetteer(project_paths().config / "places.toml")
    posts = demo_posts(MOMENT)
    placed = []
    for post in posts:
        raw = RawPost(**{name: getattr(post, name) for name in RawPost.model_fields})
        placed.append(_enriched(raw, places=configured).effective_region)
        assert placed[-1] == region_of(post, configured), post.text  # the alerts worker's own answer
    hekou = [post for post, region in zip(posts, placed, strict=True) if region == "河口镇"]
    assert (len(hekou), sum(1 for post in hekou if post.region is None)) == HEKOU_POSTS

import json
from datetime import UTC, datetime, timedelta, timezone

from services.search.documents import (
    ALERT_MERGE_SCRIPT,
    SEGMENT_BLOCK_CHARS,
    SEGMENTED_CHARS,
    alert_action,
    alert_document,
    segment,
    segment_blocks,
    to_document,
)
from services.search.grouping import Assignment
from services.search.issue_live import post_signal, stored_signal
from services.search.mappings import (
    ALERT_PROPERTIES,
    POST_PROPERTIES,
    posts_index,
    posts_template,
    small_index,
    templates,
)
from services.search.query import HIGHLIGHT_POST, HIGHLIGHT_PRE, escape_highlight
from tests.search.factory import make_alert, make_post
from yuqing.contracts import AlertState, EnrichedPost
from yuqing.topics import SCHEMAS_DIR


def _example() -> EnrichedPost:
    path = SCHEMAS_DIR / "posts.enriched/examples/billing-redacted.json"
    return EnrichedPost.model_validate(json.loads(path.read_text()))


def test_document_uses_redacted_text_and_fits_the_strict_mapping():
    post = _example()
    doc = to_document(post, issue=Assignment("billing-0000000000000001", 2))
    assert "13812345678" not in json.dumps(doc, ensure_ascii=False)
    assert set(doc) <= set(POST_PROPERTIES)
    assert "电表" in doc["text_words"].split()
    assert doc["issue_id"] == "billing-0000000000000001" and doc["issue_distance"] == 2
    assert len(doc["fingerprint_bands"]) == 4


def test_monthly_index_by_event_time_and_alias_in_template():
    post = _example()
    assert posts_index("yq", post.created_at) == "yq-posts-v1-2026.11"
    template = posts_template("yq")
    assert template["index_patterns"] == ["yq-posts-v1-*"]
    assert "yq-posts" in template["template"]["aliases"]
    assert template["template"]["mappings"]["dynamic"] == "strict"


def test_every_template_is_versioned_and_aliased():
    for name, body in templates("yq").items():
        assert body["version"] == 1 and body["template"]["aliases"], name
    assert small_index("yq", "alerts") == "yq-alerts-v1"


def test_highlight_is_html_escaped_but_marks_survive():
    fragment = f"<script>alert(1)</script>{HIGHLIGHT_PRE}停电{HIGHLIGHT_POST}"
    assert escape_highlight(fragment) == "&lt;script&gt;alert(1)&lt;/script&gt;<em>停电</em>"


def test_segment_gives_words():
    assert "停电" in segment("城关镇停电了").split()


def test_traditional_characters_are_segmented_as_the_simplified_words():
    assert segment("什麼時候來電？停電了") == segment("什么时候来电？停电了")
    analysis = posts_template("yq")["template"]["settings"]["analysis"]
    assert "電=>电" in analysis["char_filter"]["zh_simplified"]["mappings"]
    assert {name: a["char_filter"] for name, a in analysis["analyzer"].items()} == {
        "zh_bigram": ["zh_simplified"], "zh_words": ["zh_simplified"]}


def test_a_run_without_punctuation_is_segmented_in_pieces():
    # jieba's time grows with the square of a run: one post of 100,000 such characters took the
    # indexer 24 s, and a batch of them outlasted the consumer's poll interval, read again for ever
    text = "户号" * 50_000 + "，又停电了" + "x" * 100_000
    blocks = segment_blocks(text)
    assert max(len(block) for block in blocks) == SEGMENT_BLOCK_CHARS
    assert "".join(blocks) == text[:SEGMENTED_CHARS]
    assert max(len(word) for word in segment(text).split()) <= SEGMENT_BLOCK_CHARS


def test_words_of_a_post_are_those_of_its_first_characters():
    head = "城关镇幸福小区今晚又停电了，什么时候来电？"
    assert segment(head + "停" * SEGMENTED_CHARS + "，电表坏了").split() == segment(
        head + "停" * (SEGMENTED_CHARS - len(head))).split()
    assert segment_blocks(head) == ["城关镇幸福小区今晚又停电了", "什么时候来电"]


def test_firing_alert_brings_explanation_and_resolved_only_its_time():
    post = make_post("城关镇停电", external_id="a")
    firing = alert_document(make_alert("alert-0001", sample_post_ids=[post.post_id]))
    resolved = alert_document(make_alert("alert-0001", state=AlertState.RESOLVED))
    assert set(firing) <= set(ALERT_PROPERTIES) and set(resolved) <= set(ALERT_PROPERTIES)
    assert firing["sample_post_ids"] == [post.post_id] and "explanation" in firing
    assert "explanation" not in resolved and resolved["state"] == "resolved"
    assert firing["updated_at"].endswith("+00:00")


def test_alert_action_is_an_upserting_update_keyed_by_alert_id():
    action = alert_action(make_alert("alert-0002"), "yq-alerts")
    assert action["_op_type"] == "update" and action["_id"] == "alert-0002"
    assert action["script"]["source"] == ALERT_MERGE_SCRIPT and action["upsert"]["state"] == "firing"


def test_a_region_inferred_from_the_text_is_indexed_and_marked():
    sender = make_post("河口镇停电了", external_id="r-1", region="河口镇")
    inferred = make_post("河口这边突然停电了", external_id="r-2", region=None).model_copy(
        update={"inferred_region": "河口镇"})
    unplaced = make_post("停电了", external_id="r-3", region=None).model_copy(
        update={"inferred_region": None})
    older = make_post("河口这边突然停电了", external_id="r-4", region=None)  # no inferred_region field
    assert (to_document(sender)["region"], to_document(sender)["region_source"]) == ("河口镇", "sender")
    assert (to_document(inferred)["region"], to_document(inferred)["region_source"]) == ("河口镇", "text")
    assert to_document(unplaced)["region"] is None and to_document(unplaced)["region_source"] is None
    # left out: a reader of the index (alerts warm) places a post of an older message itself
    assert to_document(older)["region"] is None and "region_source" not in to_document(older)
    assert set(to_document(inferred)) <= set(POST_PROPERTIES)


def test_grouping_rebuilt_from_the_index_reads_the_region_and_the_inferred_one_as_the_live_grouper_does():
    for region, inferred in (("河口镇", None), (None, "河口镇"), (None, None)):
        post = make_post("河口这边突然停电了", external_id=f"g-{region}-{inferred}",
                         region=region).model_copy(
            update={"inferred_region": inferred})
        assert stored_signal(to_document(post)) == post_signal(post)


def test_one_instant_written_with_two_offsets_goes_to_one_monthly_index() -> None:
    # 2026-12-01 02:00 in UTC+8 is still November in UTC: a resend written in UTC must not
    # create a second copy in another month's index.
    local = datetime(2026, 12, 1, 2, 0, tzinfo=timezone(timedelta(hours=8)))
    assert posts_index("yq", local) == posts_index("yq", local.astimezone(UTC)) == "yq-posts-v1-2026.11"


def test_full_width_letters_and_digits_are_segmented_as_ascii():
    # jieba segments ASCII letters and digits only: ＡＰＰ and ９５５９８ were left out of the words
    assert segment("ＡＰＰ登录不上") == segment("APP登录不上") == "APP 登录 不上"
    assert segment("９５５９８打不通") == segment("95598打不通")

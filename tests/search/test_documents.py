import json

from yuqing.contracts import EnrichedPost
from yuqing.search.api import HIGHLIGHT_POST, HIGHLIGHT_PRE, build_query, escape_highlight
from yuqing.search.documents import segment, to_document
from yuqing.search.mappings import POST_PROPERTIES, posts_index, posts_template
from yuqing.topics import SCHEMAS_DIR


def _example() -> EnrichedPost:
    path = SCHEMAS_DIR / "posts.enriched/examples/billing-redacted.json"
    return EnrichedPost.model_validate(json.loads(path.read_text()))


def test_document_uses_redacted_text_and_fits_the_strict_mapping():
    post = _example()
    doc = to_document(post)
    assert "13812345678" not in json.dumps(doc, ensure_ascii=False)
    assert set(doc) <= set(POST_PROPERTIES)
    assert "电表" in doc["text_words"].split()


def test_monthly_index_by_event_time_and_alias_in_template():
    post = _example()
    assert posts_index("yq", post.created_at) == "yq-posts-v1-2026.11"
    template = posts_template("yq")
    assert template["index_patterns"] == ["yq-posts-v1-*"]
    assert "yq-posts" in template["template"]["aliases"]


def test_highlight_is_html_escaped_but_marks_survive():
    fragment = f"<script>alert(1)</script>{HIGHLIGHT_PRE}停电{HIGHLIGHT_POST}"
    assert escape_highlight(fragment) == "&lt;script&gt;alert(1)&lt;/script&gt;<em>停电</em>"


def test_query_uses_simple_query_string_and_filters():
    query = build_query("停电 -演习", topic=None, sentiment=None, source="app-main",
                        region=None, unit=None, since=None, until=None)
    must = query["bool"]["must"][0]
    assert "simple_query_string" in must and "query_string" not in must
    assert {"term": {"source": "app-main"}} in query["bool"]["filter"]
    assert "停电" in segment("城关镇停电了")

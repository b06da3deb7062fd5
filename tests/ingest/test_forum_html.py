"""Discourse's own markup around a post's words is not taken for them: image boxes, link
previews, icons."""

from __future__ import annotations

import pytest

from services.ingest.forum import html_to_text

LIGHTBOX = (
    '<p>变压器冒烟了</p><p><div class="lightbox-wrapper"><a class="lightbox" href="/uploads/a.jpeg" '
    'title="IMG_2041"><img src="/uploads/a.jpeg" alt="IMG_2041" width="375" height="500">'
    '<div class="meta"><svg class="fa d-icon d-icon-far-image svg-icon" aria-hidden="true">'
    '<use href="#far-image"></use></svg><span class="filename">IMG_2041</span>'
    '<span class="informations">1080×1440 215 KB</span></div></a></div></p>')
ONEBOX = (
    '<p>又上新闻了</p><aside class="onebox allowlistedgeneric" data-onebox-src="https://news.test/a">'
    '<header class="source"><a href="https://news.test/a">news.test</a></header>'
    '<article class="onebox-body"><h3><a href="https://news.test/a">某市大面积停电 供电公司回应</a></h3>'
    '<p>记者从供电公司获悉，昨晚因线路故障……</p></article></aside><p>什么时候修好</p>')
ICON = '<p>已报修<svg class="fa d-icon"><title>check</title><use href="#check"></use></svg>，等回复</p>'


@pytest.mark.parametrize(("markup", "text"), [
    (LIGHTBOX, "变压器冒烟了"),
    # A link preview repeats another page's words, as a quote repeats another post's.
    (ONEBOX, "又上新闻了\n什么时候修好"),
    (ICON, "已报修，等回复"),
], ids=["image", "link-preview", "icon"])
def test_only_the_posters_words_are_kept(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_a_div_inside_the_image_box_meta_does_not_end_it_early() -> None:
    nested = LIGHTBOX.replace('<span class="filename">', '<div><span class="filename">').replace(
        "</span></div></a>", "</span></div></div></a>")
    assert html_to_text(nested + "<p>第二段</p>") == "变压器冒烟了\n第二段"


def test_a_long_text_of_unclosed_tag_openings_is_read_once() -> None:
    # a feed's plain text HTML-escaped once, saying "a<b" over and over: each "<" was read as a
    # tag through the rest of the text; 56,000 characters took 15 s of the ingest event loop
    text = "电压a<b，停电 " * 40_000

    assert html_to_text(text) == text.strip()
    assert html_to_text(f"<p>标题</p>{text}") == f"标题\n{text.strip()}"

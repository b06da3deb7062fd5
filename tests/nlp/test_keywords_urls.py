"""A post's keywords are its words, not the pieces of a link it shares (they become the
alerts' hot words)."""

from __future__ import annotations

import pytest

from services.nlp.enrich import keywords, normalize

URL_PIECES = {"http", "https", "www", "com", "cn", "mp", "weixin", "qq", "biz", "mid", "MzA3",
              "osgweb", "index", "www.95598", "baidu", "html"}


@pytest.mark.parametrize("text", [
    "看这个 http://mp.weixin.qq.com/s?__biz=MzA3&mid=2650 停电什么情况",
    "https://www.95598.cn/osgweb/index.html停电抢修进度查不到",
    "www.baidu.com 搜了 停电 抢修",
])
def test_links_give_no_keywords_and_the_words_around_them_stay(text: str) -> None:
    found = keywords(normalize(text))

    assert not URL_PIECES & set(found)
    assert "停电" in found


def test_a_post_that_is_only_a_link_has_no_keywords() -> None:
    assert keywords("https://mp.weixin.qq.com/s/AbCdEfGh") == []

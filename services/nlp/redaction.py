"""Mask personal data in free text before it is indexed or shown (pure, no I/O).

What is masked, and what is kept so that a responder can still act:

=====================  =====================================  ==============================
kind                   example                                becomes
=====================  =====================================  ==============================
mobile number          ``13812345678``                        ``138****5678``
landline               ``0571-88889999``                      ``0571-****9999``
resident ID number     ``110101199003071234``                 ``110101********1234``
15-digit ID number     ``110101900307123``                    ``110101******123``
bank card              ``6222021234567890128``                ``****0128``
account number         ``户号 3301234567``                    ``户号 ******4567``
e-mail                 ``zhang.san@example.com``              ``z***@example.com``
door-level address     ``幸福路12号3栋2单元501``                ``幸福路**号*栋*单元***``
WeChat id              ``微信号 wxid_abc123``                  ``微信号 w**********``
QQ number              ``QQ 12345678``                        ``QQ 12****78``
=====================  =====================================  ==============================

Numbers are found as people write them: a card, ID or mobile number grouped with
spaces or dashes (``6222 0212 3456 7890``, ``138-1234-5678``), a landline with its area
code in brackets (``(0571)88889999``), full-width digits (``１３８…``; the redacted text
holds them as ASCII digits). A landline's local number starts with 2-9, so a 12-digit
code that starts with ``0`` is not read as one (``057100123456`` stays). Amounts, dates,
times and short numbers stay; so do a 15-digit number whose middle is no YYMMDD date and an
unlabelled card-length number that fails the Luhn check (an order number).

The township, village and street stay (they place a complaint on the map); the
house number, building, unit and room go. A mask is never longer than what it
hides, in characters and in UTF-8 bytes, so the redacted text is never longer
than the text: the size budget of ``posts.enriched`` relies on it
(``yuqing/contracts/limits.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

_DIGIT = "0-9０-９"
_N = f"[{_DIGIT}]"

# Labels come first: a QQ or account number would otherwise be read as a phone or a card.
# Spaces after a label are matched once, each optional word taking those after it: as optional
# runs of spaces side by side (\s*[:：]?\s*(?:是|为)?\s*), a label followed by many spaces and no
# number was tried in every split of them ("QQ" and 200 spaces took 1.8 s, 400 took 26 s), and the
# NLP worker (the indexer, for a title) stayed on that post while every post after it waited.
_QQ = re.compile(rf"(?i)(?<![A-Za-z])((?:QQ|扣扣)\s*(?:号码?\s*)?(?:[:：]\s*)?(?:(?:是|为)\s*)?)"
                 rf"([1-9]{_N}{{4,11}})(?!{_N})")
_WECHAT = re.compile(
    r"(?i)(?<![A-Za-z])((?:微信号?|weixin|wechat|vx|wx)\s*(?:[:：]\s*)?(?:(?:是|为)\s*)?)"
    r"([A-Za-z][-_A-Za-z0-9]{5,19})(?![-_A-Za-z0-9])")
_WXID = re.compile(r"(?<![-_A-Za-z0-9])wxid_[A-Za-z0-9]{4,30}")
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# Order matters: the 18-digit ID must be masked before bank cards and phones match inside it.
# One space or dash may group the digits (6-8-4 for an ID, 4-4-4-4 for a card, 3-4-4 for a
# mobile): numbers copied from a card or a form are written so, and were left whole.
_ID_CARD = re.compile(r"(?<!\d)(\d{6}[ -]?)\d{8}([ -]?\d{3}[\dXx])(?![\dXx])")
# The first-generation, 15-digit ID (6-digit area, YYMMDD birth date, 3 digits) is masked only
# when its middle is a date: an order number of 15 digits stays.
_OLD_ID_CARD = re.compile(r"(?<!\d)(\d{6}[ -]?)(\d{6})([ -]?\d{3})(?![\dXx])")
# A card number carries a Luhn check digit: an unlabelled number of card length that fails the
# check (an order or waybill number) stays. After a label (卡号, 银行卡) it is masked regardless.
_CARD_LABEL = re.compile(r"卡")
_CARD_LABEL_REACH = 8
_BANK_CARD = re.compile(r"(?<!\d)\d{12,15}(\d{4})(?!\d)"
                        r"|(?<!\d)\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?(?!\d)")
_ACCOUNT = re.compile(rf"((?:户号|账号|帐号|用户编号|客户编号|缴费号)\s*(?:[:：]\s*)?)"
                      rf"({_N}{{6,20}}|{_N}{{2,4}}(?:[ -]{_N}{{2,4}}){{2,5}})(?!{_N})")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?!\d)")
# A local number never starts with 0 or 1: that keeps 12-digit codes starting with 0 whole.
_LANDLINE = re.compile(r"(?<!\d)(\(0\d{2,3}\)|0\d{2,3})([- ]?)([2-9]\d{2,3})([- ]?)(\d{4})(?!\d)")
# Full-width digits and signs are read (and kept, in the redacted text) as their ASCII forms.
_ASCII_FORMS = str.maketrans("０１２３４５６７８９＋－（）", "0123456789+-()")
_DOOR = f"{_N}+(?:[-－]{_N}+)?"
_UNIT = "(?:号楼|栋|幢|座|楼|单元|层|室|号|户)"
_ADDRESS = re.compile(
    rf"(?<=[路街巷道弄里]){_DOOR}[号號](?:{_DOOR}{_UNIT}?)*"  # 幸福路12号3栋2单元501
    rf"|(?<=小区|花园|公寓|大厦|家园|新村|社区){_DOOR}(?:号楼|栋|幢|座)(?:{_DOOR}{_UNIT}?)*")
_ANY_DIGIT = re.compile(_N)


def _stars(text: str) -> str:
    return "*" * len(text)


def _keep_ends(value: str, head: int, tail: int) -> str:
    hidden = len(value) - head - tail
    return value[:head] + "*" * hidden + value[len(value) - tail:] if hidden > 0 else _stars(value)


def _digits_but_last(value: str, kept: int) -> str:
    """``value`` with every digit but the last ``kept`` starred; spaces and dashes stay."""
    digits = len(_ANY_DIGIT.findall(value))
    out, seen = [], 0
    for char in value:
        if _ANY_DIGIT.fullmatch(char):
            seen += 1
            out.append(char if seen > digits - kept else "*")
        else:
            out.append(char)
    return "".join(out)


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if not 16 <= len(digits) <= 19:
        return match.group(0)
    before = match.string[max(0, match.start() - _CARD_LABEL_REACH):match.start()]
    if not (_luhn_valid(digits) or _CARD_LABEL.search(before)):
        return match.group(0)
    return f"****{digits[-4:]}"


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _old_id_card(match: re.Match[str]) -> str:
    birth = match.group(2)
    try:
        date(1900 + int(birth[:2]), int(birth[2:4]), int(birth[4:]))
    except ValueError:
        return match.group(0)
    return f"{match.group(1)}******{match.group(3)}"


def _email(match: re.Match[str]) -> str:
    local = match.group(1)
    kept = local[0] if len(local) > 1 else ""
    return f"{kept}{'*' * min(3, len(local) - len(kept))}@{match.group(2)}"


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (_QQ, lambda m: m.group(1) + _keep_ends(m.group(2), 2, 2)),
    (_WXID, lambda m: _keep_ends(m.group(0), 1, 0)),
    (_WECHAT, lambda m: m.group(1) + _keep_ends(m.group(2), 1, 0)),
    (_EMAIL, _email),
    (_ID_CARD, lambda m: f"{m.group(1)}********{m.group(2)}"),
    (_OLD_ID_CARD, _old_id_card),
    (_BANK_CARD, _card),
    (_ACCOUNT, lambda m: m.group(1) + _digits_but_last(m.group(2), 4)),
    (_MOBILE, lambda m: f"{m.group(1)}****{m.group(2)}"),
    (_LANDLINE, lambda m: f"{m.group(1)}{m.group(2)}{_stars(m.group(3))}{m.group(4)}{m.group(5)}"),
    (_ADDRESS, lambda m: _ANY_DIGIT.sub("*", m.group(0))),
)


def redact(text: str) -> str:
    """The text with phones, ID, card and account numbers, e-mails, door-level addresses,
    WeChat ids and QQ numbers masked; never longer than ``text``."""
    text = text.translate(_ASCII_FORMS)
    for pattern, mask in _RULES:
        text = pattern.sub(mask, text)
    return text


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)

"""Query building blocks (pure): the safe query syntax, filters, scopes, cursors, snippets.

Plain words (``停电 冰箱``, optionally with ``-exclusions``) are matched forgivingly
and ranked: a post matches a word when it contains the word's CJK bigrams, its
jieba words, or its characters (all of them for words of up to two characters,
three in four for longer ones), and a post needs at least one word; posts
matching more words, and matching them exactly, rank first. Responders type
what a post means, not the words it uses, and strict AND over every word lost
half the relevant posts on the judged queries (docs/search.md).

A query with operators (``AND``/``OR``/``NOT``/``+``/``|``, parentheses or
``"phrases"``) is taken literally: Elasticsearch's ``simple_query_string`` (never
``query_string``), with AND between words, once over the bigram fields and once
with every word replaced by its jieba words over the word field.

In both modes, top-level exclusions are a ``must_not`` on the bigram fields, so
an excluded string is excluded wherever it occurs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.search.auth import Principal
from services.search.documents import segment
from services.search.mappings import ES_MAX_OFFSET, POST_PROPERTIES, es_time
from yuqing.hanzi import TRADITIONAL_TO_SIMPLIFIED, simplified

HIGHLIGHT_PRE, HIGHLIGHT_POST = "\u0001", "\u0002"  # replaced after HTML-escaping
FLAGS = "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE"
BIGRAM_FIELDS = ["text", "title^2"]
WORD_FIELDS = ["text_words"]
CHAR_FIELDS = ["text.chars", "title.chars^2"]
MAX_PLAIN_WORDS = 32
# Outside a phrase, commas and semicolons separate words as spaces do (停电，冰箱 and 冰箱、电费 are
# how a list of words is typed in Chinese): read as one word, 冰箱，电费 found the posts that said
# both (or three of the four characters), and none of those that said 电费 alone.
_TOKEN = re.compile(r'"[^"]*"?|[()|+]|-?[^\s()|+"，、；,;]+|-')
_WORDS = {"AND": "+", "OR": "|", "NOT": "-"}
# A field prefix (title:停电, region：河口镇) is no syntax here: read as a word, title:停电 matched
# neither 停電 nor what 停电 matches, and nothing said so. A post field's name is refused instead.
_FIELD_PREFIX = re.compile(r"(?i)(" + "|".join(sorted(POST_PROPERTIES, key=len, reverse=True))
                           + r")(?:\.\w+)?[:：](.*)")
_FILTER_PARAMETERS = frozenset({"topic", "sentiment", "source", "channel", "region", "unit",
                                "issue_id"})
# The syntax as a Chinese input method types it: quotes, parentheses, bars, pluses and minuses in
# their full-width forms. Read as text, “幸福小区” was no phrase and （停电 ｜ 跳闸） －计划 four
# plain words, 计划 among them: the posts it was meant to leave out ranked first.
_FULL_WIDTH_SYNTAX = str.maketrans({"“": '"', "”": '"', "＂": '"', "（": "(", "）": ")", "｜": "|",
                                    "＋": "+", "－": "-"})


class QueryError(ValueError):
    """A query parameter the caller must fix (HTTP 400)."""


class CursorError(QueryError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # "term" | "phrase" | "op"
    text: str
    negated: bool = False


def tokenize(q: str) -> list[Token]:
    """Split the safe syntax; the words AND/OR/NOT (upper case) become ``+``/``|``/``-``.

    A word starting with a post field's name and a colon (``title:停电``) is a QueryError."""
    tokens: list[Token] = []
    negate_next = False
    for raw in _TOKEN.findall(q.translate(_FULL_WIDTH_SYNTAX)):
        if raw in _WORDS:
            raw = _WORDS[raw]
        if raw == "-":
            negate_next = True
            continue
        negated = negate_next or (raw.startswith("-") and len(raw) > 1)
        negate_next = False
        body = raw[1:] if raw.startswith("-") and len(raw) > 1 else raw
        if body in ("(", ")", "|", "+"):
            tokens.append(Token("op", body, negated and body == "("))
        elif body.startswith('"'):
            phrase = body.strip('"').strip()
            if phrase:
                tokens.append(Token("phrase", phrase, negated))
        elif body:
            _refuse_field_prefix(body)
            tokens.append(Token("term", body, negated))
    return tokens


def _refuse_field_prefix(word: str) -> None:
    if not (prefix := _FIELD_PREFIX.fullmatch(word)):
        return
    field, rest = prefix.group(1).lower(), prefix.group(2)
    if field in _FILTER_PARAMETERS:
        hint = f"filter with the {field} parameter ({field}={rest or '…'})"
    else:
        hint = f"type {rest or 'the words'} alone: words are looked for in titles and texts both"
    raise QueryError(f"{word!r}: field names are not part of the query syntax; {hint}")


def _render(tokens: list[Token], *, words: bool = False, chars: bool = False) -> str:
    """The query for ``simple_query_string`` over the bigram fields, the word field (``words``:
    each word as its jieba words) or the character fields (``chars``: see ``_chars_part``)."""
    parts = []
    for token in tokens:
        neg = "-" if token.negated else ""
        if token.kind == "op":
            parts.append(neg + token.text)
        elif chars:
            parts.append(neg + _chars_part(token.text))
        elif token.kind == "phrase":
            text = segment(token.text) if words else token.text
            parts.append(f'{neg}"{text}"')
        else:
            pieces = segment(token.text).split() if words else [token.text]
            if len(pieces) > 1:
                parts.append(neg + "(" + " + ".join(pieces) + ")")
            elif pieces:
                parts.append(neg + pieces[0])
    return " ".join(parts)


def plain_words(q: str) -> list[str] | None:
    """The words of a plain query (no operators, phrases or parentheses), else None."""
    tokens = tokenize(q)
    if not tokens or not all(t.kind == "term" for t in tokens):
        return None
    return [t.text for t in tokens if not t.negated]


def text_query(q: str, weights: list[float] | None = None) -> dict[str, Any] | None:
    """The full-text part of a search, or None for an empty query.

    ``weights`` (one per plain word, see ``word_weight``) boost the words of a
    plain query; without them every word counts the same.
    """
    tokens = tokenize(q)
    if not any(t.kind in ("term", "phrase") for t in tokens):
        return None
    plain = all(t.kind == "term" for t in tokens)
    query = _plain_query(tokens, weights) if plain else _boolean_query(tokens)
    excluded = _top_level_exclusions(tokens)
    if excluded:  # over the character fields too: no bigram holds an excluded single character
        query["bool"]["must_not"] = [{"simple_query_string": {
            "query": " | ".join(_chars_part(text) for text in excluded),
            "fields": BIGRAM_FIELDS + CHAR_FIELDS, "default_operator": "and", "flags": FLAGS}}]
    return query


def _plain_query(tokens: list[Token], weights: list[float] | None) -> dict[str, Any]:
    words = [t.text for t in tokens if not t.negated]
    if len(words) > MAX_PLAIN_WORDS:
        raise QueryError(f"at most {MAX_PLAIN_WORDS} words; use a phrase for longer text")
    if not words:  # only exclusions: everything else matches
        return {"bool": {"must": [{"match_all": {}}]}}
    if weights is None or len(weights) != len(words):
        weights = [1.0] * len(words)
    clauses = [{"bool": {**word_clause(word)["bool"], "boost": round(boost, 4)}}
               for word, boost in zip(words, weights, strict=True)]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def word_weight(matching: int, total: int) -> float:
    """BM25's inverse document frequency of a word, from counts taken once per search."""
    return math.log(1 + (total - matching + 0.5) / (matching + 0.5))


def word_clause(word: str) -> dict[str, Any]:
    """A post matches a word by its bigrams, its jieba words or (most of) its characters.

    The bigram and word fields read traditional characters as simplified ones; the character
    field does not (its analyzer is the built-in one), so a word typed in traditional characters
    is looked for there in simplified ones too, and a word of one character, which only that
    field finds (bigrams hold no single character), in every form of it: 电 missed the posts
    that say 停電."""
    chars = [{"multi_match": {"query": form, "fields": CHAR_FIELDS, "minimum_should_match": "2<75%"}}
             for form in script_forms(word)]
    return {"bool": {"should": [
        {"multi_match": {"query": word, "fields": BIGRAM_FIELDS, "operator": "and"}},
        {"match": {"text_words": {"query": segment(word) or word, "operator": "and"}}},
        *chars,
    ], "minimum_should_match": 1}}


def _traditional_forms() -> dict[str, list[str]]:
    forms: dict[str, list[str]] = {}
    for traditional, simple in TRADITIONAL_TO_SIMPLIFIED.items():
        forms.setdefault(simple, []).append(traditional)
    return forms


_TRADITIONAL_FORMS = _traditional_forms()


def script_forms(word: str) -> list[str]:
    """The word, written simplified, and, for one character, each traditional one read as it."""
    forms = [word, simplified(word)]
    if len(word) == 1:
        forms += _TRADITIONAL_FORMS.get(simplified(word), [])
    return list(dict.fromkeys(forms))


def _chars_part(text: str) -> str:
    """A word or phrase over the character fields: its characters in a row, as its bigrams would
    match them; a single character, which no bigram holds, in each of its script forms."""
    if len(text) > 1:
        return f'"{text}"'
    forms = script_forms(text)
    return forms[0] if len(forms) == 1 else "(" + " | ".join(forms) + ")"


def _boolean_query(tokens: list[Token]) -> dict[str, Any]:
    """Once over the bigram fields, once over the word field, and once over the character fields,
    where a word of one character is found (over the others, 电 | 水 found nothing)."""
    common = {"default_operator": "and", "flags": FLAGS, "analyze_wildcard": False, "lenient": True}
    should = [
        {"simple_query_string": {"query": _render(tokens), "fields": BIGRAM_FIELDS, **common}},
        {"simple_query_string": {"query": _render(tokens, words=True), "fields": WORD_FIELDS, **common}},
        {"simple_query_string": {"query": _render(tokens, chars=True), "fields": CHAR_FIELDS, **common}},
    ]
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _top_level_exclusions(tokens: list[Token]) -> list[str]:
    depth, excluded = 0, []
    for token in tokens:
        depth += 1 if token.text == "(" and token.kind == "op" else -1 if token.text == ")" else 0
        if depth == 0 and token.negated and token.kind in ("term", "phrase"):
            excluded.append(token.text)
    return excluded


def scope_filters(principal: Principal) -> list[dict[str, Any]]:
    """Filters that keep a restricted caller inside its regions and units."""
    filters = []
    if principal.regions is not None:
        filters.append({"terms": {"region": sorted(principal.regions)}})
    if principal.units is not None:
        filters.append({"terms": {"unit": sorted(principal.units)}})
    return filters


def check_in_scope(principal: Principal, *, region: str | None, unit: str | None) -> None:
    """A filter outside the caller's scope is a permission error, not an empty result."""
    if region is not None and principal.regions is not None and region not in principal.regions:
        raise PermissionError(f"region {region!r} is outside this key's scope")
    if unit is not None and principal.units is not None and unit not in principal.units:
        raise PermissionError(f"unit {unit!r} is outside this key's scope")


def term_filters(**values: object) -> list[dict[str, Any]]:
    return [{"term": {field: getattr(v, "value", v)}} for field, v in values.items() if v is not None]


def indexed_by(as_of: str | None) -> list[dict[str, Any]]:
    """The posts a list's first page counted, on its later pages: those indexed up to the newest
    of them (``as_of``). Pages of a list that keeps counting new posts repeat or skip: a post, or
    an issue grown, ranks where the pages before already were."""
    return [{"range": {"indexed_at": {"lte": as_of}}}] if as_of else []


AS_OF_AGG = {"max": {"field": "indexed_at", "format": "strict_date_optional_time"}}


def range_filter(field: str, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """``since`` inclusive, ``until`` exclusive; ``since`` at or after ``until`` is an empty
    range (nothing matches), not an error: both are valid date-times on their own."""
    bounds = {k: es_time(v) for k, v in (("gte", since), ("lt", until)) if v is not None}
    return [{"range": {field: bounds}}] if bounds else []


def escape_highlight(fragment: str) -> str:
    fragment = with_edge_markers(fragment)
    return html.escape(fragment).replace(HIGHLIGHT_PRE, "<em>").replace(HIGHLIGHT_POST, "</em>")


def with_edge_markers(fragment: str) -> str:
    """The fragment with the markers Elasticsearch trimmed off its ends put back.

    Elasticsearch trims each fragment as Java's ``String.trim`` does, which removes every
    character up to U+0020, the markers included: a match at the start of a fragment (a post
    that begins with the word searched) lost its opening marker, one at its end its closing one,
    and the snippet read ``河口</em>镇停电了`` or ``什么时候<em>来电``.
    """
    first_post, first_pre = fragment.find(HIGHLIGHT_POST), fragment.find(HIGHLIGHT_PRE)
    if first_post != -1 and (first_pre == -1 or first_post < first_pre):
        fragment = HIGHLIGHT_PRE + fragment
    if fragment.rfind(HIGHLIGHT_PRE) > fragment.rfind(HIGHLIGHT_POST):
        fragment += HIGHLIGHT_POST
    return fragment


# Cursors: base64url JSON carrying the sort values of the last hit, the
# snapshot time of the first page, the word weights the first page used, the
# newest ``indexed_at`` the first page counted where the list is bounded by it,
# and a fingerprint of the query, so a cursor cannot be replayed against another query.
@dataclass(frozen=True)
class Cursor:
    after: list[Any]
    snapshot: str
    weights: list[float] | None = None
    as_of: str | None = None


def query_fingerprint(params: dict[str, Any]) -> str:
    canonical = orjson.dumps({k: str(v) for k, v in sorted(params.items()) if v is not None})
    return hashlib.sha256(canonical).hexdigest()[:16]


def encode_cursor(cursor: Cursor, *, fingerprint: str) -> str:
    payload = {"v": 1, "a": cursor.after, "t": cursor.snapshot, "h": fingerprint}
    if cursor.weights is not None:
        payload["w"] = cursor.weights
    if cursor.as_of is not None:
        payload["o"] = cursor.as_of
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


# A word weight is an inverse document frequency, ln(1 + 2N) at most: under 30 for any index.
MAX_WORD_WEIGHT = 100.0


def _valid_snapshot(snapshot: object) -> bool:
    """An aware time Elasticsearch reads (the fingerprint binds a cursor to its query, not
    its content: a hand-edited one must fail here, not in the search engine)."""
    if not isinstance(snapshot, str):
        return False
    offset = datetime.fromisoformat(snapshot).utcoffset()
    return offset is not None and abs(offset) <= ES_MAX_OFFSET


def _valid_weights(weights: object) -> bool:
    return weights is None or (isinstance(weights, list) and len(weights) <= MAX_PLAIN_WORDS and all(
        isinstance(w, int | float) and not isinstance(w, bool) and 0 <= w <= MAX_WORD_WEIGHT
        for w in weights))


def _valid_after(after: object, width: int) -> bool:
    """Sort values as this API's sorts give them: numbers (a score, times in epoch
    milliseconds), then an id; any other kind the search engine refuses."""
    if not isinstance(after, list) or len(after) != width or not after:
        return False
    *numbers, last = after
    return isinstance(last, str) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)


def decode_cursor(cursor: str, *, fingerprint: str, width: int) -> Cursor:
    """The cursor's content, if it was made for the same query."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after, snapshot, weights, as_of = data["a"], data["t"], data.get("w"), data.get("o")
        valid = (data.get("v") == 1 and _valid_after(after, width) and _valid_snapshot(snapshot)
                 and _valid_weights(weights) and (as_of is None or _valid_snapshot(as_of)))
    except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError) as exc:
        raise CursorError("malformed cursor") from exc
    # a cursor of another sort has sort values of another shape: it is one of another query,
    # not a malformed one (which it was called, after a responder changed the sort)
    if data.get("h") != fingerprint and data.get("v") == 1 and isinstance(data.get("h"), str):
        raise CursorError("cursor belongs to another query; start again without it")
    if not valid or data.get("h") != fingerprint:
        raise CursorError("malformed cursor")
    return Cursor(after, snapshot, weights, as_of)

"""Pure text logic of the NLP worker: normalise, redact, keywords, fingerprint, rules.

No Kafka, Faust or model imports here; the worker calls these per batch.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from services.nlp.redaction import redact
from yuqing.contracts import EnrichedPost, RawPost, Sentiment, Topic
from yuqing.contracts.codec import encode
from yuqing.fingerprint import hamming as hamming  # re-exported for callers of this module
from yuqing.fingerprint import simhash
from yuqing.paths import is_word_list, read_toml
from yuqing.places import NO_PLACES, Gazetteer
from yuqing.segmentation import jieba_ready

MODEL_TEXT_CHARS = 2_000  # the model reads at most a few hundred tokens anyway

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028-\u202e\ufeff]")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits to half-width), no control characters, one space."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    return _SPACES.sub(" ", text).strip()


def model_input(post: RawPost) -> str:
    return model_text(post.title, post.text)


def model_text(title: str | None, text: str) -> str:
    """What the model classifies: the title, then the text, normalised, cut to its head."""
    return normalize(f"{title} {text}" if title else text)[:MODEL_TEXT_CHARS]


@cache
def _jieba() -> Any:
    jieba_ready()
    import jieba.analyse

    return jieba.analyse


_KEYWORD_OK = re.compile(r"[\u4e00-\u9fffA-Za-z]")
# A shared link's pieces (http, www, com, qq...) would outrank the post's words: a surge of
# people sharing one article had them as its hot words. ASCII only, so the words after stay.
_LINK = re.compile(r"(?i)(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
# An @mention names an account (the forum connector writes a pseudonym there): never a hot word.
_MENTION = re.compile(r"(?<![A-Za-z0-9_.])@[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def keywords(text: str, limit: int = 8) -> list[str]:
    """Top TF-IDF words (jieba), at least two characters, no numbers, punctuation, links or
    @mentions."""
    text = _MENTION.sub(" ", _LINK.sub(" ", text[:MODEL_TEXT_CHARS])).strip()
    if not text:
        return []
    tags = _jieba().extract_tags(text, topK=limit * 2)
    return [t for t in tags if len(t) >= 2 and _KEYWORD_OK.search(t)][:limit]


@dataclass(frozen=True)
class TopicRule:
    """A boolean keyword rule: any ``include`` word, none of ``exclude``."""

    name: str
    topic: Topic
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    mode: str = "boost"  # "boost" adds ``boost`` to the score, "override" forces the topic
    boost: float = 0.3

    def matches(self, text: str) -> bool:
        return any(w in text for w in self.include) and not any(w in text for w in self.exclude)


def load_rules(path: Path, *, required: bool = False) -> list[TopicRule]:
    """Read ``[[rule]]`` tables from a TOML file operations staff can edit.

    A missing file is no rules, unless ``required`` (a path set on purpose, whose typo
    silently left the model alone). A rule that cannot be used is a ValueError naming the
    file and the rule.
    """
    if not path.exists():
        if required:
            raise ValueError(f"{path}: no such rules file")
        return []
    return [_rule(path, item) for item in _rule_tables(path, read_toml(path))]


_RULE_FIELDS = ("name", "topic", "include", "exclude", "mode", "boost")


def _rule_tables(path: Path, document: dict[str, Any]) -> list[dict[str, Any]]:
    # [[rules]] or [rule] were read as no rules at all, and the worker started on the model alone
    if unknown := sorted(set(document) - {"rule"}):
        raise ValueError(f"{path}: unknown {', '.join(unknown)}; each rule is a [[rule]] table")
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ValueError(f"{path}: each rule is a [[rule]] table (two brackets)")
    return tables


def _rule(path: Path, item: dict[str, Any]) -> TopicRule:
    try:
        if unknown := sorted(set(item) - set(_RULE_FIELDS)):  # boots = 0.9 left the boost at 0.3
            raise ValueError(f"unknown {', '.join(unknown)}; a rule has {', '.join(_RULE_FIELDS)}")
        mode = item.get("mode", "boost")
        if mode not in ("boost", "override"):
            raise ValueError("mode must be boost or override")
        return TopicRule(
            name=item["name"], topic=Topic(item["topic"]), include=_words(item["include"], "include"),
            exclude=_words(item.get("exclude", []), "exclude"), mode=mode, boost=_boost(item),
        )
    except KeyError as error:
        raise ValueError(f"{path}: rule {item.get('name')!r}: {error.args[0]} is missing") from None
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: rule {item.get('name')!r}: {error}") from None


def _words(value: object, field: str) -> tuple[str, ...]:
    if not is_word_list(value):  # include = "限电" matched every post holding 电
        raise ValueError(f'{field} must be a list of words, e.g. {field} = ["限电"]')
    if field == "include" and not value:  # a rule that can never match
        raise ValueError('include must name at least one word, e.g. include = ["限电"]')
    return tuple(value)


def _boost(item: dict[str, Any]) -> float:
    # a negative, infinite or NaN boost broke the normalised scores of every post it matched
    boost = item.get("boost", 0.3)
    if isinstance(boost, bool) or not isinstance(boost, int | float) or not 0 < boost < math.inf:
        raise ValueError(f"boost must be a positive number, e.g. boost = 0.3 (not {boost!r})")
    return float(boost)


def apply_rules(
    text: str, scores: Mapping[str, float], rules: Sequence[TopicRule],
) -> tuple[str, dict[str, float], list[str]]:
    """Combine model topic scores with keyword rules; returns topic, scores, rule hits."""
    adjusted = {t.value: float(scores.get(t.value, 0.0)) for t in Topic}
    hits = [r for r in rules if r.matches(text)]
    for rule in hits:
        if rule.mode == "boost":
            adjusted[rule.topic.value] += rule.boost
    total = sum(adjusted.values()) or 1.0
    adjusted = {k: round(v / total, 4) for k, v in adjusted.items()}
    overrides = [r for r in hits if r.mode == "override"]
    topic = overrides[0].topic.value if overrides else max(adjusted, key=adjusted.__getitem__)
    return topic, adjusted, [r.name for r in hits]


def enrich(
    post: RawPost, *, topic: str, topic_scores: Mapping[str, float], sentiment: str,
    sentiment_scores: Mapping[str, float], rule_hits: Sequence[str], model_version: str,
    now: datetime | None = None, low_confidence: bool = False, model_text: str | None = None,
    places: Gazetteer = NO_PLACES,
) -> EnrichedPost:
    """The enriched post; ``model_text`` is ``model_input(post)`` when the caller has it already.

    A post without a region gets ``inferred_region``: the one region of ``places`` its title
    and text name (see :func:`infer_region`); ``region`` stays what the sender said.
    """
    text = model_input(post) if model_text is None else model_text
    return EnrichedPost(
        **post.model_dump(),
        topic=Topic(topic),
        topic_scores={Topic(k): round(float(v), 4) for k, v in topic_scores.items()},
        sentiment=Sentiment(sentiment),
        sentiment_scores={Sentiment(k): round(float(v), 4) for k, v in sentiment_scores.items()},
        keywords=keywords(text),
        fingerprint=simhash(text),
        redacted_text=redact(post.text),
        rule_hits=list(rule_hits),
        model_version=model_version,
        enriched_at=now or datetime.now(UTC),
        low_confidence=low_confidence,
        inferred_region=infer_region(post, text, places),
    )


def infer_region(post: RawPost, model_text: str, places: Gazetteer) -> str | None:
    """The one known region a post without a region names in its title or text, else None.

    Inferred once, here, so that the alerts keys, the search index and its region filters
    agree on where a WeChat push or a forum post (which carry no region) is about.
    """
    return None if post.region else places.region_of(model_text)


ATTRIBUTE_CHARS = 1_000  # an attribute value longer than this is cut first when a post is too large


class TooLarge(ValueError):
    """An enriched post that no cut brings under the message size limit."""


def fit_to_size(post: EnrichedPost, max_bytes: int | None) -> tuple[EnrichedPost, list[str]]:
    """The post cut, if need be, until its encoding fits in ``max_bytes``; and what was cut.

    The enriched message carries the text twice (``text`` and
    ``redacted_text``), so a raw post that fitted on ``posts.raw`` may not
    fit on ``posts.enriched``. The rule, applied in this order and only as
    far as needed:

    1. string ``attributes`` values are cut to ``ATTRIBUTE_CHARS`` characters;
    2. ``text`` and ``redacted_text`` are cut to the same number of characters
       (the classification, keywords and fingerprint were computed on the
       whole text before);
    3. ``attributes`` are dropped, largest first.

    Raises TooLarge if the post still does not fit (the worker dead-letters it).
    """
    if max_bytes is None or _size(post) <= max_bytes:
        return post, []
    cuts: list[str] = []
    attributes = {k: v[:ATTRIBUTE_CHARS] if isinstance(v, str) else v for k, v in post.attributes.items()}
    if attributes != post.attributes:
        post, cuts = post.model_copy(update={"attributes": attributes}), ["attributes"]
    if _size(post) > max_bytes and post.text:
        post, cuts = _cut_text(post, max_bytes), [*cuts, "text"]
    if _size(post) > max_bytes and post.attributes:
        post, cuts = _drop_attributes(post, max_bytes), [*cuts, "attributes dropped"]
    if _size(post) > max_bytes:
        raise TooLarge(f"enriched post is {_size(post)} bytes after cutting {', '.join(cuts)}; "
                       f"the limit is {max_bytes}")
    return post, cuts


def _size(post: EnrichedPost) -> int:
    return len(encode(post))


def _cut_text(post: EnrichedPost, max_bytes: int) -> EnrichedPost:
    """The longest common prefix length of both texts that fits (binary search)."""
    def cut(chars: int) -> EnrichedPost:
        return post.model_copy(update={"text": post.text[:chars],
                                       "redacted_text": post.redacted_text[:chars]})

    low, high = 0, max(len(post.text), len(post.redacted_text))
    while low < high:
        middle = (low + high + 1) // 2
        if _size(cut(middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return cut(low)


def _drop_attributes(post: EnrichedPost, max_bytes: int) -> EnrichedPost:
    attributes = dict(post.attributes)
    for name in sorted(attributes, key=lambda k: len(str(attributes[k])) + len(k), reverse=True):
        if _size(post) <= max_bytes:
            break
        del attributes[name]
        post = post.model_copy(update={"attributes": dict(attributes)})
    return post

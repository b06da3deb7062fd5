"""Contract messages -> Elasticsearch documents (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from services.nlp.redaction import redact, redact_optional
from services.search.grouping import Assignment, band_terms
from services.search.mappings import es_time
from services.search.open_issues import runner_up
from yuqing.contracts import Alert, AlertState, EnrichedPost
from yuqing.hanzi import simplified
from yuqing.segmentation import jieba_ready
from yuqing.text import STRIP_CONTROL

SEGMENTED_CHARS = 20_000
"""The characters of a document (title and text) whose jieba words ``text_words`` holds; the
rest of a longer post is found by its bigrams and characters (``text``, ``text.chars``)."""
SEGMENT_BLOCK_CHARS = 64
"""The longest run jieba is given at once; a longer one is segmented in pieces this long.

jieba's time grows with the square of a run it cannot split into dictionary words (its HMM
copies its path at each character), and its words are remembered per run: one post of 100,000
characters without punctuation, which the edge accepts, took the indexer 24 s and 5.7 MB, so
that a batch of thirteen outlasted the consumer's five-minute poll interval and was read again,
for ever. Runs in posts are clauses (none in the corpus is longer than 33
characters), so a piece rarely splits a word."""


@lru_cache(maxsize=200_000)
def _block_words(block: str) -> tuple[str, ...]:
    return tuple(w for w in jieba_ready().cut_for_search(block) if w.strip())


def segment_blocks(text: str) -> list[str]:
    """What jieba segments of ``text``, one at a time: the runs of CJK letters and digits of its
    first :data:`SEGMENTED_CHARS` characters, in order, in pieces of at most
    :data:`SEGMENT_BLOCK_CHARS`."""
    return [run[start:start + SEGMENT_BLOCK_CHARS]
            for run in jieba_ready().re_han_default.findall(text[:SEGMENTED_CHARS])
            for start in range(0, len(run), SEGMENT_BLOCK_CHARS)]


def segment(text: str) -> str:
    """jieba words joined by spaces, for the ``text_words`` field and for queries.

    jieba segments each run of CJK letters and digits on its own, so the runs
    are segmented one by one and remembered: complaints repeat the same
    clauses (``又停电了``, ``什么时候来电``), and segmentation is most of the
    indexer's CPU time. Punctuation is left out. Traditional characters are written simplified
    and full-width letters and digits in ASCII first (``停電了`` is segmented as ``停电了``,
    ``ＡＰＰ`` as ``APP``), so that a post and a query in either form say the same words.
    """
    return " ".join(w for block in segment_blocks(simplified(text).translate(HALF_WIDTH))
                    for w in _block_words(block))


HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(94)}
"""A ``str.translate`` table: full-width letters, digits and signs (``ＡＰＰ``, ``９５５９８``) to
their ASCII forms, as the analyzers' ``cjk_width`` reads them. jieba segments only ASCII letters
and digits: ``ＡＰＰ登录`` was segmented as ``登录`` alone, and a query word typed so was found
in every post saying 登录."""


def crude_issue_id(post: EnrichedPost) -> str:
    """The issue of a post seen on its own: the issue it would found."""
    return f"{post.topic.value}-{post.fingerprint}"


# The highlight markers (query.HIGHLIGHT_PRE/POST) are control characters: none may be indexed.
# The edge strips them; a post written to the topics directly is cleaned here.


def _visible(text: str | None) -> str | None:
    return None if text is None else text.translate(STRIP_CONTROL)


def region_source(post: EnrichedPost) -> dict[str, str | None]:
    """``region_source`` of the document: ``sender`` (the post's own region), ``text`` (inferred
    by the NLP worker from its words) or null (none known). Left out for a message from before the
    NLP worker inferred regions, so that readers of the index (``yuqing alerts warm``) still
    place such a post from its text."""
    if post.region:
        return {"region_source": "sender"}
    if not post.region_inferred_upstream:
        return {}
    return {"region_source": "text" if post.inferred_region else None}


def second_choice(post: EnrichedPost) -> tuple[str | None, float]:
    """The classifier's second choice for a post and how far below the topic's its score is: what
    issue grouping reads of the scores, stored (``topic_second``, ``topic_second_gap``) so that a
    grouper rebuilt from the index reads it too."""
    return runner_up(post.topic.value, {topic.value: score for topic, score in post.topic_scores.items()})


def _second_topic(post: EnrichedPost) -> dict[str, Any]:
    second, gap = second_choice(post)
    return {"topic_second": second, "topic_second_gap": gap}


def to_document(post: EnrichedPost, *, issue: Assignment | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    """The indexed document. Every free-text field that is indexed or returned is redacted:
    the text comes redacted from the NLP worker; title and author are redacted here, and a
    keyword that holds personal data (a WeChat id, say) is left out."""
    text, title = _visible(post.redacted_text), _visible(redact_optional(post.title))
    issue = issue or Assignment(crude_issue_id(post), 0)
    return {
        "post_id": post.post_id, "source": post.source, "channel": post.channel.value,
        "external_id": post.external_id, "author": redact_optional(post.author),
        "msg_type": post.msg_type, "region": post.effective_region, **region_source(post), "unit": post.unit,
        "thread_id": post.thread_id, "reply_to": post.reply_to, "url": post.url, "title": title,
        "text": text, "text_words": segment(f"{title or ''} {text}"),
        "topic": post.topic.value, "sentiment": post.sentiment.value,
        "topic_score": max(post.topic_scores.values(), default=0.0),
        **_second_topic(post),
        "sentiment_score": max(post.sentiment_scores.values(), default=0.0),
        "keywords": [k for k in post.keywords if redact(k) == k], "fingerprint": post.fingerprint,
        "fingerprint_bands": band_terms(post.fingerprint),
        "issue_id": issue.issue_id, "issue_distance": issue.distance,
        "rule_hits": post.rule_hits, "model_version": post.model_version,
        "created_at": es_time(post.created_at), "received_at": es_time(post.received_at),
        "enriched_at": es_time(post.enriched_at),
        "indexed_at": (now or datetime.now(UTC)).isoformat(),
    }


def alert_document(alert: Alert) -> dict[str, Any]:
    """Fields of the alert document an event sets; see ``ALERT_MERGE_SCRIPT``."""
    at = _utc(alert.emitted_at)
    doc: dict[str, Any] = {
        "alert_id": alert.alert_id, "family": alert.key.family, "key_label": alert.key.label(),
        "topic": alert.key.topic.value if alert.key.topic else None, "region": alert.key.region,
        "source": alert.key.source, "cluster": alert.key.cluster, "state": alert.state.value,
        "severity": alert.severity.value, "updated_at": at,
        # every event: the order of GET /v1/alerts, whichever event the index sees first
        "window_start": _utc(alert.window_start),
    }
    if alert.state is AlertState.FIRING:
        doc.update({
            "fired_at": at, "score": alert.score, "observed": alert.observed,
            "expected": alert.expected,
            "window_end": _utc(alert.window_end), "sample_post_ids": alert.sample_post_ids,
            "explanation": alert.explanation.model_dump(mode="json"),
        })
    else:
        doc.update({"resolved_at": at})
    return doc


def _utc(moment: datetime) -> str:
    # Stored in UTC so that the merge script can compare times as strings.
    return moment.astimezone(UTC).isoformat()


# One document per alert id. The firing event brings the explanation and the
# samples, the resolved event only its time; a firing event replayed after the
# resolution (re-indexing, redelivery) must not reopen the alert, and an older
# event must not overwrite a newer ``updated_at``. ``window_start`` (part of the alert's id) is
# written once: it orders the alert list, whose pages must not move under a reader. ``fired_at`` is
# the first firing event's time: an escalation (a firing event of a higher severity) moved it. An
# event older than the document's ``updated_at`` (a redelivery) only fills fields still empty: the
# first firing event read again set the severity of an alert that had escalated back.
ALERT_MERGE_SCRIPT = """
boolean resolved = ctx._source.state == 'resolved';
boolean stale = ctx._source.updated_at != null
    && ctx._source.updated_at.compareTo(params.doc.updated_at) > 0;
for (entry in params.doc.entrySet()) {
  String k = entry.getKey();
  if (k == 'fired_at') {
    if (ctx._source.fired_at == null || ctx._source.fired_at.compareTo(entry.getValue()) > 0) {
      ctx._source.fired_at = entry.getValue();
    }
    continue;
  }
  if (stale && ctx._source[k] != null) { continue; }
  if (resolved && (k == 'state' || k == 'updated_at')) { continue; }
  if (k == 'window_start' && ctx._source.window_start != null) { continue; }
  ctx._source[k] = entry.getValue();
}
"""


def alert_action(alert: Alert, index: str) -> dict[str, Any]:
    """A bulk ``update`` that creates or merges the alert's one document."""
    doc = alert_document(alert)
    return {"_op_type": "update", "_index": index, "_id": alert.alert_id,
            "script": {"lang": "painless", "source": ALERT_MERGE_SCRIPT, "params": {"doc": doc}},
            "upsert": doc}

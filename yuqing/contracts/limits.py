"""Size and time budgets shared by every producer and consumer of the post topics.

One limit bounds a post: the broker's ``max.message.bytes``. Everything else is
derived from it, so that a post accepted at the edge can always be carried to
the end of the pipeline.

The budget of ``posts.enriched``
--------------------------------
The NLP worker publishes the raw post again with what it adds: ``redacted_text``
(the text with personal data masked: a mask is never longer than what it hides,
so it is at most as long as ``text`` in bytes), and a bounded block of
classification fields (scores of 11 topics and 3 sentiments, at most 20
keywords, a fingerprint, rule hits, the model version and a time) that stays
far under ``ENRICHMENT_RESERVE_BYTES``. So::

    enriched  <=  raw + text + reserve  <=  2 * raw + reserve  <=  max.message.bytes

when ``raw <= MAX_RAW_MESSAGE_BYTES``. The edge refuses larger posts (413)
before anything is published; a consumer that still meets a message over its
budget (written straight to the topic, not through the edge) dead-letters it.

Event time
----------
``created_at`` is what the source says; ``received_at`` is set by the edge.
The edge accepts ``created_at`` only inside a window around arrival
(``DEFAULT_EVENT_MAX_AGE`` back, ``DEFAULT_EVENT_MAX_LEAD`` ahead; back-fills
may widen the lower bound). Anything that reasons about "now" counts from
``received_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

BROKER_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's ``max.message.bytes`` for the post topics (the broker default, set on the topics)."""

ENRICHMENT_RESERVE_BYTES = 32_768
"""What the NLP worker adds besides ``redacted_text``, with Kafka's record overhead."""

MAX_RAW_MESSAGE_BYTES = (BROKER_MAX_MESSAGE_BYTES - ENRICHMENT_RESERVE_BYTES) // 2
"""The largest serialised ``posts.raw`` message the edge publishes (507,910 bytes)."""

MAX_ENRICHED_MESSAGE_BYTES = BROKER_MAX_MESSAGE_BYTES
"""The largest serialised ``posts.enriched`` message: what the broker takes."""

MAX_TEXT_CHARS = 100_000
MAX_TITLE_CHARS = 1_000
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY_CHARS = 64
MAX_ATTRIBUTE_VALUE_CHARS = 2_000
MAX_URL_CHARS = 2_048

DEFAULT_EVENT_MAX_AGE = timedelta(days=30)
DEFAULT_EVENT_MAX_LEAD = timedelta(minutes=5)
DEFAULT_BACKFILL_MAX_AGE = timedelta(days=396)
"""How far back ``yuqing publish`` (a back-fill) reaches at most: 13 months."""

INDEX_KEPT_MONTHS = 13
"""The monthly post indices the search index keeps by default (this month and the 12 before,
by ``created_at`` in UTC). The indexer dead-letters a post of an earlier month, so the edge
refuses one whatever its window (396 days reach into a 14th month)."""


RETENTION_GRACE = timedelta(days=14)
"""How long after a month's turn the month that then drops out of the kept ones is still kept and
written: the edge admits a post of the oldest kept month until the turn, and the pipeline may index
it after (a post answered 202 at 23:59 on the last day was dead-lettered at 00:00:01, and the
retention job deleted its index that night). The length of ``posts.enriched``'s retention: a post
not indexed by then is gone from Kafka too (the topic's contract; a test keeps them in step)."""


def first_kept_instant(moment: datetime, kept_months: int) -> datetime:
    """The start (UTC) of the oldest of the ``kept_months`` months up to ``moment``'s: the first
    instant whose posts the search index keeps (``services.search.mappings.retained_posts_index``)
    and the edge admits (``services.ingest.admission``)."""
    utc = moment.astimezone(UTC)
    month = utc.year * 12 + utc.month - 1 - (kept_months - 1)
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)


"""The indexer's side of issue grouping: posts in, issue ids out, state rebuilt from Elasticsearch.

``LiveIssues`` wraps the pure ``IssueGrouper`` with what a running indexer needs:

* **Warm-up** (``warm``): the posts of the last ``span + gap`` before the newest
  indexed post are read back in ``created_at`` order with their issue ids, so a
  restarted indexer continues the issues it left (and a replayed post keeps its
  issue).
* **Several replicas** (``refresh``, before each batch, at most every
  ``refresh_s``): posts indexed by *other* indexer processes since the last look
  (``indexed_at``) are taken into the state with the issue they were given, and
  corrections made by responders since then are applied. Issue ids are derived
  from the founding post, so replicas that saw the same posts name issues
  alike; what one replica founded, the others join once they have read it back
  (within ``refresh_s`` plus the index refresh interval). Two replicas that
  found an issue for the same matter within that interval both keep theirs
  (see docs/search.md, *Several indexers*).
* **Automatic merges** (``record_merges``, after a batch is written, at most
  every ``refresh_s``): the merges the grouping made are recorded like a
  responder's merge (``issue_auto_merges.py``), which renames the posts already
  indexed under the merged id and lets other replicas and a restart follow
  them. Recording them together, not per batch, keeps their cost (a refresh and
  a few requests) off most batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, helpers

from services.search import metrics
from services.search.documents import second_choice
from services.search.grouping import Assignment, GroupingParams, IssueGrouper, IssueMerge, PostSignal
from services.search.issue_auto_merges import record_system_merges
from services.search.issue_corrections import (
    CORRECTIONS_PAGE,
    Correction,
    apply_to_grouper,
    corrections_since,
    reassign_posts,
)
from services.search.mappings import posts_alias
from yuqing.contracts import EnrichedPost

log = logging.getLogger(__name__)
VISIBILITY_LAG = timedelta(seconds=2)
# A correction is searchable a moment after its time (written with a refresh, or an automatic merge
# without one): each look reads back this far before the latest one seen, so that one recorded
# meanwhile with an earlier time is not skipped; those already applied are not applied again.
CORRECTION_LAG = timedelta(seconds=10)
OTHERS_PAGE = 10_000  # posts read back per refresh; the rest at the next one
MAX_PENDING_MERGES = 10_000  # automatic merges held until recorded, and recorded ones until read back
_FIELDS = ["post_id", "title", "text", "region", "region_source", "topic", "topic_score", "topic_second",
           "topic_second_gap", "created_at", "issue_id", "issue_distance", "indexed_at"]


def post_signal(post: EnrichedPost) -> PostSignal:
    """What grouping reads of an enriched post (the redacted text, as stored)."""
    text = f"{post.title} {post.redacted_text}" if post.title else post.redacted_text
    second, gap = second_choice(post)
    return PostSignal(post_id=post.post_id, text=text, created_at=post.created_at, region=post.region,
                      topic=post.topic.value, inferred_region=post.inferred_region,
                      second_topic=second, second_gap=gap,
                      topic_share=max(post.topic_scores.values()) if post.topic_scores else None)


def stored_signal(source: dict[str, Any]) -> PostSignal:
    """The same, from an indexed post document: a region the index holds from the text
    (``region_source`` ``text``) is the NLP worker's ``inferred_region``, not the sender's, as
    :func:`post_signal` reads them, so a grouper rebuilt from the index agrees with the live one."""
    text = f"{source['title']} {source['text']}" if source.get("title") else source["text"]
    inferred = source.get("region_source") == "text"
    gap = source.get("topic_second_gap")
    return PostSignal(post_id=source["post_id"], text=text, created_at=_time(source["created_at"]),
                      region=None if inferred else source.get("region"), topic=source.get("topic"),
                      inferred_region=source.get("region") if inferred else None,
                      second_topic=source.get("topic_second"), second_gap=1.0 if gap is None else float(gap),
                      topic_share=_share(source))


class LiveIssues:
    """Issue assignment for one indexer process."""

    def __init__(self, params: GroupingParams | None = None, *, refresh_s: float = 2.0,
                 read_only: bool = False) -> None:
        """``read_only``: a replica that reads the index and never writes to it (the alerts
        worker's): it records no automatic merges and renames no indexed posts."""
        self.grouper = IssueGrouper(params)
        self.read_only = read_only
        self.window = self.grouper.params.span + self.grouper.params.gap
        self.refresh_s = refresh_s
        # other replicas' posts are read from here on (a little before start: clocks differ)
        self._seen_indexed_at = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
        self._seen_correction_at: str | None = None
        self._applied: dict[Correction, datetime] = {}  # those of the last CORRECTION_LAG, by time
        self._next_refresh = 0.0
        self.pending_merges: list[IssueMerge] = []  # made by the grouping, not yet recorded
        self._next_record = 0.0
        self._own_merges: set[tuple[str, str]] = set()  # recorded here, not yet read back
        # a read-only replica's merges, the grouping's and the responders', until taken (take_merged)
        self._merged: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.grouper)

    def assign(self, post: EnrichedPost) -> Assignment:
        return self.grouper.assign(post_signal(post))

    def assign_batch(self, posts: Sequence[EnrichedPost]) -> list[Assignment]:
        """Issues of a batch's posts, in input order, decided in ``created_at`` order."""
        order = sorted(range(len(posts)), key=lambda i: (posts[i].created_at, posts[i].post_id))
        found = {i: self.assign(posts[i]) for i in order}
        merges = self.grouper.take_merges()  # a read-only replica leaves them to the indexers
        if not self.read_only:
            self.pending_merges = (self.pending_merges + merges)[-MAX_PENDING_MERGES:]
        else:
            self._note_merged([(m.source_id, m.target_id) for m in merges])
        # a later post of the batch may have merged the issue an earlier one joined
        return [Assignment(self.grouper.resolve(found[i].issue_id), found[i].distance)
                for i in range(len(posts))]

    def record_merges(self, client: Elasticsearch, prefix: str, *, force: bool = False) -> int:
        """Record the automatic merges of the batches written since the last time (at most every
        ``refresh_s`` unless forced: at the end of a run); returns how many were recorded (not
        those a responder's correction overrides or another replica recorded first)."""
        now = time.monotonic()
        if self.read_only or not self.pending_merges or (not force and now < self._next_record):
            return 0
        self._next_record = now + self.refresh_s
        recorded, deferred = record_system_merges(client, prefix, self.pending_merges)
        if len(self._own_merges) > MAX_PENDING_MERGES:  # never read back (a re-index): one more rename
            self._own_merges.clear()
        self._own_merges.update((m.source_id, m.target_id) for m in recorded)
        metrics.ISSUE_AUTO_MERGES.inc(len(recorded))
        self.pending_merges = deferred  # a responder was correcting one of their issues: next time
        return len(recorded)

    def warm(self, client: Elasticsearch, prefix: str) -> int:
        """Rebuild the state from the posts indexed in the last ``span + gap``; returns how many."""
        # Counted from arrival time (received_at, set by the edge), never from created_at, which a
        # source states: one post dated in the future must not empty the warm-up. The window ends at
        # the newest arrival, or now if that is earlier (a replay of old data).
        latest = _newest(client, prefix, "received_at")
        if latest is None:
            return 0
        since = min(latest, datetime.now(UTC)) - self.window
        query = {"query": {"range": {"received_at": {"gte": since.isoformat()}}},
                 "sort": [{"created_at": "asc"}, {"post_id": "asc"}], "_source": _FIELDS}
        count = 0
        for hit in helpers.scan(client, index=posts_alias(prefix), query=query, size=2000,
                                preserve_order=True):
            self._take(hit["_source"])
            count += 1
        # the posts carry their corrected issues; replaying the corrections of the window keeps
        # the issues a responder split or moved posts of out of automatic merging
        self._seen_correction_at = (since - self.window).isoformat()
        self._apply_corrections(client, prefix, rename=False)
        return count

    def replay_corrections(self, client: Elasticsearch, prefix: str) -> None:
        """Apply every correction recorded, oldest first: a rebuild from Kafka groups again posts
        older than the warm-up, whose corrections may be older than the warm-up's too."""
        self._seen_correction_at = None
        self._applied.clear()
        self._apply_corrections(client, prefix, rename=False)

    def refresh(self, client: Elasticsearch, prefix: str, *, force: bool = False) -> None:
        """Read other replicas' new posts and responders' new corrections (rate-limited)."""
        now = time.monotonic()
        if not force and now < self._next_refresh:
            return
        self._next_refresh = now + self.refresh_s
        self._read_other_posts(client, prefix)
        self._apply_corrections(client, prefix, rename=not self.read_only)

    def _apply_corrections(self, client: Elasticsearch, prefix: str, *, rename: bool) -> None:
        seen = self._seen_correction_at
        after = (_time(seen) - CORRECTION_LAG).isoformat() if seen else None
        while True:
            found = corrections_since(client, prefix, after)
            for correction in found:
                after = self._seen_correction_at = correction.at_text
                if correction in self._applied:
                    continue
                self._applied[correction] = _time(correction.at_text)
                applied = apply_to_grouper(self.grouper, correction)
                if applied and self.read_only and correction.kind == "merge":
                    self._note_merged([(correction.issue_id, correction.target_issue_id)])
                own = (correction.issue_id, correction.target_issue_id) in self._own_merges
                self._own_merges.discard((correction.issue_id, correction.target_issue_id))
                if applied and rename and correction.kind == "merge" and not own:
                    # posts this process indexed with the old id after the merge's update ran
                    reassign_posts(client, prefix, correction)
            if len(found) < CORRECTIONS_PAGE:
                break
        if self._seen_correction_at:  # older ones are never read again
            oldest = _time(self._seen_correction_at) - CORRECTION_LAG
            self._applied = {c: at for c, at in self._applied.items() if at >= oldest}

    def _note_merged(self, merged: list[tuple[str, str]]) -> None:
        if merged:
            self._merged = (self._merged + merged)[-MAX_PENDING_MERGES:]

    def take_merged(self) -> list[tuple[str, str]]:
        """A read-only replica's merges since the last call, as (issue gone, issue it went into):
        the grouping's own and the responders' it read (the alerts worker's cluster keys follow
        them)."""
        merged, self._merged = self._merged, []
        return merged

    def apply(self, correction: Correction) -> None:
        apply_to_grouper(self.grouper, correction)

    def _read_other_posts(self, client: Elasticsearch, prefix: str) -> None:
        """Posts indexed since the last look that this process does not know: ids first (doc
        values, cheap), then the texts of the unknown ones only."""
        # a post becomes visible a refresh interval after its indexed_at: look back a little
        since = (_time(self._seen_indexed_at) - VISIBILITY_LAG).isoformat()
        body = {"size": OTHERS_PAGE, "query": {"range": {"indexed_at": {"gte": since}}},
                "sort": [{"indexed_at": "asc"}, {"post_id": "asc"}], "_source": False,
                "docvalue_fields": ["post_id", {"field": "indexed_at",
                                                "format": "strict_date_optional_time"}]}
        hits = client.search(index=posts_alias(prefix), body=body, ignore_unavailable=True,
                             allow_no_indices=True)["hits"]["hits"]
        unknown = [h["fields"]["post_id"][0] for h in hits
                   if self.grouper.issue_of(h["fields"]["post_id"][0]) is None]
        if hits:
            self._seen_indexed_at = max(self._seen_indexed_at, hits[-1]["fields"]["indexed_at"][0])
        if unknown:
            found = client.search(index=posts_alias(prefix), body={
                "size": len(unknown), "query": {"terms": {"post_id": unknown}},
                "sort": [{"created_at": "asc"}, {"post_id": "asc"}], "_source": _FIELDS})
            for hit in found["hits"]["hits"]:
                self._take(hit["_source"])

    def _take(self, source: dict[str, Any]) -> None:
        distance = int(source.get("issue_distance") or 0)
        self.grouper.remember(stored_signal(source), source["issue_id"], distance)


def _newest(client: Elasticsearch, prefix: str, field: str) -> datetime | None:
    body = {"size": 0, "aggs": {"t": {"max": {"field": field}}}}
    resp = client.search(index=posts_alias(prefix), body=body, ignore_unavailable=True, allow_no_indices=True)
    value = (resp.get("aggregations") or {}).get("t", {}).get("value_as_string")
    return _time(value) if value else None


def _share(source: dict[str, Any]) -> float | None:
    """The stored ``topic_score`` (the classifier's highest, as ``post_signal`` reads it); None for
    a document indexed without scores."""
    share = source.get("topic_score")
    return float(share) if share else None


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


"""The grouping's own merges, recorded like a responder's merge (pure decisions in grouping.py).

After each post the grouping may merge the issue it joined with another issue
of the same matter (``IssueGrouper``, ``IssueMerge``). The indexer records the
merges of a batch once it is written (``record_system_merges``):

* a correction ``merge`` with the responder ``system`` in
  ``<prefix>-issue-corrections``, so other replicas apply it at their next
  refresh and a restarted indexer replays it;
* an action in the history of the issue that stays, with the score as its note;
* the posts already indexed under the merged id renamed (update by query).

A responder's correction wins: a merge of an issue a responder split or moved
posts out of or into is not recorded (and replicas do not apply one:
``apply_to_grouper``). A merge of an issue a responder is correcting right now
(its lock in ``correction_locks``) waits for the next recording, when the
correction is done and visible; the responder's correction meanwhile is a 409
for the moment the merge holds the lock. Two replicas that decide the same merge record it once:
its correction and action ids are derived from the pair of issues. The work is
a fixed number of requests per batch, whatever the number of merges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from elasticsearch import Elasticsearch

from services.search.correction_locks import free_of_corrections
from services.search.grouping import IssueMerge
from services.search.issue_corrections import (
    SYSTEM,
    Correction,
    carry_handling,
    corrections_index,
    ensure_index,
    history_action,
)
from services.search.mappings import posts_alias, small_index
from services.search.models import IssueState
from services.search.posts import issue_states


class MergesRecorded(NamedTuple):
    recorded: list[IssueMerge]  # recorded now
    deferred: list[IssueMerge]  # a responder's correction of one of its issues is in progress


def record_system_merges(client: Elasticsearch, prefix: str, merges: Sequence[IssueMerge],
                         now: datetime | None = None) -> MergesRecorded:
    """Record a batch's automatic merges: those recorded, and those deferred to the next recording
    because a responder is correcting one of their issues (the rest: a responder's correction
    overrides them, or another replica recorded them first)."""
    if not merges:
        return MergesRecorded([], [])
    ensure_index(client, prefix)
    ids = sorted({i for m in merges for i in (m.source_id, m.target_id)})
    # the responders' locks: a correction and a merge of one issue never interleave their renames
    with free_of_corrections(client, prefix, ids, holder=SYSTEM) as free:
        ready = [m for m in merges if {m.source_id, m.target_id} <= free]
        deferred = [m for m in merges if not {m.source_id, m.target_id} <= free]
        return MergesRecorded(_record(client, prefix, ready, now), deferred)


def _record(client: Elasticsearch, prefix: str, merges: list[IssueMerge],
            now: datetime | None) -> list[IssueMerge]:
    if not merges:
        return []
    # the posts of the batch just written are renamed too: make them visible to the update
    client.indices.refresh(index=posts_alias(prefix), ignore_unavailable=True)
    ids = sorted({i for m in merges for i in (m.source_id, m.target_id)})
    corrected = _responder_corrected(client, prefix, ids)  # read under the locks: all done ones
    wanted = [m for m in merges if m.source_id not in corrected and m.target_id not in corrected]
    regions = _regions(client, prefix, ids)
    started = now or datetime.now(UTC)
    corrections = [Correction("merge", m.source_id, m.target_id, None, _at(started, n), SYSTEM)
                   for n, m in enumerate(wanted)]
    created = _create(client, prefix, corrections, regions)
    recorded = [(m, c) for m, c in zip(wanted, corrections, strict=True) if _correction_id(c) in created]
    _write_history(client, prefix, recorded, regions)
    _rename(client, prefix, [m for m, _ in recorded])  # last: once renamed, the history is there
    return [m for m, _ in recorded]


def _at(started: datetime, n: int) -> str:
    # apart by a microsecond: replicas apply corrections in this order
    return (started + timedelta(microseconds=n)).astimezone(UTC).isoformat(timespec="microseconds")


def _correction_id(correction: Correction) -> str:
    pair = f"{correction.issue_id}>{correction.target_issue_id}".encode()
    return "auto-" + hashlib.blake2b(pair, digest_size=12).hexdigest()


def _issue_regions(correction: Correction, regions: dict[str, list[str]]) -> list[str]:
    return sorted({*regions.get(correction.issue_id, []), *regions.get(correction.target_issue_id, [])})


def _create(client: Elasticsearch, prefix: str, corrections: list[Correction],
            regions: dict[str, list[str]]) -> set[str]:
    """Create the corrections (one bulk request); returns the ids created, not those that existed."""
    if not corrections:
        return set()
    body: list[dict[str, Any]] = []
    for correction in corrections:
        correction_id = _correction_id(correction)
        body += [{"create": {"_index": corrections_index(prefix), "_id": correction_id}},
                 correction.to_document(SYSTEM, _issue_regions(correction, regions), correction_id)]
    resp = client.bulk(body=body)
    return {item["create"]["_id"] for item in resp["items"] if item["create"].get("status", 500) < 300}


def _write_history(client: Elasticsearch, prefix: str, recorded: list[tuple[IssueMerge, Correction]],
                   regions: dict[str, list[str]]) -> None:
    if not recorded:
        return
    states = issue_states(client, prefix, [c.target_issue_id for _, c in recorded])
    body: list[dict[str, Any]] = []
    for merge, correction in recorded:
        state = IssueState(states.get(correction.target_issue_id, {}).get("state", "open"))
        carried = carry_handling(client, prefix, correction)
        action_id, document = history_action(
            correction, responder=SYSTEM, state=state, regions=_issue_regions(correction, regions),
            note=f"automatic, score {merge.score:.2f}", action_id=_correction_id(correction),
            to_state=carried, correction_id=_correction_id(correction))
        body += [{"index": {"_index": small_index(prefix, "actions"), "_id": action_id}}, document]
    client.bulk(body=body)


def _rename(client: Elasticsearch, prefix: str, recorded: list[IssueMerge]) -> None:
    """One update by query for all the merges (a chain a > b > c renames a's posts to c)."""
    if not recorded:
        return
    target = {m.source_id: m.target_id for m in recorded}
    final = {source: _follow(target, source) for source in target}
    client.update_by_query(index=posts_alias(prefix), body={
        "query": {"terms": {"issue_id": sorted(final)}},
        "script": {"lang": "painless", "params": {"to": final},
                   "source": "ctx._source.issue_id = params.to[ctx._source.issue_id]"}},
        conflicts="proceed")


def _follow(target: dict[str, str], issue_id: str) -> str:
    seen = {issue_id}
    while target.get(issue_id, issue_id) not in seen:
        issue_id = target[issue_id]
        seen.add(issue_id)
    return issue_id


def _responder_corrected(client: Elasticsearch, prefix: str, issue_ids: list[str]) -> set[str]:
    """Of these issues, those a responder split or moved posts out of or into."""
    query = {"bool": {"filter": [{"terms": {"kind": ["move", "split"]}}], "minimum_should_match": 1,
                      "should": [{"terms": {"issue_id": issue_ids}},
                                 {"terms": {"target_issue_id": issue_ids}}]}}
    resp = client.search(index=corrections_index(prefix), body={
        "size": 10_000, "query": query, "_source": ["issue_id", "target_issue_id"]})
    sources = [h["_source"] for h in resp["hits"]["hits"]]
    return {s[f] for s in sources for f in ("issue_id", "target_issue_id")} & set(issue_ids)


def _regions(client: Elasticsearch, prefix: str, issue_ids: list[str]) -> dict[str, list[str]]:
    """The regions of each issue's posts."""
    body = {"size": 0, "query": {"terms": {"issue_id": issue_ids}},
            "aggs": {"issue": {"terms": {"field": "issue_id", "size": len(issue_ids)},
                               "aggs": {"region": {"terms": {"field": "region", "size": 100}}}}}}
    resp = client.search(index=posts_alias(prefix), body=body)
    return {b["key"]: [r["key"] for r in b["region"]["buckets"]]
            for b in resp["aggregations"]["issue"]["buckets"]}

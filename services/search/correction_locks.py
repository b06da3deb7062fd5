"""One correction of an issue at a time: a lock document per issue while a merge, move or split
runs.

Two responders merging A into B and B into A at the same moment both passed their checks, then
each update by query moved the posts the other had not yet moved: both were answered 201, the
two issues swapped their ids instead of becoming one, and the indexers' grouping (which applies
the two merges in order) no longer agreed with the index. A correction now takes the lock of
every issue it changes before it checks anything, and gives it back when its posts are renamed
and its history written; a second correction of one of those issues meanwhile is a 409, and one
that comes after sees what the first did. A responder's action on an issue holds its lock too,
so that it is not recorded on an issue a merge is taking away.

The locks are documents ``lock:<issue id>`` in the issue-states index, created with
``op_type=create`` (atomic in Elasticsearch, no refresh needed) and deleted at the end. An API
process that died holding one leaves it behind: a lock older than ``LOCK_TTL`` is taken over.

The grouping's own merges (``issue_auto_merges``) take the same locks, but never wait and never
fail on one: ``free_of_corrections`` holds the locks that are free, and a merge of an issue whose
lock a responder holds waits for the indexer's next recording, when it sees what the responder
did.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import ConflictError

from services.search.issues import InvalidTransition
from services.search.mappings import small_index

LOCK_TTL = timedelta(seconds=60)  # far above a correction's few requests


class CorrectionBusy(InvalidTransition):
    """Another correction of the issue is in progress (HTTP 409)."""


def lock_id(issue_id: str) -> str:
    return f"lock:{issue_id}"


@contextmanager
def correcting(client: Elasticsearch, prefix: str, issue_ids: Iterable[str], *, holder: str,
               now: datetime | None = None) -> Iterator[None]:
    """Hold the locks of these issues while the block runs (taken in sorted order, so that two
    corrections of the same pair never hold one each); CorrectionBusy when one is held."""
    index, taken = small_index(prefix, "issue-states"), []
    try:
        for issue_id in sorted(set(issue_ids)):
            _take(client, index, issue_id, holder, now or datetime.now(UTC))
            taken.append(issue_id)
        yield
    finally:
        for issue_id in taken:
            client.delete(index=index, id=lock_id(issue_id), ignore=404)


@contextmanager
def free_of_corrections(client: Elasticsearch, prefix: str, issue_ids: Iterable[str], *,
                        holder: str, now: datetime | None = None) -> Iterator[set[str]]:
    """Hold the locks of those of these issues no correction holds, and yield them (one bulk
    request to take them, one to give them back)."""
    index, wanted = small_index(prefix, "issue-states"), sorted(set(issue_ids))
    at = now or datetime.now(UTC)
    taken: set[str] = set()
    try:
        if wanted:
            taken = _take_free(client, index, wanted, holder, at)
        yield taken
    finally:
        if taken:
            client.bulk(body=[{"delete": {"_index": index, "_id": lock_id(i)}} for i in sorted(taken)])


def _take_free(client: Elasticsearch, index: str, issue_ids: list[str], holder: str,
               now: datetime) -> set[str]:
    body: list[dict[str, Any]] = []
    for issue_id in issue_ids:
        body += [{"create": {"_index": index, "_id": lock_id(issue_id)}}, _document(issue_id, holder, now)]
    items = client.bulk(body=body)["items"]
    taken = {i for i, item in zip(issue_ids, items, strict=True) if item["create"].get("status", 500) < 300}
    for issue_id in issue_ids:
        if issue_id not in taken:  # held: taken over only if its holder died
            try:
                _take(client, index, issue_id, holder, now)
                taken.add(issue_id)
            except CorrectionBusy:
                pass
    return taken


def _document(issue_id: str, holder: str, now: datetime) -> dict[str, Any]:
    return {"issue_id": issue_id, "state": "correcting", "responder": holder,
            "updated_at": now.isoformat()}


def _take(client: Elasticsearch, index: str, issue_id: str, holder: str, now: datetime) -> None:
    document = _document(issue_id, holder, now)
    try:
        client.index(index=index, id=lock_id(issue_id), document=document, op_type="create")
        return
    except ConflictError:
        held = client.get(index=index, id=lock_id(issue_id), ignore=404)
    if held.get("found") and now - datetime.fromisoformat(held["_source"]["updated_at"]) < LOCK_TTL:
        raise CorrectionBusy(_busy(issue_id))
    guard = ({"if_seq_no": held["_seq_no"], "if_primary_term": held["_primary_term"]}
             if held.get("found") else {"op_type": "create"})
    try:  # a stale lock (its holder died), or one released meanwhile: take it over
        client.index(index=index, id=lock_id(issue_id), document=document, **guard)
    except ConflictError as exc:
        raise CorrectionBusy(_busy(issue_id)) from exc


def _busy(issue_id: str) -> str:
    # an action holds the lock too: a responder whose acknowledge met a colleague's was told that
    # a correction, which nobody was making, was in progress
    return f"another action or correction of issue {issue_id} is in progress; reload it and try again"

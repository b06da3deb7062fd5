"""Elasticsearch client, index setup, retention and the issue-table warm-up."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import AuthorizationException

from services.search.mappings import (
    POST_PROPERTIES,
    SMALL_INDICES,
    STABLE_SIMILARITY,
    first_kept_month,
    posts_alias,
    posts_index_pattern,
    small_alias,
    small_index,
    templates,
)
from yuqing.settings import ElasticsearchSettings

log = logging.getLogger(__name__)
BLOCKED = "cluster_block_exception"  # what an index block answers a change (403 for an operator's)
# Years of one to four digits: indices made before event time was bounded may be "…-1.01".
_MONTHLY = re.compile(r"-posts-v([0-9]+)-([0-9]{1,4})\.([0-9]{2})$")


def make_client(settings: ElasticsearchSettings) -> Elasticsearch:
    auth: dict[str, Any] = {}
    if settings.api_key:
        auth["api_key"] = settings.api_key.get_secret_value()
    elif settings.username and settings.password:
        auth["http_auth"] = (settings.username, settings.password.get_secret_value())
    return Elasticsearch(settings.url, timeout=settings.request_timeout_s, **auth)


def ensure_templates(client: Elasticsearch, settings: ElasticsearchSettings,
                     refresh_interval: str = "1s") -> None:
    """Install (or update) the index templates and create the small indices; idempotent.

    The posts mapping is also put onto the existing monthly indices of this mapping version:
    a new field (``region_source``, say) is a change they can take, and with ``dynamic:
    strict`` a document carrying it would otherwise be refused until next month's index.
    Every existing index gets its alias back: the template gives it only to an index it
    creates, and an index that lost it (an alias removed by hand) went on being written
    while no search, warm-up or issue read saw its documents, whatever restarted.
    """
    prefix = settings.index_prefix
    for name, body in templates(prefix, refresh_interval).items():
        client.indices.put_index_template(name=name, body=body)
    monthly = client.indices.get(index=posts_index_pattern(prefix), allow_no_indices=True,
                                 ignore_unavailable=True)
    blocked = _unless_blocked(list(monthly), lambda names: client.indices.put_mapping(
        index=names, body={"properties": POST_PROPERTIES}))
    unaliased = [name for name, index in monthly.items() if posts_alias(prefix) not in index["aliases"]]
    blocked += _unless_blocked(unaliased, lambda names: client.indices.put_alias(
        index=names, name=posts_alias(prefix)))
    if blocked:
        log.warning("posts indices %s refuse changes (an index block, index.blocks.read_only): they keep "
                    "the mapping and aliases they have", sorted(set(blocked)))
    _small_indices(client, prefix)
    stale = stale_similarity(client, prefix)
    if stale:
        log.warning("%d posts indices rank by an older similarity than the template's until "
                    "`yuqing search templates --update-similarity`: %s", len(stale), ", ".join(stale))


def _small_indices(client: Elasticsearch, prefix: str) -> None:
    """Create the small indices and their aliases; an index made before a field was added to its
    mapping (``correction_id`` of actions) takes it, unless an index block refuses it."""
    blocked: list[str] = []
    for name, properties in SMALL_INDICES.items():
        index = small_index(prefix, name)
        client.indices.create(index=index, ignore=400)
        blocked += _unless_blocked([index], partial(_put_properties, client, properties))
        client.indices.put_alias(index=index, name=small_alias(prefix, name))
    if blocked:
        log.warning("indices %s refuse a new field (an index block, index.blocks.read_only): they keep "
                    "the mapping they have", blocked)


def _put_properties(client: Elasticsearch, properties: dict[str, Any], names: str) -> object:
    return client.indices.put_mapping(index=names, body={"properties": properties})


def stale_similarity(client: Elasticsearch, prefix: str) -> list[str]:
    """The open monthly posts indices whose similarity is not the template's (made before it
    changed): an index keeps the one it was made with, and its posts rank by it."""
    found = client.indices.get_settings(index=posts_index_pattern(prefix), name="index.similarity.*",
                                        allow_no_indices=True, ignore_unavailable=True,
                                        expand_wildcards="open")
    return sorted(name for name, body in found.items()
                  if body.get("settings", {}).get("index", {}).get("similarity") != STABLE_SIMILARITY)


def update_similarity(client: Elasticsearch, prefix: str) -> list[str]:
    """Give each stale posts index the template's similarity, one at a time; returns them.

    A similarity can change only while its index is closed: each index is closed, updated and
    opened again, unsearchable for a moment (searches leave it out; the indexer waits a closed
    index out, as a write block). Relevance-sorted pages a responder is reading meanwhile may
    repeat or skip posts once, their scores having changed."""
    stale = stale_similarity(client, prefix)
    for index in stale:
        client.indices.close(index=index)
        try:
            client.indices.put_settings(index=index, body={"index": {"similarity": STABLE_SIMILARITY}})
        finally:
            client.indices.open(index=index)
    return stale


def _unless_blocked(names: list[str], put: Callable[[str], object]) -> list[str]:
    """``put`` on every index of ``names`` that takes it; returns those an index block refused.

    A monthly index an operator made read-only (an old month, archived) refused the start-up's
    mapping and alias in one request with 403 cluster_block_exception: the indexer exited 1 at
    every start (the search API logged it and skipped the rest: the small indices and their
    aliases). Such an index keeps what it has, and stays searchable.
    """
    if not names:
        return []
    try:
        put(",".join(names))
        return []
    except AuthorizationException as exc:
        if exc.error != BLOCKED:
            raise
    refused = []
    for name in names:
        try:
            put(name)
        except AuthorizationException as exc:
            if exc.error != BLOCKED:
                raise
            refused.append(name)
    return refused


def monthly_posts_indices(client: Elasticsearch, prefix: str) -> dict[str, datetime]:
    """Every monthly posts index of the prefix (any mapping version) and its month."""
    found = client.indices.get(index=f"{prefix}-posts-v*", ignore_unavailable=True,
                               allow_no_indices=True, expand_wildcards="open,closed")
    months = {}
    for name in found:
        match = _MONTHLY.search(name)
        if match and name.startswith(f"{prefix}-posts-v") and 1 <= int(match.group(3)) <= 12:
            months[name] = datetime(max(1, int(match.group(2))), int(match.group(3)), 1, tzinfo=UTC)
    return months


def expired_indices(months: dict[str, datetime], *, keep_months: int, now: datetime) -> list[str]:
    """Indices whose whole month lies before the ``keep_months`` most recent months as they were
    ``RETENTION_GRACE`` ago, or after the next month (posts from the future: the edge and the
    indexer refuse those now). The grace keeps the month that drops out at a month's turn while
    the indexer still writes it (``mappings.retained_posts_index``): posts the edge admitted of
    that month before the turn, indexed after it, were dead-lettered, or deleted that night."""
    now = now.astimezone(UTC)
    this_month = now.year * 12 + now.month - 1
    first_kept = first_kept_month(now, keep_months)
    return sorted(name for name, month in months.items()
                  if not first_kept <= month.year * 12 + month.month - 1 <= this_month + 1)


def apply_retention(client: Elasticsearch, prefix: str, *, keep_months: int,
                    now: datetime | None = None, dry_run: bool = False) -> list[str]:
    """Delete monthly posts indices older than ``keep_months``; returns their names."""
    expired = expired_indices(monthly_posts_indices(client, prefix), keep_months=keep_months,
                              now=now or datetime.now(UTC))
    if expired and not dry_run:
        client.indices.delete(index=",".join(expired))
        log.info("retention deleted %s", expired)
    return expired

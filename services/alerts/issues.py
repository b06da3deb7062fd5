"""The issue each post belongs to, for the alerts worker's ``cluster`` key family.

The alerts worker groups posts into issues with the indexer's own grouping
(``services.search.issue_live.LiveIssues`` over ``IssueGrouper``), as one more
replica that only reads: at start it warms from the posts index, and before a
batch (at the indexer's cadence) it reads the posts the indexers wrote since
its last look, with their issues, and the responders' corrections. Issue ids
derive from the founding post, so this replica names an issue as the indexer
that indexed its posts does (see docs/search.md, *Several indexers*).

It never writes: it records no automatic merges (the indexers do) and does
not rename indexed posts when it reads a merge. When Elasticsearch cannot be
reached it groups on its own, logs once, and tries again after
``retry_s``; surge alerts must not stop because search is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from elasticsearch import Elasticsearch
from elasticsearch.exceptions import ElasticsearchException

from services.search.grouping import GroupingParams
from services.search.issue_live import LiveIssues
from yuqing.contracts import EnrichedPost

log = logging.getLogger(__name__)


class ReadOnlyIssues(LiveIssues):
    """A replica of the indexers' issue grouping that never writes to the index."""

    def __init__(self, params: GroupingParams | None = None, *, refresh_s: float = 2.0) -> None:
        super().__init__(params, refresh_s=refresh_s, read_only=True)


class IssueKeys:
    """Issue ids for the posts of a batch, with the index as a best-effort source of agreement."""

    def __init__(self, issues: ReadOnlyIssues, client: Elasticsearch | None, prefix: str, *,
                 retry_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.issues, self.client, self.prefix = issues, client, prefix
        self.retry_s, self.clock = retry_s, clock
        self.warmed = client is None  # without an index there is nothing to warm from
        self.reachable = True
        self._retry_at = 0.0

    def sync(self) -> None:
        """Warm once, then refresh; an unreachable index is skipped until ``retry_s`` has passed."""
        if self.client is None or self.clock() < self._retry_at:
            return
        try:
            if not self.warmed:
                count = self.issues.warm(self.client, self.prefix)
                self.warmed = True
                log.info("issue grouping warmed with %d recent posts from the index", count)
            self.issues.refresh(self.client, self.prefix)
        except (ElasticsearchException, OSError) as exc:
            self._retry_at = self.clock() + self.retry_s
            if self.reachable:
                log.warning("search index unreachable (%s): grouping issues alone until it is back",
                            type(exc).__name__)
            self.reachable = False
            return
        if not self.reachable:
            log.info("search index reachable again: issue grouping follows the indexers")
        self.reachable = True

    def assign(self, posts: Sequence[EnrichedPost]) -> list[str]:
        """The issue id of each post, in input order (the index read first when due)."""
        if not posts:
            return []
        self.sync()
        return [found.issue_id for found in self.issues.assign_batch(posts)]

    def take_merged(self) -> list[tuple[str, str]]:
        """The merges made or read since the last call: (issue gone, issue it went into)."""
        return self.issues.take_merged()

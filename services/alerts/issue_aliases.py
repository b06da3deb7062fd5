"""Issues the grouping merged, followed by the counting stage's cluster keys (pure).

The alerts worker counts a post under the issue the grouping gave it. When the
grouping later merges that issue into another, the desk keeps an alias (issue
gone -> issue it went into), and each bucket's close moves the evidence counted
under the one to the other's ``cluster`` key (:class:`~services.alerts.watch.SurgeWatch`).
The aliases live in the desk, one changelog message: they are capped, and the
hourly sweep keeps only those still needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.alerts.evidence import EvidenceLimits, WindowEvidence
from services.alerts.keys import is_issue
from services.alerts.state import Desk
from yuqing.contracts import AlertKey

MAX_ALIASES = 2_000  # issue merges remembered (the latest), about 100 KB of the desk


def note_merges(desk: Desk, merges: list[tuple[str, str]]) -> None:
    """Remember merges (issue gone, issue it went into), the latest last; the oldest beyond
    ``MAX_ALIASES`` are forgotten first."""
    for source, target in merges:
        if source != target:
            desk.aliases.pop(source, None)
            desk.aliases[source] = target
    for source in list(desk.aliases)[:max(0, len(desk.aliases) - MAX_ALIASES)]:
        del desk.aliases[source]


def follow_merges(keys: dict[str, AlertKey], evidence: dict[str, WindowEvidence], firing: set[AlertKey],
                  aliases: dict[str, str], limits: EvidenceLimits) -> None:
    """Move the window's evidence of each issue merged away to the issue it went into.

    An issue's posts counted under its own id until the grouping merged it into another (a few
    posts founding a second issue before the two met, a partition read behind the other): forty
    posts of one matter were counted 35 and 5 under two keys. An issue merged away keeps its key
    only while its alert fires (it is fed the zero it needs to resolve).
    """
    if not aliases:
        return
    for label, key in list(keys.items()):
        if not is_issue(key) or key.cluster not in aliases:
            continue
        target_key = AlertKey(family="cluster", cluster=resolve(aliases, key.cluster or ""))
        target_label = target_key.label()
        keys.setdefault(target_label, target_key)
        moved = evidence.pop(label, None)
        if moved is not None:
            evidence.setdefault(target_label, WindowEvidence()).absorb(moved, limits)
        if key not in firing:
            del keys[label]


def aliases_in_use(aliases: dict[str, str], windows: Mapping[str, Any], firing: set[str],
                   closed_through: int) -> dict[str, str]:
    """The merges still needed: those of issues with posts in open buckets or an alert firing,
    and the later merges their targets went through (the desk is one changelog message)."""
    needed: set[str] = set()
    for source in aliases:
        label = AlertKey(family="cluster", cluster=source).label()
        stored = windows.get(label)
        if label in firing or (stored is not None
                               and any(int(b) > closed_through for b in stored["buckets"])):
            issue = source
            while issue in aliases and issue not in needed:
                needed.add(issue)
                issue = aliases[issue]
    return {source: target for source, target in aliases.items() if source in needed}


def resolve(aliases: dict[str, str], issue_id: str) -> str:
    """The issue ``issue_id`` went into, through later merges (a cycle stops where it closes)."""
    seen = {issue_id}
    while issue_id in aliases and aliases[issue_id] not in seen:
        issue_id = aliases[issue_id]
        seen.add(issue_id)
    return issue_id

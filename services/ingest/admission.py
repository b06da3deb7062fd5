"""What every channel checks before a post is published: clean text, event time, size.

One step shared by all channels (integration API, APP webhook, WeChat push, forum
poller, back-fill), applied to the whole request before anything is published,
so that a post at fault refuses its request and never reaches Kafka:

* control characters (C0 except tab, newline and carriage return; DEL; the C1 block)
  are removed from every free-text field: they carry no meaning in a post and
  the search API's highlighting reserves some of them;
* ``created_at`` must lie inside a window around ``received_at``
  (:data:`~yuqing.contracts.limits.DEFAULT_EVENT_MAX_AGE` back,
  :data:`~yuqing.contracts.limits.DEFAULT_EVENT_MAX_LEAD` ahead; settings widen it
  for back-fills), and never before the months the search index keeps
  (:data:`~yuqing.contracts.limits.INDEX_KEPT_MONTHS`): 422;
* the serialised message must fit :data:`~yuqing.contracts.limits.MAX_RAW_MESSAGE_BYTES`,
  the one size limit derived from the broker's ``max.message.bytes``: 413.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from yuqing.contracts import RawPost
from yuqing.contracts.codec import encode
from yuqing.contracts.limits import (
    DEFAULT_EVENT_MAX_AGE,
    DEFAULT_EVENT_MAX_LEAD,
    INDEX_KEPT_MONTHS,
    MAX_RAW_MESSAGE_BYTES,
    first_kept_instant,
)
from yuqing.text import STRIP_CONTROL

# Identifiers (external_id, thread_id, reply_to, url) are left alone: the post id is derived
# from them, and a contract pattern or the source's own system decides what they may hold.
_TEXT_FIELDS = ("author", "title", "text", "region", "unit")


class PostRefused(ValueError):
    """A post that must not be published; ``status`` is the HTTP answer (413 or 422)."""

    def __init__(self, status: int, field: str, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.field, self.kind = status, field, kind
        self.index = 0

    def at(self, index: int) -> PostRefused:
        self.index = index
        return self


@dataclass(frozen=True)
class Admission:
    """The edge's bounds; one per process, built from the settings."""

    max_age: timedelta = DEFAULT_EVENT_MAX_AGE
    max_lead: timedelta = DEFAULT_EVENT_MAX_LEAD
    max_message_bytes: int = MAX_RAW_MESSAGE_BYTES
    kept_months: int = INDEX_KEPT_MONTHS

    def admit(self, post: RawPost) -> RawPost:
        """The post as it may be published, or :class:`PostRefused`."""
        post = strip_control_characters(post)
        self.check_event_time(post)
        size = len(encode(post))
        if size > self.max_message_bytes:
            raise PostRefused(413, "", f"the post is {size:,} bytes as a posts.raw message; "
                              f"at most {self.max_message_bytes:,} are accepted", "too_large")
        return post

    def admit_all(self, posts: Sequence[RawPost]) -> list[RawPost]:
        """Every post admitted, or :class:`PostRefused` for the first at fault (with its index)."""
        admitted = []
        for index, post in enumerate(posts):
            try:
                admitted.append(self.admit(post))
            except PostRefused as exc:
                raise exc.at(index) from None
        return admitted

    def partition(self, posts: Sequence[RawPost],
                  ) -> tuple[list[RawPost], list[tuple[RawPost, PostRefused]]]:
        """The admitted posts, and the refused ones with the reason (channels with no caller
        to answer, such as the forum pollers, log and skip those)."""
        admitted, refused = [], []
        for post in posts:
            try:
                admitted.append(self.admit(post))
            except PostRefused as exc:
                refused.append((post, exc))
        return admitted, refused

    def check_event_time(self, post: RawPost) -> None:
        # A window reaching before the index's months (a back-fill's 396 days, a widened setting)
        # would publish posts the indexer dead-letters, enough in a row to stop it at the cap.
        first_kept = first_kept_instant(post.received_at, self.kept_months)
        earliest = max(post.received_at - self.max_age, first_kept)
        latest = post.received_at + self.max_lead
        if not earliest <= post.created_at <= latest:
            kept = (f", and not before the {self.kept_months} months the search index keeps"
                    if earliest == first_kept else "")
            raise PostRefused(422, "created_at", f"created_at must lie between {earliest:%Y-%m-%dT%H:%M:%SZ}"
                              f" and {latest:%Y-%m-%dT%H:%M:%SZ} (arrival time minus "
                              f"{_span(self.max_age)}, plus {_span(self.max_lead)}{kept})", "out_of_window")


def strip_control_characters(post: RawPost) -> RawPost:
    """The post without control characters in its free-text fields and string attributes."""
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(post, name)
        if isinstance(value, str) and (clean := value.translate(STRIP_CONTROL)) != value:
            changes[name] = clean
    attributes = {key: value.translate(STRIP_CONTROL) if isinstance(value, str) else value
                  for key, value in post.attributes.items()}
    if attributes != post.attributes:
        changes["attributes"] = attributes
    return post.model_copy(update=changes) if changes else post


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} days"
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} s"

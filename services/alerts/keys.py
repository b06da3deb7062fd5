"""Which counting keys a post contributes to, and bounded metric labels (pure)."""

from __future__ import annotations

from typing import Protocol

from yuqing.contracts import AlertKey, Topic
from yuqing.fingerprint import alert_band, is_alert_band
from yuqing.places import NO_PLACES, Gazetteer

OTHER = "other"


class Keyed(Protocol):
    """What the alert keys of a post are made of (an enriched post, or a stored one when warming)."""

    @property
    def topic(self) -> Topic: ...
    @property
    def region(self) -> str | None: ...
    @property
    def effective_region(self) -> str | None: ...
    @property
    def region_inferred_upstream(self) -> bool: ...
    @property
    def source(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def redacted_text(self) -> str: ...


def keys_for(post: Keyed, places: Gazetteer = NO_PLACES, *, issue_id: str | None = None
             ) -> list[AlertKey]:
    """overall, per topic, per topic x region, per source, and per issue (the ``cluster`` family).

    The region is the post's own; a post without one (a WeChat push, a forum
    post) counts under the one known region its text names, if there is one.
    ``issue_id`` is the issue the post was grouped into (``services.alerts.issues``);
    without one the post has no cluster key (warming from stored posts: an issue's
    key starts with the issue, under the absolute-rate rule).
    """
    keys = [AlertKey(family="overall"), AlertKey(family="topic", topic=post.topic),
            AlertKey(family="source", source=post.source)]
    if issue_id:
        keys.append(AlertKey(family="cluster", cluster=issue_id))
    region = region_of(post, places)
    if region:
        keys.append(AlertKey(family="topic_region", topic=post.topic, region=region))
    return keys


def region_of(post: Keyed, places: Gazetteer) -> str | None:
    """The region a post counts under: its own, else the one the NLP worker inferred from its
    text, which is also the region the search index files it under.

    Only a post that predates ``inferred_region`` (a ``posts.enriched`` message from an older
    NLP worker, a document indexed before it) is placed here, by the gazetteer on its redacted
    text (the search index keeps only that, and warming from it must key alike).
    """
    if post.region_inferred_upstream:
        return post.effective_region
    return post.region or places.region_of(post.redacted_text)


def is_band(key: AlertKey) -> bool:
    """Whether a cluster key is an old SimHash band rather than an issue id."""
    return key.family == "cluster" and key.cluster is not None and is_alert_band(key.cluster)


def is_issue(key: AlertKey) -> bool:
    """Whether a key is an issue's (a cluster key that is not an old SimHash band)."""
    return key.family == "cluster" and not is_band(key)


def band_of(fingerprint: str) -> str:
    """The SimHash band of a 16-hex-digit fingerprint (the cluster key of old observations)."""
    return alert_band(fingerprint)


class BoundedLabel:
    """Keeps a metric label's distinct values under a cap.

    The first ``cap`` distinct values are kept as they are; later ones are
    reported as ``other``, so a source sending free-text regions cannot blow up
    the number of time series.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if not value:
            return ""
        if value in self._seen:
            return value
        if len(self._seen) < self.cap:
            self._seen.add(value)
            return value
        return OTHER


def volume_labels(key: AlertKey, regions: BoundedLabel, sources: BoundedLabel) -> dict[str, str]:
    """Labels of ``yuqing_alerts_volume_total`` for one key (clusters are not labels)."""
    return {
        "family": key.family,
        "topic": key.topic.value if key.topic else "",
        "region": regions(key.region),
        "source": sources(key.source),
    }


# A source's lag is the highest of its posts over at least this long, so a late post is not
# overwritten by an on-time one from another source (or the same) before Prometheus scrapes it.
LAG_PERIOD_SECONDS = 60.0
# A source silent this long loses its lag series (the last value would otherwise stay for good).
LAG_EXPIRY_SECONDS = 3 * 3600.0


class SourceLags:
    """The event lag (arrival minus event time) reported per source label.

    A source's value is the highest lag among its posts in its current period and
    the one before (a period starts with the source's first post at least
    ``period`` seconds after the last one started): it covers every post of the
    last ``period`` seconds to two, whatever the scrape interval under that, and a
    source that keeps sending late posts keeps a high value, while one on time
    again drops within two periods. A source that stops sending keeps its last
    value (a slow poller's late posts stay visible between polls) until
    :meth:`expired` drops it, ``expiry`` seconds after its last post.
    """

    def __init__(self, period: float = LAG_PERIOD_SECONDS, expiry: float = LAG_EXPIRY_SECONDS) -> None:
        self.period, self.expiry = period, expiry
        self._periods: dict[str, tuple[float, float, float]] = {}  # started, current max, previous max
        self._last_seen: dict[str, float] = {}

    def observe(self, source: str, lag: float, now: float) -> float:
        """Counts one post's lag; returns the source's value to report."""
        started, current, previous = self._periods.get(source, (now, lag, lag))
        if now - started >= self.period:
            started, current, previous = now, lag, current
        else:
            current = max(current, lag)
        self._periods[source] = (started, current, previous)
        self._last_seen[source] = now
        return max(current, previous)

    def expired(self, now: float) -> list[str]:
        """The sources silent for ``expiry`` seconds, forgotten (their series are to be removed)."""
        gone = [source for source, seen in self._last_seen.items() if now - seen >= self.expiry]
        for source in gone:
            del self._periods[source], self._last_seen[source]
        return gone

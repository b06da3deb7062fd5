"""The indexer's topics the cluster lacks: said in one line, exported, and looked for until they exist.

The indexer starts before its topics exist (the deployment guide creates them
from inside its pod), and its consumer reads a topic once it is created. Under
a mistyped ``YUQING_KAFKA_TOPIC_PREFIX`` the topics never come: the indexer sat
idle for ever while kafka-python logged ``Topic ... not found in cluster
metadata`` many times a second, naming no setting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from kafka.errors import KafkaError

from services.search import metrics
from yuqing.kafka import missing_topics
from yuqing.settings import KafkaSettings

log = logging.getLogger(__name__)
# kafka-python's own lines about a subscribed topic it cannot find (the cluster's metadata, the
# group's partition assignors): said by the watch instead, once a minute
_CLIENT_LOGGERS = ("kafka.cluster", *(f"kafka.coordinator.assignors.{name}"
                                       for name in ("range", "roundrobin", "sticky.sticky_assignor")))


class AboutWatchedTopics(logging.Filter):
    """kafka-python's records about the watched topics, logged at DEBUG instead: dropped unless
    their logger logs DEBUG (the level is checked before a filter runs, so a record only
    relabelled still reached the handlers, about 18 lines a second)."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self.names = frozenset(names)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno > logging.DEBUG and any(isinstance(arg, str) and arg in self.names for arg in args):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


class TopicWatch:
    """Looks for ``names`` at start and every ``interval_s`` while one is missing, in a thread.

    Each look that finds some missing logs one warning naming them and the prefix; the
    gauge ``yuqing_search_indexer_topic_missing{topic}`` is 1 for each, and ``on_change``
    is told whether all are there (the indexer's readiness). Kafka away is not a finding:
    looked at again at the next interval.
    """

    def __init__(self, settings: KafkaSettings, names: Sequence[str], *, on_change: Callable[[bool], None],
                 interval_s: float) -> None:
        self.settings, self.names, self.interval_s = settings, list(names), interval_s
        self.on_change = on_change
        self.missing: list[str] | None = None  # None: not known yet
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._quiet = AboutWatchedTopics(self.names)

    def start(self) -> None:
        """Look once now; while some are missing, go on looking in a thread until they exist."""
        for name in _CLIENT_LOGGERS:
            logging.getLogger(name).addFilter(self._quiet)
        if not self.look():
            self._thread = threading.Thread(target=self._watch, name="topic-watch", daemon=True)
            self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Look no more; with ``wait``, once a look under way has ended (not from a signal
        handler: a look at a Kafka that does not answer takes as long as its client's timeout)."""
        self._stopped.set()
        if not wait:
            return
        if self._thread is not None:
            self._thread.join(timeout=30)
        for name in _CLIENT_LOGGERS:
            logging.getLogger(name).removeFilter(self._quiet)

    def look(self) -> bool:
        """Whether every topic exists now (one look at the cluster)."""
        try:
            missing = missing_topics(self.settings, self.names)
        except KafkaError as exc:
            log.warning("could not list Kafka's topics (%s: %s); looking again in %.0fs",
                        type(exc).__name__, exc, self.interval_s)
            return False
        for name in self.names:
            metrics.TOPIC_MISSING.labels(topic=name).set(1 if name in missing else 0)
        if missing:
            log.warning("topics %s do not exist (YUQING_KAFKA_TOPIC_PREFIX=%r): the indexer reads them once "
                        "they are created (yuqing topics); check the prefix if they should be there; "
                        "looking again in %.0fs", ", ".join(missing), self.settings.topic_prefix,
                        self.interval_s)
        elif self.missing:
            log.info("topics %s exist now: the indexer reads them", ", ".join(self.missing))
        self.missing = missing
        self.on_change(not missing)
        return not missing

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval_s) and not self.look():
            pass

"""What the indexer's topic watch lets through of kafka-python's lines about its missing topics (pure)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from services.search.topic_watch import AboutWatchedTopics


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()  # level NOTSET, as the services' one handler
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Kept]:
    logger, handler = logging.getLogger("kafka.cluster"), _Kept()
    level = logger.level
    logger.setLevel(logging.WARNING)  # as configure_logging sets kafka-python's loggers
    logger.addHandler(handler)
    watched = AboutWatchedTopics(["t.posts.enriched"])
    logger.addFilter(watched)
    yield handler
    logger.removeFilter(watched)
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_lines_about_a_watched_topic_are_dropped_when_debug_is_off(kept: _Kept) -> None:
    # relabelled DEBUG but passed on, they reached the handler about 18 times a second
    logger = logging.getLogger("kafka.cluster")
    logger.error("Topic %s not found in cluster metadata", "t.posts.enriched")
    logger.error("Topic %s not found in cluster metadata", "other.topic")
    logger.error("Metadata from %s", {"node": 1})  # arguments that are no names are fine

    assert [r.getMessage() for r in kept.records] == [
        "Topic other.topic not found in cluster metadata", "Metadata from {'node': 1}"]


def test_they_are_kept_at_debug_when_debug_is_on(kept: _Kept) -> None:
    logger = logging.getLogger("kafka.cluster")
    logger.setLevel(logging.DEBUG)
    logger.error("Topic %s not found in cluster metadata", "t.posts.enriched")

    assert [(r.levelname, r.getMessage()) for r in kept.records] == [
        ("DEBUG", "Topic t.posts.enriched not found in cluster metadata")]

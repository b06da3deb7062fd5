"""``yuqing dlq replay --service``: a name no service writes is refused, not answered "0 would
be replayed" (pure)."""

from __future__ import annotations

import pytest

from services.ingest.dlq_replay import DEAD_LETTER_SERVICES, ReplayFilter, plan
from tests.ingest.test_dlq_replay_plan import letter


def test_a_service_that_writes_no_dead_letters_is_refused_naming_those_that_do() -> None:
    with pytest.raises(ValueError, match=r"'search' .*alerts, nlp, search-indexer"):
        plan([letter(1)], ReplayFilter(service="search"))


def test_a_known_service_without_letters_now_is_fine() -> None:
    assert plan([letter(1)], ReplayFilter(service="alerts")) == []


def test_a_service_seen_on_the_topic_is_fine_even_if_not_ours() -> None:
    assert len(plan([letter(1, service="crm-sync")], ReplayFilter(service="crm-sync"))) == 1


def test_the_known_services_are_those_the_workers_write() -> None:
    from services.alerts.worker import SERVICE as ALERTS
    from services.nlp.pipeline import SERVICE as NLP
    from services.search.indexer import SERVICE as INDEXER

    assert set(DEAD_LETTER_SERVICES) == {ALERTS, NLP, INDEXER}

"""Paging through GET /v1/alerts while the alerts worker updates them, against the real Elasticsearch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.search.mappings import small_alias
from tests.integration import test_search_api as endpoints
from tests.integration.test_search_api import Env
from tests.search.factory import BASE_TIME, make_alert
from yuqing.contracts import Alert, AlertState, Severity

pytestmark = pytest.mark.integration
env = endpoints.env  # the endpoint tests' fixture: two alerts of their own


def _surges(count: int) -> list[Alert]:
    return [make_alert(f"alert-page-{n:02d}", region=None, emitted_at=BASE_TIME + timedelta(hours=n))
            for n in range(count)]


def _later(alert: Alert, *, hours: int, **update: Any) -> Alert:
    # a later event of the same alert: same key and window, emitted later
    return alert.model_copy(update={"emitted_at": alert.emitted_at + timedelta(hours=hours), **update})


def _read_all(env: Env, between: dict[int, list[Alert]]) -> list[str]:
    seen: list[str] = []
    cursor = None
    for page_no in range(50):
        page = env.get("/v1/alerts", limit=2, **({"cursor": cursor} if cursor else {})).json()
        seen += [a["alert_id"] for a in page["alerts"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen
        env.index(between.get(page_no, []))
    raise AssertionError("the pages never ended")


def test_an_alert_updated_while_a_reader_pages_is_listed_once(env: Env) -> None:
    # ordered by the last update, an alert that escalated or resolved between two pages jumped to
    # the front, behind the reader, and was never listed; nothing on the first page was seen again
    surges = _surges(6)
    env.index(surges)
    before = [a["alert_id"] for a in env.get("/v1/alerts", limit=100).json()["alerts"]]
    assert len(before) == 8
    on_later_pages = [a for a in surges if a.alert_id in before[4:]]
    first_page = [a for a in surges if a.alert_id in before[:2]]
    updates = [_later(on_later_pages[0], hours=30, severity=Severity.CRITICAL),
               _later(on_later_pages[1], hours=31, state=AlertState.RESOLVED),
               _later(first_page[0], hours=32, state=AlertState.RESOLVED)]

    seen = _read_all(env, {0: updates[:1], 1: updates[1:]})

    assert sorted(seen) == sorted(before), seen
    assert seen == before  # the order did not move while the alerts changed


def test_alerts_are_listed_newest_surge_first(env: Env) -> None:
    surges = _surges(3)
    env.index([*surges, _later(surges[0], hours=40, state=AlertState.RESOLVED)])

    listed = [a["alert_id"] for a in env.get("/v1/alerts", limit=100).json()["alerts"]]

    assert listed[:2] == ["alert-page-02", "alert-page-01"]
    assert listed[2:] == ["alert-county-01", "alert-hekou-01", "alert-page-00"]  # one start: by id


def test_an_alert_stored_without_its_window_start_is_listed_last_and_paged_over(env: Env) -> None:
    # a resolution indexed before its firing event, by a version that wrote no window_start then
    env.es.index(index=small_alias(env.prefix, "alerts"), id="alert-old-01", refresh=True, document={
        "alert_id": "alert-old-01", "family": "overall", "key_label": "overall", "state": "resolved",
        "severity": "warning", "updated_at": (BASE_TIME + timedelta(days=3)).isoformat(),
        "resolved_at": (BASE_TIME + timedelta(days=3)).isoformat()})

    seen = _read_all(env, {})

    assert seen == ["alert-county-01", "alert-hekou-01", "alert-old-01"]

from datetime import UTC, datetime

from services.search.issues import _rank, priority, representative
from services.search.models import IssueState


def _bucket(key: str, size: int, recent: int, negative: int, last: float) -> dict[str, object]:
    return {"key": key, "doc_count": size, "recent": {"doc_count": recent},
            "negative": {"doc_count": negative}, "last": {"value": last}}


def test_priority_weighs_size_growth_and_anger():
    assert priority(size=15, last_hour=0, negative_share=0.0) == 4.0
    assert priority(size=3, last_hour=3, negative_share=1.0) == 5.0  # small but all new and angry
    assert priority(size=1, last_hour=0, negative_share=0.0) == 1.0


def test_issues_rank_unresolved_first_and_filter_by_state():
    buckets = [_bucket("billing-1", 40, 0, 10, 1.0), _bucket("outage-2", 12, 6, 12, 3.0),
               _bucket("rumor-3", 2, 0, 0, 2.0)]
    states = {"billing-1": {"state": "resolved"}}
    ranked = [key for key, _ in _rank(buckets, states, order_by="priority", state=None)]
    assert ranked == ["outage-2", "rumor-3", "billing-1"]  # the resolved one last, however large
    assert next(k for k, _ in _rank(buckets, states, order_by="size", state=None)) == "billing-1"
    assert next(k for k, _ in _rank(buckets, states, order_by="last_seen", state=None)) == "outage-2"
    only = _rank(buckets, states, order_by="priority", state=IssueState.RESOLVED)
    assert [k for k, _ in only] == ["billing-1"]


def test_a_resolved_issue_with_a_post_after_its_resolution_ranks_among_the_unresolved():
    resolved_ms = datetime(2026, 12, 7, 8, 0, tzinfo=UTC).timestamp() * 1000
    buckets = [_bucket("outage-2", 12, 6, 12, resolved_ms + 60_000), _bucket("rumor-3", 2, 0, 0, 2.0),
               _bucket("billing-1", 40, 0, 10, resolved_ms)]
    at = "2026-12-07T08:00:00+00:00"
    states = {"outage-2": {"state": "resolved", "updated_at": at},
              "billing-1": {"state": "resolved", "updated_at": at}}
    ranked = [key for key, _ in _rank(buckets, states, order_by="priority", state=None)]
    assert ranked == ["outage-2", "rumor-3", "billing-1"]  # came back a minute after; nothing since


def test_the_representative_post_is_the_one_closest_to_the_others():
    texts = {"a": "河口镇停电了，什么时候来电？", "b": "河口镇停电了，啥时候来电啊",
             "c": "河口停电+1", "d": "停电两个小时了，什么时候来电，热线也打不通"}
    assert representative(texts) in {"a", "b"}
    assert representative({}) is None

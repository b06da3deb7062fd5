from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.dedup import DedupWindow, TtlSet
from yuqing.contracts import Channel, RawPost, make_post_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def post(external_id: str, source: str = "app-main") -> RawPost:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    return RawPost(post_id=make_post_id(source, external_id), source=source, channel=Channel.APP,
                   external_id=external_id, text="停电了", created_at=now, received_at=now)


def test_ttl_set_forgets_members_after_the_ttl() -> None:
    clock = FakeClock()
    members = TtlSet(ttl_s=60, max_entries=10, clock=clock)

    assert members.add("a") is True
    assert members.add("a") is False
    clock.now += 59.9
    assert "a" in members
    clock.now += 0.1
    assert "a" not in members
    assert members.add("a") is True


def test_ttl_set_does_not_extend_the_ttl_of_a_repeat() -> None:
    clock = FakeClock()
    members = TtlSet(ttl_s=60, max_entries=10, clock=clock)
    members.add("a")
    clock.now += 50
    members.add("a")
    clock.now += 10

    assert "a" not in members


def test_ttl_set_is_bounded_and_counts_evictions() -> None:
    members = TtlSet(ttl_s=60, max_entries=3, clock=FakeClock())
    for key in "abcde":
        members.add(key)

    assert len(members) == 3
    assert members.evictions == 2
    assert "a" not in members and "b" not in members and "e" in members


def test_ttl_set_discard() -> None:
    members = TtlSet(ttl_s=60, max_entries=3, clock=FakeClock())
    members.add("a")
    members.discard("a")
    members.discard("never-added")

    assert members.add("a") is True


@pytest.mark.parametrize(("ttl_s", "max_entries"), [(0, 1), (1, 0)])
def test_ttl_set_rejects_meaningless_bounds(ttl_s: float, max_entries: int) -> None:
    with pytest.raises(ValueError):
        TtlSet(ttl_s=ttl_s, max_entries=max_entries)


def test_same_post_twice_within_the_window_is_published_once() -> None:
    window = DedupWindow(ttl_s=3_600, clock=FakeClock())
    first = window.fresh([post("fb-1"), post("fb-2")])
    window.mark_published(first)

    second = window.fresh([post("fb-2"), post("fb-3")])

    assert [p.external_id for p in first] == ["fb-1", "fb-2"]
    assert [p.external_id for p in second] == ["fb-3"]


def test_repeats_inside_one_batch_are_dropped() -> None:
    window = DedupWindow(clock=FakeClock())

    assert [p.external_id for p in window.fresh([post("x"), post("x"), post("y")])] == ["x", "y"]


def test_same_external_id_from_another_source_is_a_different_post() -> None:
    window = DedupWindow(clock=FakeClock())
    window.mark_published([post("1", source="forum-a")])

    assert window.fresh([post("1", source="forum-b")]) != []


def test_a_post_whose_publish_failed_is_offered_again() -> None:
    window = DedupWindow(clock=FakeClock())
    attempt = window.fresh([post("fb-1")])
    # publish failed: mark_published is not called

    assert window.fresh([post("fb-1")]) == attempt


def test_post_is_fresh_again_after_the_window() -> None:
    clock = FakeClock()
    window = DedupWindow(ttl_s=600, clock=clock)
    window.mark_published([post("fb-1")])
    assert window.seen(post("fb-1").post_id)

    clock.now += 600

    assert not window.seen(post("fb-1").post_id)
    assert len(window.fresh([post("fb-1")])) == 1
    assert len(window) == 0

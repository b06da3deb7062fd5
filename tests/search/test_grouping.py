import random
from datetime import UTC, datetime, timedelta

import pytest

from services.search.grouping import IssueTable, band_terms, bands, probe_radius, seed_of

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def test_bands_cover_the_fingerprint():
    value = 0x0123456789ABCDEF
    assert bands(value) == [0x0123, 0x4567, 0x89AB, 0xCDEF]
    assert band_terms(f"{value:016x}") == ["0:0123", "1:4567", "2:89ab", "3:cdef"]


@pytest.mark.parametrize(("max_distance", "radius"), [(3, 0), (7, 1), (11, 2)])
def test_every_neighbour_within_the_distance_is_found(max_distance, radius):
    rng = random.Random(max_distance)
    assert probe_radius(max_distance) == radius
    for _ in range(200):
        table = IssueTable(max_distance=max_distance)
        seed = rng.getrandbits(64)
        first = table.assign(topic="outage", fingerprint=f"{seed:016x}", created_at=T0)
        flips = rng.randint(1, max_distance)
        near = _flip(seed, rng.sample(range(64), flips))
        second = table.assign(topic="outage", fingerprint=f"{near:016x}", created_at=T0)
        assert second.issue_id == first.issue_id == f"outage-{seed:016x}"
        assert second.distance == flips
        beyond = _flip(seed, rng.sample(range(64), max_distance + 1 + rng.randint(0, 3)))
        third = table.assign(topic="outage", fingerprint=f"{beyond:016x}", created_at=T0)
        assert third.distance == 0 or (beyond ^ near).bit_count() <= max_distance


def test_far_fingerprints_other_topics_and_old_posts_found_their_own_issue():
    table = IssueTable(max_distance=3, window=timedelta(days=1))
    seed = 0xF0F0F0F0F0F0F0F0
    table.assign(topic="outage", fingerprint=f"{seed:016x}", created_at=T0)
    far = _flip(seed, [0, 1, 2, 3])  # four bits in one band: outside the distance
    def issue(topic: str, value: int, at: datetime = T0) -> str:
        return table.assign(topic=topic, fingerprint=f"{value:016x}", created_at=at).issue_id

    assert issue("outage", far) != f"outage-{seed:016x}"
    assert issue("billing", _flip(seed, [60])).startswith("billing-")
    later = _flip(seed, [40])
    assert issue("outage", later, T0 + timedelta(days=2)) == f"outage-{later:016x}"


def test_same_stream_gives_same_ids_and_replay_keeps_them():
    rng = random.Random(3)
    seeds = [rng.getrandbits(64) for _ in range(30)]
    stream = [(f"{_flip(rng.choice(seeds), rng.sample(range(64), rng.randint(0, 3))):016x}",
               T0 + timedelta(minutes=i)) for i in range(500)]

    def run(table: IssueTable) -> list[str]:
        return [table.assign(topic="outage", fingerprint=fp, created_at=at).issue_id for fp, at in stream]

    first = run(IssueTable())
    assert first == run(IssueTable())
    warm = IssueTable()
    warm.load(("outage", fp, issue, at) for (fp, at), issue in zip(stream, first, strict=True))
    assert run(warm) == first
    assert len(set(first)) <= 60


def test_table_is_bounded():
    table = IssueTable(max_entries=1000)
    for i in range(3000):
        table.assign(topic="outage", fingerprint=f"{i * 0x9E3779B97F4A7C15 % 2**64:016x}", created_at=T0)
    assert len(table) == 1000


def test_seed_of_issue_id():
    assert seed_of("online_service-00000000000000ff") == 255
    assert seed_of("weird") is None
    with pytest.raises(ValueError):
        IssueTable(max_distance=12)

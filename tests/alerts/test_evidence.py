from dataclasses import replace
from datetime import UTC, datetime

from services.alerts.evidence import EvidenceLimits, Observation, WindowEvidence
from services.alerts.writeback import WriteBack
from tests.alerts.streams import make_post
from yuqing.contracts import AlertKey, Sentiment, Topic

KEY = AlertKey(family="overall")


def _obs(n: int, *, source: str = "app-main", keywords: tuple[str, ...] = ("停电",)) -> Observation:
    return Observation(event_time=0.0, post_id=f"{n:032x}", fingerprint=f"{n:016x}", source=source,
                       negative=n % 2 == 0, keywords=keywords, keys=(KEY,))


def test_counters_stay_bounded_and_keep_the_heavy_hitters():
    evidence, limits = WindowEvidence(), EvidenceLimits(max_keywords=5, max_sources=5)
    for n in range(200):
        evidence.add(_obs(n, keywords=("停电", f"rare{n}")), limits)
    assert len(evidence.keywords) == 5 and evidence.top_keywords(1) == ["停电"]
    assert evidence.keywords["停电"] == 200 and evidence.count == 200 and evidence.negative == 100


def test_the_sample_is_bounded_deduplicated_and_independent_of_order():
    limits = EvidenceLimits(max_samples=8)
    forward, backward = WindowEvidence(), WindowEvidence()
    for n in range(50):
        forward.add(_obs(n), limits)
    for n in reversed(range(50)):
        backward.add(_obs(n), limits)
    backward.add(_obs(3), limits)  # delivered twice
    assert forward.samples == backward.samples and len(forward.samples) == 8
    assert len({post_id for _, post_id, _ in backward.samples}) == 8


def test_evidence_and_observations_survive_a_round_trip():
    evidence = WindowEvidence()
    evidence.add(_obs(1, source="wechat-gzh"), EvidenceLimits())
    assert WindowEvidence.from_dict(evidence.to_dict()) == evidence
    post = make_post(index="e-1", created_at=datetime(2026, 11, 25, tzinfo=UTC), topic=Topic.OUTAGE,
                     region="青山乡", source="app-main", text="停电", keywords=["停电"],
                     fingerprint=0xAB, sentiment=Sentiment.NEGATIVE)
    observation = Observation.of(post, max_future_seconds=300, issue_id="outage-00000000000000ab")
    assert observation.negative and len(observation.keys) == 5
    assert Observation.from_dict(observation.to_dict()) == observation
    evidence.add(observation, EvidenceLimits())
    assert evidence.issues == {"outage-00000000000000ab": 1}
    assert WindowEvidence.from_dict(evidence.to_dict()) == evidence


def test_evidence_stored_before_issue_counts_is_still_read():
    evidence = WindowEvidence()
    evidence.add(_obs(1, source="wechat-gzh"), EvidenceLimits())
    stored = evidence.to_dict()
    assert "issues" not in stored  # the stored form of a window without issues is unchanged
    assert WindowEvidence.from_dict(stored).issues == {}


def test_issue_counts_keep_the_heavy_hitters_within_their_cap():
    evidence, limits = WindowEvidence(), EvidenceLimits(max_issues=3)
    issues = ["outage-big"] * 10 + [f"billing-{n}" for n in range(20)]
    for n, issue in enumerate(issues):
        evidence.add(replace(_obs(n), issue_id=issue), limits)
    assert len(evidence.issues) == 3 and evidence.issues["outage-big"] >= 10


def test_write_back_reads_its_pending_writes_and_flushes_once():
    table = {"kept": 1, "dropped": 2}
    cache = WriteBack(table)
    cache["new"] = 3
    cache["kept"] = 4
    del cache["dropped"]
    assert dict(cache) == {"new": 3, "kept": 4} and "dropped" not in cache and len(cache) == 2
    assert table == {"kept": 1, "dropped": 2}
    assert cache.flush() == 3 and table == {"kept": 4, "new": 3}

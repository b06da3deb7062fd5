from services.alerts.evidence import EvidenceLimits, Observation, WindowEvidence
from services.alerts.explain import MAX_SAMPLE_POSTS, explain, representative_posts, subject, summary
from yuqing.contracts import AlertKey, Topic
from yuqing.fingerprint import hamming

TOWNSHIP = AlertKey(family="topic_region", topic=Topic.OUTAGE, region="青山乡")


def _id(n: int) -> str:
    return f"{n:032x}"


def _observation(n: int, fingerprint: int, source: str = "app-main", negative: bool = True,
                 keywords: tuple[str, ...] = ("停电", "来电")) -> Observation:
    return Observation(event_time=0.0, post_id=_id(n), fingerprint=f"{fingerprint:016x}",
                       source=source, negative=negative, keywords=keywords, keys=(TOWNSHIP,))


def test_hamming_counts_differing_bits():
    assert hamming("0000000000000000", "000000000000000f") == 4
    assert hamming("ffffffffffffffff", "ffffffffffffffff") == 0


def test_representative_posts_are_the_most_central_not_the_outliers():
    core = 0x0F0F0F0F0F0F0F0F
    near = [(_id(i), f"{core ^ (1 << i):016x}") for i in range(8)]
    outliers = [(_id(100 + i), f"{~core & 0xFFFFFFFFFFFFFFFF ^ (1 << i):016x}") for i in range(3)]
    chosen = representative_posts(outliers + near)
    assert len(chosen) == MAX_SAMPLE_POSTS and set(chosen) <= {post_id for post_id, _ in near}


def test_representative_posts_of_few_samples_returns_them_all():
    assert representative_posts([(_id(1), "0" * 16)]) == [_id(1)]
    assert representative_posts([]) == []


def test_explanation_reports_keywords_sources_negative_share_and_samples():
    evidence = WindowEvidence()
    limits = EvidenceLimits()
    for i in range(12):
        evidence.add(_observation(i, 0x1234 ^ (1 << (i % 4)), source="app-main"), limits)
    for i in range(12, 16):
        evidence.add(_observation(i, 0xFFFF0000FFFF0000, source="wechat-gzh", negative=False,
                                  keywords=("抢修",)), limits)
    explained = explain(TOWNSHIP, evidence, observed=16, expected=0.8, bucket_seconds=300)
    ex = explained.explanation
    assert ex.top_keywords[:2] == ["停电", "来电"] and "抢修" in ex.top_keywords
    assert ex.top_sources == ["app-main", "wechat-gzh"]
    assert ex.negative_share == 0.75
    samples = explained.sample_post_ids
    assert len(samples) == 5 and set(samples) <= {_id(i) for i in range(12)}
    assert ex.summary.startswith("青山乡·停电舆情突增：5分钟内16条，预期0.8条（约20倍）")
    assert "负面占比75%" in ex.summary and "热词：停电、来电" in ex.summary


def test_explanation_without_evidence_still_says_what_was_seen():
    explained = explain(AlertKey(family="overall"), None, observed=30, expected=10, bucket_seconds=900)
    assert explained.sample_post_ids == [] and explained.explanation.negative_share is None
    assert explained.explanation.summary == "全部来源舆情突增：15分钟内30条，预期10.0条（约3.0倍）"


def test_summary_leaves_out_a_ratio_against_nothing_expected():
    line = summary(AlertKey(family="source", source="app-main"), observed=7, expected=0.0,
                   bucket_seconds=300, negative_share=None, keywords=[])
    assert line == "来源 app-main舆情突增：5分钟内7条，预期0.0条"


def test_subject_names_every_family():
    assert subject(AlertKey(family="topic", topic=Topic.BILLING)) == "电费类"
    assert subject(AlertKey(family="cluster", cluster="ab")) == "近似重复帖簇 ab"  # an old band key
    issue = AlertKey(family="cluster", cluster="outage-9f2c41d07a3be815")
    assert subject(issue) == "议题 outage-9f2c41d07a3be815"

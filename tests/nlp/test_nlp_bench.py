"""The out-of-distribution part of the NLP bench: confusions and the console summary."""

from __future__ import annotations

import json

from bench.bench_nlp import OOD_SETS, ood_summary, top_confusions
from services.nlp.model_metrics import evaluate_labels

LABELS = ["outage", "billing", "policy", "praise_suggestion"]


def test_top_confusions_are_the_most_frequent_wrong_pairs_most_first() -> None:
    gold = ["policy"] * 4 + ["praise_suggestion"] * 3 + ["billing"] * 2 + ["outage"]
    pred = ["billing", "billing", "outage", "policy",
            "outage", "outage", "praise_suggestion",
            "policy", "billing",
            "outage"]
    report = evaluate_labels("topic", gold, pred, LABELS)
    assert top_confusions(report, 3) == [
        {"gold": "policy", "predicted": "billing", "count": 2},
        {"gold": "praise_suggestion", "predicted": "outage", "count": 2},
        # a tie of one each: label order decides (billing's row comes before policy's)
        {"gold": "billing", "predicted": "policy", "count": 1},
    ]
    assert len(top_confusions(report, 10)) == 4


def test_a_perfect_report_has_no_confusions() -> None:
    report = evaluate_labels("topic", LABELS, LABELS, LABELS)
    assert top_confusions(report, 5) == []


def test_summary_names_model_baseline_and_the_weakest_topics() -> None:
    block = {"n": 501, "topic_accuracy": 0.91, "tfidf_topic_accuracy": 0.908,
             "topic_macro_f1": 0.911, "sentiment_accuracy": 0.892,
             "topic_f1": {"outage": 0.95, "other": 0.81, "rumor": 0.88, "service": 0.86}}
    line = ood_summary("ood2", block)
    assert line.startswith("ood2 (501 posts): topic acc 0.910 (TF-IDF 0.908)")
    assert line.endswith("weakest F1: other 0.81, service 0.86, rumor 0.88")


def test_every_out_of_distribution_set_covers_all_topics_with_guide_labels() -> None:
    topics = {"outage", "billing", "service", "online_service", "safety", "policy", "rumor",
              "employee", "energy_use", "praise_suggestion", "other"}
    for path in OOD_SETS.values():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        counts = {t: sum(r["topic"] == t for r in rows) for t in topics}
        assert min(counts.values()) >= 40, (path.name, counts)
        assert {r["topic"] for r in rows} == topics
        assert {r["sentiment"] for r in rows} <= {"negative", "neutral", "positive"}
        assert len({r["text"] for r in rows}) == len(rows), path.name


def test_the_baseline_fitted_once_equals_training_s_baseline_on_every_set() -> None:
    from bench.bench_nlp import tfidf_reports
    from services.nlp.training import Example, tfidf_baseline

    train = [Example(text, topic, sentiment) for text, topic, sentiment in [
        ("又停电了", "outage", "negative"), ("什么时候来电", "outage", "neutral"),
        ("停电一整天了", "outage", "negative"), ("电费太高了", "billing", "negative"),
        ("电费怎么交", "billing", "neutral"), ("多扣了电费", "billing", "negative"),
        ("谢谢师傅", "praise_suggestion", "positive"), ("修得真快谢谢", "praise_suggestion", "positive")]]
    sets = {"a": [Example("停电了", "outage", "negative"), Example("电费单", "billing", "neutral")],
            "b": [Example("谢谢", "praise_suggestion", "positive"),
                  Example("来电了吗", "outage", None)]}
    once = tfidf_reports(train, sets)
    for name, test in sets.items():
        assert once[name] == tfidf_baseline(train, test), name
    assert once["b"]["sentiment"].n == 1  # a post without a sentiment label is not scored


def test_corpus_additions_keep_the_first_of_each_near_duplicate_group():
    from bench.corpus_add import drop_within

    rows = [{"text": "河口镇停电了，什么时候来电？"}, {"text": "电费怎么突然这么高"},
            {"text": "河口镇停电了，什么时候来电"}, {"text": "营业厅周末能不能开半天"}]
    assert [r["text"] for r in drop_within(rows)] == [rows[0]["text"], rows[1]["text"], rows[3]["text"]]
    assert drop_within([]) == []

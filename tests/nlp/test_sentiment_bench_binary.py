"""A two-label sentiment corpus (negative/positive, as public benchmarks are) trains and predicts.

sklearn keeps one coefficient row for two classes; the heads and the n-gram
model need one row per label.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.nlp.model_ngram import class_rows, softmax
from services.nlp.training import read_examples

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"


def _fit(labels: list[str]) -> tuple[object, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 5))
    gold = [labels[int(v)] for v in np.digitize(x[:, 0] + 0.3 * x[:, 1], [-0.4, 0.4][:len(labels) - 1])]
    return LogisticRegression(C=1.0, max_iter=500).fit(x, gold), x


@pytest.mark.parametrize("labels", [["negative", "positive"], ["negative", "neutral", "positive"]])
def test_class_rows_give_the_fitted_probabilities_in_label_order(labels):
    model, x = _fit(labels)
    order = list(reversed(labels))  # a label order other than sklearn's sorted classes_
    coef, bias = class_rows(model, order)
    assert coef.shape == (len(labels), x.shape[1]) and bias.shape == (len(labels),)
    expected = model.predict_proba(x)[:, [list(model.classes_).index(lab) for lab in order]]
    assert np.abs(softmax(x @ coef.T + bias) - expected).max() < 1e-9


def _two_label_rows(n: int) -> list[dict[str, str]]:
    if not CORPUS.exists() or not any(CORPUS.glob("*.jsonl")):
        pytest.skip("no labelled corpus")
    examples = [ex for ex in read_examples(CORPUS) if ex.sentiment in ("negative", "positive")]
    picked = examples[:: max(1, len(examples) // n)][:n]
    return [{"text": ex.text, "sentiment": str(ex.sentiment)} for ex in picked]


@pytest.mark.model
def test_two_label_sentiment_corpus_refits_heads_and_predicts_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from services.nlp.model_default import ensure_default_model
    from services.nlp.nlp_cli import model_app

    data = tmp_path / "senti.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _two_label_rows(48)))
    runner = CliRunner()
    result = runner.invoke(model_app, ["train", "--data", str(data), "--out", str(tmp_path / "m"),
                                       "--heads-only", "--base-model", str(ensure_default_model())])
    assert result.exit_code == 0, result.output
    assert "encoding" in result.output and "accuracy" in result.output
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "服务太差了，气死我了"}, ensure_ascii=False) + "\n")
    result = runner.invoke(model_app, ["predict", "--model", str(tmp_path / "m"), "--input",
                                       str(src), "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    pred = json.loads((tmp_path / "out.jsonl").read_text())
    assert set(pred["sentiment_scores"]) == {"negative", "positive"}
    assert sum(pred["sentiment_scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert len(pred["topic_scores"]) == 11  # the base model's topic head is kept

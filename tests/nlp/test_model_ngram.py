"""The character n-gram model: same numbers as sklearn, saved without pickles."""

from __future__ import annotations

import numpy as np
import pytest

from services.nlp.model_ensemble import EnsembleConfig, cascade_mask, combine, reorder
from services.nlp.model_ngram import NgramConfig, NgramModel, char_ngrams, fit_ngram_model

TEXTS = ["又停电了，什么时候来电？", "电费怎么这么高", "停电三个小时了", "这个月电费翻倍",
         "APP登录不上", "app 又闪退了", "停  电了吗", "电费 退款了没有", "登录验证码收不到"]
TOPICS = ["outage", "billing", "outage", "billing", "online_service", "online_service",
          "outage", "billing", "online_service"]
LABELS = {"topic": ["outage", "billing", "online_service"]}


def test_char_ngrams_match_sklearn_analyzer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3)).build_analyzer()
    for text in [*TEXTS, "  A\tb  C ", "", "😂😂 OK"]:
        assert sorted(char_ngrams(text, 1, 3)) == sorted(analyzer(text))


@pytest.fixture(scope="module")
def model() -> NgramModel:
    return fit_ngram_model({"topic": (TEXTS, TOPICS)}, LABELS, NgramConfig(min_df=1))


def test_probabilities_equal_the_sklearn_pipeline(model):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    x = vec.fit_transform(sorted(set(TEXTS)))
    lr = LogisticRegression(C=NgramConfig().c, max_iter=3000).fit(vec.transform(TEXTS), TOPICS)
    probe = ["停电了", "电费高", "app登录", "完全无关的话", ""]
    expected = lr.predict_proba(vec.transform(probe))
    expected = expected[:, [list(lr.classes_).index(t) for t in LABELS["topic"]]]
    assert x.shape[1] == len(model.vocabulary)
    assert np.allclose(model.probabilities(probe)["topic"], expected, atol=1e-6)
    assert model.probabilities(probe)["topic"].argmax(1).tolist()[:3] == [0, 1, 2]


def test_save_and_load_round_trip(model, tmp_path):
    model.save(tmp_path)
    assert NgramModel.exists(tmp_path)
    loaded = NgramModel.load(tmp_path)
    probe = ["停电", "電費太貴", "登录"]
    assert np.allclose(loaded.probabilities(probe)["topic"], model.probabilities(probe)["topic"],
                       atol=2e-3)
    assert loaded.probabilities([])["topic"].shape == (0, 3)


def test_combine_is_a_weighted_geometric_mean():
    a = np.array([[0.7, 0.2, 0.1]])
    b = np.array([[0.1, 0.8, 0.1]])
    assert np.allclose(combine(a, b, 1.0), a) and np.allclose(combine(a, b, 0.0), b)
    mixed = combine(a, b, 0.5)
    expected = np.sqrt(a * b) / np.sqrt(a * b).sum()
    assert np.allclose(mixed, expected) and mixed.sum() == pytest.approx(1.0)


def test_cascade_needs_every_task_confident():
    ngram = {"topic": np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4]]),
             "sentiment": np.array([[0.92, 0.08], [0.5, 0.5], [0.99, 0.01]])}
    assert cascade_mask(ngram, 0.9).tolist() == [True, False, False]
    assert cascade_mask(ngram, None).tolist() == [False, False, False]


def test_reorder_and_config_round_trip():
    proba = np.array([[0.1, 0.9]])
    assert reorder(proba, ["a", "b"], ["b", "a"]).tolist() == [[0.9, 0.1]]
    cfg = EnsembleConfig(ngram_weight={"topic": 0.4, "sentiment": 0.6}, cascade_confidence=None)
    assert EnsembleConfig.from_dict(cfg.to_dict()) == cfg

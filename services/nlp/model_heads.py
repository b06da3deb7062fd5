"""Refitting a classifier's heads (and its n-gram model) over its frozen encoder.

When the labels or the corpus change but the encoder still represents posts
well, only the linear heads need training: the encoder runs once per text
(minutes on 2 CPU cores, where a fine-tune takes an hour), and a
regularised logistic regression per task on the standardised pooled output
is folded back into the ``nn.Linear`` head the classifier already has:

    logits = W ((x − μ) / σ) + b  =  (W / σ) x + (b − (W / σ) μ)

The output directory is the input classifier directory with new
``heads.safetensors``, ``classifier.json`` (labels, version, ensemble
settings) and the n-gram model fitted on the same examples; the encoder
weights and shipped deltas are copied unchanged, so ``export_deltas`` ships
it like any other trained model.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from services.nlp.classifier import (
    CHARS_PER_TOKEN_BOUND,
    HEADS_FILE,
    ClassifierMeta,
    length_batches,
    prepare_texts,
)
from services.nlp.model_encoder import load_encoder, load_tokenizer, mean_pool
from services.nlp.model_ensemble import ENSEMBLE_KEY, EnsembleConfig
from services.nlp.model_ngram import class_rows
from services.nlp.training import Example, ProgressFn, fit_ngram, label_space


@dataclass(frozen=True)
class HeadConfig:
    """Regularisation of the heads (chosen by grouped cross-validation)."""

    c: float = 0.1
    max_iter: int = 3000
    batch_size: int = 32


def pooled_features(model_dir: Path, texts: Sequence[str], meta: ClassifierMeta,
                    batch_size: int = 32, progress: ProgressFn | None = None) -> np.ndarray:
    """The mean-pooled encoder output per text, exactly as the classifier computes it."""
    encoder, tokenizer = load_encoder(model_dir), load_tokenizer(model_dir)
    prepared = prepare_texts(texts, meta.max_length * CHARS_PER_TOKEN_BOUND)
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float64)
    done = 0
    with torch.inference_mode():
        for idx in length_batches(prepared, batch_size):
            batch = tokenizer([meta.prefix + prepared[i] for i in idx], padding=True,
                              truncation=True, max_length=meta.max_length, return_tensors="pt")
            hidden = encoder(input_ids=batch["input_ids"],
                             attention_mask=batch["attention_mask"]).last_hidden_state
            out[idx] = mean_pool(hidden.float(), batch["attention_mask"]).numpy()
            done += len(idx)
            if progress:
                progress(done, len(texts), "encoding")
    return out


def fit_linear_head(features: np.ndarray, gold: Sequence[str], labels: list[str],
                    cfg: HeadConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, bias)`` of a linear head over raw pooled features, rows in ``labels`` order."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    model = LogisticRegression(C=cfg.c, max_iter=cfg.max_iter)
    model.fit((features - mean) / scale, list(gold))
    coef, intercept = class_rows(model, labels)
    weight = coef / scale
    bias = intercept - weight @ mean
    return weight, bias


def train_heads(examples: Sequence[Example], model_dir: Path, out_dir: Path,
                cfg: HeadConfig = HeadConfig(), *, version: str | None = None,
                progress: ProgressFn | None = None) -> Path:
    """Refit the heads of the classifier in ``model_dir`` on ``examples``; write ``out_dir``."""
    meta = ClassifierMeta.load(model_dir)
    labels = label_space(examples)
    features = pooled_features(model_dir, [ex.text for ex in examples], meta,
                               cfg.batch_size, progress)
    heads = {}
    steps = len(labels) + 1  # one fit per head, then the n-gram model
    for step, (task, names) in enumerate(labels.items()):
        if progress:
            progress(step, steps, f"fitting the {task} head")
        rows = [i for i, ex in enumerate(examples) if ex.label(task) is not None]
        weight, bias = fit_linear_head(features[rows], [str(examples[i].label(task))
                                                        for i in rows], names, cfg)
        heads[task] = (weight, bias)
    if out_dir.resolve() != model_dir.resolve():
        shutil.copytree(model_dir, out_dir, dirs_exist_ok=True)
    _write_heads(out_dir, heads, model_dir, meta, labels)
    if progress:
        progress(steps - 1, steps, "fitting the n-gram model")
    fit_ngram(examples, labels).save(out_dir)
    if progress:
        progress(steps, steps, "heads and n-gram model fitted")
    extra = {**meta.extra, ENSEMBLE_KEY: EnsembleConfig().to_dict(),
             "train_examples": len(examples), "heads": {"c": cfg.c, "refit_on_frozen": True}}
    all_labels = {**meta.labels, **labels}
    replace(meta, version=version or f"{meta.version}+heads", labels=all_labels,
            extra=extra).save(out_dir)
    return out_dir


def _write_heads(out_dir: Path, heads: dict[str, tuple[np.ndarray, np.ndarray]],
                 model_dir: Path, meta: ClassifierMeta, labels: dict[str, list[str]]) -> None:
    """New heads for the tasks with labels; the base's heads for the others."""
    from safetensors.torch import load_file

    old = load_file(str(model_dir / HEADS_FILE)) if (model_dir / HEADS_FILE).exists() else {}
    tensors = {k: v for k, v in old.items() if k.split(".")[0] not in labels}
    for task, (weight, bias) in heads.items():
        tensors[f"{task}.weight"] = torch.tensor(weight, dtype=torch.float32).contiguous()
        tensors[f"{task}.bias"] = torch.tensor(bias, dtype=torch.float32).contiguous()
    save_file(tensors, str(out_dir / HEADS_FILE))

"""Fine-tuning and evaluation of the topic/sentiment classifier.

Data: JSONL lines ``{"text", "topic", "sentiment"}``; either label may be
missing (or absent from the whole file: only the heads with labels train).

Train/dev split (fixed, reproducible, independent of file order)::

    dev  <=>  int(md5(text.encode("utf-8")).hexdigest(), 16) % 5 == 0

so about 20 % of distinct texts are dev, and a duplicated text never sits on
both sides.

Fine-tuning: the encoder is cut to its first ``num_layers`` layers, every
linear layer gets a LoRA adapter (``model_lora``), the layer norms and the
linear heads over the mean-pooled output train in full. The embedding table
stays frozen, so the trained deltas are small enough to ship in the repository.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors.torch import save_file
from torch import nn

from services.nlp.classifier import (
    TASKS,
    ClassifierHeads,
    ClassifierMeta,
    ModelNotFound,
    TextClassifier,
)
from services.nlp.convert import STAMP_FILE, VOCAB_IDS_FILE
from services.nlp.model_encoder import load_encoder, load_tokenizer, mean_pool
from services.nlp.model_ensemble import ENSEMBLE_KEY, EnsembleConfig
from services.nlp.model_lora import ADAPTER_FILE, add_lora, lora_deltas, merge_lora
from services.nlp.model_metrics import EvalReport, evaluate_labels
from services.nlp.model_ngram import NgramModel, fit_ngram_model
from yuqing.contracts import Sentiment, Topic
from yuqing.paths import utf8_lines

DEV_MODULUS = 5
KNOWN_LABELS = {"topic": [t.value for t in Topic], "sentiment": [s.value for s in Sentiment]}
IGNORE = -100

ProgressFn = Callable[[int, int, str], None]  # (done, total, description)


class Example(NamedTuple):
    text: str
    topic: str | None = None
    sentiment: str | None = None

    def label(self, task: str) -> str | None:
        return self.topic if task == "topic" else self.sentiment


def is_dev(text: str) -> bool:
    """The fixed dev-split rule (see the module docstring)."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % DEV_MODULUS == 0


def split_examples(examples: Iterable[Example]) -> tuple[list[Example], list[Example]]:
    """``(train, dev)`` by ``is_dev``."""
    train: list[Example] = []
    dev: list[Example] = []
    for ex in examples:
        (dev if is_dev(ex.text) else train).append(ex)
    return train, dev


def parse_example(obj: object) -> Example:
    """One JSONL object as an ``Example`` (missing or empty labels become ``None``)."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    text = obj.get("text")
    if not isinstance(text, str):
        raise ValueError("each line needs a string 'text'")
    for task in TASKS:
        if obj.get(task) is not None and not isinstance(obj[task], str):
            raise ValueError(f"{task} must be a string, not {json.dumps(obj[task], ensure_ascii=False)}")
    return Example(text, obj.get("topic") or None, obj.get("sentiment") or None)


def read_examples(path: Path) -> list[Example]:
    """Examples from a JSONL file, or from every ``*.jsonl`` in a directory (sorted); a line
    that is no example is a ValueError naming the file and the line (a byte order mark and
    CRLF are read)."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    examples: list[Example] = []
    for file in files:
        for number, line in utf8_lines(file):
            if not line.strip():
                continue
            try:
                examples.append(parse_example(json.loads(line)))
            except json.JSONDecodeError:  # its message named neither the file nor the line
                raise ValueError(f"{file}: line {number}: not a JSON object") from None
            except ValueError as error:
                raise ValueError(f"{file}: line {number}: {error}") from None
    return examples


def label_space(examples: Sequence[Example]) -> dict[str, list[str]]:
    """Per task with any label: known labels in contract order, then unknown ones sorted."""
    space = {}
    for task in TASKS:
        seen = {label for ex in examples if (label := ex.label(task)) is not None}
        if seen:
            known = [lab for lab in KNOWN_LABELS[task] if lab in seen]
            space[task] = known + sorted(seen - set(known))
    return space


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; the defaults build the shipped default model.

    Layers below ``frozen_layers`` get no adapters; their output is computed
    once per text and cached, so each step runs only the adapted layers.
    """

    num_layers: int | None = 4
    frozen_layers: int = 2
    lora_rank: int = 16
    lora_alpha: float = 32.0
    epochs: int = 8
    batch_size: int = 32
    lr: float = 2e-3
    head_lr: float = 6e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    dropout: float = 0.1
    max_length: int = 128
    prefix: str = ""
    seed: int = 13
    distill_weight: float = 0.5  # only with a teacher
    distill_temperature: float = 2.0
    ngram: bool = True  # also fit the character n-gram model the default ensemble mixes in


@dataclass
class TrainResult:
    out_dir: Path
    seconds: float
    train_examples: int
    epoch_dev_accuracy: list[dict[str, float]] = field(default_factory=list)


def _truncate_layers(encoder: Any, num_layers: int | None) -> None:
    # any BERT-family encoder: ``encoder.encoder.layer`` is its ModuleList of layers
    layers = encoder.encoder.layer
    if num_layers and num_layers < len(layers):
        encoder.encoder.layer = layers[:num_layers]
        encoder.config.num_hidden_layers = num_layers


def _base_meta(base_dir: Path) -> ClassifierMeta | None:
    try:
        return ClassifierMeta.load(base_dir)
    except ModelNotFound:
        return None


def _heads(hidden: int, labels: dict[str, list[str]], base_dir: Path,
           base: ClassifierMeta | None,
           dropout: float) -> tuple[ClassifierHeads, dict[str, list[str]]]:
    """New heads for tasks with labels; frozen copies of the base's for the others."""
    kept = {t: ls for t, ls in (base.labels if base else {}).items() if t not in labels}
    all_labels = {t: labels.get(t) or kept[t] for t in TASKS if t in labels or t in kept}
    heads = ClassifierHeads(hidden, all_labels, dropout)
    if kept and base:
        old = ClassifierHeads.load(base_dir, base.labels)
        for task in kept:
            heads.heads[task].load_state_dict(old.heads[task].state_dict())
            heads.heads[task].requires_grad_(False)
    return heads, all_labels


class _PassThrough(nn.Module):
    """Stands in for the embeddings while training the top layers on cached states."""

    def forward(self, *args: Any, inputs_embeds: torch.Tensor | None = None,
                **kwargs: Any) -> torch.Tensor | None:
        return inputs_embeds


class _SplitEncoder:
    """An encoder seen as a frozen bottom (run once, cached) and a trainable top."""

    def __init__(self, encoder: Any, tokenizer: Any, cfg: TrainConfig) -> None:
        self.encoder, self.tokenizer, self.cfg = encoder, tokenizer, cfg
        self.frozen = min(cfg.frozen_layers, len(encoder.encoder.layer))
        self._bottom = (encoder.embeddings, encoder.encoder.layer)

    def bottom_states(self, texts: Sequence[str], progress: ProgressFn | None,
                      what: str = "caching frozen layers") -> list[torch.Tensor]:
        """Per text, the unpadded hidden states entering layer ``frozen`` (fp16)."""
        out: list[torch.Tensor | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        self.encoder.eval()
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                idx = order[start:start + 64]
                batch = self.tokenizer([self.cfg.prefix + texts[i] for i in idx], padding=True,
                                       truncation=True, max_length=self.cfg.max_length,
                                       return_tensors="pt")
                states = self.encoder(input_ids=batch["input_ids"],
                                      attention_mask=batch["attention_mask"],
                                      output_hidden_states=True).hidden_states
                for row, i in enumerate(idx):
                    n = int(batch["attention_mask"][row].sum())
                    out[i] = states[self.frozen][row, :n].to(torch.float16).clone()
                if progress:
                    progress(start + len(idx), len(order), what)
        return [state for state in out if state is not None]

    def top_only(self) -> None:
        self.encoder.embeddings = _PassThrough()
        self.encoder.encoder.layer = self._bottom[1][self.frozen:]

    def restore(self) -> None:
        self.encoder.embeddings, self.encoder.encoder.layer = self._bottom

    def logits(self, heads: ClassifierHeads,
               states: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        padded = nn.utils.rnn.pad_sequence([s.float() for s in states], batch_first=True)
        mask = torch.zeros(padded.shape[:2], dtype=torch.long)
        for row, s in enumerate(states):
            mask[row, :len(s)] = 1
        hidden = self.encoder(inputs_embeds=padded, attention_mask=mask).last_hidden_state
        logits: dict[str, torch.Tensor] = heads(mean_pool(hidden, mask))
        return logits


class Item(NamedTuple):
    """A training example with its cached lower-layer states and optional teacher scores."""

    example: Example
    state: torch.Tensor
    soft: dict[str, torch.Tensor] | None = None


def _targets(batch: Sequence[Item], labels: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    out = {}
    for task, names in labels.items():
        index = {n: i for i, n in enumerate(names)}
        out[task] = torch.tensor([index.get(it.example.label(task) or "", IGNORE)
                                  for it in batch])
    return out


def teacher_scores(teacher: TextClassifier, texts: Sequence[str],
                   labels: dict[str, list[str]]) -> list[dict[str, torch.Tensor]]:
    """The teacher's probabilities per text and task, in the student's label order."""
    out = []
    for start in range(0, len(texts), 256):
        for pred in teacher.predict(texts[start:start + 256]):
            scores = {"topic": pred.topic_scores, "sentiment": pred.sentiment_scores}
            out.append({t: torch.tensor([scores[t].get(n, 0.0) for n in names])
                        for t, names in labels.items() if set(names) <= set(scores[t])})
    return out


def _distill(logits: torch.Tensor, soft: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at ``temperature``, scaled by T^2 as usual."""
    target = torch.softmax(torch.log(soft.clamp_min(1e-8)) / temperature, dim=-1)
    log_q = torch.log_softmax(logits / temperature, dim=-1)
    kl = (target * (torch.log(target.clamp_min(1e-8)) - log_q)).sum(-1).mean()
    return kl * temperature**2


def _batches(items: Sequence[Item], size: int, rng: random.Random) -> list[list[Item]]:
    """Shuffled batches of similar-length texts (sorted within windows of 20 batches)."""
    order = list(items)
    rng.shuffle(order)
    window = size * 20
    batches: list[list[Item]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda item: len(item.state))
        batches.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
    rng.shuffle(batches)
    return batches


def _optimizer(encoder: nn.Module, heads: nn.Module, cfg: TrainConfig,
               total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    groups = [
        {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": cfg.lr},
        {"params": [p for p in heads.parameters() if p.requires_grad], "lr": cfg.head_lr},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    warmup = max(1, int(total_steps * cfg.warmup_ratio))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def _loss(split: _SplitEncoder, heads: ClassifierHeads, batch: Sequence[Item],
          labels: dict[str, list[str]], cfg: TrainConfig) -> torch.Tensor:
    logits = split.logits(heads, [it.state for it in batch])
    losses = []
    for task, y in _targets(batch, labels).items():
        hard = (nn.functional.cross_entropy(logits[task], y, ignore_index=IGNORE)
                if (y != IGNORE).any() else None)
        soft = None
        if all(it.soft and task in it.soft for it in batch):
            targets = torch.stack([it.soft[task] for it in batch if it.soft])
            soft = _distill(logits[task], targets, cfg.distill_temperature)
        if hard is not None and soft is not None:
            losses.append((1 - cfg.distill_weight) * hard + cfg.distill_weight * soft)
        elif hard is not None:
            losses.append(hard)
        elif soft is not None:
            losses.append(soft)
    return torch.stack(losses).sum()


def _dev_accuracy(split: _SplitEncoder, heads: ClassifierHeads, dev: Sequence[Item],
                  labels: dict[str, list[str]]) -> dict[str, float]:
    correct = dict.fromkeys(labels, 0)
    total = dict.fromkeys(labels, 0)
    split.encoder.eval()
    heads.eval()
    with torch.inference_mode():
        for i in range(0, len(dev), 64):
            batch = dev[i:i + 64]
            logits = split.logits(heads, [it.state for it in batch])
            for task, y in _targets(batch, labels).items():
                mask = y != IGNORE
                correct[task] += int((logits[task].argmax(-1)[mask] == y[mask]).sum())
                total[task] += int(mask.sum())
    split.encoder.train()
    heads.train()
    return {t: correct[t] / total[t] for t in labels if total[t]}


def train_classifier(
    train: Sequence[Example],
    base_dir: Path,
    out_dir: Path,
    cfg: TrainConfig = TrainConfig(),
    *,
    dev: Sequence[Example] = (),
    progress: ProgressFn | None = None,
    version: str | None = None,
    teacher: TextClassifier | None = None,
) -> TrainResult:
    """Fine-tune ``base_dir`` (an encoder or classifier directory) and save a classifier.

    With a ``teacher`` (e.g. a larger fine-tuned model) the loss mixes the gold
    labels with the teacher's probabilities (knowledge distillation).
    """
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    labels = label_space(train)
    if not labels:
        raise ValueError("no topic or sentiment labels in the training data")
    base = _base_meta(base_dir)
    encoder, tokenizer = load_encoder(base_dir), load_tokenizer(base_dir)
    _truncate_layers(encoder, cfg.num_layers)
    split = _SplitEncoder(encoder, tokenizer, cfg)
    texts = [ex.text for ex in train]
    soft = teacher_scores(teacher, texts, labels) if teacher else [None] * len(train)
    train_items = [Item(ex, state, sc) for ex, state, sc in
                   zip(train, split.bottom_states(texts, progress), soft, strict=True)]
    dev_items = [Item(ex, state) for ex, state in
                 zip(dev, split.bottom_states([ex.text for ex in dev], progress,
                                              "caching frozen layers, held-out texts"),
                     strict=True)]
    add_lora(encoder, cfg.lora_rank, cfg.lora_alpha, cfg.dropout, first_layer=split.frozen)
    heads, all_labels = _heads(encoder.config.hidden_size, labels, base_dir, base, cfg.dropout)
    n_batches = -(-len(train_items) // cfg.batch_size)
    optimizer, scheduler = _optimizer(encoder, heads, cfg, n_batches * cfg.epochs)
    result = TrainResult(out_dir, 0.0, len(train))
    split.top_only()
    encoder.train()
    heads.train()
    for epoch in range(cfg.epochs):
        for step, batch in enumerate(_batches(train_items, cfg.batch_size, rng)):
            loss = _loss(split, heads, batch, labels, cfg)
            torch.autograd.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if progress:
                progress(epoch * n_batches + step + 1, n_batches * cfg.epochs,
                         f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{n_batches} "
                         f"loss {loss.item():.3f}")
        if dev_items:
            result.epoch_dev_accuracy.append(_dev_accuracy(split, heads, dev_items, labels))
            if progress:
                dev_text = " ".join(f"{t} {a:.4f}" for t, a in result.epoch_dev_accuracy[-1].items())
                progress((epoch + 1) * n_batches, n_batches * cfg.epochs,
                         f"epoch {epoch + 1}/{cfg.epochs} done, dev accuracy: {dev_text}")
    split.restore()
    meta = ClassifierMeta(
        version=version or f"{out_dir.name}-l{encoder.config.num_hidden_layers}",
        labels=all_labels, prefix=cfg.prefix, max_length=cfg.max_length, base=str(base_dir.name),
        extra={"num_layers": encoder.config.num_hidden_layers, "train": asdict(cfg),
               "train_examples": len(train),
               # shipped deltas are only meaningful relative to a fresh conversion
               "deltas_from_converted_e5": base is None and (base_dir / STAMP_FILE).exists()},
    )
    if cfg.ngram:
        if progress:
            progress(0, 1, "fitting the n-gram model")
        fit_ngram(train, labels).save(out_dir)
        meta.extra[ENSEMBLE_KEY] = EnsembleConfig().to_dict()
    nn.Module.eval(encoder)
    heads.eval()
    save_classifier(encoder, tokenizer, heads, meta, base_dir, out_dir)
    result.seconds = time.perf_counter() - started
    return result


def fit_ngram(train: Sequence[Example], labels: dict[str, list[str]]) -> NgramModel:
    """The character n-gram model on the same training examples, per task with labels."""
    data: dict[str, tuple[Sequence[str], Sequence[str]]] = {}
    for task in labels:
        pairs = [(ex.text, label) for ex in train if (label := ex.label(task)) is not None]
        data[task] = ([t for t, _ in pairs], [lab for _, lab in pairs])
    return fit_ngram_model(data, labels)


def save_classifier(encoder: Any, tokenizer: Any, heads: ClassifierHeads, meta: ClassifierMeta,
                    base_dir: Path, out_dir: Path) -> None:
    """Write the merged encoder, tokenizer, heads, metadata and the LoRA deltas."""
    out_dir.mkdir(parents=True, exist_ok=True)
    deltas = lora_deltas(encoder)
    merge_lora(encoder)
    encoder.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    heads.save(out_dir)
    save_file({k: v.contiguous() for k, v in deltas.items()}, str(out_dir / ADAPTER_FILE))
    if (base_dir / VOCAB_IDS_FILE).exists():
        shutil.copy2(base_dir / VOCAB_IDS_FILE, out_dir / VOCAB_IDS_FILE)
    meta.save(out_dir)


def evaluate_classifier(
    classifier: TextClassifier, examples: Sequence[Example], batch: int = 256,
    progress: ProgressFn | None = None,
) -> dict[str, EvalReport]:
    """Accuracy, macro-F1, per-class P/R and confusion per task with gold labels."""
    predictions = []
    for i in range(0, len(examples), batch):
        predictions.extend(classifier.predict([ex.text for ex in examples[i:i + batch]]))
        if progress:
            progress(min(i + batch, len(examples)), len(examples), "predicting")
    reports = {}
    for task in TASKS:
        pairs = [(ex.label(task), getattr(p, task)) for ex, p in zip(examples, predictions,
                                                                     strict=True)]
        pairs = [(g, p) for g, p in pairs if g is not None]
        if pairs:
            gold, pred = zip(*pairs, strict=True)
            reports[task] = evaluate_labels(task, gold, pred, KNOWN_LABELS[task])
    return reports


def tfidf_baseline(train: Sequence[Example], dev: Sequence[Example]) -> dict[str, EvalReport]:
    """Character 1-3-gram TF-IDF + logistic regression, per task, scored on ``dev``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    reports = {}
    for task in TASKS:
        tr = [ex for ex in train if ex.label(task)]
        de = [ex for ex in dev if ex.label(task)]
        if not tr or not de:
            continue
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
        x_train = vec.fit_transform([ex.text for ex in tr])
        model = LogisticRegression(C=10.0, max_iter=2000)
        model.fit(x_train, [ex.label(task) for ex in tr])
        pred = model.predict(vec.transform([ex.text for ex in de]))
        reports[task] = evaluate_labels(task, [str(ex.label(task)) for ex in de],
                                        [str(p) for p in pred], KNOWN_LABELS[task])
    return reports

"""Topic and sentiment classification of post texts: the interface the NLP worker uses.

A classifier directory is a Hugging Face encoder directory (loaded only through
``AutoModel``/``AutoTokenizer``, so any BERT-family checkpoint drops in) plus

* ``heads.safetensors``: one linear head per task over the mean-pooled encoder
  output (``<task>.weight``, ``<task>.bias``);
* ``classifier.json``: label lists (head row order), text prefix, max tokens,
  a version string.

Variants are load-time choices: ``onnx`` runs the fp32 weights with ONNX
Runtime (``model_onnx``: a graph exported from the directory's own weights),
``onnx-int8`` its int8 quantization one post at a time, ``fp32`` the weights
as saved in torch, ``int8`` torch dynamic int8 quantization of the linear
layers except the feed-forward output projections (same dev accuracy within
noise, faster on CPU, but batch-dependent scores). ``default`` =
``onnx-int8`` (see DEFAULT_VARIANT).
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from services.nlp.model_encoder import load_encoder, load_tokenizer, mean_pool
from services.nlp.model_ensemble import ENSEMBLE_KEY, EnsembleConfig, EnsembleProbabilities
from services.nlp.model_ngram import NgramModel

TASKS = ("topic", "sentiment")
FALLBACK_LABEL = {"topic": "other", "sentiment": "neutral"}
META_FILE = "classifier.json"
HEADS_FILE = "heads.safetensors"
ONNX_VARIANTS = ("onnx", "onnx-int8")
VARIANTS = ("fp32", "int8", *ONNX_VARIANTS)
# onnx-int8 is the default: on 2 busy cores the worker runs it ~1.7x faster than
# onnx and 5-7x faster than torch fp32, at the same out-of-distribution accuracy
# (docs/nlp.md, "Speed"); it quantizes one post at a time, so a post's scores do
# not depend on which posts share its batch. onnx gives torch fp32's scores (to
# ~1e-5), ~2x faster than torch. int8 (torch) scales activations per batch, so
# batch neighbours can flip a label (~4 %).
DEFAULT_VARIANT = "onnx-int8"
CHARS_PER_TOKEN_BOUND = 4  # cut raw text before tokenizing: a 100 kB post costs nothing


class Prediction(NamedTuple):
    topic: str
    topic_scores: dict[str, float]
    sentiment: str
    sentiment_scores: dict[str, float]
    # top topic probability below the model's threshold: worth a human look, and
    # a rising share of them says the posts drift away from the training data
    low_confidence: bool = False


class TextClassifier(Protocol):
    """Classifies post texts. ``predict`` returns one ``Prediction`` per text, in order."""

    version: str

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


class ModelNotFound(FileNotFoundError):
    """The directory is not a classifier directory."""


class ModelUnreadable(ValueError):
    """A classifier directory whose files cannot be loaded (cut short, corrupt); one line."""


@dataclass(frozen=True)
class ClassifierMeta:
    """Contents of ``classifier.json``."""

    version: str
    labels: dict[str, list[str]]
    prefix: str = ""
    max_length: int = 128
    base: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, model_dir: Path) -> None:
        (model_dir / META_FILE).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2))

    @classmethod
    def load(cls, model_dir: Path) -> ClassifierMeta:
        path = model_dir / META_FILE
        if not path.exists():
            raise ModelNotFound(f"{model_dir} has no {META_FILE}; is it a classifier directory?")
        return cls(**json.loads(path.read_text()))


class ClassifierHeads(nn.Module):
    """One linear layer per task over the pooled encoder output."""

    def __init__(self, hidden: int, labels: dict[str, list[str]], dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, len(ls)) for t, ls in labels.items()})

    def forward(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.dropout(pooled)
        return {task: head(x) for task, head in self.heads.items()}

    def save(self, model_dir: Path) -> None:
        tensors = {f"{t}.{n}": p.detach().contiguous() for t, h in self.heads.items()
                   for n, p in h.named_parameters()}
        save_file(tensors, str(model_dir / HEADS_FILE))

    @classmethod
    def load(cls, model_dir: Path, labels: dict[str, list[str]]) -> ClassifierHeads:
        tensors = load_file(str(model_dir / HEADS_FILE))
        hidden = tensors[f"{next(iter(labels))}.weight"].shape[1]
        heads = cls(hidden, labels)
        heads.heads.load_state_dict(tensors)
        return heads.eval()


def prepare_texts(texts: Sequence[str | None], max_chars: int) -> list[str]:
    """Texts as the model reads them: ``None`` becomes empty, long texts keep their head."""
    return [(t or "")[:max_chars] for t in texts]


def length_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length, so each batch pads little."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _scores(labels: list[str], probs: np.ndarray) -> dict[str, float]:
    return {label: round(float(p), 6) for label, p in zip(labels, probs, strict=True)}


def _int8_layers(encoder: nn.Module) -> set[str]:
    """Linear layers worth quantizing: all but the feed-forward output projections.

    Their input is the GELU output (1536 wide, with a few large outliers), which
    per-tensor activation quantization handles badly; keeping them in fp32 costs
    little speed and removes nearly all of int8's accuracy loss on the dev split.
    """
    return {name for name, mod in encoder.named_modules() if isinstance(mod, nn.Linear)
            and not (name.endswith("output.dense") and not name.endswith("attention.output.dense"))}


def quantize_int8(encoder: nn.Module) -> nn.Module:
    """Dynamic int8 quantization (int8 weights, per-batch activation scales)."""
    from torch.ao import quantization

    quantize: Any = quantization.quantize_dynamic  # untyped in torch
    spec = dict.fromkeys(_int8_layers(encoder), quantization.default_dynamic_qconfig)
    with warnings.catch_warnings():
        # the eager-mode API is deprecated in favour of torchao, which we do not depend on
        warnings.simplefilter("ignore")
        quantized: nn.Module = quantize(encoder, spec, dtype=torch.qint8)
    return quantized


class ProbabilityFn(Protocol):
    """One padded batch of token ids -> per task an (n, labels) probability array."""

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]: ...


class TorchProbabilities:
    """The encoder and heads run by torch (the ``fp32`` and ``int8`` variants)."""

    def __init__(self, encoder: PreTrainedModel | nn.Module, heads: ClassifierHeads) -> None:
        self.encoder, self.heads = encoder, heads

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        ids, mask = torch.from_numpy(input_ids).long(), torch.from_numpy(attention_mask).long()
        with torch.inference_mode():
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            logits = self.heads(mean_pool(hidden.float(), mask))
            return {t: torch.softmax(v.float(), dim=-1).numpy() for t, v in logits.items()}


class EncoderClassifier:
    """A loaded classifier. ``predict`` is serialised by a lock (safe from an executor)."""

    def __init__(
        self, forward: ProbabilityFn, tokenizer: PreTrainedTokenizerBase, meta: ClassifierMeta,
        *, variant: str, batch_size: int = 32,
    ) -> None:
        self.forward, self.tokenizer, self.meta = forward, tokenizer, meta
        self.batch_size, self.variant = batch_size, variant
        self.version = f"{meta.version}+{variant}"
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        prepared = prepare_texts(texts, self.meta.max_length * CHARS_PER_TOKEN_BOUND)
        with self._lock:
            probs = self.probabilities(prepared)
        return to_predictions(self.meta.labels, probs, len(prepared))

    def probabilities(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Per task an (n, labels) array in ``meta.labels`` order (texts already prepared).

        Texts run in batches of similar length; except for the torch ``int8``
        variant, a text's probabilities do not depend on the other texts of
        the call.
        """
        out = {t: np.zeros((len(texts), len(ls))) for t, ls in self.meta.labels.items()}
        for idx in length_batches(texts, self.batch_size):
            batch = self.tokenizer([self.meta.prefix + texts[i] for i in idx], padding=True,
                                   truncation=True, max_length=self.meta.max_length,
                                   return_tensors="np")
            for task, p in self.forward(batch["input_ids"], batch["attention_mask"]).items():
                out[task][idx] = p
        return out


class EnsembleClassifier:
    """The encoder and the character n-gram model mixed (``model_ensemble``)."""

    def __init__(self, encoder: EncoderClassifier, ngram: NgramModel,
                 cfg: EnsembleConfig) -> None:
        self.encoder, self.cfg = encoder, cfg
        self.labels = encoder.meta.labels
        self.mixer = EnsembleProbabilities(ngram, self.labels, cfg)
        self.version = f"{encoder.meta.version}+ngram+{encoder.variant}"
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        meta = self.encoder.meta
        prepared = prepare_texts(texts, meta.max_length * CHARS_PER_TOKEN_BOUND)
        with self._lock:
            probs = self.mixer.mix(prepared, self.encoder.probabilities)
        return to_predictions(self.labels, probs, len(prepared), self.cfg.low_confidence)


def to_predictions(labels: dict[str, list[str]], probs: dict[str, np.ndarray], n: int,
                   low_confidence: float = 0.0) -> list[Prediction]:
    """One ``Prediction`` per row; a task without probabilities gets its fallback label."""
    out = []
    for row in range(n):
        fields: dict[str, object] = {}
        for task in TASKS:
            # a model trained without this task's labels reports its fallback label
            scores = (_scores(labels[task], probs[task][row]) if task in probs
                      else {FALLBACK_LABEL[task]: 1.0})
            fields[task] = max(scores, key=scores.__getitem__)
            fields[f"{task}_scores"] = scores
        top = max(probs["topic"][row]) if "topic" in probs else 1.0
        out.append(Prediction(**fields, low_confidence=bool(top < low_confidence)))  # type: ignore[arg-type]
    return out


def resolve_variant(variant: str) -> str:
    """``default`` -> the shipped choice; anything else must be a known variant."""
    variant = DEFAULT_VARIANT if variant == "default" else variant
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS} or 'default'")
    return variant


def _probability_fn(model_dir: Path, meta: ClassifierMeta, variant: str,
                    threads: int | None) -> ProbabilityFn:
    if variant in ONNX_VARIANTS:
        from services.nlp.model_onnx import onnx_probabilities

        return onnx_probabilities(model_dir, list(meta.labels), int8=variant == "onnx-int8",
                                  threads=threads)
    encoder: nn.Module = load_encoder(model_dir)
    if variant == "int8":
        encoder = quantize_int8(encoder)
    return TorchProbabilities(encoder, ClassifierHeads.load(model_dir, meta.labels))


def ensure_default_model() -> Path:
    """The default classifier directory, built into the model cache first if missing."""
    from services.nlp.model_default import ensure_default_model as ensure

    return ensure()


def load_classifier(
    model_dir: Path | None = None,
    *,
    variant: str = DEFAULT_VARIANT,
    torch_threads: int | None = None,
    batch_size: int = 32,
) -> TextClassifier:
    """Load a classifier directory; without one, the default model (built if missing).

    ``torch_threads`` sets the intra-op threads (torch's for the process, or the
    ONNX Runtime session's); ``None`` leaves the library's choice.
    """
    if model_dir is None:
        model_dir = ensure_default_model()
    if torch_threads:
        torch.set_num_threads(torch_threads)
    variant = resolve_variant(variant)
    try:
        meta = ClassifierMeta.load(model_dir)
        classifier = EncoderClassifier(
            _probability_fn(model_dir, meta, variant, torch_threads), load_tokenizer(model_dir),
            meta, variant=variant, batch_size=batch_size)
        if not NgramModel.exists(model_dir):
            return classifier
        cfg = EnsembleConfig.from_dict(meta.extra.get(ENSEMBLE_KEY) or {})
        return EnsembleClassifier(classifier, NgramModel.load(model_dir), cfg)
    except ModelNotFound:
        raise
    except Exception as error:  # the loaders' own errors (safetensors, ONNX Runtime) are bare Exceptions
        raise ModelUnreadable(
            f"{model_dir}: the classifier cannot be loaded ({type(error).__name__}: {error}); build it "
            "again (the default model: remove its directory, then yuqing nlp ensure-model)") from error

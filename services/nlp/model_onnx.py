"""The encoder and its heads as an ONNX graph, run by ONNX Runtime.

The graph is exported by this project from the classifier directory's own
weights (``export_onnx``: encoder -> mean pooling -> heads -> softmax, the
same computation as ``EncoderClassifier._probabilities``) and cached beside
them; nothing is downloaded. ``make model`` writes it for the default model;
any other classifier directory gets it on first load.

* ``encoder.onnx``      fp32 weights: the same probabilities as torch fp32
  (to ~1e-5), 1.5-4x faster on 2 CPU cores, and steadier when other
  processes compete for the cores.
* ``encoder-int8.onnx`` ONNX Runtime dynamic int8 quantization of the same
  graph (weights per output channel; the feed-forward output projections
  stay fp32, as in the torch ``int8`` variant). Dynamic quantization scales
  activations over the whole input tensor, so this variant runs one post per
  call: a post's scores then never depend on other posts (nor on padding).

``encoder.onnx.json`` records the digest of the weights a graph was exported
from; a graph whose sources changed is exported again. A directory this
process cannot write keeps its graphs in the model cache instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from services.nlp.model_paths import model_home

FP32_FILE = "encoder.onnx"
INT8_FILE = "encoder-int8.onnx"
STAMP_FILE = "encoder.onnx.json"
SOURCE_FILES = ("model.safetensors", "heads.safetensors", "config.json", "classifier.json")
OPSET = 17
_EXPORT_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def sources_digest(model_dir: Path) -> str:
    """Digest of the files the graph is computed from (those present)."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        path = model_dir / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _stamp(model_dir: Path) -> dict[str, str]:
    path = model_dir / STAMP_FILE
    loaded: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    return loaded


def graph_dir(model_dir: Path, digest: str) -> Path:
    """Where the graphs of ``model_dir`` live: beside the weights, or, in a directory
    this process cannot write (a read-only mount), in the model cache by digest."""
    if os.access(model_dir, os.W_OK):
        return model_dir
    cache = model_home() / "onnx" / digest[:16]
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def onnx_path(model_dir: Path, *, int8: bool = False, again: bool = False) -> Path:
    """The graph for ``model_dir``, exported (and quantized) first if missing or stale,
    or in any case with ``again``."""
    with _EXPORT_LOCK:
        digest = sources_digest(model_dir)
        out = graph_dir(model_dir, digest)
        stamp = _stamp(out)
        if again or stamp.get(FP32_FILE) != digest or not (out / FP32_FILE).exists():
            _write_atomic(out / FP32_FILE, lambda tmp: export_onnx(model_dir, tmp))
            stamp = {FP32_FILE: digest}
        if int8 and (again or stamp.get(INT8_FILE) != digest or not (out / INT8_FILE).exists()):
            _write_atomic(out / INT8_FILE, lambda tmp: quantize_onnx(out / FP32_FILE, tmp))
            stamp = {**stamp, INT8_FILE: digest}
        if stamp != _stamp(out):
            _write_atomic(out / STAMP_FILE, lambda tmp: tmp.write_text(json.dumps(stamp)))
    return out / (INT8_FILE if int8 else FP32_FILE)


def _write_atomic(dest: Path, write: Any) -> None:
    """``write(tmp)`` then rename: a reader never sees half a file."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}-", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o644)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def export_onnx(model_dir: Path, dest: Path) -> None:
    """Export encoder + mean pooling + heads + softmax of ``model_dir`` to ``dest``."""
    import torch

    from services.nlp.classifier import ClassifierHeads, ClassifierMeta
    from services.nlp.model_encoder import load_encoder, mean_pool

    meta = ClassifierMeta.load(model_dir)
    tasks = list(meta.labels)

    class Probabilities(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = load_encoder(model_dir)
            self.heads = ClassifierHeads.load(model_dir, meta.labels)

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            logits = self.heads(mean_pool(hidden.float(), mask))
            return tuple(torch.softmax(logits[t].float(), dim=-1) for t in tasks)

    example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            **{t: {0: "batch"} for t in tasks}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python branches
        torch.onnx.export(Probabilities().eval(), example, str(dest), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=tasks,
                          dynamic_axes=axes, opset_version=OPSET)


def int8_excluded_nodes(graph_nodes: Sequence[Any]) -> list[str]:
    """MatMul nodes kept in fp32: the feed-forward output projections (GELU outliers)."""
    return [n.name for n in graph_nodes if n.op_type == "MatMul"
            and n.name.endswith("output/dense/MatMul") and "attention" not in n.name]


def quantize_onnx(fp32: Path, dest: Path) -> None:
    """ONNX Runtime dynamic int8 quantization of the fp32 graph's MatMuls."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = int8_excluded_nodes(onnx.load(str(fp32), load_external_data=False).graph.node)
    logging.disable(logging.WARNING)  # its advice to pre-process applies to vision models
    try:
        quantize_dynamic(str(fp32), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=excluded)
    finally:
        logging.disable(logging.NOTSET)


def onnx_probabilities(model_dir: Path, tasks: Sequence[str], *, int8: bool,
                       threads: int | None) -> OnnxProbabilities:
    """A session over ``model_dir``'s graph (``int8``: one post per call). A cached graph ONNX
    Runtime cannot load (cut short, corrupt) is exported again once, with a warning: it is
    derived from the weights. Should that fail too, the error is raised."""
    path = onnx_path(model_dir, int8=int8)
    try:
        return OnnxProbabilities(path, tasks, threads=threads, per_post=int8)
    except Exception as error:  # ONNX Runtime's errors (Fail, InvalidProtobuf) are bare Exceptions
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        log.warning("%s cannot be loaded (%s); exporting the graph again from the weights",
                    path, reason)
    return OnnxProbabilities(onnx_path(model_dir, int8=int8, again=True), tasks, threads=threads,
                             per_post=int8)


class OnnxProbabilities:
    """``probabilities(token batch)`` through an ONNX Runtime session on ``threads`` threads.

    ``per_post`` runs every post alone (the int8 graph needs it for
    batch-independent scores; see the module docstring).
    """

    def __init__(self, path: Path, tasks: Sequence[str], *, threads: int | None,
                 per_post: bool) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        # Threads that spin between calls burn the cores the other services of a
        # one-machine deployment need; measured 1.7-4x faster with spinning off when
        # other processes compete for 2 cores (docs/nlp.md, "Speed").
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.tasks, self.per_post = list(tasks), per_post

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        """Per task an (n, labels) array for one padded batch of token ids."""
        if self.per_post and len(input_ids) > 1:
            rows = [self._run(ids[mask > 0][None], mask[mask > 0][None])
                    for ids, mask in zip(input_ids, attention_mask, strict=True)]
            return {t: np.concatenate([r[t] for r in rows]) for t in self.tasks}
        return self._run(input_ids, attention_mask)

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.tasks, {"input_ids": input_ids.astype(np.int64),
                                                "attention_mask": attention_mask.astype(np.int64)})
        return dict(zip(self.tasks, (np.asarray(o) for o in outputs), strict=True))

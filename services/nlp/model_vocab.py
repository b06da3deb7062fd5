"""Vocabulary trimming: keep the sentence pieces that Chinese and English posts use.

96M of the encoder's 117.5M parameters are the 250k-row embedding table, and
most rows belong to scripts that power-utility posts never contain. A piece is
kept when

* it is a special token (ids 0-3 keep their ids), or the lowest-scoring piece
  (the Unigram model derives its unknown-token penalty from the minimum score,
  so keeping it leaves the segmentation of unknown characters unchanged);
* it is made only of CJK ideographs, CJK/full-width/general punctuation,
  digits and ASCII symbols (every Chinese piece: Chinese text segments exactly
  as with the full vocabulary);
* it is ASCII with letters and among the ``latin_top`` most probable such
  pieces (English words; rarer Latin-script words fall back to shorter pieces);
* it is a single character of the kept scripts, so nothing in them becomes
  ``<unk>``; or
* it occurs when tokenizing the given sample texts (the labelled corpus and
  the fidelity sentences), which brings in emoji and any other symbols seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer

DEFAULT_LATIN_TOP = 20_000
METASPACE = "▁"
_SPECIAL_IDS = (0, 1, 2, 3)

_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3100, 0x312F),  # bopomofo
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFE30, 0xFE4F),  # compatibility forms
    (0xFF00, 0xFFEF),  # half/full-width forms
    (0x20000, 0x2FA1F),  # supplementary ideographs
)
_SYMBOL_RANGES = (
    (0x00A0, 0x00BF),  # Latin-1 punctuation and signs
    (0x00D7, 0x00D7),
    (0x00F7, 0x00F7),
    (0x2000, 0x206F),  # general punctuation
    (0x20A0, 0x20CF),  # currency
    (0x2100, 0x21FF),  # letterlike, number forms, arrows
    (0x2460, 0x24FF),  # enclosed numbers
    (0x2500, 0x27BF),  # box drawing, shapes, dingbats
)


def _in_ranges(cp: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def is_cjk(ch: str) -> bool:
    """A Chinese ideograph or a CJK/full-width punctuation character."""
    return _in_ranges(ord(ch), _CJK_RANGES)


def _is_kept_char(ch: str) -> bool:
    cp = ord(ch)
    return cp < 0x80 or is_cjk(ch) or _in_ranges(cp, _SYMBOL_RANGES)


def _piece_class(piece: str) -> str:
    """'chinese' (no ASCII letters), 'latin' (ASCII letters) or 'other'."""
    body = piece.replace(METASPACE, "")
    if not all(_is_kept_char(ch) for ch in body):
        return "other"
    has_letters = any(ch.isascii() and ch.isalpha() for ch in body)
    has_cjk = any(is_cjk(ch) for ch in body)
    return "latin" if has_letters and not has_cjk else "chinese"


def used_piece_ids(tokenizer: Tokenizer, texts: Iterable[str]) -> set[int]:
    """Ids the (full) tokenizer produces for ``texts``."""
    batch = list(texts)
    return {i for enc in tokenizer.encode_batch(batch) for i in enc.ids} if batch else set()


def select_vocab(
    pieces: Sequence[str],
    scores: np.ndarray,
    used_ids: Iterable[int] = (),
    *,
    latin_top: int = DEFAULT_LATIN_TOP,
) -> np.ndarray:
    """Sorted original ids to keep; position in the result is the new id."""
    keep = set(_SPECIAL_IDS) | {int(np.argmin(scores))} | {int(i) for i in used_ids}
    latin: list[int] = []
    for idx, piece in enumerate(pieces):
        kind = _piece_class(piece)
        if kind == "chinese" or (kind != "other" and len(piece.replace(METASPACE, "")) <= 1):
            keep.add(idx)
        elif kind == "latin":
            latin.append(idx)
    latin.sort(key=lambda i: -float(scores[i]))
    keep.update(latin[:latin_top])
    return np.array(sorted(i for i in keep if i < len(pieces)), dtype=np.int64)

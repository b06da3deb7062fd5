"""The near-duplicate fingerprint of a post: one definition for every service (pure).

A 64-bit SimHash over character 3-grams of the normalised text, as 16 hex
digits. The NLP worker puts it on ``posts.enriched``; the indexer stores it with
its four 16-bit bands; the alerts worker and the issue list use Hamming
distances between fingerprints. Near-duplicates (a particle, punctuation or a
character changed) differ in few bits; paraphrases do not, which is why issues
are grouped by meaning, place and time (services/search/grouping.py) rather
than by this fingerprint.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

import numpy as np

BITS = 64
BANDS = 4
BAND_BITS = BITS // BANDS
_BAND_MASK = (1 << BAND_BITS) - 1
SHINGLE = 3
_NOT_WORD = re.compile(r"[\W_]+")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028-\u202e\ufeff]")


# The alerts' cluster key before it was the issue id: the fingerprint's first 8 bits. Alerts
# and observations of that time still carry such keys; an issue id is never this short.
ALERT_BAND_CHARS = 2


def alert_band(fingerprint: str) -> str:
    """The old alert cluster key (SimHash band) of a 16-hex-digit fingerprint."""
    return fingerprint[:ALERT_BAND_CHARS]


def is_alert_band(cluster: str) -> bool:
    """Whether an alert's cluster key is an old SimHash band rather than an issue id."""
    return len(cluster) == ALERT_BAND_CHARS


def shingles(text: str, size: int = SHINGLE) -> list[str]:
    """Character ``size``-grams of the text's letters and digits (lower case, NFKC)."""
    compact = _NOT_WORD.sub("", _CONTROL.sub("", unicodedata.normalize("NFKC", text)).lower())
    if len(compact) <= size:
        return [compact] if compact else []
    return [compact[i:i + size] for i in range(len(compact) - size + 1)]


@lru_cache(maxsize=500_000)
def _gram_hash(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")


_BIT_POSITIONS = np.arange(BITS, dtype=np.uint64)


def simhash(text: str) -> str:
    """64-bit SimHash over character 3-grams, as 16 hex digits (``"0" * 16`` for no text).

    Bit ``b`` is set when more than half of the grams' blake2b hashes have it set.
    """
    hashes = [_gram_hash(g) for g in shingles(text)]
    if not hashes:
        return "0" * 16
    bits = (np.array(hashes, dtype=np.uint64)[:, None] >> _BIT_POSITIONS) & np.uint64(1)
    votes = 2 * bits.sum(axis=0, dtype=np.int64) - len(hashes)
    return f"{sum(1 << int(b) for b in np.flatnonzero(votes > 0)):016x}"


def hamming(a: str, b: str) -> int:
    """Differing bits between two hex fingerprints."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def bands(fingerprint: int) -> list[int]:
    """The four 16-bit bands of a 64-bit fingerprint, most significant first."""
    return [(fingerprint >> (BAND_BITS * (BANDS - 1 - i))) & _BAND_MASK for i in range(BANDS)]


def band_terms(fingerprint: str) -> list[str]:
    """Bands as keyword terms (``"<band>:<hex>"``), stored on the post for lookups."""
    return [f"{i}:{b:04x}" for i, b in enumerate(bands(int(fingerprint, 16)))]


def medoid(fingerprints: dict[str, str]) -> str | None:
    """The key whose fingerprint is nearest to all others (sum of Hamming distances)."""
    values = {key: int(fp, 16) for key, fp in fingerprints.items()}
    return min(values, default=None,
               key=lambda k: (sum((values[k] ^ v).bit_count() for v in values.values()), k))

"""Near-identical bodies (撒网式报送, the same item sent by several units): character shingles,
their MinHash signature and its LSH band keys, and the measure an item is judged by.

Pure: text in, numbers out. The ledger keeps the band keys (`ledger.similar`) and looks a new
item's keys up among other units' recent items; the few that share a band are then measured
exactly with `overlap`.

- **Shingles**: the body folded (NFKC, traditional → simplified, `parser.normalize.fold`),
  every character that is not a letter or digit dropped (whitespace, punctuation), then every
  run of `SHINGLE` (3) characters. Chinese has no spaces: characters, not words. Only the first
  `MAX_CHARS` characters are read, so the work is bounded whatever a sender writes.
- **Similarity** (`overlap`): the share of the *shorter* body's shingles that are also in the
  other one. A copy with a new title and a few words changed scores about 0.9; a copy cut to
  half its length still about 0.8 (it is all in the original); two different items on the same
  topic (two 防汛 items of two districts) at most about 0.15. The configured threshold
  (`[similar] threshold`, default 0.5) sits in that gap; `tests/test_similar.py` measures it.
- **Candidates**: a MinHash signature of `PERMUTATIONS` (128) values, cut into `BANDS` (64)
  bands of `ROWS` (2) values; each band hashes to one 63-bit key. Two bodies share at least
  one key with probability 1 − (1 − J²)^64 for Jaccard similarity J: 0.98 at J = 0.25 (a copy
  cut to half is about J = 0.3), 0.03 at J = 0.02 (unrelated items).
- **MinHash** without a library, by one-permutation hashing: each shingle is hashed once
  (BLAKE2b, 64 bits, keyed), its low bits pick one of the 128 slots and the rest of it
  competes for that slot's minimum; a slot no shingle fell in borrows the value of the next
  filled slot to its right, marked with the distance (densification, Shrivastava and Li,
  2014), so two bodies agree on a slot with probability about J, as with 128 independent hash
  functions. It replaced the textbook construction (128 values a shingle out of SHAKE-128,
  1.6–2.3 ms an item) at 0.5 ms; on the test set it finds the same pairs, from 247 candidate
  pairs instead of 163. datasketch, the maintained MinHash library, was weighed: it brings
  numpy and scipy (scipy only for its LSH parameter search, which this does not use), 77 MB
  more memory in the filing process and half a second of import, for what is here a dozen
  lines.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import TypeVar

from parser.normalize import fold

SHINGLE = 3  # characters per shingle
MAX_CHARS = 20_000  # of a body, read for its shingles
MIN_SHINGLES = 20  # a body with fewer (under ~22 characters) is too short to judge
PERMUTATIONS = 128
BANDS = 64
ROWS = PERMUTATIONS // BANDS
# Mixed into every shingle's hash: changing it (or SHINGLE, PERMUTATIONS, BANDS) changes every
# key, and the keys already stored match nothing until the window has passed.
_SALT = b"mailroom-similar-2"
_EMPTY = 1 << 57  # above every value a slot can hold (64 - 7 bits)
_STEP = 1 << 57  # what a borrowed value carries per slot it was borrowed across
DEFAULT_THRESHOLD = 0.5

_NOT_TEXT = re.compile(r"[\W_]+")
H = TypeVar("H", bound=Hashable)


def shingles(body: str) -> frozenset[str]:
    """The body's character shingles (see the module's docstring); empty when too short."""
    text = _NOT_TEXT.sub("", fold(body[:MAX_CHARS]))
    found = frozenset(text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1))
    return found if len(found) >= MIN_SHINGLES else frozenset()


def overlap(a: frozenset[H], b: Collection[H]) -> float:
    """0…1: the share of the smaller set found in the other (0 when either is empty); of the
    shingles themselves or of their hashes alike. `b` may be any collection of distinct
    values (the ledger keeps a body's hashes in an array): it is only iterated, never made a
    set of its own."""
    if not a or not b:
        return 0.0
    if isinstance(b, frozenset | set) and len(b) < len(a):
        common = len(b & a)  # the work goes by the smaller set
    else:
        common = len(a.intersection(b))
    return common / min(len(a), len(b))


def band_keys(found: frozenset[str]) -> tuple[int, ...]:
    """The `BANDS` LSH keys of a shingle set (signed 63-bit integers, one per band, the band's
    number mixed in so equal values in two bands are two keys); empty for an empty set."""
    if not found:
        return ()
    empty = _EMPTY
    signature = [empty] * PERMUTATIONS
    for shingle in found:
        value = int.from_bytes(
            hashlib.blake2b(shingle.encode("utf-8"), digest_size=8, key=_SALT).digest(), "little"
        )
        slot, rest = value % PERMUTATIONS, value // PERMUTATIONS
        if rest < signature[slot]:
            signature[slot] = rest
    densified = list(signature)
    for slot, rest in enumerate(signature):
        if rest == empty:
            distance = 1
            while signature[(slot + distance) % PERMUTATIONS] == empty:
                distance += 1
            densified[slot] = signature[(slot + distance) % PERMUTATIONS] + distance * _STEP
    data = struct.pack(f"<{PERMUTATIONS}Q", *densified)
    width = 8 * ROWS
    return tuple(_key(band, data[band * width : (band + 1) * width]) for band in range(BANDS))


def _key(band: int, data: bytes) -> int:
    digest = hashlib.blake2b(data, digest_size=8, salt=band.to_bytes(16, "little")).digest()
    return int.from_bytes(digest, "little") >> 1  # 0 … 2^63 − 1: a BIGINT on every database


@dataclass(frozen=True)
class Fingerprint:
    """What similarity needs of one body: its shingles and their band keys."""

    shingles: frozenset[str]
    keys: tuple[int, ...]

    @classmethod
    def of(cls, body: str) -> Fingerprint:
        found = shingles(body)
        return cls(found, band_keys(found))


def candidate_probability(jaccard: float, bands: int = BANDS, rows: int = ROWS) -> float:
    """The chance that two bodies of this Jaccard similarity share a band key."""
    return 1.0 - (1.0 - jaccard**rows) ** bands

"""Near-duplicates: one wire story run by several outlets is one article.

An article's body becomes word 3-gram shingles (a CJK character counts as a word) and a
128-permutation MinHash (datasketch's, computed here: see `signature`); an LSH index (numpy
arrays) finds the stored articles that may share most shingles with it, and the estimated
Jaccard similarity decides, unless the new article is much longer (a fuller version of a
stored excerpt is indexed on its own). `THRESHOLD` is measured with `python -m evals.dedup`
(docs/evaluation.md). The signature is stored with the article record, so the index is
rebuilt from the store and never drifts from it.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import regex

NUM_PERM = 128
SHINGLE_WORDS = 3
# Estimated Jaccard similarity of shingle sets at or above which two articles are one story.
THRESHOLD = 0.3
# Bodies shorter than this many words are never called duplicates (too little to judge).
MIN_WORDS = 40
# A new article this much longer than the stored one is a fuller version (a search snippet,
# then the whole page), not a copy: it is indexed on its own, so nothing it adds is lost.
LONGER = 1.5
_SEED = 1
# Signatures added after the last sort of the LSH bands that are scanned before sorting again.
_MERGE_EVERY = 2048
# A CJK character is a word of its own (those scripts do not space their words).
_WORD = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{N}]+")
# The LSH bands (count, hashes per band) that datasketch's `MinHashLSH` chooses for
# `THRESHOLD` (tests/test_dedup_index.py checks them); other thresholds ask datasketch.
_BANDS_AT_THRESHOLD = (51, 2)


def _affine32_permutations(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch 2's "affine32" permutations h -> a * h + b (mod 2^32, `a` odd), drawn as
    its `MinHash._init_permutations` draws them."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


_PERM_A, _PERM_B = _affine32_permutations(_SEED)


def shingles(text: str) -> set[bytes]:
    """The word 3-grams of a text, lower-cased, punctuation and spacing ignored."""
    words = _WORD.findall(text.lower())
    return {" ".join(words[i:i + SHINGLE_WORDS]).encode("utf-8")
            for i in range(max(len(words) - SHINGLE_WORDS + 1, 0))}


@dataclass(frozen=True)
class Signature:
    """A body's MinHash (NUM_PERM uint32 values) and its length in words."""

    values: np.ndarray
    words: int

    def similarity(self, other: Signature) -> float:
        """The estimated Jaccard similarity of the two bodies' shingle sets: the share of
        equal hash values (datasketch's `MinHash.jaccard`)."""
        return float(np.count_nonzero(self.values == other.values)) / NUM_PERM


def minhash(items: Iterable[bytes]) -> np.ndarray:
    """The MinHash of a set of byte strings, bit for bit datasketch 2's
    `MinHash(num_perm=NUM_PERM, seed=1)` with its default "affine32" scheme (its SHA-1
    32-bit hash, MurmurHash3's 32-bit finalizer, then each affine map's minimum).

    Computed here rather than by datasketch: importing datasketch imports scipy (~31 MiB in
    every process that ingests), which only its LSH parameter search uses."""
    digests = b"".join(hashlib.sha1(item).digest()[:4] for item in items)
    found = np.full(NUM_PERM, np.uint32(0xFFFFFFFF), dtype=np.uint32)
    if not digests:
        return found
    hv = np.frombuffer(digests, dtype="<u4").astype(np.uint32)
    # The finalizer and the maps wrap around: that is the arithmetic mod 2^32.
    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    hv = hv ^ (hv >> np.uint32(16))
    return np.minimum(found, (hv[:, None] * _PERM_A + _PERM_B).min(axis=0))


def signature(text: str) -> Signature | None:
    """The signature of a body, or None when it is too short to judge."""
    words = len(_WORD.findall(text))
    if words < MIN_WORDS:
        return None
    return Signature(minhash(shingles(text)), words)


def pack(found: Signature) -> str:
    """A signature as stored in an article record: `<words>:<512 bytes in base64>`."""
    values = base64.b64encode(found.values.astype("<u4").tobytes()).decode("ascii")
    return f"{found.words}:{values}"


def unpack(text: str) -> Signature | None:
    words, _, packed = text.partition(":")
    try:
        values = np.frombuffer(base64.b64decode(packed), dtype="<u4").astype(np.uint32)
    except ValueError:
        return None
    if len(values) != NUM_PERM or not words.isdigit():
        return None
    return Signature(values, int(words))


# Numbers as written ("48.6", "1,450") and words, for comparing the facts of two copies.
_TOKEN = regex.compile(r"\d+(?:[.,]\d+)*|[\p{L}]+")


def _numbers_in_place(text: str) -> dict[tuple[str, str, str], set[str]]:
    """Each number of a text by where it stands: the two words before it and the one after."""
    tokens = _TOKEN.findall(text.lower())
    found: dict[tuple[str, str, str], set[str]] = {}
    for i, token in enumerate(tokens):
        if token[0].isdigit():
            key = (tokens[i - 2] if i > 1 else "", tokens[i - 1] if i else "",
                   tokens[i + 1] if i + 1 < len(tokens) else "")
            found.setdefault(key, set()).add(token)
    return found


def changed_numbers(original: str, copy: str) -> list[tuple[str, str]]:
    """Numbers a copy changed: (the original's, the copy's) for every place both texts hold
    a number in the same words ("cost 48 million" / "cost 61 million"). A copy that changes
    a fact is another version of the story (sources that disagree), not a duplicate."""
    before, after = _numbers_in_place(original), _numbers_in_place(copy)
    return sorted((min(before[key]), min(after[key])) for key in before.keys() & after.keys()
                  if not before[key] & after[key])


def lsh_bands(threshold: float) -> tuple[int, int]:
    """The LSH bands (count, hashes per band) for a similarity threshold: datasketch's
    `MinHashLSH` choice for a threshold a little below it (the Jaccard estimate decides).
    For `THRESHOLD` the known answer; datasketch (and scipy) are imported only for another
    (`evals.dedup` sweeps them)."""
    if threshold == THRESHOLD:
        return _BANDS_AT_THRESHOLD
    from datasketch import MinHashLSH

    bands = MinHashLSH(threshold=max(threshold - 0.15, 0.1), num_perm=NUM_PERM)
    return bands.b, bands.r


class DuplicateIndex:
    """The signatures of stored articles, for finding the one a new article duplicates.

    LSH over numpy arrays, not datasketch's `MinHashLSH`: that keeps a Python dict entry per
    band per article (51 bands here), about 1 GB for 60,000 articles, in every writer.
    Here each article is one row of 128 values, and each band's keys are a sorted array
    searched by bisection (about 70 MB for 60,000 articles): rows added since the last
    sort are scanned until `_MERGE_EVERY` of them are waiting. The bands are the ones
    datasketch's `MinHashLSH` chooses (read off an empty one), so an article finds the same
    candidates."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._bands, self._rows_per_band = lsh_bands(threshold)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._ids: list[str] = []  # row -> article id ("" once removed)
        self._row_of: dict[str, int] = {}
        self._values = np.zeros((0, NUM_PERM), dtype=np.uint32)
        self._words = np.zeros(0, dtype=np.int64)
        self._used = 0  # rows in use (the arrays grow by doubling)
        self._sorted_keys = np.zeros((self._bands, 0), dtype=np.uint64)
        self._sorted_rows = np.zeros((self._bands, 0), dtype=np.int64)
        self._merged = 0  # rows [0, _merged) are in the sorted arrays

    def __len__(self) -> int:
        return len(self._row_of)

    def load(self, stored: Iterable[tuple[str, str]]) -> None:
        """Replace the contents with (article id, packed signature) pairs."""
        with self._lock:
            self._reset()
            for key, packed in stored:
                if packed and (found := unpack(packed)) is not None:
                    self._append(key, found)
            self._merge()

    def add(self, key: str, found: Signature) -> None:
        with self._lock:
            self._drop(key)
            self._append(key, found)
            if self._used - self._merged >= _MERGE_EVERY:
                self._merge()

    def remove(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def find(self, found: Signature, exclude: str = "") -> tuple[str, float] | None:
        """The stored article this one is a copy of: the most similar at or above the
        threshold, unless this one is `LONGER` times as long (a fuller version)."""
        values = found.values
        with self._lock:
            best: tuple[str, float] | None = None
            for row in self._candidates(values):
                key = self._ids[row]
                if not key or key == exclude or found.words > LONGER * self._words[row]:
                    continue
                # datasketch's estimate: the share of equal hash values.
                similarity = float(np.count_nonzero(self._values[row] == values)) / NUM_PERM
                if similarity >= self.threshold and (best is None or similarity > best[1]
                                                     or (similarity == best[1] and key < best[0])):
                    best = (key, similarity)
            return best

    def _band_keys(self, values: np.ndarray) -> np.ndarray:
        """Each band's key (rows x bands, uint64) of signature rows (rows x NUM_PERM)."""
        r = self._rows_per_band
        bands = values[:, :self._bands * r].reshape(len(values), self._bands, r)
        keys = np.zeros((len(values), self._bands), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for i in range(r):  # FNV-style folding; a collision only adds a candidate
                keys = (keys * np.uint64(0x100000001B3)) ^ bands[:, :, i].astype(np.uint64)
        return keys

    def _candidates(self, values: np.ndarray) -> list[int]:
        wanted = self._band_keys(values[None, :])[0]
        rows: set[int] = set()
        for band in range(self._bands):
            keys = self._sorted_keys[band]
            low = int(np.searchsorted(keys, wanted[band], side="left"))
            high = int(np.searchsorted(keys, wanted[band], side="right"))
            rows.update(self._sorted_rows[band, low:high].tolist())
        if self._used > self._merged:  # rows not sorted yet: scanned
            recent = self._band_keys(self._values[self._merged:self._used])
            rows.update((np.flatnonzero((recent == wanted).any(axis=1)) + self._merged).tolist())
        return sorted(rows)

    def _append(self, key: str, found: Signature) -> None:
        if self._used == len(self._values):
            size = max(2 * len(self._values), 1024)
            self._values = np.resize(self._values, (size, NUM_PERM))
            self._words = np.resize(self._words, size)
        row = self._used
        self._values[row] = found.values
        self._words[row] = found.words
        self._ids.append(key)
        self._row_of[key] = row
        self._used += 1

    def _drop(self, key: str) -> None:
        row = self._row_of.pop(key, None)
        if row is not None:
            self._ids[row] = ""

    def _merge(self) -> None:
        """Sort every row into the band arrays, leaving out removed rows."""
        live = np.array([i for i in range(self._used) if self._ids[i]], dtype=np.int64)
        self._ids = [self._ids[i] for i in live.tolist()]
        self._values = self._values[live]
        self._words = self._words[live]
        self._row_of = {key: i for i, key in enumerate(self._ids)}
        self._used = self._merged = len(self._ids)
        keys = self._band_keys(self._values).T  # bands x rows
        order = np.argsort(keys, axis=1, kind="stable")
        self._sorted_keys = np.take_along_axis(keys, order, axis=1)
        self._sorted_rows = order

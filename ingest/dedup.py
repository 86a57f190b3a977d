"""Near-duplicates: one wire story run by several outlets is one article.

An article's body becomes word 3-gram shingles and a 128-permutation MinHash (datasketch);
an LSH index finds the stored articles that may share most shingles with it, and the
estimated Jaccard similarity decides (`THRESHOLD`, measured with `python -m evals.dedup`,
docs/evaluation.md). The signature is stored with the article record, so the index is
rebuilt from the store and never drifts from it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable

import numpy as np
import regex
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
SHINGLE_WORDS = 3
# Estimated Jaccard similarity of shingle sets at or above which two articles are one story.
THRESHOLD = 0.3
# Bodies shorter than this many words are never called duplicates (too little to judge).
MIN_WORDS = 40
_SEED = 1
_WORD = regex.compile(r"[\p{L}\p{N}]+")
# Hash functions are the same for every signature: built once (datasketch builds them per
# MinHash otherwise, which is most of its cost).
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED)


def shingles(text: str) -> set[bytes]:
    """The word 3-grams of a text, lower-cased, punctuation and spacing ignored."""
    words = _WORD.findall(text.lower())
    return {" ".join(words[i:i + SHINGLE_WORDS]).encode("utf-8")
            for i in range(max(len(words) - SHINGLE_WORDS + 1, 0))}


def signature(text: str) -> MinHash | None:
    """The MinHash of a body, or None when it is too short to judge."""
    if len(_WORD.findall(text)) < MIN_WORDS:
        return None
    found = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=_TEMPLATE.permutations,
                    scheme=_TEMPLATE.scheme)
    found.update_batch(list(shingles(text)))
    return found


def pack(found: MinHash) -> str:
    """A signature as stored in an article record (512 bytes, base64)."""
    return base64.b64encode(found.hashvalues.astype("<u4").tobytes()).decode("ascii")


def unpack(text: str) -> MinHash | None:
    try:
        values = np.frombuffer(base64.b64decode(text), dtype="<u4").astype(np.uint32)
    except ValueError:
        return None
    if len(values) != NUM_PERM:
        return None
    return MinHash(seed=_SEED, hashvalues=values, permutations=_TEMPLATE.permutations,
                    scheme=_TEMPLATE.scheme)


class DuplicateIndex:
    """The signatures of stored articles, for finding the one a new article duplicates."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        # LSH bands tuned a little below the threshold: the Jaccard estimate decides.
        self._lsh = MinHashLSH(threshold=max(threshold - 0.15, 0.1), num_perm=NUM_PERM)
        self._signatures: dict[str, MinHash] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._signatures)

    def load(self, stored: Iterable[tuple[str, str]]) -> None:
        """Replace the contents with (article id, packed signature) pairs."""
        self._lsh = MinHashLSH(threshold=self._lsh.threshold, num_perm=NUM_PERM)
        self._signatures = {}
        for key, packed in stored:
            if packed and (found := unpack(packed)) is not None:
                self.add(key, found)

    def add(self, key: str, found: MinHash) -> None:
        with self._lock:
            if key in self._signatures:
                self._lsh.remove(key)
            self._signatures[key] = found
            self._lsh.insert(key, found)

    def remove(self, key: str) -> None:
        with self._lock:
            if self._signatures.pop(key, None) is not None:
                self._lsh.remove(key)

    def find(self, found: MinHash, exclude: str = "") -> tuple[str, float] | None:
        """The stored article most similar to this signature, at or above the threshold."""
        with self._lock:
            best: tuple[str, float] | None = None
            for key in self._lsh.query(found):
                if key == exclude:
                    continue
                similarity = float(found.jaccard(self._signatures[key]))
                if similarity >= self.threshold and (best is None or similarity > best[1]
                                                     or (similarity == best[1] and key < best[0])):
                    best = (key, similarity)
            return best

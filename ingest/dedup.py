"""Near-duplicates: one wire story run by several outlets is one article.

An article's body becomes word 3-gram shingles (a CJK character counts as a word) and a
128-permutation MinHash (datasketch); an LSH index finds the stored articles that may share
most shingles with it, and the estimated Jaccard similarity decides, unless the new article is
much longer (a fuller version of a stored excerpt is indexed on its own). `THRESHOLD` is
measured with `python -m evals.dedup` (docs/evaluation.md). The signature is stored with the
article record, so the index is rebuilt from the store and never drifts from it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import regex
from datasketch import MinHash, MinHashLSH

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
# A CJK character is a word of its own (those scripts do not space their words).
_WORD = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{N}]+")
# Hash functions are the same for every signature: built once (datasketch builds them per
# MinHash otherwise, which is most of its cost).
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED)


def shingles(text: str) -> set[bytes]:
    """The word 3-grams of a text, lower-cased, punctuation and spacing ignored."""
    words = _WORD.findall(text.lower())
    return {" ".join(words[i:i + SHINGLE_WORDS]).encode("utf-8")
            for i in range(max(len(words) - SHINGLE_WORDS + 1, 0))}


@dataclass(frozen=True)
class Signature:
    """A body's MinHash and its length in words."""

    minhash: MinHash
    words: int


def signature(text: str) -> Signature | None:
    """The signature of a body, or None when it is too short to judge."""
    words = len(_WORD.findall(text))
    if words < MIN_WORDS:
        return None
    found = MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=_TEMPLATE.permutations,
                    scheme=_TEMPLATE.scheme)
    found.update_batch(list(shingles(text)))
    return Signature(found, words)


def pack(found: Signature) -> str:
    """A signature as stored in an article record: `<words>:<512 bytes in base64>`."""
    values = base64.b64encode(found.minhash.hashvalues.astype("<u4").tobytes()).decode("ascii")
    return f"{found.words}:{values}"


def unpack(text: str) -> Signature | None:
    words, _, packed = text.partition(":")
    try:
        values = np.frombuffer(base64.b64decode(packed), dtype="<u4").astype(np.uint32)
    except ValueError:
        return None
    if len(values) != NUM_PERM or not words.isdigit():
        return None
    return Signature(MinHash(seed=_SEED, hashvalues=values,
                             permutations=_TEMPLATE.permutations, scheme=_TEMPLATE.scheme),
                     int(words))


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


class DuplicateIndex:
    """The signatures of stored articles, for finding the one a new article duplicates."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        # LSH bands tuned a little below the threshold: the Jaccard estimate decides.
        self._lsh_threshold = max(threshold - 0.15, 0.1)
        self._lsh = MinHashLSH(threshold=self._lsh_threshold, num_perm=NUM_PERM)
        self._signatures: dict[str, Signature] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._signatures)

    def load(self, stored: Iterable[tuple[str, str]]) -> None:
        """Replace the contents with (article id, packed signature) pairs."""
        self._lsh = MinHashLSH(threshold=self._lsh_threshold, num_perm=NUM_PERM)
        self._signatures = {}
        for key, packed in stored:
            if packed and (found := unpack(packed)) is not None:
                self.add(key, found)

    def add(self, key: str, found: Signature) -> None:
        with self._lock:
            if key in self._signatures:
                self._lsh.remove(key)
            self._signatures[key] = found
            self._lsh.insert(key, found.minhash)

    def remove(self, key: str) -> None:
        with self._lock:
            if self._signatures.pop(key, None) is not None:
                self._lsh.remove(key)

    def find(self, found: Signature, exclude: str = "") -> tuple[str, float] | None:
        """The stored article this one is a copy of: the most similar at or above the
        threshold, unless this one is `LONGER` times as long (a fuller version)."""
        with self._lock:
            best: tuple[str, float] | None = None
            for key in self._lsh.query(found.minhash):
                stored = self._signatures[key]
                if key == exclude or found.words > LONGER * stored.words:
                    continue
                similarity = float(found.minhash.jaccard(stored.minhash))
                if similarity >= self.threshold and (best is None or similarity > best[1]
                                                     or (similarity == best[1] and key < best[0])):
                    best = (key, similarity)
            return best

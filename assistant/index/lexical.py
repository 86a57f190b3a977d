"""Keyword (BM25) index over the store's chunks, the lexical half of hybrid retrieval.

The index is derived from Chroma, never written on its own: `sync()` compares the store's
generation stamp and re-reads only what changed, so it cannot drift from the chunks that are
actually stored (re-ingest, update, delete, crash repair). It holds only chunks of committed
article versions, and retrieval takes its candidates from it, so a write in progress or one
that failed (a full disk) is never cited. English words are lower-cased and
stemmed (Snowball); Chinese runs are segmented with jieba.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_CHINESE, STOPWORDS_EN_PLUS

from assistant.text import CJK_CHARS
from assistant.types import Filters


class ChunkSource(Protocol):
    """What the index needs from the store (`NewsStore` is one)."""

    def generation(self) -> str:
        """A stamp that changes whenever the stored chunks change."""
        ...

    def visible_chunk_ids(self) -> list[str]:
        """Ids of the chunks readers may see (committed versions)."""
        ...

    def get_chunks(self, ids: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, text, metadata) of these chunks."""
        ...


_CJK = re.compile(f"[{CJK_CHARS}]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN_PLUS) | frozenset(STOPWORDS_CHINESE)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba  # loads its dictionary (bundled in the package) on first use: ~1 s

    jieba.setLogLevel(logging.WARNING)
    return jieba


def tokenize(text: str) -> list[str]:
    """Index terms of `text`: stemmed words, jieba words for Chinese, stopwords dropped."""
    words: list[str] = []
    cursor = 0
    for match in _CJK.finditer(text):
        words.extend(_latin(text[cursor:match.start()]))
        words.extend(w for w in _jieba().lcut_for_search(match.group()) if w.strip()
                     and w not in _STOP)
        cursor = match.end()
    words.extend(_latin(text[cursor:]))
    return words


def _latin(text: str) -> list[str]:
    found = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    return _stemmer().stemWords(found) if found else []


def indexed_text(meta: dict[str, Any], text: str) -> str:
    """What the keyword index sees for a chunk: headline, outlet and the chunk text."""
    return f"{meta.get('title', '')}\n{meta.get('source', '')}\n{text}"


# BM25 parameters: the usual k1 (term-frequency saturation) and b (length normalisation).
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class KeywordView:
    """One consistent version of the index (swapped whole, so readers never see a mix):
    row i is chunk `ids[i]` of outlet `sources[i]`, published on `dates[i]` (YYYY-MM-DD)."""

    bm25: bm25s.BM25 | None
    ids: list[str]
    sources: np.ndarray
    dates: np.ndarray
    source_names: frozenset[str] = frozenset()
    rows: dict[str, int] = field(default_factory=dict)
    # Rows of each outlet and of each date: masks built from these are far cheaper than
    # comparing the object arrays above on every question.
    by_source: dict[str, np.ndarray] = field(default_factory=dict)
    by_date: dict[str, np.ndarray] = field(default_factory=dict)

    def of_source(self, source: str) -> np.ndarray:
        """True for the rows of this outlet."""
        return self._mask(self.by_source.get(source))

    def on_dates(self, dates: Sequence[str]) -> np.ndarray:
        """True for the rows published on any of these dates (YYYY-MM-DD)."""
        found = [self.by_date[d] for d in dates if d in self.by_date]
        return self._mask(np.concatenate(found) if found else None)

    def matching(self, filters: Filters | None) -> np.ndarray | None:
        """True for the rows these filters let through; None when they filter nothing."""
        if filters is None or not filters.active:
            return None
        mask = np.ones(len(self.ids), dtype=bool)
        if filters.sources:
            found = [self.by_source[s] for s in filters.sources if s in self.by_source]
            mask &= self._mask(np.concatenate(found) if found else None)
        if filters.since or filters.until:
            # Distinct days are few: compare them, not every row.
            since = filters.since.isoformat() if filters.since else ""
            until = filters.until.isoformat() if filters.until else "9999"
            mask &= self.on_dates([d for d in self.by_date if d and since <= d <= until])
        return mask

    def _mask(self, rows: np.ndarray | None) -> np.ndarray:
        mask = np.zeros(len(self.ids), dtype=bool)
        if rows is not None:
            mask[rows] = True
        return mask

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of every row for `text` (zeros when it has no index terms)."""
        terms = tokenize(text)
        if self.bm25 is None or not terms:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(terms), dtype=np.float32)


@dataclass(frozen=True)
class LexicalHit:
    """A chunk found by keywords, with its BM25 score."""

    chunk_id: str
    score: float


def _rows_by(values: list[str]) -> dict[str, np.ndarray]:
    found: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        found.setdefault(value, []).append(i)
    return {value: np.array(rows, dtype=np.int64) for value, rows in found.items()}


_EMPTY = KeywordView(None, [], np.array([], dtype=object), np.array([], dtype=object))


class LexicalIndex:
    """A BM25 index mirroring one store's chunks. Thread-safe; rebuilt lazily on change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: str | None = None
        # Per chunk id: its index terms, outlet and date, kept across rebuilds so a change
        # only tokenizes the chunks that are new.
        self._rows: dict[str, tuple[list[str], str, str]] = {}
        self._view = _EMPTY

    @property
    def chunk_ids(self) -> list[str]:
        """The chunks the index holds (the store's, as of the last `sync`)."""
        return list(self._view.ids)

    @property
    def sources(self) -> frozenset[str]:
        """The distinct outlets of the indexed chunks."""
        return self._view.source_names

    def view(self, store: ChunkSource) -> KeywordView:
        """The index as of the store's current contents."""
        self.sync(store)
        return self._view

    def sync(self, store: ChunkSource) -> None:
        """Bring the index up to date with the store (cheap when nothing changed)."""
        generation = store.generation()
        if generation == self._generation:
            return
        with self._lock:
            if generation == self._generation:
                return
            ids = store.visible_chunk_ids()
            missing = [cid for cid in ids if cid not in self._rows]
            for cid, text, meta in store.get_chunks(missing):
                self._rows[cid] = (tokenize(indexed_text(meta, text)),
                                   str(meta.get("source", "")),
                                   str(meta.get("published_at", ""))[:10])
            keep = set(ids)
            for cid in [c for c in self._rows if c not in keep]:
                del self._rows[cid]
            ids = [cid for cid in ids if cid in self._rows]
            rows = [self._rows[c] for c in ids]
            sources = [r[1] for r in rows]
            self._view = KeywordView(
                self._build([r[0] for r in rows]), ids, np.array(sources, dtype=object),
                np.array([r[2] for r in rows], dtype=object), frozenset(sources) - {""},
                {cid: i for i, cid in enumerate(ids)},
                _rows_by(sources), _rows_by([r[2] for r in rows]))
            self._generation = generation

    def search(self, query: str, k: int, sources: Sequence[str] = ()) -> list[LexicalHit]:
        """The k best chunks for `query` by BM25 (only from `sources` when given)."""
        view = self._view
        scores = view.scores(query)
        if sources:
            scores = np.where(np.logical_or.reduce([view.of_source(s) for s in sources]),
                              scores, 0.0)
        k = min(k, len(view.ids))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [LexicalHit(view.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    @staticmethod
    def _build(corpus: list[list[str]]) -> bm25s.BM25 | None:
        if not corpus:
            return None
        model = bm25s.BM25(k1=K1, b=B)
        model.index(corpus, show_progress=False)
        return model

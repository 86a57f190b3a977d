"""Keyword (BM25) index over the store's chunks, the lexical half of hybrid retrieval.

The index is derived data kept on disk beside the store: a tantivy index of the chunks'
terms (segment-based, so a write adds a small segment instead of rebuilding anything) and a
SQLite catalog of the article versions it holds (outlet, day, chunk count) with the position
it has reached in the store's commit log. `follow()` reads the log entries after that
position and re-indexes just the articles they name, reading their chunks by id: a write
costs what it adds, however large the archive. It holds only chunks of committed article
versions, and retrieval takes its candidates through it, so a write in progress or one that
failed (a full disk) is never cited. Lost, stale or from another store, it is rebuilt from
Chroma (`rebuild`, also `newsdesk-ingest --reindex`). English words are lower-cased and
stemmed (Snowball); Chinese runs are segmented with jieba.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tantivy

from assistant.text import CJK_CHARS, STOPWORDS, STOPWORDS_CHINESE, jieba_segmenter, stems
from assistant.types import Filters, Outlet, chunk_id, split_chunk_id

log = logging.getLogger(__name__)

_CJK = re.compile(f"[{CJK_CHARS}]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = STOPWORDS | STOPWORDS_CHINESE

# Bump when the schema or the terms change: an index of another format is rebuilt.
INDEX_FORMAT = "6"
# A log entry may land up to this long after entries with later stamps (several writers on
# one Chroma server, their clocks apart): readers look back this far and skip what they saw.
LOOKBACK_NS = 120 * 10**9
_WRITER_HEAP = 32_000_000
# Article ids per catalog statement (SQLite's limit is 32,766 values).
_ID_BATCH = 10_000
_CATALOG = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL,
    n_chunks INTEGER NOT NULL, source TEXT NOT NULL, day INTEGER,
    n_terms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS articles_day ON articles (day);
CREATE INDEX IF NOT EXISTS articles_source ON articles (source, day);
-- Each chunk's length and term counts, for BM25 over exact lengths (`_exact`): `tf`
-- packs (64-bit term hash, count) pairs, sorted by hash (`term_counts`). In the
-- catalog, not tantivy's document store: SQLite reads pages into the kernel's cache,
-- a memory map would count each page read in the server's own memory.
CREATE TABLE IF NOT EXISTS terms (
    chunk_id TEXT PRIMARY KEY, n INTEGER NOT NULL, tf BLOB NOT NULL)
    WITHOUT ROWID;
"""
# Chunks per store read when indexing.
_READ_SLICE = 2_000
# The page cache of each thread's reader connection, KiB (SQLite's default is 2,000).
_READER_CACHE_KIB = 256
# BM25's constants, tantivy's own. tantivy ranks with each chunk's length rounded to one
# byte (coarse for long chunks), which reorders near-ties; its hits are scored again with
# the exact lengths, from this many times the hits asked for.
_K1, _B = 1.2, 0.75
_RESCORE_POOL = 1.2
# A chunk's term counts as the catalog keeps them: a term's 64-bit hash and its count.
_TF = np.dtype([("hash", "<u8"), ("count", "<u2")])


def tokenize(text: str) -> list[str]:
    """Index terms of `text`: stemmed words, jieba words for Chinese, stopwords dropped."""
    words: list[str] = []
    cursor = 0
    for match in _CJK.finditer(text):
        words.extend(_latin(text[cursor:match.start()]))
        words.extend(w for w in jieba_segmenter().lcut_for_search(match.group()) if w.strip()
                     and w not in _STOP)
        cursor = match.end()
    words.extend(_latin(text[cursor:]))
    return words


def _latin(text: str) -> list[str]:
    found = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    return stems(found)


@lru_cache(maxsize=256)
def _query_terms(text: str) -> tuple[str, ...]:
    # One question is searched several times (whole, per outlet, scores of dense hits).
    return tuple(tokenize(text))


@lru_cache(maxsize=8192)
def term_hash(term: str) -> int:
    """A term's 64-bit key in the catalog's term counts (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=8).digest(), "little")


def term_counts(terms: Sequence[str]) -> bytes:
    """A chunk's terms as the catalog keeps them: (hash, count) pairs sorted by hash. Two
    terms of one chunk with one 64-bit hash (odds ~1e-17 for a chunk) would count as one."""
    counts: Counter[int] = Counter()
    for term, n in Counter(terms).items():
        counts[term_hash(term)] += n
    # A count past 65,535 (one term filling a chunk of that many terms) is kept at the cap.
    return np.array(sorted((h, min(n, 65_535)) for h, n in counts.items()),
                    dtype=_TF).tobytes()


def indexed_text(meta: dict[str, Any], text: str) -> str:
    """What the keyword index sees for a chunk: headline, outlet and the chunk text."""
    return f"{meta.get('title', '')}\n{meta.get('source', '')}\n{text}"


def day_number(published_at: str) -> int | None:
    """A published date as the sortable number YYYYMMDD (what filters compare), or None."""
    day = str(published_at or "")[:10]
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        return int(day.replace("-", ""))
    return None


def day_range(filters: Filters | None) -> tuple[int | None, int | None]:
    """The published days a filter lets through, as YYYYMMDD numbers (None: open)."""
    if filters is None:
        return None, None
    since = int(filters.since.strftime("%Y%m%d")) if filters.since else None
    until = int(filters.until.strftime("%Y%m%d")) if filters.until else None
    return since, until


def day_text(number: int | None) -> str:
    """YYYYMMDD back to YYYY-MM-DD ("" for None)."""
    if not number:
        return ""
    text = f"{number:08d}"
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"


@dataclass(frozen=True)
class Version:
    """The version of an article that readers see, as the store's records say."""

    article_id: str
    content_hash: str
    n_chunks: int
    source: str
    published_at: str


@dataclass(frozen=True)
class LogEntry:
    """One entry of the store's commit log: an article whose chunks changed."""

    entry_id: str
    seq: int
    article_id: str


class LogSource(Protocol):
    """A store's commit log, as readers follow it."""

    def log_since(self, seq: int) -> list[LogEntry]:
        """Commit log entries with a sequence number above `seq`."""
        ...

    def log_head(self) -> int:
        """The highest sequence number of the log (0 when it is empty)."""
        ...


@dataclass
class LogCursor:
    """A reader's place in the commit log: the newest sequence number it applied, and the
    entries it applied within the look-back (an entry may land after later-stamped ones)."""

    position: int = 0
    seen: set[str] = field(default_factory=set)

    @classmethod
    def at_head(cls, log: LogSource) -> LogCursor:
        """A cursor past every entry the log holds now."""
        head = log.log_head()
        return cls(head, {e.entry_id for e in log.log_since(max(head - LOOKBACK_NS, 0))})

    def fresh(self, log: LogSource) -> tuple[list[LogEntry], list[LogEntry]]:
        """(entries not applied yet, every entry read): what changed since the last look."""
        entries = log.log_since(max(self.position - LOOKBACK_NS, 0))
        return [e for e in entries if e.entry_id not in self.seen], entries

    def advance(self, fresh: list[LogEntry], read: list[LogEntry]) -> None:
        """Take `fresh` as applied."""
        if fresh:
            self.position = max(self.position, *(e.seq for e in fresh))
            self.seen = {e.entry_id for e in read if e.seq > self.position - LOOKBACK_NS}


class ChunkSource(LogSource, Protocol):
    """What the index needs from the store (`NewsStore` is one)."""

    def identity(self) -> str:
        """What tells this store from another one (a recreated collection is another)."""
        ...

    def generation(self) -> str:
        """A stamp that changes whenever the stored chunks change."""
        ...

    def visible_versions(self, article_ids: Sequence[str]) -> dict[str, Version]:
        """The versions readers see of these articles (absent: none is visible)."""
        ...

    def all_visible_versions(self) -> Iterator[list[Version]]:
        """Every visible version, a page at a time (a rebuild)."""
        ...

    def get_chunks(self, ids: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, text, metadata) of these chunks."""
        ...


class IndexBusyError(Exception):
    """Another process holds this index directory."""


@dataclass(frozen=True)
class IndexedArticle:
    """An article version as the index holds it: its chunks' ids and terms."""

    version: Version
    chunks: list[tuple[str, list[str]]]


@dataclass
class WriteCost:
    """What the index did to follow the store (counters, for tests and the benchmark)."""

    chunks_read: int = 0
    chunks_tokenized: int = 0
    articles_applied: int = 0
    log_entries_read: int = 0
    rebuilds: int = 0


class KeywordIndex:
    """The keyword index of one store, in `directory`. Thread-safe."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock = threading.RLock()
        self._owner = _lock_directory(directory)
        # The writer's connection (used under `_lock`); readers get one per thread, which in
        # WAL mode sees the last committed catalog, never a write half done.
        self._db = self._connect()
        self._local = threading.local()
        self._db.executescript(_CATALOG)
        if "n_terms" not in self._columns("articles") or "tf" not in self._columns("terms"):
            # A catalog of an older format: emptied here, rebuilt at the first look.
            self._db.executescript(f"""
                DROP TABLE articles; DROP TABLE terms; {_CATALOG}""")
            self._set_meta(format="")
        self._schema = _schema()
        self._index = self._open_index()
        self._searcher = self._index.searcher()
        self._stamp: str | None = None
        self._sources: frozenset[str] | None = None
        self._counts: tuple[int, int] | None = None
        self._mean_terms: float | None = None
        self._checked = False
        self.private = False  # a temporary directory of this process's own
        self._writer_handle: tantivy.IndexWriter | None = None
        self.cost = WriteCost()

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.directory / "catalog.sqlite3", check_same_thread=False,
                             isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
            # Every thread that reads keeps a connection of its own, dozens in a server:
            # SQLite's default page cache of 2 MB each held ~26 MB more at 1,000,000 chunks,
            # for pages the system's file cache holds anyway.
            db.execute(f"PRAGMA cache_size=-{_READER_CACHE_KIB}")
        return db

    # -- keeping up with the store -------------------------------------------------------

    @property
    def stamp(self) -> str | None:
        """The store generation the index last caught up with (None before its first look,
        and after a rebuild until the next)."""
        return self._stamp

    def follow(self, store: ChunkSource) -> None:
        """Bring the index up to date with the store: the log entries since the last look,
        each article they name re-read by id (nothing else is listed or read)."""
        stamp = store.generation()
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            if not self._checked:  # once per process: the index on disk may be stale
                if not self._trusted(store):
                    self.rebuild(store)
                self._checked = True
            cursor = LogCursor(int(self._meta("position", "0")),
                               set(json.loads(self._meta("seen", "[]"))))
            fresh, read = cursor.fresh(store)
            self.cost.log_entries_read += len(read)
            if fresh:
                self._apply(store, list(dict.fromkeys(e.article_id for e in fresh)))
                cursor.advance(fresh, read)
                self._set_meta(position=str(cursor.position),
                               seen=json.dumps(sorted(cursor.seen)))
            self._stamp = stamp

    def rebuild(self, store: ChunkSource) -> None:
        """Index every visible chunk of the store anew (the index was lost, is stale, or
        belongs to another store)."""
        with self._lock:
            log.info("rebuilding the keyword index in %s from the store", self.directory)
            head = store.log_head()  # entries after it are replayed by the next follow
            identity = store.identity()
            with self._batch() as writer:
                writer.delete_all_documents()
                self._db.execute("DELETE FROM articles")
                self._db.execute("DELETE FROM terms")
                for page in store.all_visible_versions():
                    self._add(writer, self._read(store, page))
                self._set_meta(format=INDEX_FORMAT, identity=identity, position=str(head),
                               seen="[]")
            self.cost.rebuilds += 1
            self._stamp = None
            self._checked = True

    def add_indexed(self, articles: Sequence[IndexedArticle]) -> None:
        """Index article versions whose terms the caller made (a bulk load: the benchmark's
        scale store); the store must already hold them."""
        with self._lock, self._batch() as writer:
            for article in articles:
                writer.delete_documents_by_term("article_id", article.version.article_id)
            self._forget_terms([a.version.article_id for a in articles])
            self._add(writer, articles)

    def mark_current(self, store: ChunkSource) -> None:
        """Take the index as matching the store as of now (after `add_indexed` of all of
        it): the log is followed from its head."""
        with self._lock:
            cursor = LogCursor.at_head(store)
            self._set_meta(format=INDEX_FORMAT, identity=store.identity(),
                           position=str(cursor.position), seen=json.dumps(sorted(cursor.seen)))
            self._stamp = None

    def _trusted(self, store: ChunkSource) -> bool:
        if self._meta("format", "") != INDEX_FORMAT or self._meta("identity", "") != \
                store.identity():
            return False
        held = self._db.execute("SELECT COALESCE(SUM(n_chunks), 0) FROM articles").fetchone()
        # A crash between the index's commit and the catalog's leaves them apart.
        return int(held[0]) == self._searcher.num_docs

    def _apply(self, store: ChunkSource, article_ids: list[str]) -> None:
        wanted = store.visible_versions(article_ids)
        held = self._held(article_ids, self._db)
        changed = [aid for aid in article_ids if _key(wanted.get(aid)) != held.get(aid)]
        if not changed:
            return
        fresh = self._read(store, [wanted[aid] for aid in changed if aid in wanted])
        with self._batch() as writer:
            for aid in changed:
                writer.delete_documents_by_term("article_id", aid)
            self._forget_terms(changed)
            self._db.executemany("DELETE FROM articles WHERE article_id = ?",
                                 [(aid,) for aid in changed if aid not in wanted])
            self._add(writer, fresh)
        self.cost.articles_applied += len(changed)

    def _read(self, store: ChunkSource, versions: Sequence[Version]) -> list[IndexedArticle]:
        ids = [chunk_id(v.article_id, v.content_hash, i) for v in versions
               for i in range(v.n_chunks)]
        rows: dict[str, tuple[str, dict[str, Any]]] = {}
        # One store call per slice: each is bounded in time, and a rebuild reads a page of
        # thousands of articles (a 1M-chunk store took over 20 s for one page's chunks).
        for start in range(0, len(ids), _READ_SLICE):
            rows.update((cid, (text, meta))
                        for cid, text, meta in store.get_chunks(ids[start:start + _READ_SLICE]))
        self.cost.chunks_read += len(rows)
        found = []
        for v in versions:
            chunks = []
            for i in range(v.n_chunks):
                cid = chunk_id(v.article_id, v.content_hash, i)
                if cid in rows:
                    text, meta = rows[cid]
                    chunks.append((cid, tokenize(indexed_text(meta, text))))
            self.cost.chunks_tokenized += len(chunks)
            # A committed version whose chunks are missing (a damaged store) shows what it has.
            found.append(IndexedArticle(Version(v.article_id, v.content_hash, len(chunks),
                                                v.source, v.published_at), chunks))
        return found

    def _forget_terms(self, article_ids: Sequence[str]) -> None:
        # A chunk id starts with its article's id and ":" (";" is the next character).
        self._db.executemany("DELETE FROM terms WHERE chunk_id >= ? AND chunk_id < ?",
                             [(f"{aid}:", f"{aid};") for aid in article_ids])

    def _add(self, writer: tantivy.IndexWriter, articles: Iterable[IndexedArticle]) -> None:
        rows = []
        terms_rows = []
        for article in articles:
            v = article.version
            day = day_number(v.published_at)
            for cid, terms in article.chunks:
                doc = tantivy.Document()
                doc.add_text("chunk_id", cid)
                doc.add_text("article_id", v.article_id)
                doc.add_text("source", v.source)
                if day is not None:
                    doc.add_integer("day", day)
                doc.add_text("text", " ".join(terms))
                writer.add_document(doc)
                terms_rows.append((cid, len(terms), term_counts(terms)))
            rows.append((v.article_id, v.content_hash, len(article.chunks), v.source, day,
                         sum(len(terms) for _, terms in article.chunks)))
        self._db.executemany(
            "INSERT OR REPLACE INTO articles (article_id, content_hash, n_chunks, source, day, "
            "n_terms) VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._db.executemany("INSERT OR REPLACE INTO terms VALUES (?, ?, ?)", terms_rows)

    @contextlib.contextmanager
    def _batch(self) -> Iterator[tantivy.IndexWriter]:
        """One change of the index: terms through the yielded writer, the catalog in one
        transaction. The terms commit first, then the catalog: a crash between the two
        leaves their counts apart, which makes the next start rebuild. A failure rolls both
        back."""
        writer = self._writer()
        self._db.execute("BEGIN")
        try:
            yield writer
            # Merges of segments run on the writer's own threads: a commit does not wait for
            # them, so a write costs its own segment, not a merge of the archive.
            writer.commit()
        except BaseException:
            self._db.execute("ROLLBACK")
            self._drop_writer()
            raise
        self._db.execute("COMMIT")
        self._index.reload()
        self._searcher = self._index.searcher()
        self._sources = None
        self._counts = None
        self._mean_terms = None

    def _writer(self) -> tantivy.IndexWriter:
        # One writer for the index's life in this process (the directory is this process's
        # already, by `owner.lock`), so tantivy merges segments in the background.
        if self._writer_handle is None:
            self._writer_handle = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        return self._writer_handle

    def _drop_writer(self) -> None:
        """Give up a writer after a failed change (its uncommitted work rolled back); the
        next change opens a new one."""
        writer, self._writer_handle = self._writer_handle, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.rollback()
            del writer
            gc.collect()  # frees tantivy's lock now, whatever still refers to the frame

    def _open_index(self) -> tantivy.Index:
        path = self.directory / "tantivy"
        path.mkdir(exist_ok=True)
        try:
            index = tantivy.Index(self._schema, path=str(path), reuse=True)
        except ValueError:  # another schema: derived data, start again
            shutil.rmtree(path)
            path.mkdir()
            self._set_meta(format="")
            index = tantivy.Index(self._schema, path=str(path), reuse=True)
        index.register_tokenizer("terms", tantivy.TextAnalyzerBuilder(
            tantivy.Tokenizer.whitespace()).build())
        return index

    def _held(self, article_ids: Sequence[str],
              db: sqlite3.Connection) -> dict[str, tuple[str, int]]:
        found: dict[str, tuple[str, int]] = {}
        ids = list(article_ids)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            for aid, content_hash, n in db.execute(
                    f"SELECT article_id, content_hash, n_chunks FROM articles "
                    f"WHERE article_id IN ({marks})", part):
                found[aid] = (content_hash, n)
        return found

    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _set_meta(self, **values: str) -> None:
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    # -- reading -------------------------------------------------------------------------

    def search(self, text: str, k: int, filters: Filters | None = None,
               outlet: str | None = None, also: str = "", also_weight: float = 0.0,
               ) -> dict[str, float]:
        """The k best chunks for `text` by BM25 (plus `also_weight` times the BM25 of
        `also`), inside `filters` and `outlet`; only chunks that score above zero."""
        weights = _weights(text, also, also_weight)
        if not weights or k <= 0:
            return {}
        query = self._restricted(self._terms_query(weights), filters, outlet)
        found = self._scored(query, math.ceil(k * _RESCORE_POOL), weights)
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0]))[:k])

    def scores(self, text: str, chunk_ids: Sequence[str], also: str = "",
               also_weight: float = 0.0) -> dict[str, float]:
        """The BM25 score of these chunks for `text` (as `search` scores them); chunks that
        do not match, or are not indexed, are left out. Read from the catalog alone."""
        weights = _weights(text, also, also_weight)
        ids = list(dict.fromkeys(chunk_ids))
        if not weights or not ids:
            return {}
        found: dict[str, float] = {}
        for start in range(0, len(ids), _READ_SLICE):
            part = self._exact(self._terms_of(ids[start:start + _READ_SLICE]), weights)
            found.update((cid, score) for cid, score in part.items() if score > 0)
        return found

    def _scored(self, query: tantivy.Query, k: int,
                weights: dict[str, float]) -> dict[str, float]:
        """tantivy's k best hits of `query`, each scored by exact BM25 over `weights`."""
        searcher = self._searcher
        hits = searcher.search(query, k, count=False).hits
        ids = [searcher.doc(address)["chunk_id"][0] for score, address in hits if score > 0]
        return self._exact(self._terms_of(ids), weights, searcher) if ids else {}

    def _exact(self, rows: Sequence[tuple[str, int, bytes]], weights: dict[str, float],
               searcher: tantivy.Searcher | None = None) -> dict[str, float]:
        """BM25 over `weights` of each catalog row (chunk id, length, term counts): the
        exact length, the counts, tantivy's document frequencies and the mean length. One
        pass of array operations over all rows (a loop over terms in Python cost ~8 us a
        chunk, the largest share of a question's interpreter time under load). `searcher`:
        the one the rows' hits came from, so the document frequencies are of the same view."""
        if not rows:
            return {}
        searcher = searcher or self._searcher
        n_docs = max(int(searcher.num_docs), 1)
        keyed = sorted((term_hash(term), term) for term in weights)
        hashes = np.array([h for h, _ in keyed], dtype=np.uint64)
        factor = np.empty(len(keyed))
        for i, (_, term) in enumerate(keyed):
            df = int(searcher.doc_freq("text", term))
            factor[i] = weights[term] * math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)) \
                * (_K1 + 1.0)
        lengths = np.array([row[1] for row in rows], dtype=np.float64)
        norm = _K1 * (1.0 - _B + _B * lengths / self._mean_length())
        counts = np.frombuffer(b"".join(row[2] for row in rows), dtype=_TF)
        sizes = [len(row[2]) // _TF.itemsize for row in rows]
        at = np.searchsorted(hashes, counts["hash"]).clip(max=len(hashes) - 1)
        match = hashes[at] == counts["hash"]
        row = np.repeat(np.arange(len(rows)), sizes)[match]
        tf = counts["count"][match].astype(np.float64)
        # Each row's terms in one order (by hash), whichever call scores it: the same sums.
        score = np.bincount(row, weights=factor[at[match]] * tf / (tf + norm[row]),
                            minlength=len(rows))
        return {r[0]: float(s) for r, s in zip(rows, score, strict=True)}

    def _terms_of(self, chunk_ids: Sequence[str]) -> list[tuple[str, int, bytes]]:
        marks = ",".join("?" * len(chunk_ids))
        return self._reader().execute(
            f"SELECT chunk_id, n, tf FROM terms WHERE chunk_id IN ({marks})",
            list(chunk_ids)).fetchall()

    def _mean_length(self) -> float:
        """The mean number of terms per indexed chunk (BM25's average length)."""
        mean = self._mean_terms
        if mean is None:
            terms, chunks = self._reader().execute(
                "SELECT COALESCE(SUM(n_terms), 0), COALESCE(SUM(n_chunks), 0) "
                "FROM articles").fetchone()
            mean = self._mean_terms = max(int(terms) / max(int(chunks), 1), 1.0)
        return mean

    def _terms_query(self, weights: dict[str, float]) -> tantivy.Query:
        clauses = []
        for term, weight in weights.items():
            query = tantivy.Query.term_query(self._schema, "text", term)
            clauses.append((tantivy.Occur.Should,
                            query if weight == 1.0 else tantivy.Query.boost_query(query, weight)))
        return tantivy.Query.boolean_query(clauses)

    def _restricted(self, query: tantivy.Query, filters: Filters | None,
                    outlet: str | None) -> tantivy.Query:
        musts = self._filter_queries(filters, outlet)
        if not musts:
            return query
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, query)]
            + [(tantivy.Occur.Must, tantivy.Query.const_score_query(q, 0.0)) for q in musts])

    def _filter_queries(self, filters: Filters | None,
                        outlet: str | None) -> list[tantivy.Query]:
        found = []
        if outlet is not None:
            found.append(tantivy.Query.term_query(self._schema, "source", outlet))
        if filters is not None and filters.sources:
            found.append(tantivy.Query.term_set_query(self._schema, "source",
                                                      list(filters.sources)))
        low, high = day_range(filters)
        if low is not None or high is not None:
            found.append(tantivy.Query.range_query(self._schema, "day",
                                                   tantivy.FieldType.Integer, low, high))
        return found

    def visible(self, chunk_ids: Iterable[str]) -> set[str]:
        """Those of these chunks that belong to the article versions the index holds."""
        parsed = {cid: split_chunk_id(cid) for cid in chunk_ids}
        held = self._held([p[0] for p in parsed.values() if p is not None], self._reader())
        return {cid for cid, p in parsed.items() if p is not None and p[0] in held
                and held[p[0]][0][:12] == p[1] and p[2] < held[p[0]][1]}

    def articles(self, article_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(outlet, day YYYY-MM-DD) of each of these articles the index holds."""
        ids = list(dict.fromkeys(article_ids))
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            for aid, source, day in self._reader().execute(
                    f"SELECT article_id, source, day FROM articles "
                    f"WHERE article_id IN ({marks})", part):
                found[aid] = (source, day_text(day))
        return found

    def sources(self) -> frozenset[str]:
        """The distinct outlets of the indexed articles."""
        found = self._sources
        if found is None:
            found = self._sources = frozenset(
                row[0] for row in self._reader().execute("SELECT DISTINCT source FROM articles")
                if row[0])
        return found

    def outlets(self) -> list[Outlet]:
        """Every outlet with its article count and the days of its first and last article."""
        rows = self._reader().execute(
            "SELECT source, COUNT(*), MIN(day), MAX(day), SUM(day IS NULL) FROM articles "
            "WHERE source != '' GROUP BY source").fetchall()
        found = [Outlet(source=s, articles=n, first_published=day_text(lo),
                        last_published=day_text(hi), undated=int(undated))
                 for s, n, lo, hi, undated in rows]
        return sorted(found, key=lambda o: (-o.articles, o.source.casefold()))

    def newest_day(self) -> str:
        """The day of the newest indexed article (YYYY-MM-DD); "" when none is dated."""
        return day_text(self._reader().execute("SELECT MAX(day) FROM articles").fetchone()[0])

    def latest(self, k: int, filters: Filters | None = None) -> list[str]:
        """The opening chunk of each of the `k` newest dated articles inside `filters`."""
        where, args = _filter_sql(filters)
        where += ["day IS NOT NULL", "n_chunks > 0"]
        rows = self._reader().execute(
            f"SELECT article_id, content_hash FROM articles WHERE {' AND '.join(where)} "
            "ORDER BY day DESC, article_id DESC LIMIT ?", [*args, k]).fetchall()
        return [chunk_id(aid, content_hash, 0) for aid, content_hash in rows]

    def filtered_chunks(self, filters: Filters | None) -> int:
        """How many of the chunks the index holds `filters` let through (one indexed sum:
        what the store's filter planner weighs)."""
        where, args = _filter_sql(filters)
        row = self._reader().execute(
            "SELECT COALESCE(SUM(n_chunks), 0) FROM articles"
            + (f" WHERE {' AND '.join(where)}" if where else ""), args).fetchone()
        return int(row[0])

    def filtered_chunk_ids(self, filters: Filters | None) -> list[str]:
        """The ids of the chunks the index holds that `filters` let through (the chunks of
        the article versions readers see)."""
        where, args = _filter_sql(filters)
        rows = self._reader().execute(
            "SELECT article_id, content_hash, n_chunks FROM articles"
            + (f" WHERE {' AND '.join(where)}" if where else ""), args).fetchall()
        return [chunk_id(aid, content_hash, i) for aid, content_hash, n in rows
                for i in range(n)]

    def passing(self, article_ids: Iterable[str], filters: Filters | None) -> set[str]:
        """Those of these articles that the index holds and `filters` let through (an
        article the index does not hold, not yet committed, passes no filter)."""
        ids = list(dict.fromkeys(article_ids))
        where, args = _filter_sql(filters)
        found: set[str] = set()
        for start in range(0, len(ids), _ID_BATCH):
            part = ids[start:start + _ID_BATCH]
            clauses = [f"article_id IN ({','.join('?' * len(part))})", *where]
            found.update(row[0] for row in self._reader().execute(
                f"SELECT article_id FROM articles WHERE {' AND '.join(clauses)}",
                [*part, *args]))
        return found

    def counts(self) -> tuple[int, int]:
        """(articles, chunks) the index holds: what readers see."""
        found = self._counts
        if found is None:
            n, chunks = self._reader().execute(
                "SELECT COUNT(*), COALESCE(SUM(n_chunks), 0) FROM articles").fetchone()
            found = self._counts = (int(n), int(chunks))
        return found

    def chunk_ids(self) -> list[str]:
        """Every indexed chunk id (lists the whole index: for tests and checks)."""
        return [chunk_id(aid, content_hash, i) for aid, content_hash, n in
                self._reader().execute("SELECT article_id, content_hash, n_chunks FROM articles")
                for i in range(n)]

    @property
    def num_docs(self) -> int:
        return int(self._searcher.num_docs)

    def close(self) -> None:
        """Free the directory (its lock, the catalog); a private index is removed."""
        with self._lock:
            if self._writer_handle is not None:
                with contextlib.suppress(Exception):
                    self._writer_handle.wait_merging_threads()
                self._writer_handle = None
                gc.collect()
            self._db.close()
            os.close(self._owner)
            if self.private:
                shutil.rmtree(self.directory, ignore_errors=True)


def _filter_sql(filters: Filters | None) -> tuple[list[str], list[Any]]:
    """`filters` as clauses on the catalog's `articles` rows (to be joined by AND) and their
    arguments: what Chroma's `where` on the chunks' outlet and day lets through."""
    where: list[str] = []
    args: list[Any] = []
    if filters is not None and filters.sources:
        where.append(f"source IN ({','.join('?' * len(filters.sources))})")
        args += list(filters.sources)
    since, until = day_range(filters)
    if since is not None:
        where.append("day >= ?")
        args.append(since)
    if until is not None:
        where.append("day <= ?")
        args.append(until)
    return where, args


def _weights(text: str, also: str, also_weight: float) -> dict[str, float]:
    """Each query term's weight: how often `text` writes it, plus `also_weight` times how
    often `also` does (a term written twice counts twice, as BM25 over a term list does)."""
    weights: dict[str, float] = dict(Counter(_query_terms(text)))
    if also and also_weight > 0:
        for term, n in Counter(_query_terms(also)).items():
            weights[term] = weights.get(term, 0.0) + also_weight * n
    return weights


def _key(version: Version | None) -> tuple[str, int] | None:
    return None if version is None else (version.content_hash, version.n_chunks)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw",
                           index_option="basic")
    builder.add_text_field("article_id", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("source", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("day", indexed=True, fast=True)
    # The terms are made by `tokenize` and joined by spaces: split on white space only.
    builder.add_text_field("text", tokenizer_name="terms", index_option="freq")
    return builder.build()


def _lock_directory(directory: Path) -> int:
    handle = os.open(directory / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise IndexBusyError(str(directory)) from None
    return handle


# Per directory: the process's index and how many stores use it.
_OPEN: dict[str, tuple[KeywordIndex, int]] = {}
_OPEN_LOCK = threading.Lock()


def open_index(directory: Path) -> KeywordIndex:
    """The process's keyword index in `directory` (one per directory per process, shared by
    the stores that open it; `release_index` when done). When another process holds it (two
    servers on one Chroma server sharing a cache directory) or it cannot be written, this
    process gets an index of its own in a temporary directory, built from the store."""
    key = str(directory.resolve())
    with _OPEN_LOCK:
        if key in _OPEN:
            index, users = _OPEN[key]
            _OPEN[key] = (index, users + 1)
            return index
        try:
            index = KeywordIndex(directory)
        except (IndexBusyError, OSError, sqlite3.Error) as exc:
            private = Path(tempfile.mkdtemp(prefix="newsdesk-keywords-"))
            log.warning("the keyword index in %s cannot be used (%s); this process builds "
                        "its own in %s", directory, "held by another process"
                        if isinstance(exc, IndexBusyError) else exc, private)
            index = KeywordIndex(private)
            index.private = True
        _OPEN[key] = (index, 1)
        return index


def release_index(directory: Path) -> None:
    """One store is done with the index in `directory`: the last one closes it (another
    process may then take the directory)."""
    key = str(directory.resolve())
    with _OPEN_LOCK:
        if key not in _OPEN:
            return
        index, users = _OPEN[key]
        if users > 1:
            _OPEN[key] = (index, users - 1)
            return
        del _OPEN[key]
    index.close()


def forget_index(directory: Path) -> None:
    """Close this process's index in `directory` whoever uses it (its files stay)."""
    with _OPEN_LOCK:
        found = _OPEN.pop(str(directory.resolve()), None)
    if found is not None:
        found[0].close()

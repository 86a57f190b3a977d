"""The Chroma store: chunk vectors plus one record per article that commits its chunks.

Writing an article is a small protocol so that a crash at any point leaves a store the next
run repairs: (1) the article record is marked `pending` with the new content hash, (2) the new
chunks are added under ids that include that hash, (3) chunks of any other version are deleted,
(4) the record is marked `committed`. `repair()` finishes or rolls back pending records.

Re-ingesting an article rewrites it whole (chunk ids are deterministic), so an interrupted
write heals when its article comes again; `repair()` is for the others. Only one process
writes an embedded store (`assistant.index.store_owner`), so repair never meets a write in progress.

Readers see only committed versions (`visible_versions()`; the keyword index holds just those,
following the commit log), and retrieval never returns a chunk of a pending or failed write.
Every Chroma call is bounded (`assistant.index.store_calls`): a stalled store is a
`StoreTimeoutError`, never a hung request.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings

from assistant.cache import LRU
from assistant.errors import EmbeddingMismatchError, StoreError, StoreTimeoutError
from assistant.index import store_owner
from assistant.index.embeddings import NewsEmbeddings
from assistant.index.lexical import (
    KeywordIndex,
    LogEntry,
    Version,
    day_number,
    day_range,
    open_index,
    release_index,
)
from assistant.index.store_calls import bounded
from assistant.settings import Settings
from assistant.types import (
    ArticleRecord,
    Chunk,
    Filters,
    Outlet,
    Passage,
    chunk_id,
    split_chunk_id,
)

log = logging.getLogger(__name__)

_GET_PAGE = 5000
_ID_PAGE = 50_000
# Chunk rows (text and metadata, sentence vectors included: ~4 KB) and chunk vectors kept in
# memory for retrieval, the most recently used of each.
_ROW_CACHE_SIZE = 5_000
_VECTOR_CACHE_SIZE = 20_000  # ~1.9 KB each (docs/architecture.md, "Memory")
_GENERATION = "generation"
_LAYOUT = "layout"
# 2: chunks carry `day`; a commit log.
LAYOUT_VERSION = 2
# Writes to a shared Chroma server pending for longer than this are taken as interrupted.
REPAIR_GRACE_S = 600.0
# The filter planner (`NewsStore._filtered_nearest`), chosen by `python -m bench.filtered`
# (docs/benchmarks.md, 2026-12-07). A filtered dense query is an unfiltered one of
# ceil(k * POST_FILTER_OVERSAMPLE / share) results, and at least POST_FILTER_DEPTH[0],
# post-filtered on the keyword catalog, when that is within `post_filter_cap`; otherwise
# a Chroma `where`. Questions and outlets cluster by topic, so a question's neighbours hold
# far fewer of an outlet's chunks than its share says (at 100k chunks, the 50th Sporting
# News chunk was 7,870 deep in the median, 28 times 50 / share): 8 gave the lowest mean
# and p95 at 100k (4 at 10k, where everything is fast); the floor spares a large share's
# unlucky questions a fallback (a 2,000-deep query costs 12 ms).
POST_FILTER_OVERSAMPLE = 8.0
POST_FILTER_DEPTH = (2_000, 20_000)
# The cap, as a share of the collection: an unfiltered query costs ~5.6 us per result
# (query and catalog), a `where` on outlets ~0.5-1 us per chunk of the collection (one of 210
# chunks at 100k: 49 ms) and one with a day range ~4-10 us (400-1,000 ms at 100k; measured
# before `WHERE_COST_*`, whose later runs found 0.23-0.76 and 2.5-5.5 us), so a
# deeper query is worth trying while it costs about what the `where` would; within
# POST_FILTER_DEPTH, the depths measured.
POST_FILTER_CAP_OUTLETS = 0.1
POST_FILTER_CAP_DAYS = 1.0
# Few matching chunks are compared with the question exactly: their vectors read by id (~35 us
# a chunk at 1,000,000 chunks, ~6 unfiltered results' cost) from the catalog's list of them,
# where a `where` took seconds at that size (one day's 5,000 chunks: 2.6-5.6 s) and a
# post-filter of a small share needs a query deeper than its cap. Chosen when at most
# EXACT_FILTER_MAX chunks match and it costs less than both the post-filter (when the share
# allows one) and the `where` (docs/benchmarks.md).
EXACT_FILTER_MAX = 20_000
EXACT_FILTER_COST = 6.0
# What a `where` costs, in the same unit (one unfiltered result, ~5.6 us): per chunk of the
# collection, and per chunk it lets through. Fitted to `python -m bench.filtered` at 10,000
# and 100,000 chunks and the in-process figures at 1,000,000 (docs/benchmarks.md): outlets
# 0.23-0.76 us a collection chunk, days 2.5-5.5 us, and ~5 us more per matching chunk. The
# exact comparison is chosen only when it is cheaper than this too: at 10,000 chunks a
# `where` on the largest outlet (22 ms) beat reading its 1,827 vectors (48 ms).
WHERE_COST_OUTLETS = 0.075
WHERE_COST_DAYS = 0.6
WHERE_COST_MATCH = 1.0
# After a read runs past its bound, its core must answer a one-result query within this (or
# the bound, if shorter) for the client to be kept (`NewsStore._after_timeout`).
PROBE_S = 5.0


def where_cost(chunks: int, matching: int, filters: Filters | None) -> float:
    """What a Chroma `where` for `filters` costs in a collection of `chunks`, of which
    `matching` pass, in unfiltered results (`WHERE_COST_*`)."""
    dated = filters is not None and bool(filters.since or filters.until)
    return (chunks * (WHERE_COST_DAYS if dated else WHERE_COST_OUTLETS)
            + matching * WHERE_COST_MATCH)


def post_filter_cap(chunks: int, filters: Filters | None) -> int:
    """The deepest unfiltered query the filter planner makes for `filters` in a collection
    of `chunks`."""
    since, until = day_range(filters)
    share = POST_FILTER_CAP_OUTLETS if since is None and until is None else POST_FILTER_CAP_DAYS
    low, high = POST_FILTER_DEPTH
    return min(max(int(chunks * share), low), high)


__all__ = ["EmbeddingMismatchError", "NewsStore", "StoreError", "chunk_id", "open_client"]


def open_client(settings: Settings) -> chromadb.ClientAPI:
    """An embedded PersistentClient, or an HttpClient when CHROMA_HOST is set."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            client = chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
            # chromadb's HTTP session waits forever (timeout=None): a stalled server would hang
            # every request. Its session is private, hence the guarded access.
            session = getattr(getattr(client, "_server", None), "_session", None)
            if isinstance(session, httpx.Client):
                session.timeout = httpx.Timeout(settings.chroma_timeout_s)
            return client
        return chromadb.PersistentClient(path=str(settings.data_dir), settings=chroma_settings)
    except Exception as exc:  # chromadb raises several unrelated types here
        where = (
            f"Chroma server {settings.chroma_host}:{settings.chroma_port}"
            if settings.chroma_host
            else f"store directory {settings.data_dir}"
        )
        cause = _cause(exc, settings)
        raise StoreError(f"cannot open the {where}: {_first_line(exc)}{_HINTS.get(cause, '')}",
                         cause) from exc


def forget_embedded_client(directory: Path) -> Any | None:
    """Make the next embedded client of `directory` in this process start a new Chroma core;
    the old core (its `System`), if there was one.

    The old core is not stopped here: calls still running on it finish there (stopping it
    could block on the very call that is stuck). See `retire_core`."""
    from chromadb.api.shared_system_client import SharedSystemClient

    with SharedSystemClient._refcount_lock:
        old = SharedSystemClient._identifier_to_system.pop(str(directory), None)
        SharedSystemClient._identifier_to_refcount.pop(str(directory), None)
    return old


# The open stores of each embedded directory in this process: a replaced core is stopped only
# when no other open store of its directory may still use it.
_OPEN: dict[str, weakref.WeakSet[NewsStore]] = {}
_OPEN_LOCK = threading.Lock()


def _others_open(store: NewsStore) -> bool:
    with _OPEN_LOCK:
        return any(s is not store for s in _OPEN.get(str(store.settings.data_dir), ()))


def retire_core(system: Any, after_s: float) -> None:
    """Stop a forgotten Chroma core once every call on it has finished or been abandoned
    (`after_s`, the store's time bound), on a daemon thread, so that a stop that blocks on a
    stuck call blocks nothing else. Each core holds the collection's vector index in memory
    (2.1 GB at 1M chunks): without this, every reopen kept one more."""

    def stop() -> None:
        try:
            system.stop()
        except Exception as exc:  # a core that cannot stop cleanly is left to the process
            log.warning("could not stop a replaced Chroma core: %s", exc)

    timer = threading.Timer(after_s, stop)
    timer.daemon = True
    timer.start()


P = ParamSpec("P")
R = TypeVar("R")


def _chroma_errors(method: Callable[P, R], bound: float = 1.0,
                   write: bool = False) -> Callable[P, R]:
    """Run a store method within the store's time bound (`bound` times the setting), and turn
    any failure of Chroma (server down, stall, full disk, missing directory) into a
    `StoreError` naming the cause. A read past its bound keeps the client while the store
    still answers (`NewsStore._after_timeout`); a write past its longer bound never does (a
    write that ran out of disk leaves the embedded core's next write hanging)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store: NewsStore = args[0]  # type: ignore[assignment]

        # The client the call starts on (a broken one is replaced first, inside the call).
        client, chunks = store.client, store.chunks

        def call() -> R:
            if store._broken:
                store._reopen()
            return method(*args, **kwargs)

        try:
            return bounded(call, bound * store.settings.store_timeout_s, what=method.__name__)
        except StoreError as exc:
            if isinstance(exc, StoreTimeoutError):
                if write:
                    store._mark_broken()
                else:
                    store._after_timeout(client, chunks)
            raise
        except Exception as exc:
            store._mark_broken()
            raise store.fault(exc) from exc

    return wrapper


def _chroma_writes(method: Callable[P, R]) -> Callable[P, R]:
    """`_chroma_errors` with the longer bound of a write (a large batch takes a while)."""
    return _chroma_errors(method, bound=10.0, write=True)


def disk_nearly_full(directory: Path, reserve: int = 4 * 1024 * 1024) -> bool:
    """True when the file system holding `directory` has less than `reserve` bytes free."""
    try:
        stat = os.statvfs(directory)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < reserve


_HINTS = {
    "read_only": " (the store directory is read-only: NEWSDESK_DATA_DIR must be writable)",
    "disk_full": (" (the disk is full: free space and run newsdesk-ingest again; committed "
                  "articles are intact and half-written ones are finished or rolled back)"),
}


def _cause(exc: BaseException, settings: Settings) -> str:
    """The kind of fault behind a Chroma failure (a key of `errors.PLAIN_CAUSES`)."""
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return "read_only"
    if "disk is full" in text or "no space" in text or "disk full" in text:
        return "disk_full"
    if settings.chroma_host:
        return "unavailable"
    if not settings.data_dir.is_dir():
        return "missing"
    # Chroma often reports a full disk as a failed compaction, without saying why.
    if disk_nearly_full(settings.data_dir):
        return "disk_full"
    return "unavailable"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# One article to write: its record, chunks and chunk vectors, and optionally each chunk's
# sentence vectors packed by `assistant.index.sentences.pack`.
ArticleWrite = (tuple[ArticleRecord, Sequence[Chunk], np.ndarray]
                | tuple[ArticleRecord, Sequence[Chunk], np.ndarray, Sequence[str]])


# What a write costs on disk, measured with Chroma 1.5 on a tmpfs (real multihop chunks through
# the pipeline, and writes of 15 chunks to stores of up to 20,000): the store grew by 1.8 to
# 4.2 times the raw size of the chunks below for writes of 1,000-1,500 chunks, by up to 8 times
# for single small writes (SQLite takes pages in runs). The rows land in SQLite three times:
# Chroma's write-ahead log (`embeddings_queue`), the metadata segment and its full-text index.
# Every 1,000 vectors Chroma compacts its log into the HNSW segment, which added up to
# 2.8 MB at once (the index files grow in place: no copy of the archive, however large).
_WRITE_FACTOR = 5
_COMPACTION_BYTES = 4 * 1024 * 1024
# Per chunk, its metadata (ids, title, URL, outlet, dates, offsets) besides the text.
_CHUNK_METADATA_BYTES = 500


def write_size(items: Sequence[ArticleWrite]) -> int:
    """What writing `items` may take on disk at most, in bytes (see `_WRITE_FACTOR`)."""
    raw = 0
    for _, chunks, matrix, *rest in items:
        packed = rest[0] if rest else ()
        raw += (sum(len(c.text.encode("utf-8")) + _CHUNK_METADATA_BYTES for c in chunks)
                + 4 * int(matrix.size) + sum(len(p) for p in packed))
    return _WRITE_FACTOR * raw + _COMPACTION_BYTES


def _clean_metadata(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class NewsStore:
    """Chunks and article records in two Chroma collections."""

    # The filter planner's settings, which a benchmark or a test may pin on one store: the
    # oversampling, and the deepest post-filtered query (None: `post_filter_cap`; 0: always
    # a `where`).
    post_filter_oversample: float = POST_FILTER_OVERSAMPLE
    post_filter_depth: int | None = None
    exact_filter_max: int = EXACT_FILTER_MAX  # 0: never the exact comparison
    # Past the cap, the matching chunks found that deep (fewer than k), not a `where`.
    short_filtered: bool = True

    def __init__(self, settings: Settings, embeddings: NewsEmbeddings,
                 client: chromadb.ClientAPI | None = None) -> None:
        self.settings = settings
        self.embeddings = embeddings
        # An embedded store is opened only while this process owns its directory.
        self.lock: store_owner.StoreLock | None = None
        if client is None and not settings.chroma_host:
            self.lock = store_owner.acquire(settings.data_dir)
        # Set when a call failed in a way that can leave Chroma's embedded core stuck (a write
        # that ran out of disk: the next write on that client hangs, holding the GIL); the
        # next call opens a fresh client first.
        self._broken = False
        self._open_lock = threading.Lock()
        self._checking = threading.Lock()  # held while a timed-out read's core is checked
        self._keyword: KeywordIndex | None = None  # opened on first use (readers only)
        if client is None and not settings.chroma_host:
            with _OPEN_LOCK:
                _OPEN.setdefault(str(settings.data_dir), weakref.WeakSet()).add(self)
        try:
            self._open(client)
        except BaseException:
            self.close()
            raise
        # Chunk rows (text, metadata) and unit vectors fetched for retrieval. A chunk id
        # hashes everything stored for its article and the index settings, so a row never
        # changes; an updated or deleted article's old ids simply stop being asked for.
        self._rows: LRU[str, tuple[str, dict[str, Any]]] = LRU(_ROW_CACHE_SIZE)
        self._vectors: LRU[str, np.ndarray] = LRU(_VECTOR_CACHE_SIZE)
        # Near-duplicates per article as of one look at the commit log (`reported_by`).
        self._copies: LRU[str, list[ArticleRecord]] = LRU(_ROW_CACHE_SIZE)
        self._copies_stamp: str | None = None
        self._copies_lock = threading.Lock()
        # The estimated size of the last write, while it has not completed (`write_problem`).
        self._unfinished = 0
        # How filtered dense queries ran: "exact", "post_filter", "deeper" (a second,
        # deeper unfiltered query), "short" (fewer than k found as deep as the cap),
        # "fallback" (post-filtered, too few kept, then `where`), "where", "empty".
        self.plans: Counter[str] = Counter()
        try:
            self._check_model()
        except EmbeddingMismatchError:
            self.close()
            raise
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store written by an earlier release up to this one's layout: chunks get
        their `day` (YYYYMMDD), which date filters compare inside Chroma. Once per store."""
        got = self.state.get(ids=[_LAYOUT], include=["metadatas"])
        if got["ids"] and int((got["metadatas"][0] or {}).get("version", 0)) >= LAYOUT_VERSION:
            return
        offset = 0
        while True:
            page = self.chunks.get(include=["metadatas"], offset=offset, limit=_GET_PAGE)
            ids, metas = [], []
            for cid, meta in zip(page["ids"], page["metadatas"] or [], strict=True):
                day = day_number(str((meta or {}).get("published_at", "")))
                if meta is not None and "day" not in meta and day is not None:
                    ids.append(cid)
                    metas.append({**meta, "day": day})
            if ids:
                self.chunks.update(ids=ids, metadatas=metas)
            offset += len(page["ids"])
            if len(page["ids"]) < _GET_PAGE:
                break
        self.state.upsert(ids=[_LAYOUT], metadatas=[{"version": LAYOUT_VERSION}],
                          embeddings=np.ones((1, 1), dtype=np.float32))

    def _open(self, client: chromadb.ClientAPI | None = None) -> None:
        """Open the client (unless given) and the three collections."""
        settings, embeddings = self.settings, self.embeddings
        self.client = client or open_client(settings)
        try:
            self.chunks = self.client.get_or_create_collection(
                f"{settings.collection}_chunks",
                metadata={
                    "hnsw:space": "cosine",
                    "embedding_model": embeddings.name,
                    "embedding_dimension": embeddings.dimension,
                },
                embedding_function=None,
            )
            self.articles = self.client.get_or_create_collection(
                f"{settings.collection}_articles",
                metadata={"hnsw:space": "cosine"},
                embedding_function=None,
            )
            # One record whose stamp changes with every change of the chunks: derived indexes
            # (the keyword index) compare it to know they must catch up.
            self.state = self.client.get_or_create_collection(
                f"{settings.collection}_state", embedding_function=None)
            # The commit log: one entry per article whose visible chunks changed (a commit,
            # a delete, a repair), stamped with a sequence number, so a reader catches up
            # on what changed since its last look without listing the archive.
            self.log = self.client.get_or_create_collection(
                f"{settings.collection}_log", embedding_function=None)
        except Exception as exc:
            fault = self.fault(exc)
            raise StoreError(f"cannot open the Chroma collections: {fault}", fault.cause) from exc

    def _reopen(self) -> None:
        """Replace a client that may be stuck by a fresh one (embedded store only)."""
        with self._open_lock:
            if not self._broken:
                return
            # Chroma shares one core per directory inside a process: forget this one, so
            # the next client starts a new core instead of getting the stuck one back, and
            # stop it once no call can still be on it.
            old = forget_embedded_client(self.settings.data_dir)
            self._open()
            self._broken = False
            if old is not None and not _others_open(self):
                retire_core(old, 2 * self.settings.store_timeout_s)
            log.warning("reopened the Chroma store at %s after a failed call",
                        self.settings.data_dir)

    def _check_model(self) -> None:
        chunks_name = f"{self.settings.collection}_chunks"
        embeddings = self.embeddings
        found = self.chunks.metadata or {}
        if (found.get("embedding_model"), found.get("embedding_dimension")) != (
            embeddings.name, embeddings.dimension
        ):
            raise EmbeddingMismatchError(
                f"collection {chunks_name!r} was built with {found.get('embedding_model')} "
                f"({found.get('embedding_dimension')} dimensions) but the configured model is "
                f"{embeddings.name} ({embeddings.dimension} dimensions). Re-index: set "
                "NEWSDESK_COLLECTION to a new name (or delete NEWSDESK_DATA_DIR) and run "
                "newsdesk-ingest again, or switch NEWSDESK_EMBEDDINGS back."
            )

    def close(self) -> None:
        """Give up this store's hold on its directory (the last store of the process to close
        frees it for other processes). The store must not be used afterwards."""
        with _OPEN_LOCK:
            _OPEN.get(str(self.settings.data_dir), weakref.WeakSet()).discard(self)
        keyword, self._keyword = self._keyword, None
        if keyword is not None:
            release_index(self.keyword_dir())
        lock, self.lock = self.lock, None
        if lock is not None:
            lock.release()

    def _after_timeout(self, client: Any, chunks: Any) -> None:
        """A read on `client` ran past its bound: reopen only when that core then fails a
        one-result query too (a stalled disk, lock or index), not when one call was slow while
        the core works (a `where` over tens of thousands of chunks takes seconds at 1,000,000
        chunks): a new core loads the whole vector index again (2.1 GB at 1M) while the slow
        call still holds the old one, and reopening cannot make that call faster. One check
        at a time; the caller's error waits for it (up to `PROBE_S`)."""
        if self.lock is None or client is not self.client:
            return  # a server reconnects by itself; a replaced client is not checked again
        if not self._checking.acquire(blocking=False):
            return  # another timed-out call is checking this core
        try:
            def probe() -> None:
                # A one-result query reads the vector index and the store's log (6 ms at
                # 1,000,000 chunks; a count there takes ~125 ms).
                chunks.query(query_embeddings=[[1.0] * self.embeddings.dimension],
                             n_results=1, include=[])

            bounded(probe, min(PROBE_S, self.settings.store_timeout_s),
                    what="a check that the store still answers")
        except Exception:
            self._mark_broken(client)
            return
        finally:
            self._checking.release()
        log.warning("a store call ran past %g s while the store kept answering: kept the "
                    "client", self.settings.store_timeout_s)

    def _mark_broken(self, client: Any = None) -> None:
        """Open a fresh client before the next call (`client`: only if it is still the one
        in use, so a late verdict on a replaced core never condemns its successor)."""
        # No lock: a reopening that hangs on a stalled disk holds `_open_lock`.
        if self.lock is not None and (client is None or client is self.client):
            self._broken = True  # only the embedded core gets stuck; a server reconnects

    def fault(self, exc: BaseException) -> StoreError:
        """A `StoreError` for a failure of Chroma, naming the cause when it is known."""
        cause = _cause(exc, self.settings)
        if cause == "missing":
            return StoreError(
                f"the store directory {self.settings.data_dir} is missing (deleted while in "
                "use?): restart the server, then run newsdesk-ingest again", cause)
        return StoreError(f"the Chroma store failed: {type(exc).__name__}: {_first_line(exc)}"
                          f"{_HINTS.get(cause, '')}", cause)

    # -- reading -------------------------------------------------------------------------

    def probe(self) -> tuple[int, int]:
        """(articles, chunks) that readers see now (the keyword index's catalog: the chunks
        of a write a crash cut short are not counted, and nothing is listed); raises
        `StoreError` naming the fault when it cannot serve (a missing directory, a stalled
        or failed store)."""
        data_dir = self.settings.data_dir
        if self.lock is not None and not (data_dir / "chroma.sqlite3").is_file():
            raise StoreError(f"the store directory {data_dir} is missing or was emptied while "
                             "the server ran: restart the server, then run newsdesk-ingest "
                             "again", "missing")
        return self.keywords().counts()

    def write_problem(self) -> StoreError | None:
        """Why new articles cannot be stored now (a full disk), or None: less free disk than
        the reserve, or than the last write that was refused (or failed) needed with it."""
        reserve_mb = self.settings.min_free_disk_mb
        need = self._unfinished
        if self.lock is None or not disk_nearly_full(self.settings.data_dir,
                                                     reserve_mb * 2**20 + need):
            return None
        short = (f"a write of about {need / 1e6:.1f} MB did not fit with the reserve of "
                 f"{reserve_mb} MB (NEWSDESK_MIN_FREE_DISK_MB)" if need
                 else f"less than {reserve_mb} MB free (NEWSDESK_MIN_FREE_DISK_MB)")
        return StoreError(f"the disk holding {self.settings.data_dir} is full ({short}): "
                          "answers still work but new articles cannot be stored until space "
                          "is freed", "disk_full")

    @_chroma_errors
    def committed_hashes(self, article_ids: Sequence[str]) -> dict[str, str]:
        """Content hash of each of these articles that is committed in the store."""
        found: dict[str, str] = {}
        ids = list(dict.fromkeys(article_ids))
        for start in range(0, len(ids), _GET_PAGE):
            got = self.articles.get(ids=ids[start:start + _GET_PAGE], include=["metadatas"])
            for aid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                if meta and meta.get("status") == "committed":
                    found[aid] = str(meta.get("content_hash", ""))
        return found

    def count_articles(self) -> int:
        """Articles readers see (a write in progress is not counted), from the keyword
        index's catalog: nothing is listed."""
        return self.keywords().counts()[0]

    def outlets(self) -> list[Outlet]:
        """Every outlet of the articles readers see, with its article count and the days of
        its first and last article; most articles first. Articles without an outlet are left
        out. From the keyword index's catalog: nothing is listed."""
        return self.keywords().outlets()

    @_chroma_errors
    def count_chunks(self) -> int:
        """Every stored chunk, those of uncommitted writes included."""
        return self.chunks.count()

    @_chroma_errors
    def list_articles(self, offset: int = 0, limit: int = 50) -> list[ArticleRecord]:
        """Committed article records, in store order."""
        got = self.articles.get(
            where={"status": "committed"}, offset=offset, limit=limit, include=["metadatas"]
        )
        return [_record(aid, meta) for aid, meta in zip(got["ids"], got["metadatas"] or [],
                                                        strict=True)]

    @_chroma_errors
    def generation(self) -> str:
        """A stamp that changes whenever the stored chunks change (in any process).

        Every change of the chunks is preceded and followed by a new stamp: a reader that
        caught up between the two catches up again at the second, and when a crash leaves
        out the second, the next ingest's `repair` writes it."""
        got = self.state.get(ids=[_GENERATION], include=["metadatas"])
        stamp = (got["metadatas"] or [{}])[0] or {}
        return str(stamp.get("stamp", ""))

    @_chroma_errors
    def all_chunk_ids(self) -> list[str]:
        """Ids of every stored chunk."""
        ids: list[str] = []
        while True:
            page = self.chunks.get(include=[], offset=len(ids), limit=_ID_PAGE)["ids"]
            ids.extend(page)
            if len(page) < _ID_PAGE:
                return ids

    @_chroma_errors
    def get_chunks(self, ids: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, text, metadata) of these chunks; ids no longer stored are left out."""
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for start in range(0, len(ids), _GET_PAGE):
            got = self.chunks.get(ids=list(ids[start:start + _GET_PAGE]),
                                  include=["documents", "metadatas"])
            rows.extend(zip(got["ids"], got["documents"] or [], got["metadatas"] or [],
                            strict=True))
        return rows

    @_chroma_errors
    def nearest(self, vector: np.ndarray, k: int, total: int | None = None,
                filters: Filters | None = None,
                index: KeywordIndex | None = None) -> dict[str, float]:
        """Ids of the k chunks nearest to `vector`, best first, with cosine similarity: only
        ids and distances come back, which spares Chroma reading text and metadata for
        candidates that never make the answer. `filters` (outlets, published days) apply
        inside the search, so k come back when that many match, but for a filter whose
        matches lie beyond the planner's deepest query (`_filtered_nearest` says how).
        `index`: the keyword index as the caller caught it up (default: caught up now)."""
        n = self.chunks.count() if total is None else total
        if n == 0 or k <= 0:
            return {}
        if chroma_where(filters) is None:
            return self._query(vector, min(k, n))
        return self._filtered_nearest(vector, k, n, filters, index)

    def _filtered_nearest(self, vector: np.ndarray, k: int, n: int, filters: Filters | None,
                          index: KeywordIndex | None = None) -> dict[str, float]:
        """`nearest` inside `filters`, planned on the keyword index's catalog (caught up with
        the commit log first, so a write just committed counts). Chroma resolves a `where`
        over the whole collection before its vector search, at a cost that grows with the
        collection and the chunks it lets through, while an unfiltered query costs what it
        returns (`POST_FILTER_*`). So: nothing matches -> no query; the filters let through
        few chunks (`EXACT_FILTER_MAX`), when that costs less than what follows -> their
        vectors compared with the question's (`_exact_nearest`, exact); the filters let through
        a share large enough that `ceil(k * oversample / share)` unfiltered results (at
        most `post_filter_cap`) will likely hold k matches -> that query, keeping the hits
        of the articles the catalog passes; fewer than k kept -> once more as deep as the
        cap, then, still fewer, the matching chunks found that deep (`short`); a share too
        small -> the `where` query. `plans` counts the paths taken."""
        where = chroma_where(filters)
        try:
            found = self._post_filtered(vector, k, n, filters, index)
        except sqlite3.Error as exc:  # the catalog's disk failed: Chroma can still filter
            log.warning("the filter planner cannot read the keyword catalog: %s", exc)
            found = None
        if found is not None:
            return found
        return self._query(vector, min(k, n), where)

    def _post_filtered(self, vector: np.ndarray, k: int, n: int, filters: Filters | None,
                       index: KeywordIndex | None = None) -> dict[str, float] | None:
        """The planner's answer without a `where` ({} when nothing matches), or None when
        the `where` query must give it (`plans` counts which)."""
        index = index or self.keywords()
        matching = index.filtered_chunks(filters)
        if matching == 0:
            self.plans["empty"] += 1
            return {}
        needed = min(k, matching)
        depth = math.ceil(needed * self.post_filter_oversample * index.counts()[1] / matching)
        cap = (post_filter_cap(n, filters) if self.post_filter_depth is None
               else self.post_filter_depth)
        first = min(max(depth, POST_FILTER_DEPTH[0]), cap, n)
        post_cost = first if depth <= cap else math.inf
        if (matching <= self.exact_filter_max and matching * EXACT_FILTER_COST
                <= min(post_cost, where_cost(n, matching, filters))):
            self.plans["exact"] += 1
            return self._exact_nearest(vector, index.filtered_chunk_ids(filters), k)
        if depth > cap:
            self.plans["where"] += 1
            return None
        depth = first
        deepest = min(cap, n)
        while True:
            hits = self._query(vector, depth)
            passing = index.passing((_article_of(cid) for cid in hits), filters)
            kept = [(cid, sim) for cid, sim in hits.items() if _article_of(cid) in passing]
            # Fewer hits than asked for: Chroma returned every chunk it holds.
            if len(kept) >= needed or len(hits) < depth:
                break
            if depth >= deepest:
                # As deep as the whole catalog (a small store): Chroma may hold chunks
                # readers do not see yet, so some visible ones can lie deeper; the `where`
                # is cheap at that size.
                if not self.short_filtered or deepest >= n:
                    self.plans["fallback"] += 1
                    return None
                # Every matching chunk among the `deepest` nearest is in `kept`: they are
                # the filters' nearest (as exactly as the index searches), and any a `where`
                # would add is less similar than the last of the `deepest`, too far to be
                # cited unless it shares the question's words, which the keyword side finds
                # inside the filters. At 1,000,000 chunks that `where` takes seconds.
                self.plans["short"] += 1
                return dict(kept)
            # Topics cluster: once more as deep as the cap, which costs far less than a
            # `where` at scale (at 1,000,000 chunks seconds over tens of thousands of chunks).
            self.plans["deeper"] += 1
            depth = deepest
        self.plans["post_filter"] += 1
        return dict(kept[:k])

    def _exact_nearest(self, vector: np.ndarray, ids: Sequence[str], k: int
                       ) -> dict[str, float]:
        """The k of these chunks most similar to `vector`, compared one by one."""
        found: dict[str, float] = {}
        for start in range(0, len(ids), _GET_PAGE):
            # Read past the vector cache's fill: one filter's thousands of chunks would push
            # out the vectors of the chunks questions keep coming back to.
            found.update(self.similarities(ids[start:start + _GET_PAGE], vector, keep=False))
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0]))[:k])

    def _query(self, vector: np.ndarray, n: int,
               where: dict[str, Any] | None = None) -> dict[str, float]:
        result = self.chunks.query(query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
                                   n_results=n, include=["distances"], where=where)
        return {cid: 1.0 - float(dist)
                for cid, dist in zip(result["ids"][0], result["distances"][0], strict=True)}

    @_chroma_errors
    def similarities(self, ids: Sequence[str], vector: np.ndarray,
                     keep: bool = True) -> dict[str, float]:
        """Cosine similarity of these chunks to `vector` (ids no longer stored are left out);
        `keep`: the vectors read are cached."""
        found = self._vectors.get_many(ids)
        missing = [cid for cid in ids if cid not in found]
        if missing:
            got = self.chunks.get(ids=missing, include=["embeddings"])
            fresh = {}
            for cid, emb in zip(got["ids"], got["embeddings"], strict=True):
                emb = np.asarray(emb, dtype=np.float32)
                fresh[cid] = emb / (float(np.linalg.norm(emb)) or 1.0)
            found.update(fresh)
            if keep:
                self._vectors.put_many(fresh)
        query = _unit(vector)
        return {cid: float(found[cid] @ query) for cid in ids if cid in found}

    @_chroma_errors
    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The unit vectors of these chunks (ids no longer stored are left out)."""
        found = self._vectors.get_many(ids)
        missing = [cid for cid in ids if cid not in found]
        if missing:
            got = self.chunks.get(ids=missing, include=["embeddings"])
            fresh = {cid: _unit(emb) for cid, emb in zip(got["ids"], got["embeddings"],
                                                          strict=True)}
            found.update(fresh)
            self._vectors.put_many(fresh)
        return {cid: found[cid] for cid in ids if cid in found}

    @_chroma_errors
    def read(self, ids: Sequence[str], scores: Mapping[str, float]) -> list[Passage]:
        """These chunks as passages with the given scores, in `ids` order (ids no longer
        stored, or without a score, are left out).

        Rows fetched before come from memory: a busy server asks about the same chunks
        again and again.
        """
        ids = [cid for cid in ids if cid in scores]
        if not ids:
            return []
        rows = self._rows.get_many(ids)
        missing = [cid for cid in ids if cid not in rows]
        if missing:
            got = self.chunks.get(ids=missing, include=["documents", "metadatas"])
            fresh = {cid: (text or "", meta) for cid, text, meta in zip(
                got["ids"], got["documents"], got["metadatas"], strict=True)}
            rows.update(fresh)
            self._rows.put_many(fresh)
        return [_passage(cid, rows[cid][0], rows[cid][1], scores[cid])
                for cid in ids if cid in rows]

    def keywords(self) -> KeywordIndex:
        """The keyword index, caught up with the store's commit log (what readers see)."""
        return self.look()[0]

    def look(self) -> tuple[KeywordIndex, str | None]:
        """`keywords()`, and the store stamp the index caught up to: None when it could not
        catch up (it then answers as it stands)."""
        index = self.keyword_index()
        try:
            index.follow(self)  # each store call it makes is bounded and named on its own
        except (OSError, sqlite3.Error, ValueError) as exc:
            # Its own disk failed it (full, read-only): it answers as it stands, and catches
            # up at a later question.
            log.warning("the keyword index in %s could not catch up: %s", index.directory, exc)
            return index, None
        return index, index.stamp

    def keyword_index(self) -> KeywordIndex:
        """This store's keyword index as it is (`keywords()` catches it up first)."""
        if self._keyword is None:
            self._keyword = open_index(self.keyword_dir())
        return self._keyword

    def keyword_dir(self) -> Path:
        """Where this store's keyword index lives: beside the embedded store, or for a Chroma
        server, in the machine's cache (NEWSDESK_CACHE_DIR), named for the server and the
        collection (it is derived data: lost, it is rebuilt)."""
        settings = self.settings
        if not settings.chroma_host:
            return settings.data_dir / "keyword-index" / settings.collection
        name = f"{settings.collection}-{settings.chroma_host}-{settings.chroma_port}"
        return settings.cache_dir / "keyword-index" / re.sub(r"[^\w.-]", "_", name)

    def _bump_generation(self, seq: int | None = None) -> None:
        meta: dict[str, Any] = {"stamp": uuid.uuid4().hex}
        meta["seq"] = seq if seq is not None else self._head()
        self.state.upsert(ids=[_GENERATION], metadatas=[meta],
                          embeddings=np.ones((1, 1), dtype=np.float32))

    def _append_log(self, article_ids: Sequence[str]) -> None:
        """Log that these articles' visible chunks changed, then bump the generation stamp
        (readers that see the new stamp find the entries)."""
        ids = list(dict.fromkeys(article_ids))
        seq = time.time_ns()
        entries = [f"{seq:020d}-{uuid.uuid4().hex[:8]}-{i:05d}" for i in range(len(ids))]
        for start in range(0, len(ids), _GET_PAGE):
            part = slice(start, start + _GET_PAGE)
            self.log.add(ids=entries[part],
                         metadatas=[{"seq": seq, "article_id": aid} for aid in ids[part]],
                         embeddings=np.ones((len(entries[part]), 1), dtype=np.float32))
        self._bump_generation(seq)

    @_chroma_errors
    def identity(self) -> str:
        """What tells this store from another (its chunk collection's id: a store deleted
        and made again is another store)."""
        return f"{self.chunks.id}"

    @_chroma_errors
    def log_head(self) -> int:
        """The sequence number of the newest commit log entry, as the generation record
        carries it (0 before the first)."""
        return self._head()

    def _head(self) -> int:
        got = self.state.get(ids=[_GENERATION], include=["metadatas"])
        stamp = (got["metadatas"] or [{}])[0] or {}
        return int(stamp.get("seq", 0) or 0)

    @_chroma_errors
    def log_since(self, seq: int) -> list[LogEntry]:
        """Commit log entries with a sequence number above `seq`, oldest first."""
        got = self.log.get(where={"seq": {"$gt": int(seq)}}, include=["metadatas"])
        found = [LogEntry(eid, int(meta["seq"]), str(meta["article_id"]))
                 for eid, meta in zip(got["ids"], got["metadatas"] or [], strict=True)]
        return sorted(found, key=lambda e: (e.seq, e.entry_id))

    @_chroma_errors
    def visible_versions(self, article_ids: Sequence[str]) -> dict[str, Version]:
        """The version readers see of each of these articles: the committed one, or while a
        new one is being written, the previous one (if it was committed)."""
        ids = list(dict.fromkeys(article_ids))
        found: dict[str, Version] = {}
        for start in range(0, len(ids), _GET_PAGE):
            got = self.articles.get(ids=ids[start:start + _GET_PAGE], include=["metadatas"])
            for aid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                if (version := _visible(aid, meta or {})) is not None:
                    found[aid] = version
        return found

    def all_visible_versions(self) -> Iterator[list[Version]]:
        """Every visible article version, a page at a time (rebuilding the keyword index)."""
        offset = 0
        while True:
            page = self._records_page(offset)
            yield [v for aid, meta in page if (v := _visible(aid, meta)) is not None]
            offset += len(page)
            if len(page) < _GET_PAGE:
                return

    @_chroma_errors
    def _records_page(self, offset: int) -> list[tuple[str, dict[str, Any]]]:
        got = self.articles.get(include=["metadatas"], offset=offset, limit=_GET_PAGE)
        return [(aid, meta or {}) for aid, meta in zip(got["ids"], got["metadatas"] or [],
                                                        strict=True)]

    @_chroma_errors
    def chunks_of(self, article_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, text, metadata) of every stored chunk of one article, in chunk order."""
        got = self.chunks.get(where={"article_id": article_id}, include=["documents", "metadatas"])
        rows = list(zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True))
        return sorted(rows, key=lambda row: (row[2].get("content_hash", ""),
                                             int(row[2].get("chunk_index", 0))))

    @_chroma_errors
    def article_text(self, article_id: str) -> tuple[ArticleRecord, str] | None:
        """The record and cleaned body of the version of an article readers see, or None.

        The body is put back together from its chunks, which hold it at their exact offsets
        (`body[start:end] == chunk text`). The whitespace between two chunks, which the
        splitter strips, comes back as line breaks of the same length (the splitter cuts at
        paragraphs first), so every offset a citation gives still points at the same text."""
        raw = self._raw_records([article_id]).get(article_id)
        version = _visible(article_id, raw or {})
        if raw is None or version is None:
            return None
        ids = [chunk_id(article_id, version.content_hash, i) for i in range(version.n_chunks)]
        got = self.chunks.get(ids=ids, include=["documents", "metadatas"])
        pieces = sorted(((int(meta.get("start", 0)), text or "")
                         for text, meta in zip(got["documents"] or [], got["metadatas"] or [],
                                               strict=True) if meta), key=lambda p: p[0])
        body: list[str] = []
        length = 0
        for start, text in pieces:
            if start > length:
                gap = start - length
                body.append("\n" if gap == 1 else "\n\n" + " " * (gap - 2))
                length = start
            if start + len(text) > length:  # chunks overlap: add only what is new
                body.append(text[length - start:])
                length = start + len(text)
        record = _record(article_id, raw)
        if raw.get("status") != "committed":  # a new version is being written: the old one
            record.content_hash, record.n_chunks = version.content_hash, version.n_chunks
        return record, "".join(body)

    @_chroma_errors
    def records_at(self, path: str) -> list[tuple[ArticleRecord, str]]:
        """(record, status) of every stored article read from the file recorded as `path`
        (`ArticleRecord.path`), whatever its status: "committed", "pending" or "duplicate".
        One `where` over the article records, not the chunks."""
        got = self.articles.get(where={"path": path}, include=["metadatas"])
        return [(_record(aid, meta or {}), str((meta or {}).get("status", "")))
                for aid, meta in zip(got["ids"], got["metadatas"] or [], strict=True)]

    # -- writing -------------------------------------------------------------------------

    @_chroma_writes
    def write(self, items: Sequence[ArticleWrite]) -> None:
        """Store several articles with their chunks and chunk vectors (and, optionally, each
        chunk's packed sentence vectors), replacing old versions."""
        if not items:
            return
        # Until the write completes, its size counts as needed (`write_problem`): a write
        # that is refused or fails leaves it.
        self._unfinished = write_size(items)
        self._ensure_space(self._unfinished)
        before = self._raw_records([rec.article_id for rec, *_ in items])
        self._upsert_records([(rec, "pending") for rec, *_ in items], before)
        self._bump_generation()
        ids: list[str] = []
        docs: list[str] = []
        metas: list[dict[str, Any]] = []
        vectors: list[np.ndarray] = []
        for rec, chunks, matrix, *rest in items:
            if len(chunks) != len(matrix):
                raise ValueError(f"{rec.article_id}: {len(chunks)} chunks, {len(matrix)} vectors")
            packed = rest[0] if rest else [""] * len(chunks)
            for chunk, vector, sentence_vectors in zip(chunks, matrix, packed, strict=True):
                ids.append(chunk_id(rec.article_id, rec.content_hash, chunk.index))
                docs.append(chunk.text)
                metas.append(_clean_metadata({
                    "article_id": rec.article_id,
                    "content_hash": rec.content_hash,
                    "title": rec.title,
                    "url": rec.url,
                    "source": rec.source,
                    "published_at": rec.published_at,
                    # A sortable number, so a date filter is a range inside Chroma's query.
                    "day": day_number(rec.published_at),
                    "lang": rec.lang,
                    "external_id": rec.external_id,
                    "chunk_index": chunk.index,
                    "n_chunks": rec.n_chunks,
                    "start": chunk.start,
                    "end": chunk.end,
                    "sentence_vectors": sentence_vectors or None,
                }))
                vectors.append(vector)
        max_batch = self.client.get_max_batch_size()
        for start in range(0, len(ids), max_batch):
            end = start + max_batch
            self.chunks.upsert(
                ids=ids[start:end],
                documents=docs[start:end],
                metadatas=metas[start:end],
                embeddings=np.asarray(vectors[start:end], dtype=np.float32),
            )
        stale: list[str] = []
        for rec, *_ in items:
            known = _stale_chunk_ids(rec.article_id, before.get(rec.article_id),
                                     rec.content_hash, rec.n_chunks)
            if known is None:
                self._delete_other_versions(rec.article_id, rec.content_hash, rec.n_chunks)
            else:
                stale += known
        if stale:
            self.chunks.delete(ids=stale)
        self._upsert_records([(rec, "committed") for rec, *_ in items])
        self._append_log([rec.article_id for rec, *_ in items])
        self._unfinished = 0

    def _ensure_space(self, need: int) -> None:
        """Refuse a write of `need` bytes that would leave less than the reserve free:
        Chroma's embedded core handles a full disk badly (a failed compaction, then every
        read failing until space returns), so it must not meet one."""
        if self.lock is None:
            return
        reserve = self.settings.min_free_disk_mb * 1024 * 1024
        if disk_nearly_full(self.settings.data_dir, reserve + need):
            raise StoreError(
                f"not enough free disk space for the store at {self.settings.data_dir}: this "
                f"write needs about {need / 1e6:.1f} MB plus a reserve of "
                f"{self.settings.min_free_disk_mb} MB (NEWSDESK_MIN_FREE_DISK_MB), and the "
                "disk is full: free space and run newsdesk-ingest again; nothing was written, "
                "committed articles are intact", "disk_full")

    @_chroma_errors
    def find_articles(self, article_id: str = "", url: str = "") -> list[str]:
        """Ids of the stored articles with this id or this stored URL (any status)."""
        found = []
        if article_id:
            found += self.articles.get(ids=[article_id], include=[])["ids"]
        if url:
            found += self.articles.get(where={"url": url}, include=[])["ids"]
        return list(dict.fromkeys(found))

    @_chroma_writes
    def delete_article(self, article_id: str) -> None:
        """Remove an article and all its chunks (and the records of its near-duplicates,
        which have no chunks of their own)."""
        self._bump_generation()
        self._delete_chunks_of(article_id)
        self.articles.delete(ids=[article_id])
        self.articles.delete(where={"duplicate_of": article_id})
        self._append_log([article_id])

    @_chroma_writes
    def write_duplicate(self, record: ArticleRecord) -> None:
        """Record a near-duplicate (`record.duplicate_of` set): no chunks, listed as another
        outlet of the article it duplicates. Chunks of an earlier version of it go."""
        self._bump_generation()
        self._delete_chunks_of(record.article_id)
        self._upsert_records([(record, "duplicate")])
        self._append_log([record.article_id])

    @_chroma_errors
    def duplicate_hashes(self, article_ids: Sequence[str]) -> dict[str, str]:
        """Content hash of each of these articles that is stored as a near-duplicate."""
        ids = list(dict.fromkeys(article_ids))
        got = self.articles.get(ids=ids, include=["metadatas"]) if ids else {"ids": []}
        return {aid: str(meta.get("content_hash", "")) for aid, meta in
                zip(got["ids"], got.get("metadatas") or [], strict=True)
                if meta and meta.get("status") == "duplicate"}

    def reported_by(self, article_ids: Sequence[str], as_of: str | None = None
                    ) -> dict[str, list[ArticleRecord]]:
        """Per article, the near-duplicates recorded for it (other outlets), oldest first.

        `as_of`: the store stamp a question's look caught up to (`look`); the answer may then
        come from what was read at that stamp (a write changes the stamp, and the memory is
        emptied), which spares a store call per answer."""
        ids = list(dict.fromkeys(article_ids))
        if not ids or as_of is None:
            return self._reported_by(ids) if ids else {}
        with self._copies_lock:
            if as_of != self._copies_stamp:
                self._copies, self._copies_stamp = LRU(_ROW_CACHE_SIZE), as_of
            copies = self._copies
        found = copies.get_many(ids)
        missing = [aid for aid in ids if aid not in found]
        if missing:
            fresh = self._reported_by(missing)
            fresh = {aid: fresh.get(aid, []) for aid in missing}
            copies.put_many(fresh)
            found.update(fresh)
        return {aid: found[aid] for aid in ids if found[aid]}

    @_chroma_errors
    def _reported_by(self, ids: list[str]) -> dict[str, list[ArticleRecord]]:
        got = self.articles.get(where={"duplicate_of": {"$in": ids}}, include=["metadatas"])
        found: dict[str, list[ArticleRecord]] = {}
        for aid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            record = _record(aid, meta)
            found.setdefault(record.duplicate_of, []).append(record)
        for records in found.values():
            records.sort(key=lambda r: (r.published_at, r.source))
        return found

    @_chroma_errors
    def signatures(self, article_ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """(id, MinHash) of every committed article that has one (the duplicate index), or
        of those among `article_ids`."""
        if article_ids is not None:
            got = self.articles.get(ids=list(dict.fromkeys(article_ids)),
                                    include=["metadatas"])
            return [(aid, str(meta.get("minhash", ""))) for aid, meta in
                    zip(got["ids"], got["metadatas"] or [], strict=True)
                    if meta and meta.get("status") == "committed" and meta.get("minhash")]
        # In pages: one `get` of every record fails past ~30,000 articles ("too many SQL
        # variables" in Chroma's SQLite).
        found: list[tuple[str, str]] = []
        offset = 0
        while True:
            got = self.articles.get(where={"status": "committed"}, include=["metadatas"],
                                    offset=offset, limit=_GET_PAGE)
            found += [(aid, str(meta.get("minhash", ""))) for aid, meta in
                      zip(got["ids"], got["metadatas"] or [], strict=True)
                      if meta and meta.get("minhash")]
            if len(got["ids"]) < _GET_PAGE:
                return found
            offset += _GET_PAGE

    def repair_grace_s(self) -> float:
        """The grace `repair` gives pending writes: none on an embedded store (one writer)."""
        return REPAIR_GRACE_S if self.settings.chroma_host else 0.0

    @_chroma_writes
    def repair(self, grace_s: float = 0.0) -> int:
        """Finish or roll back writes that a crash or a failed write (a full disk)
        interrupted, pending for more than `grace_s` seconds; returns how many articles it
        touched. An embedded store has one writer, its owner, so no grace is needed there;
        a Chroma server has many, and a grace spares the writes they are still making."""
        where: dict[str, Any] = {"status": "pending"}
        if grace_s > 0:
            where = {"$and": [where, {"pending_since": {"$lt": time.time() - grace_s}}]}
        pending = self.articles.get(where=where, include=["metadatas"])
        if pending["ids"]:
            self._bump_generation()
        for aid, meta in zip(pending["ids"], pending["metadatas"] or [], strict=True):
            new_hash = str(meta.get("content_hash", ""))
            expected = int(meta.get("n_chunks", 0))
            have = self.chunks.get(
                where={"$and": [{"article_id": aid}, {"content_hash": new_hash}]}, include=[]
            )["ids"]
            if expected and len(have) == expected:
                self._delete_other_versions(aid, new_hash, expected)
                self.articles.update(ids=[aid], metadatas=[{**meta, "status": "committed"}])
                log.info("repair: committed interrupted write of %s", aid)
                continue
            # The new version is incomplete: drop it and fall back to the previous one if whole.
            if have:
                self.chunks.delete(ids=have)
            previous = str(meta.get("previous_hash", ""))
            prev_n = int(meta.get("previous_n_chunks", 0))
            prev_ids = self.chunks.get(
                where={"$and": [{"article_id": aid}, {"content_hash": previous}]}, include=[]
            )["ids"] if previous else []
            if previous and prev_n and len(prev_ids) == prev_n:
                self._delete_other_versions(aid, previous)
                restored = {**meta, "status": "committed", "content_hash": previous,
                            "n_chunks": prev_n}
                self.articles.update(ids=[aid], metadatas=[restored])
                log.info("repair: rolled %s back to its previous version", aid)
            else:
                self.delete_article(aid)
                log.info("repair: removed half-written article %s", aid)
        if pending["ids"]:
            self._append_log(pending["ids"])
        return len(pending["ids"])

    def _delete_other_versions(self, article_id: str, keep_hash: str,
                               n_chunks: int | None = None) -> None:
        """Delete the article's chunks of any other version (and, given `n_chunks`, stray
        chunks past the end of this one)."""
        stale: dict[str, Any] = {"content_hash": {"$ne": keep_hash}}
        if n_chunks is not None:
            stale = {"$or": [stale, {"chunk_index": {"$gte": n_chunks}}]}
        self.chunks.delete(where={"$and": [{"article_id": article_id}, stale]})

    def _delete_chunks_of(self, article_id: str) -> None:
        """Delete every chunk of the article: by id when its record says which they are
        (a search by article id costs time in proportion to the whole collection)."""
        known = _stale_chunk_ids(article_id, self._raw_records([article_id]).get(article_id),
                                 "", 0)
        if known is None:
            self.chunks.delete(where={"article_id": article_id})
        elif known:
            self.chunks.delete(ids=known)

    def _upsert_records(self, records: Iterable[tuple[ArticleRecord, str]],
                        previous: dict[str, dict[str, Any]] | None = None) -> None:
        records = list(records)
        if previous is None:
            previous = self._raw_records([rec.article_id for rec, _ in records])
        ids, metas = [], []
        for rec, status in records:
            meta = {k: v for k, v in asdict(rec).items() if k != "article_id"}
            meta["status"] = status
            old = previous.get(rec.article_id) or {}
            if status == "pending":
                meta["pending_since"] = time.time()
                # Remember the committed version so repair can fall back to it.
                committed_old = old.get("status") == "committed"
                meta["previous_hash"] = old.get("content_hash", "") if committed_old else ""
                meta["previous_n_chunks"] = int(old.get("n_chunks", 0)) if committed_old else 0
            else:
                meta["previous_hash"] = ""
                meta["previous_n_chunks"] = 0
                meta["pending_since"] = 0.0
            ids.append(rec.article_id)
            metas.append(_clean_metadata(meta))
        self.articles.upsert(
            ids=ids,
            metadatas=metas,
            documents=[rec.title for rec, _ in records],
            embeddings=np.ones((len(ids), 1), dtype=np.float32),
        )

    def _raw_records(self, article_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        got = self.articles.get(ids=list(dict.fromkeys(article_ids)), include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"] or [], strict=True))


def chroma_where(filters: Filters | None) -> dict[str, Any] | None:
    """Filters as a Chroma `where` on chunk metadata (outlet, and the day as YYYYMMDD)."""
    if filters is None:
        return None
    clauses: list[dict[str, Any]] = []
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    since, until = day_range(filters)
    if since is not None:
        clauses.append({"day": {"$gte": since}})
    if until is not None:
        clauses.append({"day": {"$lte": until}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _stale_chunk_ids(article_id: str, old: dict[str, Any] | None, keep_hash: str,
                     keep_n: int) -> list[str] | None:
    """The ids of the article's chunks that are not among the `keep_n` chunks of version
    `keep_hash`, read from its record as it was before the write; None when the record
    cannot tell (a write in progress or interrupted), so a search by article is needed.
    Chunk ids are derived from (article, version, index), and every write puts its record
    down before its chunks and every delete removes chunks before the record, so an article
    with no record has no chunks and a near-duplicate's record none of its own."""
    if old is None or old.get("status") == "duplicate":
        return []
    if old.get("status") != "committed":
        return None
    old_hash, old_n = str(old.get("content_hash", "")), int(old.get("n_chunks", 0))
    if old_hash != keep_hash:
        return [chunk_id(article_id, old_hash, i) for i in range(old_n)]
    return [chunk_id(article_id, keep_hash, i) for i in range(keep_n, old_n)]


def _visible(article_id: str, meta: dict[str, Any]) -> Version | None:
    """The version of an article record that readers see, if any."""
    if meta.get("status") == "committed":
        return Version(article_id, str(meta.get("content_hash", "")),
                       int(meta.get("n_chunks", 0)), str(meta.get("source", "")),
                       str(meta.get("published_at", "")))
    if meta.get("status") == "pending" and meta.get("previous_hash"):
        return Version(article_id, str(meta["previous_hash"]),
                       int(meta.get("previous_n_chunks", 0)), str(meta.get("source", "")),
                       str(meta.get("published_at", "")))
    return None


def _article_of(chunk: str) -> str:
    parsed = split_chunk_id(chunk)
    return parsed[0] if parsed else chunk


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / (float(np.linalg.norm(vector)) or 1.0)


def _passage(chunk_id: str, text: str | None, meta: dict[str, Any], score: float) -> Passage:
    return Passage(
        chunk_id=chunk_id,
        article_id=str(meta["article_id"]),
        title=str(meta.get("title", "")),
        url=str(meta.get("url", "")),
        source=str(meta.get("source", "")),
        published_at=str(meta.get("published_at", "")),
        lang=str(meta.get("lang", "")),
        text=text or "",
        index=int(meta.get("chunk_index", 0)),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        score=score,
        external_id=str(meta.get("external_id", "")),
        sentence_vectors=str(meta.get("sentence_vectors", "")),
    )


def _record(article_id: str, meta: dict[str, Any]) -> ArticleRecord:
    return ArticleRecord(
        article_id=article_id,
        content_hash=str(meta.get("content_hash", "")),
        title=str(meta.get("title", "")),
        url=str(meta.get("url", "")),
        source=str(meta.get("source", "")),
        author=str(meta.get("author", "")),
        published_at=str(meta.get("published_at", "")),
        lang=str(meta.get("lang", "")),
        external_id=str(meta.get("external_id", "")),
        path=str(meta.get("path", "")),
        n_chunks=int(meta.get("n_chunks", 0)),
        minhash=str(meta.get("minhash", "")),
        duplicate_of=str(meta.get("duplicate_of", "")),
    )

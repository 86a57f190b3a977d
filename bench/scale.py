"""A large store for the scale figures, built from real chunk vectors without re-encoding.

Encoding a million chunks would take days on two cores, so the store is made of copies of
the benchmark stores' own articles, written through the store's own write path
(`NewsStore.write`: article records, chunks, commit log), so a server opened on it serves
every copy. Each copy gets a distinct article id and URL and its vectors a little Gaussian
noise (renormalised; about 0.98 cosine to the original), so the index holds as many distinct
points as chunks. The keyword index is loaded with the copies' terms (tokenized once per
source chunk) and marked current, as a server that had followed every write would have it.
Built once and cached (`bench-scale.json` marks a complete build).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from assistant.index.embeddings import NewsEmbeddings
from assistant.index.lexical import IndexedArticle, Version, indexed_text, tokenize
from assistant.index.store import NewsStore, chunk_id
from assistant.settings import Settings
from assistant.types import ArticleRecord, Chunk

COLLECTION = "bench_scale"
NOISE = 0.01  # per dimension, before renormalising
_BATCH_ARTICLES = 200
_REPORT_EVERY = 50_000  # chunks between progress lines


class SourceArticle:
    """One visible article of a source store: its record, chunks, vectors and terms."""

    def __init__(self, record: ArticleRecord, rows: list[tuple[str, str, dict[str, Any]]],
                 vectors: np.ndarray) -> None:
        self.record = record
        self.chunks = [Chunk(int(m.get("chunk_index", i)), text, int(m.get("start", 0)),
                             int(m.get("end", 0))) for i, (_, text, m) in enumerate(rows)]
        self.packed = [str(m.get("sentence_vectors", "")) for _, _, m in rows]
        self.vectors = vectors
        self.terms = [tokenize(indexed_text(m, text)) for _, text, m in rows]


def source_articles(stores: list[NewsStore]) -> list[SourceArticle]:
    """Every article readers see in the given stores, with its chunks in order."""
    found = []
    for store in stores:
        records = {r.article_id: r for r in store.list_articles(limit=1_000_000)}
        for page in store.all_visible_versions():
            for version in page:
                ids = [chunk_id(version.article_id, version.content_hash, i)
                       for i in range(version.n_chunks)]
                got = store.chunks.get(ids=ids, include=["documents", "metadatas",
                                                         "embeddings"])
                order = {cid: i for i, cid in enumerate(got["ids"])}
                if len(order) != len(ids) or version.article_id not in records:
                    continue
                rows = [(cid, got["documents"][order[cid]] or "",
                         dict(got["metadatas"][order[cid]] or {})) for cid in ids]
                vectors = np.asarray([got["embeddings"][order[cid]] for cid in ids],
                                     dtype=np.float32)
                found.append(SourceArticle(records[version.article_id], rows, vectors))
    return found


def _copies(sources: list[SourceArticle], target: int, rng: np.random.Generator,
            ) -> Iterator[tuple[SourceArticle, ArticleRecord, np.ndarray]]:
    total, copy = 0, 0
    while total < target:
        for source in sources:
            rec = source.record
            article_id = f"{rec.article_id}-c{copy}"
            noisy = source.vectors + rng.normal(0.0, NOISE, source.vectors.shape).astype(
                np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            record = ArticleRecord(
                article_id=article_id, content_hash=rec.content_hash, title=rec.title,
                url=f"{rec.url}#copy{copy}" if rec.url else "", source=rec.source,
                author=rec.author, published_at=rec.published_at, lang=rec.lang,
                n_chunks=len(source.chunks), minhash=rec.minhash)
            yield source, record, noisy
            total += len(source.chunks)
        copy += 1


def cached(settings: Settings, embeddings: NewsEmbeddings, target: int
           ) -> dict[str, Any] | None:
    """`build`'s info when a complete build of `target` chunks is in `settings`' store
    (its keyword index brought to the current format), else None."""
    marker = settings.data_dir / "bench-scale.json"
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text())
    if info.get("target") != target or info.get("model") != embeddings.name:
        return None
    # A keyword index of an older format is rebuilt here, not in a timed start.
    store = NewsStore(settings, embeddings)
    try:
        rebuilds = store.keywords().cost.rebuilds
    finally:
        store.close()
    return {**info, "cached": True, "index_rebuilt": bool(rebuilds)}


def build(settings: Settings, embeddings: NewsEmbeddings, stores: list[NewsStore],
          target: int, seed: int = 0) -> dict[str, Any]:
    """Fill `settings`' store with at least `target` chunks (copies of the sources'
    articles), or reuse it when a complete build of the same size is there. Returns what
    it did."""
    found = cached(settings, embeddings, target)
    if found is not None:
        return found
    marker = settings.data_dir / "bench-scale.json"
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    started = time.perf_counter()
    sources = source_articles(stores)
    if not sources:
        raise SystemExit("the scale store needs at least one stored article to copy")
    store = NewsStore(settings, embeddings)
    index = store.keyword_index()
    rng = np.random.default_rng(seed)
    batch: list[tuple[SourceArticle, ArticleRecord, np.ndarray]] = []

    def flush() -> None:
        store.write([(rec, src.chunks, vectors, src.packed) for src, rec, vectors in batch])
        index.add_indexed([IndexedArticle(
            Version(rec.article_id, rec.content_hash, rec.n_chunks, rec.source,
                    rec.published_at),
            [(chunk_id(rec.article_id, rec.content_hash, i), terms)
             for i, terms in enumerate(src.terms)]) for src, rec, _ in batch])
        batch.clear()

    articles, written, reported = 0, 0, 0
    for item in _copies(sources, target, rng):
        batch.append(item)
        articles += 1
        written += len(item[0].chunks)
        if len(batch) >= _BATCH_ARTICLES:
            flush()
            if written - reported >= _REPORT_EVERY:
                reported = written
                print(f"  {written:,} of {target:,} chunks, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    if batch:
        flush()
    index.mark_current(store)
    chunks = store.count_chunks()
    visible = store.keywords().counts()[1]
    if visible != chunks:
        raise SystemExit(f"the scale store holds {chunks:,} chunks but readers see {visible:,}")
    info = {"target": target, "chunks": chunks, "articles": articles,
            "source_articles": len(sources),
            "source_chunks": sum(len(s.chunks) for s in sources), "model": embeddings.name,
            "build_s": round(time.perf_counter() - started, 1)}
    store.close()
    marker.write_text(json.dumps(info))
    return {**info, "cached": False}

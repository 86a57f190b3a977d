"""The Chroma store: model mismatch, crash repair, commit protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from assistant.errors import EmbeddingMismatchError, StoreError
from assistant.index.embeddings import NewsEmbeddings
from assistant.index.store import NewsStore, chunk_id
from assistant.service import Assistant
from assistant.types import ArticleRecord, Chunk
from ingest.pipeline import Ingestor
from wiring import create_app


class _OtherModel(NewsEmbeddings):
    """Stands in for a different embedding model: only its identity matters here."""

    name = "other/model"
    dimension = 8
    max_tokens = 128


def test_opening_a_store_with_another_model_says_how_to_reindex(
    ingestor: Ingestor, seed_path: Path
) -> None:
    ingestor.ingest([seed_path])
    with pytest.raises(EmbeddingMismatchError) as info:
        NewsStore(ingestor.settings, _OtherModel())
    message = str(info.value)
    assert "all-MiniLM-L6-v2" in message and "other/model" in message
    assert "NEWSDESK_COLLECTION" in message and "newsdesk-ingest" in message


def _record(aid: str, content_hash: str, n: int) -> ArticleRecord:
    return ArticleRecord(article_id=aid, content_hash=content_hash, title="t", n_chunks=n)


def _write_partial(store: NewsStore, record: ArticleRecord, written: int) -> None:
    """What a crash leaves: a pending record, a new generation stamp and only some of the
    new chunks."""
    store._upsert_records([(record, "pending")])
    store._bump_generation()
    store.chunks.upsert(
        ids=[chunk_id(record.article_id, record.content_hash, i) for i in range(written)],
        documents=[f"chunk {i}" for i in range(written)],
        metadatas=[{"article_id": record.article_id, "content_hash": record.content_hash,
                    "chunk_index": i, "start": 0, "end": 1} for i in range(written)],
        embeddings=np.ones((written, store.embeddings.dimension), dtype=np.float32),
    )


def _vectors(store: NewsStore, n: int) -> np.ndarray:
    return np.ones((n, store.embeddings.dimension), dtype=np.float32)


def test_repair_removes_a_half_written_new_article(ingestor: Ingestor) -> None:
    store = ingestor.store
    _write_partial(store, _record("a1", "h1" * 10, 3), written=2)
    assert store.repair() == 1
    assert store.count_chunks() == 0 and store.count_articles() == 0


def test_repair_rolls_back_to_the_previous_complete_version(ingestor: Ingestor) -> None:
    store = ingestor.store
    old = _record("a1", "old" * 8, 2)
    store.write([(old, [Chunk(i, f"old {i}", 0, 5) for i in range(2)], _vectors(store, 2))])
    _write_partial(store, _record("a1", "new" * 8, 4), written=1)
    store.repair()
    assert store.committed_hashes(["a1"]) == {"a1": old.content_hash}
    assert sorted(text for _, text, _ in store.chunks_of("a1")) == ["old 0", "old 1"]


def test_repair_commits_a_complete_write_that_missed_its_commit(ingestor: Ingestor) -> None:
    store = ingestor.store
    old = _record("a1", "old" * 8, 1)
    store.write([(old, [Chunk(0, "old", 0, 3)], _vectors(store, 1))])
    new = _record("a1", "new" * 8, 2)
    _write_partial(store, new, written=2)
    store.repair()
    assert store.committed_hashes(["a1"]) == {"a1": new.content_hash}
    assert sorted(text for _, text, _ in store.chunks_of("a1")) == ["chunk 0", "chunk 1"]


def _texts(store: NewsStore, aid: str) -> list[str]:
    return sorted(text for _, text, _ in store.chunks_of(aid))


def test_writes_delete_old_chunks_by_id_never_by_searching_the_collection(
        ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search by article id costs time in proportion to the whole collection, so a write
    over a committed version deletes the chunk ids its record names; only a write over an
    interrupted one searches."""
    store = ingestor.store
    searches: list[object] = []
    real_delete = store.chunks.delete

    def delete(ids=None, where=None, **kwargs):  # noqa: ANN001, ANN202 - Chroma's signature
        if where is not None:
            searches.append(where)
        return real_delete(ids=ids, where=where, **kwargs)

    monkeypatch.setattr(store.chunks, "delete", delete)

    def write(content_hash: str, n: int, label: str) -> None:
        store.write([(_record("a1", content_hash, n),
                      [Chunk(i, f"{label} {i}", 0, 5) for i in range(n)], _vectors(store, n))])

    write("v1" * 12, 3, "one")
    write("v1" * 12, 2, "one")  # same text, fewer chunks (another chunk size): the tail goes
    assert _texts(store, "a1") == ["one 0", "one 1"]
    write("v2" * 12, 3, "two")
    assert _texts(store, "a1") == ["two 0", "two 1", "two 2"]
    assert searches == []
    store.delete_article("a1")
    assert store.count_chunks() == 0 and searches == []

    write("v3" * 12, 2, "three")
    _write_partial(store, _record("a1", "v4" * 12, 4), written=1)  # interrupted, not repaired
    write("v5" * 12, 1, "five")
    assert _texts(store, "a1") == ["five 0"] and len(searches) == 1


def test_the_duplicate_index_reads_every_signature_in_pages(
        ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch) -> None:
    """One `get` of every committed record fails past ~30,000 articles in Chroma ("too many
    SQL variables", met at 60,900): `signatures()` reads them page by page."""
    from assistant.index import store as store_module

    store = ingestor.store
    for i in range(5):
        record = ArticleRecord(article_id=f"a{i}", content_hash=f"h{i}" * 8, title="t",
                               n_chunks=1, minhash=f"sig{i}")
        store.write([(record, [Chunk(0, f"text {i}", 0, 6)], _vectors(store, 1))])
    whole = sorted(store.signatures())
    monkeypatch.setattr(store_module, "_GET_PAGE", 2)
    assert sorted(store.signatures()) == whole == [(f"a{i}", f"sig{i}") for i in range(5)]


def test_ingest_after_a_crash_ends_like_a_clean_run(ingestor: Ingestor, tmp_path: Path,
                                                    settings_factory, embeddings) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.json").write_text(json.dumps({
            "title": f"Story {i}", "url": f"https://news.test/{i}",
            "body": f"Story number {i} tells how the ferry at pier {i} was repaired in spring."}))
    clean = Ingestor(settings_factory(collection="clean"), embeddings=embeddings)
    clean.ingest([folder])
    # Crash: a story half-written before the real ingest runs.
    from ingest.metadata import to_article
    from ingest.readers import read_file
    art = to_article(read_file(folder / "1.json", 10**6).articles[0])
    _write_partial(ingestor.store, _record(art.article_id, ingestor.version(art), 5), written=3)
    report = ingestor.ingest([folder])
    # The embedded store has one writer (this process), so the crashed write is repaired
    # first, then written whole.
    assert report.repaired == 1 and report.counts["added"] == 3
    assert ingestor.store.count_chunks() == clean.store.count_chunks()
    assert sorted(ingestor.store.chunks.get()["ids"]) == sorted(clean.store.chunks.get()["ids"])
    assert ingestor.store.articles.get(where={"status": "pending"})["ids"] == []


def test_health_counts_only_what_readers_see_after_a_crash(ingestor: Ingestor) -> None:
    store = ingestor.store
    store.write([(_record("a1", "a" * 24, 2), [Chunk(i, f"a {i}", 0, 3) for i in range(2)],
                  _vectors(store, 2))])
    store.write([(_record("b1", "old" * 8, 3), [Chunk(i, f"b {i}", 0, 3) for i in range(3)],
                  _vectors(store, 3))])
    client = TestClient(create_app(Assistant(ingestor.settings, store=store)))
    assert client.get("/health").json()["chunks"] == 5
    # A crash cut short an update of b1 (its old version still shows) and a new article.
    _write_partial(store, _record("b1", "new" * 8, 4), written=2)
    _write_partial(store, _record("c1", "c" * 24, 5), written=4)
    assert store.count_chunks() == 11
    health = client.get("/health").json()
    assert (health["articles"], health["chunks"]) == (2, 5)
    # Once repaired, the new article is gone and b1 is back to its old version: still 5.
    store.repair()
    assert client.get("/health").json()["chunks"] == 5 == store.count_chunks()


def test_repair_with_a_grace_spares_writes_pending_for_less(ingestor: Ingestor) -> None:
    # The grace that a store shared through a Chroma server gives other live writers.
    store = ingestor.store
    _write_partial(store, _record("fresh", "f" * 24, 3), written=1)
    _write_partial(store, _record("stale", "s" * 24, 3), written=1)
    meta = store.articles.get(ids=["stale"])["metadatas"][0]
    store.articles.update(ids=["stale"], metadatas=[{**meta, "pending_since": 1.0}])
    assert store.repair(grace_s=600) == 1
    assert store.articles.get(ids=["stale"])["ids"] == []
    assert store.articles.get(ids=["fresh"])["ids"] == ["fresh"]
    assert store.repair_grace_s() == 0  # embedded: one writer, nothing to spare


def test_unreachable_chroma_server_gives_a_clear_error(settings_factory, embeddings) -> None:
    settings = settings_factory(chroma_host="127.0.0.1", chroma_port=9)
    with pytest.raises(StoreError) as info:
        NewsStore(settings, embeddings)
    assert "127.0.0.1:9" in str(info.value)

"""The keyword index at archive scale: a write costs what it adds, the index stays equal to a
clean rebuild through updates, deletes and crash repair, filters travel inside the queries,
and a store built the benchmark's way is served in full."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLES, keyword_hits, make_settings

from assistant.answer.retrieval import NewsRetriever
from assistant.index.lexical import KeywordIndex, forget_index
from assistant.index.store import NewsStore
from assistant.types import ArticleRecord, Chunk, Filters, chunk_id
from bench import scale
from ingest.pipeline import Ingestor

QUESTION = "What wage increase are the striking signal staff seeking?"


@pytest.fixture(scope="module")
def scale_store(tmp_path_factory: pytest.TempPathFactory, embeddings: Any) -> Any:
    """A store of a few thousand chunks, built the scale benchmark's way from the samples."""
    root = tmp_path_factory.mktemp("scale")
    source = Ingestor(make_settings(root / "source"), embeddings=embeddings)
    assert source.ingest([SAMPLES]).ok
    settings = make_settings(root / "scale", collection=scale.COLLECTION)
    info = scale.build(settings, embeddings, [source.store], 3000)
    source.close()
    return settings, info


@pytest.mark.slow
def test_a_question_over_a_scale_store_returns_passages(scale_store: Any,
                                                        embeddings: Any) -> None:
    settings, info = scale_store
    assert info["chunks"] >= 3000
    store = NewsStore(settings, embeddings)
    try:
        assert store.keywords().counts() == (info["articles"], info["chunks"])
        passages, _ = NewsRetriever(store=store, embeddings=embeddings).retrieve(QUESTION)
        assert passages and "7.5" in " ".join(p.text for p in passages)
    finally:
        store.close()


@pytest.mark.slow
def test_a_cached_scale_store_gets_an_older_index_rebuilt_before_it_is_served(
        scale_store: Any, embeddings: Any) -> None:
    """The benchmark reuses its cached store; a keyword index of an older format is rebuilt
    in `build`, so the timed server start finds it current."""
    import sqlite3

    settings, info = scale_store
    store = NewsStore(settings, embeddings)
    where = store.keyword_dir()
    assert store.keywords().counts()[1] == info["chunks"]
    store.close()
    forget_index(where)
    again = scale.build(settings, embeddings, [], info["target"])
    assert again["cached"] and not again["index_rebuilt"]  # current: left alone
    forget_index(where)
    db = sqlite3.connect(where / "catalog.sqlite3")
    db.execute("UPDATE meta SET value = '5' WHERE key = 'format'")
    db.commit()
    db.close()
    again = scale.build(settings, embeddings, [], info["target"])
    assert again["cached"] and again["index_rebuilt"]
    forget_index(where)
    served = NewsStore(settings, embeddings)
    try:
        assert served.keywords().cost.rebuilds == 0
        assert served.keywords().counts() == (info["articles"], info["chunks"])
    finally:
        served.close()
        forget_index(where)


@pytest.mark.slow
def test_a_write_reads_and_tokenizes_only_its_own_chunks(scale_store: Any, embeddings: Any,
                                                          tmp_path: Path) -> None:
    settings, info = scale_store
    ingestor = Ingestor(settings, embeddings=embeddings)
    try:
        index = ingestor.store.keywords()
        # Opened from disk: nothing of the archive was read or tokenized to serve it.
        before = (index.cost.chunks_read, index.cost.chunks_tokenized, index.cost.rebuilds)
        story = tmp_path / "story.json"
        story.write_text(json.dumps({
            "title": "Lighthouse keepers return to Skerrow",
            "url": "https://news.test/skerrow", "published_at": "2026-05-02",
            "body": "Two keepers moved back into the Skerrow lighthouse on Saturday. " * 40}))
        report = ingestor.ingest([story])
        assert report.counts["added"] == 1
        written = report.chunks_written
        index = ingestor.store.keywords()
        assert index.cost.chunks_read - before[0] == written
        assert index.cost.chunks_tokenized - before[1] == written
        assert index.cost.rebuilds == before[2]
        hits = keyword_hits(ingestor.store, "Skerrow lighthouse keepers", 3)
        assert hits and hits[0].startswith(report.articles[0][1])
        assert index.counts() == (info["articles"] + 1, info["chunks"] + written)
        assert ingestor.delete(report.articles[0][1])
        assert ingestor.store.keywords().counts() == (info["articles"], info["chunks"])
    finally:
        ingestor.close()


@pytest.mark.parametrize("depth", [0, None])  # the filter planner pinned to `where`, or free
def test_filters_send_no_id_list_to_chroma(ingestor: Ingestor, embeddings: Any,
                                           depth: int | None) -> None:
    assert ingestor.ingest([SAMPLES]).ok
    store = ingestor.store
    store.post_filter_depth = depth
    # A few matching chunks are compared exactly, their vectors read by id up to
    # `EXACT_FILTER_MAX` of them (tests/test_filters.py); this store is that small.
    store.exact_filter_max = 0
    sent: list[dict[str, Any]] = []
    query = store.chunks.query

    def spy(**kwargs: Any) -> Any:  # the real Chroma query, its arguments noted
        sent.append(kwargs)
        return query(**kwargs)

    store.chunks.query = spy  # type: ignore[method-assign]
    outlets = sorted(store.keywords().sources())
    filters = Filters(sources=outlets[:2], since="2020-01-01", until="2030-12-31")
    passages, _ = NewsRetriever(store=store, embeddings=embeddings).retrieve(
        "strike wages", filters=filters)
    assert passages and {p.source for p in passages} <= set(outlets[:2])
    assert sent and all(call.get("ids") is None for call in sent)
    if depth == 0:
        assert sent[0]["where"] == {"$and": [{"source": {"$in": outlets[:2]}},
                                             {"day": {"$gte": 20200101}},
                                             {"day": {"$lte": 20301231}}]}
    else:  # a small store: one unfiltered query, its hits filtered on the catalog
        assert [call["where"] for call in sent] == [None]


def _write(store: NewsStore, aid: str, content_hash: str, texts: list[str]) -> None:
    record = ArticleRecord(article_id=aid, content_hash=content_hash, title=f"Story {aid}",
                           source="Test Wire", published_at="2026-03-0" + str(len(texts)),
                           n_chunks=len(texts))
    chunks = [Chunk(i, text, 0, len(text)) for i, text in enumerate(texts)]
    vectors = np.random.default_rng(len(aid)).normal(
        size=(len(texts), store.embeddings.dimension)).astype(np.float32)
    store.write([(record, chunks, vectors)])


def _crash_mid_write(store: NewsStore, aid: str, content_hash: str, texts: list[str],
                     written: int) -> None:
    """What a kill -9 mid-write leaves: a pending record and some of the new chunks."""
    record = ArticleRecord(article_id=aid, content_hash=content_hash, title=f"Story {aid}",
                           n_chunks=len(texts))
    store._upsert_records([(record, "pending")])
    store._bump_generation()
    store.chunks.upsert(
        ids=[chunk_id(aid, content_hash, i) for i in range(written)],
        documents=texts[:written],
        metadatas=[{"article_id": aid, "content_hash": content_hash, "chunk_index": i,
                    "start": 0, "end": 1} for i in range(written)],
        embeddings=np.ones((written, store.embeddings.dimension), dtype=np.float32))


def _rebuilt(store: NewsStore, where: Path) -> KeywordIndex:
    clean = KeywordIndex(where)
    clean.rebuild(store)
    return clean


def _same(index: KeywordIndex, clean: KeywordIndex, words: list[str]) -> None:
    assert sorted(index.chunk_ids()) == sorted(clean.chunk_ids())
    assert index.counts() == clean.counts() and index.num_docs == clean.num_docs
    # The terms kept for exact BM25 are those of the indexed chunks, no more.
    terms = "SELECT chunk_id, n, tf FROM terms ORDER BY chunk_id"
    assert index._db.execute(terms).fetchall() == clean._db.execute(terms).fetchall()
    assert sorted(row[0] for row in index._db.execute(terms)) == sorted(index.chunk_ids())
    # The same chunks match each word (scores may differ by deleted documents that tantivy
    # drops only when it merges segments).
    for word in words:
        assert set(index.search(word, 100)) == set(clean.search(word, 100))


def test_updates_deletes_and_crash_repair_keep_the_index_equal_to_a_rebuild(
        ingestor: Ingestor, tmp_path: Path) -> None:
    store = ingestor.store
    words = ["ferry", "harbour", "budget", "pier", "lantern"]
    _write(store, "a1", "a" * 24, ["The ferry left the harbour.", "The budget grew."])
    _write(store, "b1", "b" * 24, ["A pier of oak.", "Lanterns on the pier.", "Ferry again."])
    _write(store, "c1", "c" * 24, ["The harbour budget."])
    index = store.keywords()
    _same(index, _rebuilt(store, tmp_path / "r1"), words)

    _write(store, "a1", "d" * 24, ["The lantern festival."])  # an update
    store.delete_article("c1")
    _crash_mid_write(store, "b1", "e" * 24, ["Half of b1.", "More.", "Gone."], written=2)
    _crash_mid_write(store, "f1", "f" * 24, ["New ferry story.", "Unfinished."], written=1)
    # Mid-crash the readers see b1's old version and no f1: the pending write is not cited.
    index = store.keywords()
    assert "f1" not in {cid.split(":")[0] for cid in index.chunk_ids()}
    assert chunk_id("b1", "b" * 24, 0) in index.chunk_ids()
    _same(index, _rebuilt(store, tmp_path / "r2"), words)

    assert store.repair() == 2
    index = store.keywords()
    assert index.counts() == (2, 4)
    _same(index, _rebuilt(store, tmp_path / "r3"), words)
    assert index.search("lantern", 5) and not index.search("Unfinished", 5)


def test_a_lost_or_foreign_index_is_rebuilt_by_itself(ingestor: Ingestor,
                                                      embeddings: Any) -> None:
    assert ingestor.ingest([SAMPLES]).ok
    settings = ingestor.settings
    held = ingestor.store.keywords().counts()
    where = ingestor.store.keyword_dir()
    ingestor.close()
    forget_index(where)
    shutil.rmtree(where)  # lost
    store = NewsStore(settings, embeddings)
    assert store.keywords().counts() == held and store.keywords().cost.rebuilds == 1
    store.close()
    forget_index(where)
    # Another store (a collection deleted and made again) under the same index: rebuilt.
    client = store.client
    for name in ("news_chunks", "news_articles", "news_state", "news_log"):
        client.delete_collection(name)
    fresh = NewsStore(settings, embeddings)
    assert fresh.keywords().counts() == (0, 0)
    assert fresh.keywords().cost.rebuilds == 1
    fresh.close()


def test_a_catalog_of_the_older_format_is_rebuilt_by_itself(ingestor: Ingestor,
                                                          embeddings: Any) -> None:
    """A catalog that kept each chunk's terms as text (format 5) has no term counts: the
    next start empties it and rebuilds, and exact scores come back."""
    import sqlite3

    assert ingestor.ingest([SAMPLES]).ok
    settings = ingestor.settings
    before = ingestor.store.keywords()
    held, scores = before.counts(), before.search(QUESTION, 10)
    where = ingestor.store.keyword_dir()
    ingestor.close()
    forget_index(where)
    db = sqlite3.connect(where / "catalog.sqlite3")
    db.executescript("""
        DROP TABLE terms;
        CREATE TABLE terms (chunk_id TEXT PRIMARY KEY, n INTEGER NOT NULL,
                            terms TEXT NOT NULL) WITHOUT ROWID;
        UPDATE meta SET value = '5' WHERE key = 'format';""")
    db.close()
    store = NewsStore(settings, embeddings)
    try:
        index = store.keywords()
        assert index.cost.rebuilds == 1 and index.counts() == held
        again = index.search(QUESTION, 10)
        assert list(again) == list(scores)
        assert again == pytest.approx(scores, rel=1e-9)
    finally:
        store.close()


@pytest.mark.slow
def test_the_cli_rebuilds_the_index_on_demand(ingestor: Ingestor) -> None:
    assert ingestor.ingest([SAMPLES]).ok
    held = ingestor.store.keywords().counts()
    data_dir, where = ingestor.settings.data_dir, ingestor.store.keyword_dir()
    ingestor.close()
    forget_index(where)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_",
                                                                       "NEWSDESK_"))}
    done = subprocess.run([sys.executable, "-m", "ingest", "--reindex", "--data-dir",
                           str(data_dir)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"Keyword index rebuilt: {held[0]} articles, {held[1]} chunks" in done.stdout
    assert KeywordIndex(where).counts() == held


def test_keyword_scores_are_exact_bm25_whatever_the_chunk_lengths(tmp_path: Path) -> None:
    """tantivy ranks with each chunk's length rounded to one byte; the index's scores are
    BM25 over the exact lengths, the same as bm25s computes over the same terms."""
    import bm25s

    from assistant.index.lexical import IndexedArticle, Version, tokenize

    rng = np.random.default_rng(7)
    vocabulary = tokenize("harbour ferry budget council lantern pier tide storm bridge "
                          "vote engineer museum strike wage signal rail river flood school")
    # Lengths past 40 terms, where tantivy's one-byte length buckets are coarse.
    lengths = [5, 41, 57, 83, 97, 131, 160, 211, 257, 299, 333, 401]
    docs = [list(rng.choice(vocabulary, size=n)) for n in lengths]
    index = KeywordIndex(tmp_path / "index")
    try:
        index.add_indexed([IndexedArticle(
            Version(f"a{i}", f"{i:024d}", 1, "Outlet", "2026-01-01"),
            [(chunk_id(f"a{i}", f"{i:024d}", 0), terms)]) for i, terms in enumerate(docs)])
        exact = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        exact.index([list(d) for d in docs], show_progress=False)
        for question in ("harbour ferry storm", "wage strike signal rail", "flood flood river"):
            # bm25s's Lucene variant leaves out the constant factor k1 + 1.
            expected = exact.get_scores(tokenize(question)) * (1.2 + 1.0)
            found = index.search(question, len(docs))
            assert found
            for i in range(len(docs)):
                cid = chunk_id(f"a{i}", f"{i:024d}", 0)
                assert found.get(cid, 0.0) == pytest.approx(float(expected[i]), rel=1e-4)
            # and in the order of the exact scores
            assert list(found) == sorted(found, key=lambda c: -found[c])
    finally:
        index.close()


def test_scores_of_given_chunks_are_the_scores_search_gives(tmp_path: Path) -> None:
    """`scores` (the dense candidates' keyword scores, read from the catalog alone) gives a
    chunk the same score as `search`, and leaves out chunks that do not match or are not
    indexed."""
    from assistant.index.lexical import IndexedArticle, Version, tokenize

    texts = ["The harbour ferry sailed at dawn.", "A ferry strike closed the harbour.",
             "The council voted on the school budget.", "Flood warnings for the river."]
    index = KeywordIndex(tmp_path / "index")
    try:
        ids = [chunk_id(f"a{i}", f"{i:024d}", 0) for i in range(len(texts))]
        index.add_indexed([IndexedArticle(Version(f"a{i}", f"{i:024d}", 1, "Outlet",
                                                  "2026-01-01"), [(ids[i], tokenize(text))])
                           for i, text in enumerate(texts)])
        question = "Why did the harbour ferry stop?"
        found = index.search(question, 10)
        assert set(found) == set(ids[:2])
        given = index.scores(question, [*ids, ids[0], chunk_id("zz", "0" * 24, 0)])
        assert given == found  # the same floats, not just close ones
        assert index.scores(question, []) == {} and index.scores("", ids) == {}
    finally:
        index.close()


def test_each_reader_thread_keeps_a_small_page_cache(tmp_path: Path) -> None:
    """Every thread that reads the catalog keeps a connection of its own (dozens in a
    server): each holds a 256 KiB page cache, not SQLite's 2 MB."""
    import threading

    from assistant.index import lexical

    index = KeywordIndex(tmp_path / "index")
    try:
        sizes: list[int] = []

        def read() -> None:
            sizes.append(index._reader().execute("PRAGMA cache_size").fetchone()[0])

        threads = [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        read()
        assert sizes == [-lexical._READER_CACHE_KIB] * 4
        assert lexical._READER_CACHE_KIB < 2000
    finally:
        index.close()

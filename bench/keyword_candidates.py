"""Keyword index candidates at archive scale: tantivy, SQLite FTS5 and bm25s (the old index).

    python -m bench.keyword_candidates --docs 300000

MultiHop's articles are cut into ~150-word chunks and tokenized once with the product's own
tokenizer (`assistant.index.lexical.tokenize`); the corpus is those token lists repeated
under new ids until it holds `--docs` documents. Each candidate then reports: the bulk build,
one write of 10 new documents (added and made searchable), and the top-50 query time over
MultiHop's dev questions (p50 / p95). bm25s has no incremental write: its "write" is a full
rebuild, which is what the old index did on every change.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import bm25s
import numpy as np
import tantivy

from assistant.index.lexical import tokenize
from bench.corpora import SHARED_DATA

# BM25's usual parameters, as bm25s ran them in the old index (and as tantivy has them).
K1, B = 1.2, 0.75


def corpus(n: int) -> tuple[list[list[str]], list[list[str]]]:
    """`n` token lists (MultiHop chunks, repeated) and the dev questions' token lists."""
    chunks: list[list[str]] = []
    with (SHARED_DATA / "multihop" / "articles.jsonl").open() as f:
        for line in f:
            words = json.loads(line)["body"].split()
            for s in range(0, len(words), 150):
                chunks.append(tokenize(" ".join(words[s:s + 150])))
    with (SHARED_DATA / "multihop" / "queries_dev.jsonl").open() as f:
        queries = [tokenize(json.loads(line)["question"]) for line in f][:100]
    return [chunks[i % len(chunks)] for i in range(n)], [q for q in queries if q]


def _pcts(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}


def run_tantivy(docs: list[list[str]], queries: list[list[str]], where: Path) -> dict:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("text", stored=False, tokenizer_name="whitespace")
    schema = builder.build()
    index = tantivy.Index(schema, path=str(where))
    started = time.perf_counter()
    writer = index.writer(heap_size=200_000_000, num_threads=2)
    for i, terms in enumerate(docs):
        writer.add_document(tantivy.Document(id=str(i), text=" ".join(terms)))
    writer.commit()
    writer.wait_merging_threads()
    build = time.perf_counter() - started
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    writes = []
    for w in range(5):
        started = time.perf_counter()
        for j in range(10):
            writer.add_document(tantivy.Document(id=f"new{w}-{j}", text=" ".join(docs[j])))
        writer.commit()
        index.reload()
        writes.append(time.perf_counter() - started)
    searcher = index.searcher()
    times, found = [], 0
    for terms in queries:
        started = time.perf_counter()
        query = tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", t))
            for t in dict.fromkeys(terms)])
        hits = searcher.search(query, 50, count=False).hits
        found += len([searcher.doc(address)["id"][0] for _, address in hits])
        times.append(time.perf_counter() - started)
    return {"build_s": round(build, 1), "write_10_docs_ms": _pcts(writes)["p50_ms"],
            **_pcts(times), "hits": found}


def run_fts5(docs: list[list[str]], queries: list[list[str]], where: Path) -> dict:
    db = sqlite3.connect(where / "fts.sqlite")
    db.execute("CREATE VIRTUAL TABLE chunks USING fts5(id UNINDEXED, text, "
               "tokenize='unicode61 remove_diacritics 0')")
    started = time.perf_counter()
    db.executemany("INSERT INTO chunks VALUES (?, ?)",
                   ((str(i), " ".join(t)) for i, t in enumerate(docs)))
    db.commit()
    build = time.perf_counter() - started
    writes = []
    for w in range(5):
        started = time.perf_counter()
        db.executemany("INSERT INTO chunks VALUES (?, ?)",
                       ((f"new{w}-{j}", " ".join(docs[j])) for j in range(10)))
        db.commit()
        writes.append(time.perf_counter() - started)
    times, found = [], 0
    for terms in queries:
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
        started = time.perf_counter()
        found += len(db.execute("SELECT id, bm25(chunks) FROM chunks WHERE chunks MATCH ? "
                                "ORDER BY bm25(chunks) LIMIT 50", (match,)).fetchall())
        times.append(time.perf_counter() - started)
    db.close()
    return {"build_s": round(build, 1), "write_10_docs_ms": _pcts(writes)["p50_ms"],
            **_pcts(times), "hits": found}


def run_bm25s(docs: list[list[str]], queries: list[list[str]]) -> dict:
    started = time.perf_counter()
    model = bm25s.BM25(k1=K1, b=B)
    model.index(docs, show_progress=False)
    build = time.perf_counter() - started
    times, found = [], 0
    for terms in queries:
        started = time.perf_counter()
        scores = np.asarray(model.get_scores(terms))
        top = np.argpartition(-scores, 49)[:50]
        found += int((scores[top] > 0).sum())
        times.append(time.perf_counter() - started)
    # No incremental add: a write rebuilds the whole index.
    return {"build_s": round(build, 1), "write_10_docs_ms": round(build * 1000, 1),
            **_pcts(times), "hits": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300_000)
    args = parser.parse_args()
    docs, queries = corpus(args.docs)
    print(f"{len(docs):,} documents, {len(queries)} queries "
          f"(mean {statistics.mean(len(q) for q in queries):.1f} terms)")
    where = Path(tempfile.mkdtemp(prefix="keyword-candidates-"))
    try:
        for name, run in (("tantivy", lambda: run_tantivy(docs, queries, where / "t")),
                          ("sqlite-fts5", lambda: run_fts5(docs, queries, where)),
                          ("bm25s", lambda: run_bm25s(docs, queries))):
            if name == "tantivy":
                (where / "t").mkdir()
            figures = run()
            # A query time over an index that found nothing would be no figure at all.
            if figures["hits"] < 25 * len(queries):
                raise SystemExit(f"{name} found {figures['hits']} hits for {len(queries)} "
                                 "queries: it measured an index that does not answer")
            print(name, json.dumps(figures), flush=True)
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()

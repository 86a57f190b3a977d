"""Kill -9 in the middle of a large ingest, run it again: the store ends exactly like a clean
single run (no duplicates, no half article)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA, keyword_hits, make_settings

from assistant.index.store import NewsStore
from ingest.pipeline import Ingestor

pytestmark = pytest.mark.slow

ARTICLES = SHARED_DATA / "multihop" / "articles.jsonl"


def _ingest_process(paths: list[Path], data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_"))}
    return subprocess.Popen([sys.executable, "-m", "ingest", *map(str, paths), "--data-dir",
                             str(data_dir), "--quiet"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _snapshot(store: NewsStore) -> tuple[list[str], dict[str, str]]:
    ids = sorted(store.chunks.get(include=[])["ids"])
    records = {r.article_id: r.content_hash for r in store.list_articles(limit=10_000)}
    return ids, records


def test_kill_9_mid_ingest_then_rerun_equals_a_clean_run(tmp_path: Path, embeddings) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(ARTICLES.read_text().splitlines(keepends=True)[:40]))

    crashed = tmp_path / "crashed"
    process = _ingest_process([corpus], crashed)
    # Model load takes a few seconds; the first batches are written a few seconds later.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (crashed / "chroma.sqlite3").exists():
        time.sleep(0.2)
    time.sleep(9)
    assert process.poll() is None, "ingest finished before it could be killed: use more articles"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    rerun = Ingestor(make_settings(crashed), embeddings=embeddings)
    half = _snapshot(rerun.store)
    keyword_hits(rerun.store, "news", 1)  # the keyword index now mirrors the crashed store
    assert sorted(rerun.store.keywords().chunk_ids()) == half[0]
    report = rerun.ingest([corpus])
    assert report.ok, report.errors

    clean = Ingestor(make_settings(tmp_path / "clean"), embeddings=embeddings)
    clean.ingest([corpus])

    after, expected = _snapshot(rerun.store), _snapshot(clean.store)
    assert after == expected
    assert len(after[0]) == len(set(after[0]))
    # The keyword index followed the repair and the rerun: no orphan or missing entries.
    keyword_hits(rerun.store, "news", 1)
    assert sorted(rerun.store.keywords().chunk_ids()) == after[0]
    assert len(half[0]) < len(expected[0]), "the kill should have left the ingest unfinished"
    for record in rerun.store.list_articles(limit=10_000):
        assert len(rerun.store.chunks_of(record.article_id)) == record.n_chunks

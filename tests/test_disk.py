"""The embedded store on a full or a read-only disk: a clear error, nothing corrupted.
These tests mount a small tmpfs and a read-only bind mount, so they run as root (as CI does)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES, SHARED_DATA, make_settings

from assistant.store import NewsStore, StoreError
from ingest.pipeline import Ingestor

pytestmark = pytest.mark.slow


def _mount(*args: str) -> None:
    assert os.geteuid() == 0, "these tests mount file systems: run them as root (CI does)"
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _ingest(paths: list[Path], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_"))}
    return subprocess.run([sys.executable, "-m", "ingest", *map(str, paths), "--data-dir",
                           str(data_dir), "--quiet"], env=env, capture_output=True, text=True,
                          timeout=600)


def _consistent(store: NewsStore) -> list[str]:
    assert store.articles.get(where={"status": "pending"})["ids"] == []
    for record in store.list_articles(limit=10_000):
        assert len(store.chunks_of(record.article_id)) == record.n_chunks
    return sorted(store.chunks.get(include=[])["ids"])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point))
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def test_full_disk_is_a_clear_error_and_the_next_run_heals(small_disk: Path, tmp_path: Path,
                                                            embeddings) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = (SHARED_DATA / "multihop" / "articles.jsonl").read_text().splitlines(keepends=True)
    corpus.write_text("".join(lines[:25]))

    full = _ingest([corpus], small_disk / "store")
    assert full.returncode == 2
    assert "disk is full" in full.stderr and "run newsdesk-ingest again" in full.stderr

    _mount("-o", "remount,size=200m", str(small_disk))
    again = _ingest([corpus], small_disk / "store")
    assert again.returncode == 0, again.stderr

    clean = Ingestor(make_settings(tmp_path / "clean"), embeddings=embeddings)
    clean.ingest([corpus])
    healed = NewsStore(make_settings(small_disk / "store"), embeddings)
    assert _consistent(healed) == _consistent(clean.store)
    assert healed.count_articles() == 25


def test_read_only_store_is_a_clear_error_and_stays_intact(tmp_path: Path, embeddings,
                                                            seed_path: Path) -> None:
    store_dir = tmp_path / "store"
    Ingestor(make_settings(store_dir), embeddings=embeddings).ingest([SAMPLES])
    view = tmp_path / "read-only"
    view.mkdir()
    _mount("--bind", str(store_dir), str(view))
    try:
        _mount("-o", "remount,ro,bind", str(view))
        with pytest.raises(StoreError, match="read-only"):
            Ingestor(make_settings(view), embeddings=embeddings)
        result = _ingest([seed_path], view)
        assert result.returncode == 2 and "read-only" in result.stderr
    finally:
        subprocess.run(["umount", "--lazy", str(view)], check=False)
    store = NewsStore(make_settings(store_dir), embeddings)
    assert store.count_articles() == 7 and _consistent(store)

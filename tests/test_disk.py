"""The embedded store on a full or a read-only disk: a clear error, nothing corrupted.
These tests mount a small tmpfs and a read-only bind mount, so they run as root (as CI does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import SAMPLES, SHARED_DATA, free_port, live_server, make_settings, start_ui
from fastapi.testclient import TestClient

from assistant.errors import StoreError
from assistant.index.store import NewsStore
from assistant.service import Assistant
from assistant.settings import MIN_FREE_DISK_FLOOR_MB
from ingest.pipeline import Ingestor
from wiring import create_app

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


def _multihop(n: int) -> list[dict]:
    lines = (SHARED_DATA / "multihop" / "articles.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:n]]


def test_server_on_a_full_disk_refuses_writes_before_chroma_meets_it(small_disk: Path) -> None:
    # The default reserve: the write is refused up front, nothing is half-written.
    _mount("-o", "remount,size=8m", str(small_disk))
    assistant = Assistant(make_settings(small_disk / "store", min_free_disk_mb=32))
    client = TestClient(create_app(assistant))
    response = client.post("/articles", json={"articles": _multihop(3)})
    assert response.status_code == 503
    assert "disk is full" in response.json()["detail"] and "nothing was written" in \
        response.json()["detail"]
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded" and health.json()["cause"] == "disk_full"
    assert assistant.store.count_chunks() == 0
    _mount("-o", "remount,size=200m", str(small_disk))
    assert client.post("/articles", json={"articles": _multihop(3)}).json()["added"] == 3
    assert client.get("/health").json()["status"] == "ok"


def test_chroma_failing_on_a_full_disk_cites_nothing_uncommitted_and_recovers(
        small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the free-space check Chroma itself runs out of space mid-write (its core can
    # then hang on the next write of that client unless the store replaces it).
    _mount("-o", "remount,size=5m", str(small_disk))
    assistant = Assistant(make_settings(small_disk / "store",
                                        min_free_disk_mb=MIN_FREE_DISK_FLOOR_MB))
    monkeypatch.setattr(assistant.store, "_ensure_space", lambda items: None)
    articles = _multihop(25)
    first_client = assistant.store.client
    with live_server(create_app(assistant)) as url:
        full = httpx.post(f"{url}/articles", json={"articles": articles}, timeout=300)
        assert full.status_code == 503, full.text
        assert "disk is full" in full.json()["detail"]
        listed = {a["article_id"] for a in
                  httpx.get(f"{url}/articles?limit=500").json()["articles"]}
        for article in articles[:5]:
            answer = httpx.post(f"{url}/answer", json={"question": article["title"]},
                                timeout=60)
            if answer.status_code == 200:  # or 503 while the disk is full: never a hang
                cited = {c["article_id"] for c in answer.json()["citations"]}
                assert cited <= listed, "an uncommitted article was cited"
            else:
                assert answer.status_code == 503 and "disk is full" in answer.text
        # The failed batch was rolled back, so what is free decides: degraded while less
        # than a few MB are, ok (after reopening the client) otherwise; never a hang.
        health = httpx.get(f"{url}/health", timeout=60)
        assert health.json()["status"] == ("degraded" if health.status_code == 503 else "ok")
        assert health.json().get("cause") in (None, "disk_full")

        # The client that failed was replaced by a fresh one (the failed one can hang).
        assert assistant.store.client is not first_client
        _mount("-o", "remount,size=200m", str(small_disk))
        again = httpx.post(f"{url}/articles", json={"articles": articles}, timeout=300)
        assert again.status_code == 200, again.text
        assert again.json()["failed"] == 0
        health = httpx.get(f"{url}/health", timeout=60).json()
        assert health["status"] == "ok" and health["articles"] == 25
        answer = httpx.post(f"{url}/answer", json={"question": articles[7]["title"]},
                            timeout=60).json()
        assert answer["citations"]
    assert _consistent(assistant.store)


def _free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def test_questions_are_answered_after_writes_are_refused_at_the_floor(small_disk: Path) -> None:
    _mount("-o", "remount,size=96m", str(small_disk))
    assistant = Assistant(make_settings(small_disk / "store",
                                        min_free_disk_mb=MIN_FREE_DISK_FLOOR_MB))
    articles = _multihop(60)
    with live_server(create_app(assistant)) as url:
        first = httpx.post(f"{url}/articles", json={"articles": articles[:3]}, timeout=300)
        assert first.json()["added"] == 3, first.text
        # Something else fills the disk to 8 MB above the floor; then writes come until
        # the store refuses one.
        filler = small_disk / "filler"
        with filler.open("wb") as out:
            os.posix_fallocate(out.fileno(), 0,
                               _free_bytes(small_disk) - (MIN_FREE_DISK_FLOOR_MB + 8) * 2**20)
        answered, refused = 3, None
        for start in range(3, len(articles), 3):
            response = httpx.post(f"{url}/articles", json={"articles": articles[start:start + 3]},
                                  timeout=300)
            if response.status_code != 200:
                refused = response
                break
            answered += response.json()["added"]
        assert refused is not None, "the disk never filled up"
        assert refused.status_code == 503 and "nothing was written" in refused.json()["detail"]
        # Chroma never met a full disk: the reserve is still there.
        assert _free_bytes(small_disk) > MIN_FREE_DISK_FLOOR_MB * 2**20
        for article in articles[:answered:4]:
            answer = httpx.post(f"{url}/answer", json={"question": article["title"]},
                                timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["citations"], article["title"]
        health = httpx.get(f"{url}/health", timeout=60)
        assert health.status_code == 503
        assert health.json()["cause"] == "disk_full" and "did not fit" in health.json()["reason"]
        assert health.json()["articles"] == answered
        # Space comes back: writes go through again and /health is ok.
        filler.unlink()
        again = httpx.post(f"{url}/articles", json={"articles": articles[answered:answered + 3]},
                           timeout=300)
        assert again.status_code == 200 and again.json()["added"] == 3
        assert httpx.get(f"{url}/health", timeout=60).json()["status"] == "ok"
    assert _consistent(assistant.store)


def test_a_reserve_below_the_floor_is_refused_at_start_up(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = start_ui(tmp_path / "store", free_port(), log,
                      {"NEWSDESK_MIN_FREE_DISK_MB": str(MIN_FREE_DISK_FLOOR_MB - 1)})
    try:
        code = server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    assert code != 0
    assert (f"NEWSDESK_MIN_FREE_DISK_MB={MIN_FREE_DISK_FLOOR_MB - 1} is below the floor of "
            f"{MIN_FREE_DISK_FLOOR_MB} MB") in log.read_text()
    assert not (tmp_path / "store").exists()  # refused before the store was opened

"""newsdesk against a real Chroma server (`chroma run` on loopback), as a deployment runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port, make_settings, ui_server
from fastapi.testclient import TestClient

from assistant.errors import StoreError
from assistant.service import Assistant
from assistant.settings import Settings
from ingest.pipeline import Ingestor
from wiring import create_app

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture
def server_settings(chroma_port: int, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    # A collection per test: they share one server.
    return make_settings(tmp_path / "unused", chroma_host="127.0.0.1", chroma_port=chroma_port,
                         collection=f"t{abs(hash(request.node.name)) % 10**8}")


def test_articles_ingested_by_another_process_are_answerable_at_once(
        server_settings: Settings, seed_path: Path) -> None:
    assistant = Assistant(server_settings)
    assert assistant.ask("How large is Japan's debt compared with its GDP?").refused
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(server_settings.chroma_port),
               NEWSDESK_COLLECTION=server_settings.collection)
    done = subprocess.run([sys.executable, "-m", "ingest", str(seed_path), "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = assistant.ask("How large is Japan's debt compared with its GDP?")
    assert not answer.refused and "400%" in answer.answer


def test_ingest_update_and_answer_through_a_chroma_server(server_settings: Settings, embeddings,
                                                          seed_path: Path,
                                                          tmp_path: Path) -> None:
    ingestor = Ingestor(server_settings, embeddings=embeddings)
    first = ingestor.ingest([seed_path])
    assert first.counts["added"] == 1
    assert ingestor.ingest([seed_path]).counts["unchanged"] == 1
    assert ingestor.store.count_chunks() == first.chunks_written
    assert not (tmp_path / "unused").exists(), "no embedded store when a server is configured"

    story = tmp_path / "story.json"
    story.write_text(json.dumps({"title": "Pier", "url": "https://news.test/pier",
                                 "body": "The old pier at Alder Point closed. " * 80}))
    ingestor.ingest([story])
    story.write_text(json.dumps({"title": "Pier", "url": "https://news.test/pier",
                                 "body": "The old pier at Alder Point reopened on Friday."}))
    assert ingestor.ingest([story]).counts["updated"] == 1
    assert ingestor.store.count_chunks() == first.chunks_written + 1

    assistant = Assistant(server_settings, store=ingestor.store)
    answer = assistant.ask("How large is Japan's debt compared with its GDP?")
    assert "400%" in answer.answer and answer.citations
    assert assistant.health()["articles"] == 2


def test_a_stalled_or_stopped_server_is_a_clear_error_not_a_hang(
        tmp_path: Path, embeddings, seed_path: Path) -> None:
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    process = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "data"), "--host",
                                "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        settings = make_settings(tmp_path / "unused", chroma_host="127.0.0.1", chroma_port=port,
                                 chroma_timeout_s=2.0)
        deadline = time.monotonic() + 60
        while True:
            try:
                ingestor = Ingestor(settings, embeddings=embeddings)
                break
            except StoreError:
                assert time.monotonic() < deadline, "chroma run did not start"
                time.sleep(0.3)
        ingestor.ingest([seed_path])
        assistant = Assistant(settings, store=ingestor.store)
        client = TestClient(create_app(assistant))
        question = {"question": "How large is Japan's debt compared with its GDP?"}
        assert client.post("/answer", json=question).status_code == 200

        process.send_signal(signal.SIGSTOP)  # stalled: accepts connections, never answers
        started = time.monotonic()
        stalled = client.post("/answer", json=question)
        assert stalled.status_code == 503 and "Chroma" in stalled.json()["detail"]
        assert time.monotonic() - started < 15

        process.send_signal(signal.SIGCONT)
        process.kill()  # stopped
        process.wait(timeout=30)
        started = time.monotonic()
        stopped = client.post("/answer", json=question)
        assert stopped.status_code == 503 and "Chroma" in stopped.json()["detail"]
        assert client.get("/health").status_code == 503
        assert time.monotonic() - started < 15
    finally:
        process.kill()
        process.wait(timeout=30)


def _answers_within(url: str, question: str, expected: str, seconds: float) -> float:
    """Seconds until `url` answers `question` with `expected` in the answer; fails after
    `seconds`."""
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            reply = client.post("/answer", json={"question": question})
            assert reply.status_code == 200, reply.text
            if expected in reply.json()["answer"]:
                return time.monotonic() - started
            assert time.monotonic() - started < seconds, (url, reply.json()["answer"])
            time.sleep(0.2)


def test_two_servers_on_one_chroma_follow_each_others_writes(server_settings: Settings,
                                                             seed_path: Path,
                                                             tmp_path: Path) -> None:
    env = {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(server_settings.chroma_port),
           "NEWSDESK_COLLECTION": server_settings.collection}
    question = "How large is Japan's debt compared with its GDP?"
    with ui_server(tmp_path / "a", tmp_path / "a.log", env) as (first, _), \
            ui_server(tmp_path / "b", tmp_path / "b.log", env) as (second, _):
        for url in (first, second):
            assert httpx.post(f"{url}/answer", json={"question": question},
                              timeout=60).json()["refused"]
        # The operator's CLI writes to the Chroma server directly: both servers follow.
        cli = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_"))}
        done = subprocess.run([sys.executable, "-m", "ingest", str(seed_path), "--quiet"],
                              env={**cli, **env}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        for url in (first, second):
            assert _answers_within(url, question, "400%", 5.0) <= 5.0
        # An article taken in by one server is answerable from the other.
        story = {"title": "Skerrow lighthouse keepers return", "published_at": "2026-05-02",
                 "url": "https://news.test/skerrow",
                 "body": "Two keepers moved back into the Skerrow lighthouse on Saturday, "
                         "after 31 years in which its lamp ran without a crew."}
        added = httpx.post(f"{first}/articles", json={"articles": [story]}, timeout=120)
        assert added.status_code == 200 and added.json()["added"] == 1
        assert _answers_within(second, "How long did the Skerrow lighthouse lamp run without "
                               "a crew?", "31 years", 5.0) <= 5.0

"""The real server process (`python ui.py`) as an operator runs it: `newsdesk-ingest` into its
data dir while 20 clients ask, a second server on the same dir, SIGTERM with open streams."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import (
    SAMPLES,
    SHARED_DATA,
    ask_until,
    free_port,
    make_settings,
    server_env,
    start_ui,
    ui_server,
)

from assistant.types import make_article_id
from ingest.pipeline import Ingestor

pytestmark = [pytest.mark.slow, pytest.mark.server]

CLIENTS = 20
RGB = SHARED_DATA / "rgb" / "en"
SAMPLE_QUESTIONS = [json.loads(line)["question"] for line in
                    (Path(__file__).parent / "data" / "sample_questions.jsonl").read_text()
                    .splitlines()]


def _samples_store(data_dir: Path, embeddings) -> None:
    ingestor = Ingestor(make_settings(data_dir), embeddings=embeddings)
    assert ingestor.ingest([SAMPLES]).ok
    ingestor.close()  # the directory is free for the server process


def _rgb_questions(n: int) -> list[dict]:
    rows = [json.loads(line) for line in (RGB / "questions.jsonl").read_text().splitlines()]
    return [q for q in rows if q["answerable"]][:n]


def test_cli_ingest_into_the_server_dir_while_20_clients_ask(tmp_path: Path, embeddings) -> None:
    store = tmp_path / "store"
    _samples_store(store, embeddings)
    with ui_server(store, tmp_path / "server.log") as (url, _):
        stop, errors, answers = threading.Event(), [], []
        clients = [threading.Thread(target=ask_until,
                                    args=(url, SAMPLE_QUESTIONS, stop, errors, answers))
                   for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(1)
            done = subprocess.run(
                [sys.executable, "-m", "ingest", str(RGB / "corpus.jsonl"), "--quiet"],
                env=server_env(store, 0), cwd=tmp_path, capture_output=True, text=True,
                timeout=1200)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=180)
        assert done.returncode == 0, done.stderr
        assert "Sending the articles to the newsdesk server" in done.stderr
        assert "│   926 │" in done.stdout  # all 926 passages added
        assert errors == []
        assert len(answers) >= CLIENTS
        for answer in answers:
            assert answer.refused == (answer.citations == [])

        # Asked right after the CLI returned: no restart, no wait.
        cli_only = {make_article_id(external_id=json.loads(line)["id"])
                    for line in (RGB / "corpus.jsonl").read_text().splitlines()}
        correct = 0
        questions = _rgb_questions(10)
        for q in questions:
            response = httpx.post(f"{url}/answer", json={"question": q["question"]}, timeout=60)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert {c["article_id"] for c in answer["citations"]} & cli_only, answer
            correct += any(a.lower() in answer["answer"].lower() for a in q["answers"])
        assert correct >= len(questions) // 2
        health = httpx.get(f"{url}/health").json()
        assert health["status"] == "ok" and health["articles"] == 7 + 926


def test_a_second_server_on_the_same_dir_refuses_with_a_clear_message(tmp_path: Path,
                                                                      embeddings) -> None:
    store = tmp_path / "store"
    _samples_store(store, embeddings)
    with ui_server(store, tmp_path / "first.log") as (url, first):
        second = start_ui(store, free_port(), tmp_path / "second.log")
        assert second.wait(timeout=120) != 0
        message = (tmp_path / "second.log").read_text()
        assert f"served by a newsdesk server (pid {first.pid}) at {url}" in message
        assert "one server per data directory" in message and "Traceback" not in message
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_sigterm_stops_the_server_within_10_s_despite_an_open_heartbeat(tmp_path: Path,
                                                                        embeddings) -> None:
    store = tmp_path / "store"
    _samples_store(store, embeddings)
    with ui_server(store, tmp_path / "server.log") as (url, process):
        opened = threading.Event()

        def heartbeat() -> None:  # what an open browser tab holds
            with contextlib.suppress(httpx.HTTPError), httpx.stream(
                    "GET", f"{url}/gradio_api/heartbeat/test-session", timeout=60) as response:
                opened.set()
                for _ in response.iter_bytes():
                    pass

        threading.Thread(target=heartbeat, daemon=True).start()
        assert opened.wait(30)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert time.monotonic() - started < 10
    # The directory is free again: a direct ingest opens it.
    again = Ingestor(make_settings(store), embeddings=embeddings)
    assert again.store.count_articles() == 7
    again.close()

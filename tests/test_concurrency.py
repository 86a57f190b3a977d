"""20 clients asking over HTTP while articles are ingested: no errors, well-formed answers, and
the new articles are answerable without a restart, with the embedded store (ingest through
the server's route) and with a Chroma server (ingest by the CLI in another process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import SAMPLES, ask_until, live_server, make_settings

from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import Answer
from ingest.pipeline import Ingestor
from wiring import create_app

pytestmark = [pytest.mark.slow, pytest.mark.server]

CLIENTS = 20
QUESTIONS = [json.loads(line)["question"] for line in
             (Path(__file__).parent / "data" / "sample_questions.jsonl").read_text().splitlines()]
TOWNS = ["Arlow", "Bexford", "Corrin", "Dunmere", "Elsby", "Fallon", "Garth", "Hollin"]


def _new_articles() -> list[dict[str, str]]:
    return [{"title": f"{town} opens a new footbridge",
             "body": f"The town of {town} opened a footbridge over the river on Tuesday. "
                     f"The {town} footbridge cost {100 + i} thousand pounds and took {i + 2} "
                     "months to build.",
             "url": f"https://news.test/footbridge-{town.lower()}"}
            for i, town in enumerate(TOWNS)]


def _run_under_load(url: str, ingest: Callable[[], None]) -> list[Answer]:
    stop, errors, answers = threading.Event(), [], []
    clients = [threading.Thread(target=ask_until,
                                args=(url, QUESTIONS, stop, errors, answers, 60))
               for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(1)
        ingest()
        time.sleep(1)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=120)
    assert errors == []
    assert len(answers) >= CLIENTS
    for answer in answers:
        assert answer.refused == (answer.citations == [])
        assert {int(n) for n in __import__("re").findall(r"\[(\d+)\]", answer.answer)} == {
            c.n for c in answer.citations}
    return answers


def _assert_new_articles_answerable(url: str) -> None:
    for i, town in enumerate(TOWNS[:3]):
        answer = httpx.post(f"{url}/answer", timeout=60, json={
            "question": f"How much did the new footbridge in {town} cost?"}).json()
        assert f"{100 + i} thousand pounds" in answer["answer"], answer


def _store(settings: Settings, embeddings) -> Settings:
    assert Ingestor(settings, embeddings=embeddings).ingest([SAMPLES]).ok
    return settings


def test_ingest_through_the_server_while_20_clients_ask(tmp_path: Path, embeddings) -> None:
    settings = _store(make_settings(tmp_path / "store"), embeddings)
    with live_server(create_app(Assistant(settings))) as url:

        def ingest() -> None:
            articles = _new_articles()
            for half in (articles[:4], articles[4:]):
                response = httpx.post(f"{url}/articles", json={"articles": half}, timeout=300)
                assert response.status_code == 200 and response.json()["added"] == len(half)

        _run_under_load(url, ingest)
        _assert_new_articles_answerable(url)


def test_cli_ingest_into_a_chroma_server_while_20_clients_ask(tmp_path: Path, embeddings,
                                                               chroma_port: int) -> None:
    settings = _store(make_settings(tmp_path / "unused", chroma_host="127.0.0.1",
                                    chroma_port=chroma_port, collection="concurrency"),
                      embeddings)
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(a) for a in _new_articles()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(chroma_port),
               NEWSDESK_COLLECTION="concurrency")
    with live_server(create_app(Assistant(settings))) as url:

        def ingest() -> None:
            done = subprocess.run([sys.executable, "-m", "ingest", str(feed), "--quiet"],
                                  env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr

        _run_under_load(url, ingest)
        _assert_new_articles_answerable(url)

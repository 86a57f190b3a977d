"""Shared fixtures: real Chroma in temp dirs, the real packaged model, the shared data."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from news_site import NewsSite

from assistant.index.embeddings import NewsEmbeddings, get_embeddings
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import Answer
from evals.data import SHARED_DATA
from ingest.metadata import to_article
from ingest.pipeline import Ingestor
from ingest.readers import read_file

ROOT = Path(__file__).resolve().parents[1]
SEED = SHARED_DATA / "seed" / "us-japan-trade-talks.txt"
SAMPLES = ROOT / "samples"

_ENV_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHROMA_HOST", "CHROMA_PORT",
             "NEWSDESK_LLM_GGUF")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own LLM or Chroma server settings."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: a store under `data_dir`, no `.env`, no LLM unless asked for."""
    values: dict[str, Any] = {"data_dir": data_dir, "openai_api_key": None,
                              "openai_base_url": None, "chroma_host": None, "llm_gguf": None}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def embeddings() -> NewsEmbeddings:
    return get_embeddings(Settings(_env_file=None))


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        return make_settings(tmp_path / "store", **overrides)

    return factory


@pytest.fixture
def ingestor(settings_factory: Callable[..., Settings], embeddings: NewsEmbeddings) -> Ingestor:
    """An ingestor over a fresh store in a temp dir."""
    return Ingestor(settings_factory(), embeddings=embeddings)


@pytest.fixture(scope="session")
def seed_path() -> Path:
    assert SEED.is_file(), f"the shared seed article is missing: {SEED}"
    return SEED


@pytest.fixture(scope="session")
def seed_body(seed_path: Path) -> str:
    """The seed article's body as ingest stores it (cleaned): citations' offsets index it."""
    return to_article(read_file(seed_path, 2_000_000).articles[0]).body


# The seed article's sentence in which Japan's finance minister speaks: what "What did he
# say?" after a question about him must cite (tests of follow-ups through the API and the chat).
KATO_STATEMENT = ("It is only natural for Japan to use its held US Treasury bonds as "
                  "negotiation chips.")


@pytest.fixture(scope="session")
def seed_store(tmp_path_factory: pytest.TempPathFactory, embeddings: NewsEmbeddings,
               seed_path: Path) -> Path:
    """The data dir of a store holding only the shared seed article (read-only use)."""
    data_dir = tmp_path_factory.mktemp("seed") / "store"
    report = Ingestor(make_settings(data_dir), embeddings=embeddings).ingest([seed_path])
    assert report.ok, report.errors
    return data_dir


@pytest.fixture(scope="session")
def news_store(tmp_path_factory: pytest.TempPathFactory, embeddings: NewsEmbeddings,
               seed_path: Path) -> Settings:
    """Settings of one store holding the seed article and the bundled samples (read-only use)."""
    settings = make_settings(tmp_path_factory.mktemp("news") / "store")
    report = Ingestor(settings, embeddings=embeddings).ingest([seed_path, SAMPLES])
    assert report.ok, report.errors
    return settings


@pytest.fixture(scope="session")
def news_assistant(news_store: Settings) -> Assistant:
    """The offline assistant over the seed article and the samples."""
    return Assistant(news_store)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the test item (the browser fixture screenshots failures)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A `chroma run` server on a free loopback port, stopped after the module."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("w")
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(path / "data"), "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (path / "server.log").read_text()
            assert time.monotonic() < deadline, "chroma run did not start in 60 s"
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def news_site() -> Iterator[NewsSite]:
    """The test news site (`tests/news_site.py`) served on a loopback port."""
    site = NewsSite()
    with live_server(site.app()) as base:
        site.base = base
        yield site


def server_env(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `python ui.py` subprocess: this one without the developer's own
    newsdesk, LLM or Chroma settings, then the store dir, the port and `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "CHROMA_", "NEWSDESK_"))}
    env.update(NEWSDESK_DATA_DIR=str(data_dir), NEWSDESK_PORT=str(port),
               NEWSDESK_SHARED_DATA=str(SHARED_DATA), PYTHONUNBUFFERED="1")
    return {**env, **(extra or {})}


def start_ui(data_dir: Path, port: int, log: Path,
             extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `python ui.py` as shipped; its output goes to `log`."""
    # cwd: a folder without a .env, so only the environment configures the server.
    return subprocess.Popen([sys.executable, str(ROOT / "ui.py")],
                            env=server_env(data_dir, port, extra), cwd=log.parent,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


@contextlib.contextmanager
def ui_server(data_dir: Path, log: Path, extra: dict[str, str] | None = None,
              ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python ui.py` on `data_dir`, up and answering on a free loopback port; yields its URL
    and process, and stops it afterwards."""
    port = free_port()
    process = start_ui(data_dir, port, log, extra)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not start:\n" + log.read_text()
            time.sleep(0.3)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def ask_until(url: str, questions: list[str], stop: threading.Event, errors: list[str],
              answers: list[Answer], timeout: float = 120) -> None:
    """One client asking random `questions` until `stop`; every non-200 reply or exception
    goes to `errors`, every answer to `answers`."""
    with httpx.Client(base_url=url, timeout=timeout) as client:
        while not stop.is_set():
            try:
                response = client.post("/answer", json={"question": random.choice(questions)})
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                answers.append(Answer.model_validate(response.json()))
            except Exception as exc:  # every failure is what the calling test counts
                errors.append(f"{type(exc).__name__}: {exc}")


def keyword_hits(store: Any, query: str, k: int) -> list[str]:
    """The k best chunk ids for `query` in a store's keyword index (caught up first), best
    first."""
    hits = store.keywords().search(query, k, None)
    return sorted(hits, key=lambda cid: -hits[cid])

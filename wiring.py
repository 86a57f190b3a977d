"""The composition root: the HTTP app over the assistant, with the ingest pipeline writing
through the assistant's own store (the one place where `assistant` meets `ingest`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from fastapi import FastAPI

from assistant.server.http import build_app
from assistant.service import Assistant

if TYPE_CHECKING:
    from ingest.pipeline import Ingestor
    from ingest.web import WebResult

# `ingest` is imported on first use: its pipeline costs a second of the server's start-up, and
# a server that only answers never needs it.


def create_app(assistant: Assistant, chat_fns: Collection[int] = ()) -> FastAPI:
    """The HTTP API over `assistant`, taking articles into its store (POST /articles, the
    chat's second tab and the local route of `newsdesk-ingest`), and watching
    NEWSDESK_WATCH when it is set."""
    app = build_app(assistant, lambda: _ingestor(assistant), chat_fns,
                    lambda urls, on_url: _read_urls(assistant, urls, on_url))
    if assistant.settings.watch:
        _watch(app, assistant)
    return app


def _ingestor(assistant: Assistant) -> Ingestor:
    """The pipeline, writing through the assistant's store and model (built on the first
    write)."""
    from ingest.pipeline import Ingestor

    return Ingestor(assistant.settings, store=assistant.store, embeddings=assistant.embeddings)


def _read_urls(assistant: Assistant, urls: Sequence[str],
               on_url: Callable[[str], None] | None) -> WebResult:
    from ingest.web import read_urls

    # URLs from a user of the server: public addresses only (NEWSDESK_FETCH_ALLOW aside).
    return read_urls(urls, assistant.settings, on_url=on_url, trusted=False)


def _watch(app: FastAPI, assistant: Assistant) -> None:
    """Poll NEWSDESK_WATCH on a thread, writing through the app's one-writer lock, so the
    chat and the API answer from new items at once."""
    from ingest.watch import IngestorWriter, Watcher

    settings = assistant.settings
    watcher = Watcher(settings, settings.watch, IngestorWriter(app.state.writing),
                      settings.watch_every_s)
    stop = threading.Event()
    app.state.watcher, app.state.stop_watching = watcher, stop
    threading.Thread(target=watcher.run, args=(stop,), name="newsdesk-watch",
                     daemon=True).start()

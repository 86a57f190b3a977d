"""The server's wiring: the HTTP app over the assistant, with the ingest pipeline writing
through the assistant's own store (the one place where `assistant` meets `ingest`)."""

from __future__ import annotations

import threading
from collections.abc import Collection

from fastapi import FastAPI

from assistant.server.http import build_app
from assistant.service import Assistant


def create_app(assistant: Assistant, chat_fns: Collection[int] = ()) -> FastAPI:
    """The HTTP API over `assistant`, taking articles into its store (POST /articles and the
    local route of `newsdesk-ingest`)."""

    def ingestor():  # noqa: ANN202 - the pipeline is imported only when an article comes
        from ingest.pipeline import Ingestor

        return Ingestor(assistant.settings, store=assistant.store,
                        embeddings=assistant.embeddings)

    def read_urls(urls, on_url):  # noqa: ANN001, ANN202 - build_app's UrlReader
        from ingest.web import read_urls

        # URLs from a user of the server: public addresses only (NEWSDESK_FETCH_ALLOW aside).
        return read_urls(urls, assistant.settings, on_url=on_url, trusted=False)

    app = build_app(assistant, ingestor, chat_fns, read_urls)
    if assistant.settings.watch:
        _watch(app, assistant)
    return app


def _watch(app: FastAPI, assistant: Assistant) -> None:
    """Poll `NEWSDESK_WATCH` on a thread, writing through the app's one-writer lock, so the
    chat and the API answer from new items at once."""
    from ingest.watch import IngestorWriter, Watcher

    settings = assistant.settings
    watcher = Watcher(settings, settings.watch, IngestorWriter(app.state.writing),
                      settings.watch_every_s)
    stop = threading.Event()
    app.state.watcher, app.state.stop_watching = watcher, stop
    threading.Thread(target=watcher.run, args=(stop,), name="newsdesk-watch",
                     daemon=True).start()

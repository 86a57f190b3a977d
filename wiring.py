"""The composition root: the HTTP app over the assistant, with the ingest pipeline writing
through the assistant's own store (the one place where `assistant` meets `ingest`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

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
                    lambda urls, on_url: _read_urls(assistant, urls, on_url),
                    check_webhook=lambda url: _check_webhook(assistant, url))
    if assistant.settings.watch:
        _watch(app, assistant)
    _follow(app, assistant)
    return app


def _check_webhook(assistant: Assistant, url: str) -> str | None:
    """Why the fetch policy for users' URLs refuses a webhook URL, or None (it is checked
    again, address by address, when an update is sent)."""
    from urllib.parse import urlsplit

    import httpcore

    from ingest.fetch_guard import AddressPolicy, AddressRefused

    parts = urlsplit(url)
    try:
        AddressPolicy(assistant.settings.fetch_allow).addresses(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except AddressRefused as exc:
        return exc.reason
    except httpcore.ConnectError as exc:
        return f"refused: {exc}"
    return None


def _post_webhook(assistant: Assistant) -> Callable[[str, dict[str, Any]], None]:
    """POST an update to a follow's webhook, through the fetch policy for users' URLs (public
    addresses only, checked at every connection; no redirects followed)."""
    import httpx

    from ingest.fetch_guard import AddressPolicy, guarded_transport

    settings = assistant.settings
    client = httpx.Client(transport=guarded_transport(AddressPolicy(settings.fetch_allow)),
                          timeout=httpx.Timeout(settings.fetch_timeout_s),
                          follow_redirects=False,
                          headers={"User-Agent": settings.fetch_user_agent})

    def post(url: str, payload: dict[str, Any]) -> None:
        client.post(url, json=payload).raise_for_status()

    return post


def _follow(app: FastAPI, assistant: Assistant) -> None:
    """While the app is served: read the store's commit log on a thread and turn new articles
    into updates of the follows they add to (any writer's articles: this server's, the CLI's,
    another server's on one Chroma server)."""
    from assistant.follows import FollowWatcher

    stop = threading.Event()
    watcher = FollowWatcher(assistant, assistant.follow_book, notify=_post_webhook(assistant),
                            every_s=assistant.settings.follow_every_s)
    app.state.follow_watcher = watcher

    def start() -> None:
        watcher.check()  # the first look sets where following starts
        threading.Thread(target=watcher.run, args=(stop,), name="newsdesk-follows",
                         daemon=True).start()

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop.set)
    app.router.on_shutdown.append(watcher.close)


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

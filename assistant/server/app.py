"""The server's wiring: the HTTP app over the assistant, with the ingest pipeline writing
through the assistant's own store (the one place where `assistant` meets `ingest`)."""

from __future__ import annotations

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

    return build_app(assistant, ingestor, chat_fns)

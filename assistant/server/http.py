"""The HTTP app over `Assistant`: its routers, its middleware (access control, body limit) and
one exception handler per kind of error (no logic of its own)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import EmbeddingError, LLMError, NewsdeskError, QuestionError, StoreError
from assistant.index.store_owner import LOCAL_INGEST_ROUTE
from assistant.server.access import AccessControl
from assistant.server.answers import answers_router
from assistant.server.api_docs import add_api_docs
from assistant.server.articles import articles_router, local_router
from assistant.server.auth import require_key
from assistant.server.follows import WebhookCheck, follows_router
from assistant.server.health import health_router
from assistant.server.openai_api import is_openai_path, openai_error, openai_router
from assistant.server.validation import short_validation_errors
from assistant.server.writer import ArticleIngestor, UrlReader, Writer
from assistant.service import Assistant
from assistant.settings import Settings

# Where the chat's second tab uploads files: Gradio 6's route, the chat being mounted at `/`
# (`ui.create_server`).
GRADIO_UPLOAD_ROUTE = "/gradio_api/upload"

# Every error the assistant raises, as the HTTP status it answers with (most specific first).
ERROR_STATUS: tuple[tuple[type[NewsdeskError], int], ...] = (
    (QuestionError, 422), (LLMError, 502), (EmbeddingError, 503), (StoreError, 503))


def build_app(assistant: Assistant, ingestor: Callable[[], ArticleIngestor] | None = None,
              chat_fns: Collection[int] = (), read_urls: UrlReader | None = None,
              check_webhook: WebhookCheck | None = None) -> FastAPI:
    """The HTTP API over one `Assistant`: /answer, /answer/stream, /health, /articles,
    /sources, /docs, and the OpenAI-compatible /v1/chat/completions and /v1/models.

    `ingestor` builds what takes articles on the first POST (without it the server takes
    none: 503); `read_urls` fetches the URLs a user gives (without it, URLs get 503).
    `check_webhook` checks a follow's webhook URL against the fetch policy (without it
    follows take no webhook). `chat_fns`: ids of the answering functions of a Gradio chat to
    be mounted on the app, charged to the client's budget like /answer (see
    `assistant.server.access`). The top-level `wiring.create_app` wires the ingest pipeline in.
    """
    settings = assistant.settings
    app = FastAPI(
        title="newsdesk",
        description="Questions over ingested news, answered with a citation on every claim.",
        version="0.1.0",
        docs_url=None,  # served from local files below: the default page needs a CDN
        redoc_url=None,
    )
    add_api_docs(app)
    app.state.assistant = assistant
    app.add_exception_handler(RequestValidationError, short_validation_errors)
    app.add_exception_handler(NewsdeskError, _error_response)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Over the whole app, so it also guards the chat that ui.create_server mounts.
    app.add_middleware(AccessControl, settings=settings, chat_fns=chat_fns)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes,  # outermost
                       larger={LOCAL_INGEST_ROUTE: local_request_limit(settings),
                               GRADIO_UPLOAD_ROUTE: upload_limit(settings)})

    writer = Writer(ingestor, read_urls)
    app.state.writing = writer  # the server's watcher writes through the same lock
    app.state.add_urls = writer.add_urls  # and the chat's second tab adds URLs through it
    guarded = [Depends(require_key(settings))]
    app.include_router(health_router(assistant))
    app.include_router(answers_router(assistant, guarded))
    app.include_router(articles_router(assistant, writer, guarded))
    app.include_router(local_router(assistant, writer))
    app.include_router(openai_router(assistant, guarded))
    app.include_router(follows_router(assistant, guarded, check_webhook))
    return app


def local_request_limit(settings: Settings) -> int:
    """The largest body the local ingest route takes: an article at the size limit, escaped."""
    return max(settings.max_request_bytes, 2 * settings.max_article_bytes + 1_048_576)


def upload_limit(settings: Settings) -> int:
    """The largest body the chat's file upload takes: an article file at the size limit
    (NEWSDESK_MAX_ARTICLE_BYTES), with room for the multipart framing around it (a boundary
    and the part's headers, its file name included)."""
    return max(settings.max_request_bytes, settings.max_article_bytes + 16_384)


class BodyLimit:
    """ASGI middleware: requests whose body exceeds `max_bytes` get 413 before any parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}  # paths with a limit of their own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        detail = f"request body over {limit} bytes"
        response = (openai_error(413, detail, code="request_too_large")
                    if is_openai_path(scope.get("path", "")) else
                    JSONResponse({"detail": detail}, 413))
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)
    if is_openai_path(request.url.path):
        return openai_error(400 if status == 422 else status, str(exc))
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
    """FastAPI's answer to an HTTP error, in OpenAI's shape on the OpenAI routes."""
    if is_openai_path(request.url.path):
        code = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed"}
        return openai_error(exc.status_code, str(exc.detail), code=code.get(exc.status_code),
                            headers=getattr(exc, "headers", None))
    return await http_exception_handler(request, exc)

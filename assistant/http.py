"""The answer endpoint: a FastAPI app over `Assistant` (no logic of its own)."""


import hmac
import json
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.access import AccessControl
from assistant.llm import LLMError
from assistant.models import Answer
from assistant.models import Message as ChatMessage
from assistant.service import Assistant, QuestionError
from assistant.settings import Settings
from assistant.store import StoreError


class ExposureError(RuntimeError):
    """The server would be reachable from the network without an API key."""


def check_exposure(settings: Settings) -> None:
    """Refuse to serve on a non-loopback address without NEWSDESK_API_KEY."""
    if not settings.loopback_only and not settings.api_key:
        raise ExposureError(
            f"refusing to listen on {settings.host}: without NEWSDESK_API_KEY anyone who can "
            "reach this address could read the ingested news and use the answer endpoint. "
            "Set NEWSDESK_API_KEY, or listen on 127.0.0.1 (NEWSDESK_HOST)."
        )


def key_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing does not reveal the key."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _require_key(settings: Settings) -> Callable[..., None]:
    bearer = HTTPBearer(auto_error=False, description="NEWSDESK_API_KEY, when it is set")

    def require(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if settings.api_key is None:
            return
        expected = settings.api_key.get_secret_value()
        if credentials is None or not key_matches(credentials.credentials, expected):
            raise HTTPException(401, "missing or wrong API key: send "
                                     "'Authorization: Bearer <NEWSDESK_API_KEY>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return require


class BodyLimit:
    """ASGI middleware: requests whose body exceeds `max_bytes` get 413 before any parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {self.max_bytes} bytes"}, 413)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class Health(BaseModel):
    status: str
    articles: int
    chunks: int
    mode: str
    embedding_model: str


class ArticleOut(BaseModel):
    article_id: str
    title: str
    url: str
    source: str
    author: str
    published_at: str
    lang: str
    n_chunks: int


class IngestRequest(BaseModel):
    articles: list[dict[str, Any]] = Field(
        min_length=1, max_length=500,
        description="Article objects with the fields of a .json article: title, "
                    "body|text|content, url, published_at|date, author, source, lang.",
    )


class IngestError(BaseModel):
    location: str
    reason: str


class IngestResult(BaseModel):
    added: int
    updated: int
    unchanged: int
    failed: int
    errors: list[IngestError]


class ArticlePage(BaseModel):
    articles: list[ArticleOut]
    offset: int
    limit: int
    total: int


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(assistant: Assistant, chat_fns: Collection[int] = ()) -> FastAPI:
    """The HTTP API over one `Assistant`: /answer, /answer/stream, /health, /articles, /docs.

    `chat_fns`: ids of the answering functions of a Gradio chat to be mounted on the app, charged
    to the client's budget like /answer (see `assistant.access`).
    """
    settings = assistant.settings

    class AnswerRequest(BaseModel):
        question: str = Field(min_length=1, max_length=settings.max_question_chars,
                              description="The question, in plain text.")
        history: list[ChatMessage] = Field(default_factory=list, max_length=50,
                                       description="Earlier turns, oldest first.")
        k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve.")

    app = FastAPI(
        title="newsdesk",
        description="Questions over ingested news, answered with a citation on every claim.",
        version="0.1.0",
    )
    app.state.assistant = assistant
    # Over the whole app, so it also guards the chat that ui.create_server mounts.
    app.add_middleware(AccessControl, settings=settings, chat_fns=chat_fns)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)  # outermost
    guarded = [Depends(_require_key(settings))]

    @app.get("/health", response_model=Health)
    def health() -> dict[str, Any]:
        """Liveness plus what is indexed and which answer mode is active."""
        try:
            return assistant.health()
        except Exception as exc:
            raise HTTPException(503, f"store unavailable: {type(exc).__name__}") from exc

    @app.post("/answer", response_model=Answer, dependencies=guarded)
    def answer(request: AnswerRequest) -> Answer:
        """Answer a question; `[n]` markers in `answer` refer to `citations[n]`."""
        try:
            return assistant.ask(request.question, request.history, request.k)
        except QuestionError as exc:
            raise HTTPException(422, str(exc)) from exc
        except LLMError as exc:
            raise HTTPException(502, str(exc)) from exc
        except StoreError as exc:
            raise HTTPException(503, str(exc)) from exc

    @app.post("/answer/stream", responses={200: {"content": {"text/event-stream": {}}}},
              dependencies=guarded)
    def answer_stream(request: AnswerRequest) -> StreamingResponse:
        """Server-sent events: `delta` events with text, then one `answer` event (the full
        answer shape), or an `error` event."""
        try:
            events = assistant.stream(request.question, request.history, request.k)
            first = next(events)
        except QuestionError as exc:
            raise HTTPException(422, str(exc)) from exc
        except LLMError as exc:
            raise HTTPException(502, str(exc)) from exc
        except StoreError as exc:
            raise HTTPException(503, str(exc)) from exc

        def body() -> Iterator[str]:
            try:
                for event in _chain(first, events):
                    if isinstance(event, Answer):
                        yield _sse("answer", event.model_dump())
                    else:
                        yield _sse("delta", {"text": event})
            except (LLMError, StoreError) as exc:
                yield _sse("error", {"detail": str(exc)})

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    ingest_lock = threading.Lock()
    ingestor: list[Any] = []  # built on first use: the read-only API never needs it

    @app.post("/articles", response_model=IngestResult, dependencies=guarded)
    def ingest_articles(request: IngestRequest) -> IngestResult:
        """Ingest articles into the running server's store; they are answerable at once.
        Bad records are reported one by one and never stop the others."""
        from ingest.pipeline import Ingestor

        with ingest_lock:  # one writer per process; Chroma serialises the rest
            if not ingestor:
                ingestor.append(Ingestor(settings, store=assistant.store,
                                         embeddings=assistant.embeddings))
            try:
                report = ingestor[0].ingest_records(request.articles, origin="articles")
            except StoreError as exc:
                raise HTTPException(503, str(exc)) from exc
        return IngestResult(
            **report.counts,
            errors=[IngestError(location=e.location, reason=e.reason) for e in report.errors],
        )

    @app.get("/articles", response_model=ArticlePage, dependencies=guarded)
    def articles(offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)) -> ArticlePage:
        """The indexed articles, a page at a time."""
        records = assistant.articles(offset=offset, limit=limit)
        return ArticlePage(
            articles=[ArticleOut(**{k: v for k, v in asdict(r).items()
                                    if k in ArticleOut.model_fields}) for r in records],
            offset=offset, limit=limit, total=assistant.store.count_articles(),
        )

    return app


def _chain(first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[str | Answer]:
    yield first
    yield from rest

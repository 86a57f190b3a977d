"""The answer endpoint: a FastAPI app over `Assistant` (no logic of its own)."""


import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from assistant.llm import LLMError
from assistant.models import Answer, Message
from assistant.service import Assistant, QuestionError
from assistant.store import StoreError


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


class ArticlePage(BaseModel):
    articles: list[ArticleOut]
    offset: int
    limit: int
    total: int


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(assistant: Assistant) -> FastAPI:
    """The HTTP API over one `Assistant`: /answer, /answer/stream, /health, /articles, /docs."""
    settings = assistant.settings

    class AnswerRequest(BaseModel):
        question: str = Field(min_length=1, max_length=settings.max_question_chars,
                              description="The question, in plain text.")
        history: list[Message] = Field(default_factory=list, max_length=50,
                                       description="Earlier turns, oldest first.")
        k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve.")

    app = FastAPI(
        title="newsdesk",
        description="Questions over ingested news, answered with a citation on every claim.",
        version="0.1.0",
    )
    app.state.assistant = assistant

    @app.get("/health", response_model=Health)
    def health() -> dict[str, Any]:
        """Liveness plus what is indexed and which answer mode is active."""
        try:
            return assistant.health()
        except Exception as exc:
            raise HTTPException(503, f"store unavailable: {type(exc).__name__}") from exc

    @app.post("/answer", response_model=Answer)
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

    @app.post("/answer/stream", responses={200: {"content": {"text/event-stream": {}}}})
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

    @app.get("/articles", response_model=ArticlePage)
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

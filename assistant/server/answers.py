"""`POST /answer` and `POST /answer/stream`: a question (with history and filters) answered by
`Assistant`."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and the
# request model is built per app (its question's length limit is a setting).
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse
from pydantic import Field, StringConstraints, create_model

from assistant.errors import NewsdeskError
from assistant.server.streaming import event_stream, sse, started
from assistant.server.validation import JsonBody
from assistant.service import Assistant
from assistant.types import Answer, FilterFields
from assistant.types import Message as ChatMessage

_QUESTION = "The question, in plain text."


class AnswerRequest(JsonBody, FilterFields):
    """A question, the conversation before it and the filters; `answer_request` caps the
    question at a server's NEWSDESK_MAX_QUESTION_CHARS."""

    # Its length is checked without the surrounding white space, as the assistant does.
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description=_QUESTION)
    history: list[ChatMessage] = Field(default_factory=list, max_length=50,
                                       description="Earlier turns, oldest first.")
    k: int | None = Field(None, ge=1, le=50, strict=True, description="Passages to retrieve.")


def answer_request(max_question_chars: int) -> type[AnswerRequest]:
    """`AnswerRequest` with its question at most `max_question_chars` long."""
    question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=max_question_chars)]
    return create_model("AnswerRequest", __base__=AnswerRequest,
                        question=(question, Field(description=_QUESTION)))


def answers_router(assistant: Assistant, guarded: list[Any]) -> APIRouter:
    """`/answer` and `/answer/stream` over `assistant`, behind `guarded` (the key)."""
    router = APIRouter(dependencies=guarded)
    Asked = answer_request(assistant.settings.max_question_chars)

    @router.post("/answer", response_model=Answer)
    def answer(request: Asked) -> Answer:
        """Answer a question; `[n]` markers in `answer` refer to `citations[n]`."""
        return assistant.ask(request.question, request.history, request.k, request.filters)

    @router.post("/answer/stream", responses={200: {"content": {"text/event-stream": {}}}})
    def answer_stream(request: Asked) -> EventSourceResponse:
        """Server-sent events: `delta` events with text, then one `answer` event (the full
        answer shape), or an `error` event."""
        events = started(assistant.stream(request.question, request.history, request.k,
                                          request.filters))
        return event_stream(_answer_events(events))

    return router


def _answer_events(events: Iterator[str | Answer]) -> Iterator[bytes]:
    """The stream's events: a `delta` per piece of text, then the `answer`, or an `error`."""
    try:
        for event in events:
            if isinstance(event, Answer):
                yield sse(event.model_dump(), "answer")
            else:
                yield sse({"text": event}, "delta")
    except NewsdeskError as exc:
        yield sse({"detail": str(exc)}, "error")

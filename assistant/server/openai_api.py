"""The OpenAI-compatible routes, `POST /v1/chat/completions` and `GET /v1/models`, over the
same `Assistant`: any OpenAI client (the `openai` package, Open WebUI, LibreChat) asks the news.

The messages are the conversation: the last user message is the question, the earlier user and
assistant turns its history (system and tool messages are not used). The reply's content is the
answer with its `[n]` markers and a Markdown "Sources" list; the structured citations travel in
the extra field `citations` of the completion and of the stream's last chunk, beside `refused`,
`conflict` and `unsupported` (see `Answer`). In LLM mode the citation check may change the
answer after it streamed: a completion shows the checked text, each unsupported sentence marked
unverified; a stream, which cannot take text back, ends with a "Citation check" note saying
which markers were re-pointed and which sentences are unverified. Errors have OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}` (`openai_error`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.errors import NewsdeskError, QuestionError
from assistant.present import (
    CITATION_CHECK_HEADING,
    SOURCES_HEADING,
    UNVERIFIED,
    citation_note,
    format_sources,
    mark_unverified,
)
from assistant.types import Answer, Citation, FilterFields, Message

if TYPE_CHECKING:
    from assistant.service import Assistant

PREFIX = "/v1/"
MODEL_ID = "newsdesk"
# Every turn of history the assistant takes, and the characters of each (`Message`).
_MAX_HISTORY = 50
_MAX_TURN_CHARS = 20_000

# OpenAI's error `type` for each HTTP status it uses.
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 413: "invalid_request_error",
                422: "invalid_request_error", 429: "rate_limit_error"}


def is_openai_path(path: str) -> bool:
    """Whether a request path belongs to the OpenAI-compatible routes (errors in their shape)."""
    return path.startswith(PREFIX)


def openai_error(status: int, message: str, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response in OpenAI's shape."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}}, status_code=status, headers=headers)


def non_finite_number(data: Any) -> str | None:
    """Where in a JSON value a number is NaN or infinite, and which; None when none is. JSON
    has no such numbers, but Python's parser reads `NaN`, `Infinity` and `1e400` as them."""
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:  # a loop, not recursion: the client chooses how deep the JSON nests
        where, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            what = "NaN" if math.isnan(value) else \
                f"{json.dumps(value)} or too large (such as 1e400)"
            return f"{where or 'the body'} is {what}, not a finite number"
        if isinstance(value, dict):
            pending.extend((f"{where}.{key}" if where else str(key), item)
                           for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


class ChatTurn(BaseModel):
    """One message of an OpenAI chat request; fields newsdesk does not use are accepted."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(FilterFields):
    """OpenAI's chat completion request. Sampling parameters (`temperature`, `max_tokens`, ...)
    are accepted and have no effect: answers quote or are checked against the news."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description=f'"{MODEL_ID}" (see GET /v1/models).')
    messages: list[ChatTurn] = Field(min_length=1, description="The conversation, oldest "
                                     "first; the last one is the user's question.")
    stream: bool = False
    stream_options: dict[str, Any] | None = Field(
        None, description='`{"include_usage": true}` adds a last chunk with `usage`.')
    n: int = Field(1, ge=1, le=1, description="Only one choice is made.")
    # newsdesk's own fields (`extra_body` in the openai client): k, and since, until,
    # sources and today (`FilterFields`).
    k: int | None = Field(None, ge=1, le=50, strict=True,
                          description="newsdesk: passages to retrieve (`extra_body`).")

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        # Unused sampling parameters too (`temperature`, `top_p`): a NaN is a bad request.
        if problem := non_finite_number(data):
            raise ValueError(problem)
        return data


def text_of(content: str | list[dict[str, Any]] | None) -> str:
    """A message's text: the string, or its `text` parts joined (images are not read)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(str(part.get("text", "")) for part in content
                     if part.get("type") in ("text", "input_text"))


def conversation(messages: list[ChatTurn]) -> tuple[str, list[Message]]:
    """The question (the last message, a user's) and the history before it."""
    if messages[-1].role != "user":
        raise QuestionError(f"the last message must be the user's question, not a "
                            f"{messages[-1].role!r} message")
    history = []
    for turn in messages[:-1]:
        if turn.role not in ("user", "assistant"):
            continue
        # An earlier reply of ours carries its Sources list (and maybe the citation check's
        # note and marks); the answer is the part before them.
        text = text_of(turn.content).split("\n\n" + SOURCES_HEADING)[0]
        text = text.split("\n\n" + CITATION_CHECK_HEADING)[0].replace(f" {UNVERIFIED}", "")
        text = text.strip()
        if text:
            history.append(Message(role=turn.role, content=text[:_MAX_TURN_CHARS]))
    return text_of(messages[-1].content), history[-_MAX_HISTORY:]


def reply_text(answer: Answer) -> str:
    """The answer with its `[n]` markers and unverified sentences marked, then the Sources
    list (none for a refusal)."""
    text = mark_unverified(answer, escape=False)
    if not answer.citations:
        return text
    return f"{text}\n\n{sources_block(answer.citations)}"


def sources_block(citations: list[Citation]) -> str:
    return format_sources(citations, quotes=False)


def _extra(answer: Answer) -> dict[str, Any]:
    """The fields newsdesk adds to OpenAI's: the citations, the refusal, the disagreeing
    versions, the unsupported sentences (see `Answer`)."""
    return {"citations": [c.model_dump() for c in answer.citations], "refused": answer.refused,
            "conflict": [v.model_dump() for v in answer.conflict],
            "unsupported": answer.unsupported}


def _usage(prompt: str, completion: str) -> dict[str, int]:
    # No tokenizer is involved in an offline answer: words stand in for tokens.
    p, c = len(prompt.split()), len(completion.split())
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def openai_router(assistant: Assistant, guarded: list[Any]) -> APIRouter:
    """`/v1/models` and `/v1/chat/completions` over `assistant`, behind `guarded` (the key)."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], dependencies=guarded)
    created = int(time.time())

    def model_card() -> dict[str, Any]:
        return {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "newsdesk"}

    @router.get("/models")
    def models() -> dict[str, Any]:
        """The one model, `newsdesk`: the news, answered with citations."""
        return {"object": "list", "data": [model_card()]}

    @router.get("/models/{model}")
    def model(model: str) -> Any:
        if model != MODEL_ID:
            return openai_error(404, f"The model '{model}' does not exist; use '{MODEL_ID}'.",
                                param="model", code="model_not_found")
        return model_card()

    @router.post("/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
    def chat_completions(request: ChatCompletionRequest) -> Any:
        """Answer the conversation's last user message. With `"stream": true`, server-sent
        chunks (`chat.completion.chunk`) end with `data: [DONE]`; the chunk with
        `finish_reason` carries `citations`."""
        if request.model != MODEL_ID:
            return openai_error(404, f"The model '{request.model}' does not exist; use "
                                f"'{MODEL_ID}'.", param="model", code="model_not_found")
        question, history = conversation(request.messages)
        prompt = " ".join(text_of(m.content) for m in request.messages)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        now = int(time.time())
        events = assistant.stream(question, history, request.k, request.filters)
        if not request.stream:
            answer = next(e for e in events if isinstance(e, Answer))
            content = reply_text(answer)
            return {
                "id": completion_id, "object": "chat.completion", "created": now,
                "model": MODEL_ID,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": _usage(prompt, content),
                **_extra(answer),
            }
        first = next(events)  # before the response starts: an error here is an HTTP status
        include_usage = bool((request.stream_options or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None,
                  **extra: Any) -> str:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": now,
                    "model": MODEL_ID,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                 "logprobs": None}], **extra}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def body() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            written = ""
            try:
                for event in _chain(first, events):
                    if isinstance(event, Answer):
                        tail = _tail(written, event)
                        if tail:
                            yield chunk({"content": tail})
                        extra = _extra(event)
                        yield chunk({}, "stop", **extra)
                        if include_usage:
                            usage = {"id": completion_id, "object": "chat.completion.chunk",
                                     "created": now, "model": MODEL_ID, "choices": [],
                                     "usage": _usage(prompt, reply_text(event)), **extra}
                            yield f"data: {json.dumps(usage, ensure_ascii=False)}\n\n"
                    else:
                        written += event
                        yield chunk({"content": event})
            except NewsdeskError as exc:  # after the stream began: an error event, as OpenAI
                error = {"message": str(exc), "type": "server_error", "param": None,
                         "code": None}
                yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router


def _tail(streamed: str, answer: Answer) -> str:
    """What follows the streamed text in a stream: the rest of the answer (extractive
    answers stream in whole sentences), the citation check's note when it changed what was
    streamed, then the Sources list."""
    if streamed == answer.answer or not answer.answer.startswith(streamed) or \
            answer.unsupported:
        note = citation_note(streamed, answer)
        rest = f"\n\n{note}" if note else ""
    else:
        rest = answer.answer[len(streamed):]
    if answer.citations:
        rest += f"\n\n{sources_block(answer.citations)}"
    return rest


def _chain(first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[str | Answer]:
    yield first
    yield from rest


"""The OpenAI-compatible routes, `POST /v1/chat/completions` and `GET /v1/models`, over the
same `Assistant`: any OpenAI client (the `openai` package, Open WebUI, LibreChat) asks the news.

The messages are the conversation: the last user message is the question, the earlier user and
assistant turns its history (system and tool messages are not used). The reply's content is the
answer with its `[n]` markers and a "Sources:" list, one line per article, all plain text (no
Markdown escapes: API clients show the text as it is or render it themselves); the structured
citations travel in the extra field `citations` of the completion and of the stream's last
chunk, beside `refused`, `conflict` and `unsupported` (see `Answer`). In LLM mode the citation
check may change the answer after it streamed: a completion shows the checked text, each
unsupported sentence marked unverified; a stream, which cannot take text back, ends with a
"Citation check:" note saying which markers were re-pointed and which sentences are
unverified. Errors have OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}` (`openai_error`). Completions, chunks, usage,
model cards and errors are built with the `openai` package's own types, dumped with the fields
set only.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.errors import NewsdeskError, QuestionError
from assistant.present import (
    CITATION_CHECK_HEADING,
    PLAIN_CITATION_CHECK_HEADING,
    PLAIN_SOURCES_HEADING,
    PLAIN_UNVERIFIED,
    SOURCES_HEADING,
    UNVERIFIED,
    citation_note,
    plain_answer,
    plain_sources,
)
from assistant.server.streaming import DONE, event_stream, sse, started
from assistant.text import strip_bidi
from assistant.types import Answer, Citation, FilterFields, Message

if TYPE_CHECKING:
    from openai.types import CompletionUsage
    from openai.types.chat.chat_completion_chunk import ChoiceDelta

    from assistant.service import Assistant

# The `openai` package's types are imported where a reply is built: importing the package
# costs half a second of the server's start-up, and a server may never serve this API.

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
    return JSONResponse({"error": _error(message, kind, param, code)}, status_code=status,
                        headers=headers)


def _error(message: str, kind: str, param: str | None = None,
           code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    from openai.types.shared import ErrorObject

    return ErrorObject(message=message, type=kind, param=param,
                       code=code).model_dump(exclude_unset=True)


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
        # note and marks); the answer is the part before them. Replies of servers before
        # the plain-text content had the Markdown headings and mark.
        text = text_of(turn.content)
        for heading in (PLAIN_SOURCES_HEADING, PLAIN_CITATION_CHECK_HEADING, SOURCES_HEADING,
                        CITATION_CHECK_HEADING):
            text = text.split("\n\n" + heading)[0]
        for mark in (PLAIN_UNVERIFIED, UNVERIFIED):
            text = text.replace(f" {mark}", "")
        text = text.strip()
        if text:
            history.append(Message(role=turn.role, content=text[:_MAX_TURN_CHARS]))
    return text_of(messages[-1].content), history[-_MAX_HISTORY:]


def reply_text(answer: Answer) -> str:
    """The answer with its `[n]` markers and unverified sentences marked, then the Sources
    list (none for a refusal); plain text."""
    text = plain_answer(answer)
    if not answer.citations:
        return text
    return f"{text}\n\n{sources_block(answer.citations)}"


def sources_block(citations: list[Citation]) -> str:
    return plain_sources(citations)


def _extra(answer: Answer) -> dict[str, Any]:
    """The fields newsdesk adds to OpenAI's: the citations, the refusal, the disagreeing
    versions, the unsupported sentences, the timeline (see `Answer`)."""
    return {"citations": [c.model_dump() for c in answer.citations], "refused": answer.refused,
            "conflict": [v.model_dump() for v in answer.conflict],
            "unsupported": answer.unsupported,
            "timeline": [e.model_dump() for e in answer.timeline]}


def _usage(prompt: str, completion: str) -> CompletionUsage:
    from openai.types import CompletionUsage

    # No tokenizer is involved in an offline answer: words stand in for tokens.
    p, c = len(prompt.split()), len(completion.split())
    return CompletionUsage(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


class _Reply:
    """One reply's completion, or its stream's chunks, in the `openai` package's types (set
    fields only: the JSON OpenAI sends)."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def completion(self, answer: Answer) -> dict[str, Any]:
        from openai.types.chat import ChatCompletion, ChatCompletionMessage
        from openai.types.chat.chat_completion import Choice

        content = reply_text(answer)
        message = ChatCompletionMessage(role="assistant", content=content)
        return ChatCompletion(
            id=self.id, object="chat.completion", created=self.created, model=MODEL_ID,
            choices=[Choice(index=0, message=message, finish_reason="stop", logprobs=None)],
            usage=_usage(self.prompt, content), **_extra(answer),
        ).model_dump(exclude_unset=True)

    def chunk(self, delta: ChoiceDelta | None, finish: Literal["stop"] | None = None,
              usage: CompletionUsage | None = None, **extra: Any) -> bytes:
        """A `chat.completion.chunk` event; with no `delta`, one without choices (`usage`)."""
        from openai.types.chat import ChatCompletionChunk
        from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice

        choices = [] if delta is None else [
            ChunkChoice(index=0, delta=delta, finish_reason=finish, logprobs=None)]
        fields = {"usage": usage} if usage else {}
        return sse(ChatCompletionChunk(
            id=self.id, object="chat.completion.chunk", created=self.created, model=MODEL_ID,
            choices=choices, **fields, **extra,
        ).model_dump(exclude_unset=True))

    def stream(self, events: Iterator[str | Answer], include_usage: bool) -> Iterator[bytes]:
        """The chunks of a streamed reply, then `data: [DONE]`."""
        from openai.types.chat.chat_completion_chunk import ChoiceDelta

        yield self.chunk(ChoiceDelta(role="assistant", content=""))
        written = ""
        try:
            for event in events:
                if isinstance(event, str):
                    written += event
                    yield self.chunk(ChoiceDelta(content=strip_bidi(event)))
                    continue
                if tail := _tail(written, event):
                    yield self.chunk(ChoiceDelta(content=tail))
                extra = _extra(event)
                yield self.chunk(ChoiceDelta(), "stop", **extra)
                if include_usage:
                    yield self.chunk(None, usage=_usage(self.prompt, reply_text(event)),
                                     **extra)
        except NewsdeskError as exc:  # after the stream began: an error event, as OpenAI
            yield sse({"error": _error(str(exc), "server_error")})
        yield DONE


def openai_router(assistant: Assistant, guarded: list[Any]) -> APIRouter:
    """`/v1/models` and `/v1/chat/completions` over `assistant`, behind `guarded` (the key)."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], dependencies=guarded)
    created = int(time.time())

    def card() -> dict[str, Any]:
        from openai.types import Model

        return Model(id=MODEL_ID, object="model", created=created,
                     owned_by="newsdesk").model_dump(exclude_unset=True)

    @router.get("/models")
    def models() -> dict[str, Any]:
        """The one model, `newsdesk`: the news, answered with citations."""
        return {"object": "list", "data": [card()]}

    @router.get("/models/{model}")
    def model(model: str) -> Any:
        if model != MODEL_ID:
            return openai_error(404, f"The model '{model}' does not exist; use '{MODEL_ID}'.",
                                param="model", code="model_not_found")
        return card()

    @router.post("/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
    def chat_completions(request: ChatCompletionRequest) -> Any:
        """Answer the conversation's last user message. With `"stream": true`, server-sent
        chunks (`chat.completion.chunk`) end with `data: [DONE]`; the chunk with
        `finish_reason` carries `citations`."""
        if request.model != MODEL_ID:
            return openai_error(404, f"The model '{request.model}' does not exist; use "
                                f"'{MODEL_ID}'.", param="model", code="model_not_found")
        question, history = conversation(request.messages)
        reply = _Reply(" ".join(text_of(m.content) for m in request.messages))
        events = assistant.stream(question, history, request.k, request.filters)
        if not request.stream:
            return reply.completion(next(e for e in events if isinstance(e, Answer)))
        include_usage = bool((request.stream_options or {}).get("include_usage"))
        # The first event before the response starts: an error there is an HTTP status.
        return event_stream(reply.stream(started(events), include_usage))

    return router


def _tail(streamed: str, answer: Answer) -> str:
    """What follows the streamed text in a stream: the rest of the answer (extractive
    answers stream in whole sentences), the citation check's note when it changed what was
    streamed, then the Sources list."""
    if streamed == answer.answer or not answer.answer.startswith(streamed) or \
            answer.unsupported:
        note = citation_note(streamed, answer, plain=True)
        rest = f"\n\n{note}" if note else ""
    else:
        rest = strip_bidi(answer.answer[len(streamed):])
    if answer.citations:
        rest += f"\n\n{sources_block(answer.citations)}"
    return rest


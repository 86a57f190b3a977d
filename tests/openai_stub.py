"""A small OpenAI-compatible chat-completions server for tests, served on loopback.

    with OpenAIStub() as stub:
        stub.reply = lambda messages: "Akira Akazawa [1]."
        ...  # point an OpenAI client at stub.base_url
        stub.requests  # every request body received, oldest first

`POST /v1/chat/completions` answers with a `chat.completion` JSON, or with server-sent
`chat.completion.chunk` events ending with `data: [DONE]` when the request has `stream: true`.
Streamed replies go out in small pieces (3-8 characters by default, see `chunker`) so that
`[n]` markers get split across chunks. `GET /v1/models` lists one model. Set `fail` to answer
chat completions with an OpenAI-style error instead. `POST /v1/embeddings` returns hashed
bag-of-words vectors (float lists or base64, as the client asks).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

Reply = Callable[[list[dict[str, Any]]], str]
Chunker = Callable[[str], list[str]]

STUB_MODEL = "stub-chat"
STUB_EMBED_MODEL = "stub-embed"
EMBED_DIMENSION = 64
REFUSAL = "The ingested news does not say."


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of content parts."""
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def system_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(message_text(m) for m in messages if m.get("role") in ("system", "developer"))


def find_passages(text: str) -> list[dict[str, Any]] | None:
    """The first JSON array of passage objects (dicts with a "text") inside `text`."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\[", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if (isinstance(value, list) and value
                and all(isinstance(item, dict) and "text" in item for item in value)):
            return value
    return None


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = re.search(r"^.*?[.!?](?=\s|$)", text)
    return match.group(0) if match else text


def quote_first_passage(messages: list[dict[str, Any]]) -> str:
    """The default reply: the first sentence of passage 1 with a `[1]` marker, or a refusal."""
    passages = find_passages(last_user_text(messages))
    if not passages:
        return REFUSAL
    return f"{first_sentence(str(passages[0]['text']))} [1]"


def hashed_embedding(text: str) -> np.ndarray:
    """A deterministic bag-of-words vector: texts sharing words are close (enough for tests)."""
    vector = np.zeros(EMBED_DIMENSION, dtype=np.float32)
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        vector[int.from_bytes(digest, "little") % EMBED_DIMENSION] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector + 1.0 / np.sqrt(EMBED_DIMENSION)


def small_pieces(text: str, seed: int = 0) -> list[str]:
    """`text` cut into pieces of 3 to 8 characters (the same cuts for the same text)."""
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(text):
        size = rng.randint(3, 8)
        pieces.append(text[i:i + size])
        i += size
    return pieces


class OpenAIStub:
    """The stub server; a context manager that runs uvicorn in a background thread."""

    def __init__(self, host: str = "127.0.0.1", startup_timeout_s: float = 10.0) -> None:
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.reply: Reply = quote_first_passage
        self.chunker: Chunker = small_pieces
        # (HTTP status, error message): answer chat completions with an OpenAI-style error.
        self.fail: tuple[int, str] | None = None
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.streamed: list[list[str]] = []  # the pieces of each streamed reply
        self.port = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.app = self._build_app()

    # -- test helpers --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        """Back to the default reply and chunking, with no recorded requests."""
        with self._lock:
            self.reply = quote_first_passage
            self.chunker = small_pieces
            self.fail = None
            self.requests.clear()
            self.headers.clear()
            self.streamed.clear()

    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat-completion requests received, oldest first."""
        with self._lock:
            return [r for r in self.requests if "messages" in r]

    # -- the app -------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="openai-stub")

        @app.get("/v1/models")
        def models() -> dict[str, Any]:
            return {"object": "list", "data": [
                {"id": STUB_MODEL, "object": "model", "created": 0, "owned_by": "newsdesk-tests"}
            ]}

        @app.post("/v1/embeddings")
        async def embeddings(request: Request) -> JSONResponse:
            body = await request.json()
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else inputs
            if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
                return _error(400, "'input' must be a string or a list of strings")
            with self._lock:
                self.requests.append(body)
            data = []
            for i, text in enumerate(inputs):
                vector = hashed_embedding(text)
                value: Any = (base64.b64encode(vector.astype("<f4").tobytes()).decode()
                              if body.get("encoding_format") == "base64" else vector.tolist())
                data.append({"object": "embedding", "index": i, "embedding": value})
            return JSONResponse({"object": "list", "data": data,
                                 "model": str(body.get("model") or STUB_EMBED_MODEL),
                                 "usage": {"prompt_tokens": 0, "total_tokens": 0}})

        @app.post("/v1/chat/completions", response_model=None)
        async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "the request body is not JSON")
            messages = body.get("messages") if isinstance(body, dict) else None
            if not isinstance(messages, list) or not messages:
                return _error(400, "'messages' must be a non-empty list")
            with self._lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
                reply, chunker, fail = self.reply, self.chunker, self.fail
            if fail is not None:
                return _error(*fail)
            text = reply(messages)
            model = str(body.get("model") or STUB_MODEL)
            completion_id = f"chatcmpl-stub-{len(self.requests)}"
            usage = _usage(messages, text)
            if not body.get("stream"):
                return JSONResponse({
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }],
                    "usage": usage,
                })
            pieces = [p for p in chunker(text) if p]
            with self._lock:
                self.streamed.append(pieces)
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = _stream_events(completion_id, model, pieces,
                                    usage if include_usage else None)
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})

        return app

    # -- running -------------------------------------------------------------------------

    def start(self) -> OpenAIStub:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="openai-stub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the OpenAI stub did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "param": None, "code": None}}, status_code=status)


def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    prompt = sum(len(message_text(m).split()) for m in messages)
    completion = len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _stream_events(completion_id: str, model: str, pieces: list[str],
                   usage: dict[str, int] | None) -> Iterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish_reason}]}
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    for piece in pieces:
        yield chunk({"content": piece}, None)
    yield chunk({}, "stop")
    if usage is not None:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [], "usage": usage}
        yield f"data: {json.dumps(data)}\n\n"
    yield "data: [DONE]\n\n"

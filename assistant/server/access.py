"""Who is asking and how often: one ASGI middleware over the whole app (API and chat) that
finds the client address, charges its request budget, and slows and counts failed logins.

Only costly requests are charged: the API's answers, ingests, article pages and outlet list,
the OpenAI routes (completions and the model list), Gradio's login, its `call/` API and
uploads, and queue joins that run a chat answer (`chat_fns`). The page, its assets,
heartbeats, event streams, the chat's small UI steps and /health are free. Gradio runs queued
functions such as the answer only through the queue once `api_open` is off (`ui.build_chat`),
so no other route reaches them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Collection

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from assistant.server.openai_api import is_openai_path, openai_error
from assistant.settings import Settings

_COSTLY = re.compile(
    r"/(answer|answer/stream|articles(/[^/]+)?|sources"  # the API (DELETE /articles/<id> too)
    # the OpenAI-compatible routes; the model list too, or a key could be guessed there freely
    r"|v1/chat/completions|v1/models(/[^/]+)?"
    r"|login"  # Gradio's login form
    r"|gradio_api/(call/(v2/)?[^/]+|upload))/?"  # Gradio's API; GET call/<name>/<id> is free
)
_QUEUE_JOIN = re.compile(r"/gradio_api/queue/join/?")


class AccessControl:
    """ASGI middleware: the per-client budget (`rate_limit`, when `rate_limited`), the stricter
    budget for failed authentication (`auth_failure_limit`, always on) and the delay before a
    failure is answered (`auth_failure_delay_s`). Over either budget: 429 with `Retry-After`.

    `chat_fns`: ids of the Gradio functions that answer, charged when a queue join names them.
    """

    def __init__(self, app: ASGIApp, settings: Settings,
                 chat_fns: Collection[int] = ()) -> None:
        self.app = app
        self._settings = settings
        self._chat_fns = frozenset(chat_fns)
        self._requests = parse(settings.rate_limit)
        self._failures = parse(settings.auth_failure_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        # uvicorn's X-Forwarded-For parsing (the right-most address that is not a trusted proxy)
        # applied here, so the client does not depend on how the app is served; ui.main turns
        # uvicorn's own copy off, which would trust 127.0.0.1 before this runs.
        self._resolve = ProxyHeadersMiddleware(
            self._guard, trusted_hosts=[str(net) for net in settings.trusted_proxies])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._resolve(scope, receive, send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if _QUEUE_JOIN.fullmatch(path):
            try:  # bounded: BodyLimit, outside, refuses large bodies as they are read
                body = await Request(scope, receive).body()
            except ClientDisconnect:
                return
            receive = _replay(body, receive)
            charged = _answers(body, self._chat_fns)
        else:
            charged = _COSTLY.fullmatch(path) is not None
        if not charged:
            await self.app(scope, receive, send)
            return

        client = scope["client"][0] if scope.get("client") else "unknown"
        if not self._limiter.test(self._failures, "auth-failures", client):
            await self._refuse(self._failures, "auth-failures", client, scope, receive, send,
                               "too many failed API keys or logins "
                               f"({self._settings.auth_failure_limit} per client)")
            return
        if self._settings.rate_limited and not self._limiter.hit(self._requests, "requests",
                                                                 client):
            await self._refuse(self._requests, "requests", client, scope, receive, send,
                               f"rate limit exceeded ({self._settings.rate_limit} per client)")
            return

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and _failed_auth(path, message["status"]):
                self._limiter.hit(self._failures, "auth-failures", client)
                await asyncio.sleep(self._settings.auth_failure_delay_s)
            await send(message)

        await self.app(scope, receive, watched)

    async def _refuse(self, limit: RateLimitItem, budget: str, client: str, scope: Scope,
                      receive: Receive, send: Send, detail: str) -> None:
        """429 with the seconds until the oldest charged request leaves the window."""
        reset_at, _ = self._limiter.get_window_stats(limit, budget, client)
        retry = max(1, int(reset_at - time.time()) + 1)
        message, headers = f"{detail}; try again in {retry} s", {"Retry-After": str(retry)}
        response = (openai_error(429, message, code="rate_limit_exceeded", headers=headers)
                    if is_openai_path(scope["path"]) else
                    JSONResponse({"detail": message}, 429, headers=headers))
        await response(scope, receive, send)


def _failed_auth(path: str, status: int) -> bool:
    """A refused API key or session (401) or a wrong Gradio password (its login answers 400)."""
    return status == 401 or (status == 400 and path.rstrip("/") == "/login")


def _answers(body: bytes, chat_fns: frozenset[int]) -> bool:
    """Whether a queue join runs a chat answer; anything unreadable is charged, to be safe."""
    try:
        return int(json.loads(body)["fn_index"]) in chat_fns
    except (ValueError, TypeError, KeyError, OverflowError):
        return True


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body, already read, handed over again first."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

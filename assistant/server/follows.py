"""`/follows`: follow a story (a question and its filters) and get an update, over HTTP, as
server-sent events or at a webhook, whenever newly committed articles add to its answer.
Each follow belongs to the API key that made it."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel, Field, StringConstraints, field_validator
from starlette.concurrency import run_in_threadpool

from assistant.follows import Follow
from assistant.server.auth import key_owner
from assistant.server.streaming import event_stream
from assistant.server.validation import JsonBody
from assistant.service import Assistant
from assistant.types import FilterFields

# How often an open event stream looks for new updates, and sends a comment to keep
# proxies from closing it.
_POLL_S = 0.5
_KEEPALIVE_S = 15.0

# Checks a webhook URL against the server's fetch policy: None when allowed, else the reason.
WebhookCheck = Callable[[str], "str | None"]


class FollowRequest(JsonBody, FilterFields):
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=2000)] = Field(
        description="The story to follow, as a question.")
    webhook: str | None = Field(
        None, max_length=2048, description="An http(s) URL each update is POSTed to as JSON; "
        "public addresses only unless NEWSDESK_FETCH_ALLOW lists the host.")

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the webhook must be an http(s) URL")
        return value.strip()


class FollowList(BaseModel):
    follows: list[Follow]
    total: int


class Unfollowed(BaseModel):
    deleted: str


def follows_router(assistant: Assistant, guarded: list[Any],
                   check_webhook: WebhookCheck | None = None) -> APIRouter:
    """`/follows` over `assistant`, behind `guarded` (the key); follows are the key's own."""
    router = APIRouter(dependencies=guarded)
    Owner = Annotated[str, Depends(key_owner(assistant.settings))]

    @router.post("/follows", response_model=Follow, status_code=201)
    def follow(request: FollowRequest, owner: Owner) -> Follow:
        """Follow a story: the question is answered now, and again whenever new articles
        add to the answer (each such update is kept, streamed and sent to the webhook)."""
        if request.webhook is not None:
            if check_webhook is None:
                raise HTTPException(422, "this server sends no webhooks")
            if (refused := check_webhook(request.webhook)) is not None:
                raise HTTPException(422, f"webhook {refused}")
        return assistant.follow(request.question, request.filters, owner=owner,
                                webhook=request.webhook)

    @router.get("/follows", response_model=FollowList)
    def follows(owner: Owner) -> FollowList:
        """The key's follows, oldest first, each with its answer, updates and unread count."""
        found = assistant.follows(owner)
        return FollowList(follows=found, total=len(found))

    @router.get("/follows/{follow_id}", response_model=Follow,
                responses={404: {"description": "No follow of this key has this id."}})
    def read_follow(follow_id: str, owner: Owner) -> Follow:
        """One follow: the current answer and every update, oldest first; reading it marks
        its updates read."""
        found = assistant.read_follow(follow_id, owner, mark_read=True)
        if found is None:
            raise HTTPException(404, f"no follow has the id {follow_id!r}")
        return found

    @router.delete("/follows/{follow_id}", response_model=Unfollowed,
                   responses={404: {"description": "No follow of this key has this id."}})
    def unfollow(follow_id: str, owner: Owner) -> Unfollowed:
        """Stop following; the follow and its updates are forgotten."""
        if not assistant.follow_book.delete(owner, follow_id):
            raise HTTPException(404, f"no follow has the id {follow_id!r}")
        return Unfollowed(deleted=follow_id)

    @router.get("/follows/{follow_id}/events",
                responses={200: {"content": {"text/event-stream": {}}},
                           404: {"description": "No follow of this key has this id."}})
    async def follow_events(
            follow_id: str, owner: Owner, http: Request,
            after: int | None = Query(None, ge=0, description="Send the updates numbered "
                                      "above this first (default: only updates to come)."),
            last_event_id: str | None = Header(None),
    ) -> EventSourceResponse:
        """Server-sent events: one `update` event per update (its `id` the update's number,
        so a reconnecting client with `Last-Event-ID` misses none); the stream ends when the
        follow is deleted."""
        book = assistant.follow_book
        current = await run_in_threadpool(book.get, owner, follow_id)
        if current is None:
            raise HTTPException(404, f"no follow has the id {follow_id!r}")
        if last_event_id is not None and last_event_id.isdigit():
            after = int(last_event_id)
        seen = after if after is not None else (current.updates[-1].n if current.updates
                                                else 0)

        async def frames() -> AsyncIterator[bytes]:
            nonlocal seen
            quiet = 0.0
            yield format_sse_event(comment="following")
            while not await http.is_disconnected():
                fresh = await run_in_threadpool(book.updates_after, owner, follow_id, seen)
                for update in fresh:
                    seen = update.n
                    yield format_sse_event(
                        data_str=json.dumps(update.model_dump(mode="json"), ensure_ascii=False),
                        event="update", id=str(update.n))
                if fresh:
                    quiet = 0.0
                elif not await run_in_threadpool(book.exists, owner, follow_id):
                    yield format_sse_event(data_str=json.dumps({"id": follow_id}),
                                           event="deleted")
                    return
                await asyncio.sleep(_POLL_S)
                quiet += _POLL_S
                if quiet >= _KEEPALIVE_S:
                    quiet = 0.0
                    yield format_sse_event(comment="keep-alive")

        return event_stream(frames())

    return router

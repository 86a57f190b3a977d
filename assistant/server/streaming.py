"""Server-sent events for the two streaming routes (`/answer/stream`, the OpenAI stream),
framed by FastAPI's own `fastapi.sse`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, TypeVar

from fastapi.sse import EventSourceResponse, format_sse_event

T = TypeVar("T")

# The OpenAI stream's last event.
DONE = format_sse_event(data_str="[DONE]")


def started(events: Iterator[T]) -> Iterator[T]:
    """`events` with its first item already taken: an error there is raised here, before the
    response starts, so the client gets an HTTP status rather than an error event."""
    first = next(events)
    return chain((first,), events)


def sse(data: Any, event: str | None = None) -> bytes:
    """One event: `data` as JSON (text as is, not \\u-escaped), `event` its type."""
    return format_sse_event(data_str=json.dumps(data, ensure_ascii=False), event=event)


def event_stream(frames: Iterable[bytes]) -> EventSourceResponse:
    """A `text/event-stream` response of `frames`, which proxies do not buffer."""
    return EventSourceResponse(frames, headers={"Cache-Control": "no-cache",
                                                "X-Accel-Buffering": "no"})

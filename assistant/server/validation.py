"""Request bodies as the server takes them (valid Unicode, finite numbers) and its 422s: short,
JSON-safe, in OpenAI's shape on the OpenAI routes."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, model_validator

from assistant.server.openai_api import is_openai_path, non_finite_number, openai_error
from assistant.text import invalid_unicode, printable

# A validation error quotes at most this much of the input it rejects.
_ECHO_CHARS = 200
# The bits of the largest integer it quotes as a number (about 190 digits).
_ECHO_INT_BITS = 640


class JsonBody(BaseModel):
    """A request body: every string in it, and every key, must be valid Unicode text, and
    every number finite."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if problem := invalid_text(data) or non_finite_number(data):
            raise ValueError(problem)
        return data


def invalid_text(data: Any) -> str | None:
    """Where in a JSON value a string is not valid Unicode, and why; None when none is."""
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:  # a loop, not recursion: the client chooses how deep the JSON nests
        where, value = pending.pop()
        if isinstance(value, str):
            if problem := invalid_unicode(value):
                return f"{where or 'the body'} {problem}"
        elif isinstance(value, dict):
            for key in value:
                if problem := invalid_unicode(str(key)):
                    return f"a key of {where or 'the body'} {problem}"
            pending.extend((f"{where}.{key}" if where else str(key), item)
                           for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def _echo(value: Any) -> Any:
    """A rejected input (or a `ctx` value) as a 422 quotes it: unchanged when short, else
    shortened text; always what JSON can carry (NaN and infinities as "NaN", "Infinity"; a
    huge integer, bytes and an exception as text)."""
    if isinstance(value, BaseException):  # pydantic's ctx["error"]; FastAPI would show {}
        value = str(value)
    elif isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if value.bit_length() <= _ECHO_INT_BITS:
            return value
        # str() of an int over 4,300 digits raises: its size, not its digits
        return f"(an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits)"
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (RecursionError, ValueError, TypeError):
            return "(not shown: nested too deeply, or too large a number)"
    shown = printable(text)
    if len(shown) > _ECHO_CHARS:
        return shown[:_ECHO_CHARS] + f"… ({len(text):,} characters)"
    if shown != text or isinstance(value, str):
        return shown
    # Short, so cheap to copy: back from its JSON text with NaN and infinities as strings.
    return json.loads(text, parse_constant=str)


def shown_error(error: dict[str, Any]) -> dict[str, Any]:
    """A pydantic error as a 422 shows it: every part of it JSON-safe, the input quoted short."""
    shown = {key: _echo(value) for key, value in error.items()}
    shown["msg"] = printable(str(error.get("msg", "")))
    shown["loc"] = [part if isinstance(part, int) else _echo(str(part))
                    for part in error.get("loc", ())]
    if isinstance(error.get("ctx"), dict):
        shown["ctx"] = {str(key): _echo(value) for key, value in error["ctx"].items()}
    return shown


def _param(error: dict[str, Any]) -> str | None:
    """The field an error is about, as OpenAI's `param` names it ("messages.0.content")."""
    if error.get("type") == "json_invalid":  # its loc holds a character offset, no field
        return None
    return ".".join(str(part) for part in error.get("loc", ()) if part != "body") or None


async def short_validation_errors(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, but quoting at most `_ECHO_CHARS` of each rejected input (a request of
    10,000 articles came back whole), never a lone surrogate (it cannot be encoded) nor a
    NaN or infinity (JSON has none), and with the message of an exception in `ctx`."""
    errors = [shown_error(error) for error in exc.errors()]
    if is_openai_path(request.url.path):  # OpenAI answers a bad parameter with a 400
        message = "; ".join(": ".join(filter(None, (_param(e), e.get("msg", ""))))
                            for e in errors) or "invalid request"
        return openai_error(400, message, param=_param(errors[0]) if errors else None,
                            code="invalid_value")
    return await request_validation_exception_handler(request, RequestValidationError(errors))

"""`GET /health`: what is indexed and which answer mode is active (open without the key)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant.service import Assistant


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description='"degraded" (with HTTP 503) when the store cannot serve or cannot take '
                    "new articles; `reason` says why")
    reason: str | None = None
    cause: str | None = Field(None, description="disk_full, read_only, missing, timeout, "
                                                "busy or unavailable, when degraded")
    articles: int | None = None
    chunks: int | None = None
    mode: str
    embedding_model: str
    keyword_index: dict[str, int] | None = Field(
        None, description="What the keyword index did since the server started: chunks it "
        "read and tokenized, articles it re-indexed, commit log entries it read, rebuilds")


def health_router(assistant: Assistant) -> APIRouter:
    """`/health` over `assistant`."""
    router = APIRouter()

    @router.get("/health", response_model=Health, response_model_exclude_none=True,
                responses={503: {"model": Health}})
    def health() -> Any:
        """What is indexed and which answer mode is active; HTTP 503 with `"status":
        "degraded"` and a `reason` when the store cannot serve or take new articles."""
        found = assistant.health()
        if found["status"] != "ok":
            return JSONResponse(Health(**found).model_dump(exclude_none=True), status_code=503)
        return found

    return router

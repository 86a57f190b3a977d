"""Who may call the API: the key (NEWSDESK_API_KEY) on the public routes, the store dir's
one-time token on the local ingest routes, and no network listening without a key."""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations, which
# name a local `bearer`.
import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assistant.errors import ExposureError
from assistant.service import Assistant
from assistant.settings import Settings

Bearer = HTTPAuthorizationCredentials | None


def check_exposure(settings: Settings) -> None:
    """Refuse to serve on a non-loopback address without NEWSDESK_API_KEY."""
    if not settings.loopback_only and not settings.api_key:
        raise ExposureError(
            f"refusing to listen on {settings.host}: without NEWSDESK_API_KEY anyone who can "
            "reach this address could read the ingested news and use the answer endpoint. "
            "Set NEWSDESK_API_KEY, or listen on 127.0.0.1 (NEWSDESK_HOST)."
        )


def key_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing does not reveal the key."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def require_key(settings: Settings) -> Callable[..., None]:
    """A dependency: 401 unless the request carries the API key (when one is set)."""
    bearer = HTTPBearer(auto_error=False, description="NEWSDESK_API_KEY, when it is set")

    def require(credentials: Annotated[Bearer, Depends(bearer)]) -> None:
        if settings.api_key is None:
            return
        expected = settings.api_key.get_secret_value()
        if credentials is None or not key_matches(credentials.credentials, expected):
            raise HTTPException(401, "missing or wrong API key: send "
                                     "'Authorization: Bearer <NEWSDESK_API_KEY>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return require


def require_owner_token(assistant: Assistant) -> Callable[..., None]:
    """A dependency: the local ingest routes take only the token this server wrote in its
    store directory (readable by whoever may write the store anyway)."""
    bearer = HTTPBearer(auto_error=False)

    def require(credentials: Annotated[Bearer, Depends(bearer)]) -> None:
        lock = assistant.store.lock
        if lock is None or credentials is None or not key_matches(credentials.credentials,
                                                                  lock.token):
            raise HTTPException(401, "the local ingest route takes only the token in the "
                                     "store directory of this server")

    return require

"""Who may call the API: the key (NEWSDESK_API_KEY) on the public routes, the store dir's
one-time token on the local ingest routes, and no network listening without a key."""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations, which
# name a local `bearer`.
import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assistant.errors import ExposureError
from assistant.follows import OPEN_OWNER
from assistant.service import Assistant
from assistant.settings import Settings

Bearer = HTTPAuthorizationCredentials | None


def check_exposure(settings: Settings) -> None:
    """Refuse to serve on a non-loopback address without NEWSDESK_API_KEY."""
    if not settings.loopback_only and not settings.keys:
        raise ExposureError(
            f"refusing to listen on {settings.host}: without NEWSDESK_API_KEY anyone who can "
            "reach this address could read the ingested news and use the answer endpoint. "
            "Set NEWSDESK_API_KEY, or listen on 127.0.0.1 (NEWSDESK_HOST)."
        )


def key_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing does not reveal the key."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def any_key_matches(given: str, keys: list[str]) -> bool:
    """Whether `given` is one of `keys` (each compared in constant time)."""
    return any([key_matches(given, key) for key in keys])


def owner_of(key: str | None) -> str:
    """The owner id of what a key makes (its follows): a digest, never the key itself."""
    if not key:
        return OPEN_OWNER
    return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def require_key(settings: Settings) -> Callable[..., None]:
    """A dependency: 401 unless the request carries an API key (when keys are set)."""
    bearer = HTTPBearer(auto_error=False, description="NEWSDESK_API_KEY, when it is set")

    def require(credentials: Annotated[Bearer, Depends(bearer)]) -> None:
        keys = settings.keys
        if not keys:
            return
        if credentials is None or not any_key_matches(credentials.credentials, keys):
            raise HTTPException(401, "missing or wrong API key: send "
                                     "'Authorization: Bearer <NEWSDESK_API_KEY>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return require


def key_owner(settings: Settings) -> Callable[..., str]:
    """A dependency: the owner id of the request's key (after `require_key` let it in)."""
    bearer = HTTPBearer(auto_error=False)

    def owner(credentials: Annotated[Bearer, Depends(bearer)]) -> str:
        if not settings.keys or credentials is None:
            return OPEN_OWNER
        return owner_of(credentials.credentials)

    return owner


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


class ChatLogins:
    """The chat's logins (Gradio asks once per browser session): an API key is the password,
    and a user name, once used with a key, stays with that key's owner, so a name never
    opens another key's follows."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def login(self, user: str, password: str) -> bool:
        """Gradio's `auth` callback."""
        matched = [key for key in self.settings.keys if key_matches(password, key)]
        if not matched:
            return False
        with self._lock:
            return self._owners.setdefault(user, owner_of(matched[0])) == owner_of(matched[0])

    def owner(self, user: str | None) -> str:
        """The owner id of a logged-in chat user ("" when the user is unknown)."""
        if not self.settings.keys:
            return OPEN_OWNER
        with self._lock:
            return self._owners.get(user or "", "")

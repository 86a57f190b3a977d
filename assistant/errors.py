"""The store's exceptions, in one place (the HTTP app and the chat map them to messages).

    StoreError              the store cannot be opened or used; the message says what to do
    ├── StoreBusyError      another process owns the embedded store directory
    ├── StoreTimeoutError   a store call did not finish within its bound
    └── EmbeddingMismatchError  the collection was built with another embedding model
"""

from __future__ import annotations

# What each cause of a store failure means to a person in the chat (no library errors).
PLAIN_CAUSES = {
    "disk_full": "the server's disk is full",
    "read_only": "the news store's folder is read-only",
    "missing": "the news store's folder is missing",
    "timeout": "the news store is not responding",
    "busy": "another program is using the news store",
    "unavailable": "the news store cannot be reached",
}


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says what to do, `cause` names the
    kind of fault (a key of `PLAIN_CAUSES`)."""

    def __init__(self, message: str, cause: str = "unavailable") -> None:
        super().__init__(message)
        self.cause = cause if cause in PLAIN_CAUSES else "unavailable"

    @property
    def plain(self) -> str:
        """The cause in plain words, for people."""
        return PLAIN_CAUSES[self.cause]


class StoreBusyError(StoreError):
    """Another process owns the embedded store directory."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "busy")


class StoreTimeoutError(StoreError):
    """A store call did not finish within its bound (the store is stalled)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "timeout")


class EmbeddingMismatchError(StoreError):
    """The collection was built with another embedding model."""

"""Every exception of newsdesk, in one place; the HTTP app maps them to status codes in one
handler and the chat to plain words.

    NewsdeskError                 base: the message says what went wrong and what to do
    ├── QuestionError             the question is empty, too long or not valid text (422)
    ├── IngestError               one file or record cannot be ingested (reported, never raised
    │                             past the ingest run)
    ├── EmbeddingError            the embedding model cannot be loaded or called (503)
    ├── LLMError                  the language model server failed (502)
    ├── ExposureError             the server would listen on the network without a key
    └── StoreError                the store cannot be opened or used (503); `cause` names why
        ├── StoreBusyError        another process owns the embedded store directory
        ├── StoreTimeoutError     a store call did not finish within its bound
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


class NewsdeskError(RuntimeError):
    """Base of every newsdesk error."""


class QuestionError(NewsdeskError, ValueError):
    """The question is empty, too long or not valid text."""


class IngestError(NewsdeskError):
    """One file (or one record of a file) could not be ingested; `str()` names it and says why."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class EmbeddingError(NewsdeskError):
    """The embedding model could not be loaded or failed."""


class LLMError(NewsdeskError):
    """The language model server could not be reached or failed; the message says which."""


class ExposureError(NewsdeskError):
    """The server would be reachable from the network without an API key."""


class StoreError(NewsdeskError):
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

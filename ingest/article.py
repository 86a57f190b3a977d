"""The article as ingest sees it: raw fields from a reader, then a cleaned `Article`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


class IngestError(Exception):
    """One file (or one record of a file) could not be ingested; `str()` names it and says why."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


@dataclass
class RawArticle:
    """Fields as a reader found them, before cleaning. Only `body` is required."""

    location: str
    body: str
    title: str = ""
    url: str = ""
    published_at: str = ""
    author: str = ""
    source: str = ""
    lang: str = ""
    # The publisher's own id for the article (a JSON `id` field), when it has one.
    external_id: str = ""
    # True when the reader's title came from the document itself (HTML <h1>, JSON field, ...).
    has_title: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Article:
    """A cleaned article ready to chunk. `body` is the text that chunk offsets refer to."""

    location: str
    title: str
    body: str
    url: str = ""
    published_at: str = ""
    author: str = ""
    source: str = ""
    lang: str = ""
    external_id: str = ""

    @property
    def article_id(self) -> str:
        """Stable id: from the publisher's id when given, else the canonical URL, else the
        normalised text."""
        return make_article_id(self.external_id, self.url, self.body)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything stored for this article would change."""
        parts = [self.title, self.body, self.url, self.published_at, self.author, self.source,
                 self.lang, self.external_id]
        return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


def make_article_id(external_id: str = "", url: str = "", body: str = "") -> str:
    """The store's id for an article with this publisher id, canonical URL or body text."""
    if external_id:
        key = "id:" + external_id
    elif url:
        key = "url:" + url
    else:
        key = "text:" + " ".join(body.lower().split())
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]

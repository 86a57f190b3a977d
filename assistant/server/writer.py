"""The server's one writer: articles from the API, the chat's second tab and the watcher all
reach the store through one lock, and the ingest pipeline is built on the first of them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar

from fastapi import HTTPException
from pydantic import BaseModel, Field

from assistant.errors import IngestError
from assistant.malloc import give_back
from assistant.types import IngestReport, RawArticle

T = TypeVar("T")


class ArticleIngestor(Protocol):
    """What the server needs to take articles (`ingest.pipeline.Ingestor` is one)."""

    def ingest_records(self, records: Sequence[object], origin: str = "request") -> IngestReport:
        """Ingest article objects (the fields of a .json article)."""
        ...

    def ingest_raw(self, raws: Sequence[RawArticle | IngestError]) -> IngestReport:
        """Ingest articles that a reader already read."""
        ...

    def delete(self, target: str) -> list[str]:
        """Remove the article with this id (or URL) and its chunks; the ids removed."""
        ...


class WebRead(Protocol):
    """What reading URLs gives (`ingest.web.WebResult` is one)."""

    notes: list[str]
    warnings: list[str]
    origins: dict[str, str]

    def raws(self) -> list[RawArticle | IngestError]:
        """The articles read, and one error per failure."""
        ...


# Fetch and read URLs that a user of the server gave: (urls, on_url) -> what was read.
UrlReader = Callable[[Sequence[str], Callable[[str], None] | None], WebRead]


class IngestFailure(BaseModel):
    """One article or record that was not ingested, and why."""

    location: str
    reason: str


class ItemOutcome(BaseModel):
    """One article that a URL gave (a page: one; a feed: one per item), or its failure."""

    location: str = Field(description="The page's URL, or the feed item's link.")
    status: Literal["added", "updated", "unchanged", "duplicate", "failed"]
    article_id: str | None = None
    note: str | None = Field(None, description="Why it failed, or how it was read (a feed "
                                               "item whose page could not be fetched is "
                                               "ingested from the feed's own text).")


class UrlOutcome(BaseModel):
    """What one URL of a request gave."""

    url: str
    items: list[ItemOutcome]
    warnings: list[str] = Field(default_factory=list, description="What was wrong with a "
                                "feed but read past, or that it was cut to its newest items.")


class IngestResult(BaseModel):
    added: int
    updated: int
    unchanged: int
    duplicate: int = Field(0, description="Near-duplicates of stored stories, kept as another "
                                          "outlet of them (`also_reported_by`), not indexed")
    failed: int
    errors: list[IngestFailure]
    chunks_written: int = 0
    repaired: int = 0
    urls: list[UrlOutcome] = Field(default_factory=list, description="Per URL of `urls`, in "
                                   "order: what it gave, or why not.")

    @classmethod
    def of(cls, report: IngestReport, urls: list[UrlOutcome] | None = None) -> IngestResult:
        """A run's report as the API shows it."""
        return cls(
            **report.counts,
            errors=[IngestFailure(location=e.location, reason=e.reason) for e in report.errors],
            chunks_written=report.chunks_written, repaired=report.repaired, urls=urls or [],
        )


def url_outcomes(urls: Sequence[str], web: WebRead, report: IngestReport) -> list[UrlOutcome]:
    """`report`'s articles and failures grouped under the URL each came from, in `urls`'
    order (a feed item under its feed)."""
    notes = dict(note.split(": ", 1) for note in web.notes if ": " in note)
    grouped: dict[str, list[ItemOutcome]] = {url: [] for url in urls}
    for location, article_id, status in report.articles:
        grouped.setdefault(web.origins.get(location, location), []).append(ItemOutcome(
            location=location, status=status, article_id=article_id,
            note=notes.get(location)))
    for error in report.errors:
        grouped.setdefault(web.origins.get(error.location, error.location), []).append(
            ItemOutcome(location=error.location, status="failed", note=error.reason))
    warned: dict[str, list[str]] = {}
    for line in web.warnings:
        url, _, warning = line.partition(": ")
        warned.setdefault(url, []).append(warning)
    return [UrlOutcome(url=url, items=items, warnings=warned.get(url, []))
            for url, items in grouped.items()]


class Writer:
    """Runs write work on the one `ArticleIngestor`, one piece at a time.

    `ingestor` builds it on first use (the read-only API never needs it; without it the server
    takes no articles: 503); `read_urls` fetches the URLs a user gives (without it: 503).
    """

    def __init__(self, ingestor: Callable[[], ArticleIngestor] | None = None,
                 read_urls: UrlReader | None = None) -> None:
        self._make = ingestor
        self._read_urls = read_urls
        self._lock = threading.Lock()
        self._built: ArticleIngestor | None = None

    def __call__(self, work: Callable[[ArticleIngestor], T]) -> T:
        """Run `work` on the ingestor under the one writer's lock (this process owns the
        store)."""
        if self._make is None:
            raise HTTPException(503, "this server does not take articles")
        with self._lock:
            if self._built is None:
                self._built = self._make()
            try:
                return work(self._built)
            finally:
                give_back()  # what the write read and let go (assistant/malloc.py)

    def ingest(self, work: Callable[[ArticleIngestor], IngestReport]) -> IngestResult:
        """Run an ingest and report it as the API shows it."""
        return IngestResult.of(self(work))

    def add_urls(self, urls: Sequence[str],
                 on_url: Callable[[str], None] | None = None) -> IngestResult:
        """Fetch, read and ingest URLs a user gave; the fetching happens outside the one
        writer's lock, so a slow site holds up no other write."""
        if self._read_urls is None:
            raise HTTPException(503, "this server does not fetch URLs")
        web = self._read_urls(urls, on_url)
        raws = web.raws()
        report = self(lambda ing: ing.ingest_raw(raws)) if raws else IngestReport()
        return IngestResult.of(report, url_outcomes(urls, web, report))

"""Every data type of the path, in the order data flows:

file -> RawArticle (a reader's fields) -> Article (cleaned) -> Chunk -> ArticleRecord (stored)
-> Passage (retrieved) -> Citation -> Answer (with the chat's Message history beside it);
and IngestReport, what an ingest run did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, model_validator

from assistant.errors import IngestError


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
        key = "url:" + url_key(url)
    else:
        key = "text:" + " ".join(body.lower().split())
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]


_AMP_PARAMS = frozenset({"amp", "amp_js_v", "amp_gsa", "usqp", "outputtype"})


def url_key(url: str) -> str:
    """The form of a (courlan-normalised) URL that an article id is made from: variants of one
    link are one key. http and https, `www.` and `amp.` hosts, AMP paths (`/amp`, `.amp`,
    `.amp.html`) and parameters, and a trailing slash make no difference; the stored URL keeps
    the link as published."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    for prefix in ("www.", "amp."):
        host = host.removeprefix(prefix)
    if parts.port and parts.port not in (80, 443):
        host += f":{parts.port}"
    path = parts.path
    for suffix in ("/amp/", "/amp", ".amp"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    path = path.replace(".amp.html", ".html").rstrip("/")
    query = "&".join(pair for pair in parts.query.split("&")
                     if pair and pair.split("=", 1)[0].lower() not in _AMP_PARAMS)
    return f"https://{host}{path}" + (f"?{query}" if query else "")



@dataclass(frozen=True)
class ArticleRecord:
    """What the store keeps about one article (its chunks carry the same fields)."""

    article_id: str
    content_hash: str
    title: str
    url: str = ""
    source: str = ""
    author: str = ""
    published_at: str = ""
    lang: str = ""
    external_id: str = ""
    path: str = ""
    n_chunks: int = 0
    # The body's MinHash (`ingest.dedup.pack`), for finding later copies of the same story.
    minhash: str = field(default="", repr=False)
    # Set on a near-duplicate: the id of the article stored for retrieval in its place. A
    # duplicate has no chunks of its own; it is listed as "also reported by" on that article.
    duplicate_of: str = ""


@dataclass(frozen=True)
class Chunk:
    """A piece of an article's cleaned body: `body[start:end] == text`."""

    index: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its article's metadata and its similarity to the question."""

    chunk_id: str
    article_id: str
    title: str
    url: str
    source: str
    published_at: str
    lang: str
    text: str
    index: int
    start: int
    end: int
    score: float
    external_id: str = ""
    # The chunk's sentence vectors as stored (`assistant.index.sentences.pack`), for the answerer.
    sentence_vectors: str = field(default="", repr=False, compare=False)


class Filters(BaseModel):
    """Which articles a question is asked of: published from `since` to `until` (both days
    included; an undated article is then left out) and from these outlets (any, when empty).
    Retrieval applies them inside the store query, so k passages still come back."""

    since: dt.date | None = Field(None, description="Published on or after this day "
                                  "(YYYY-MM-DD).")
    until: dt.date | None = Field(None, description="Published on or before this day "
                                  "(YYYY-MM-DD).")
    sources: list[str] = Field(default_factory=list, max_length=100,
                               description="Outlets, as GET /sources names them; any when "
                                           "empty.")
    # Bounded: the days read against it ("last year", "after December") must be dates too.
    today: dt.date | None = Field(None, ge=dt.date(1000, 1, 1), le=dt.date(9998, 12, 31),
                                  description="The day that \"today\", \"this week\" "
                                  "or \"latest\" in the question are read against; by "
                                  "default the day of the newest article.")

    @model_validator(mode="after")
    def _ordered(self) -> Filters:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self

    @property
    def active(self) -> bool:
        """True when they leave some articles out (`today` leaves none out by itself)."""
        return bool(self.since or self.until or self.sources)

    def describe(self) -> str:
        """The filters in words: 'from The Midland Ledger, published 2026-01-01 to ...'."""
        parts = []
        if self.sources:
            parts.append("from " + ", ".join(self.sources))
        if self.since and self.until:
            parts.append(f"published {self.since} to {self.until}")
        elif self.since:
            parts.append(f"published on or after {self.since}")
        elif self.until:
            parts.append(f"published on or before {self.until}")
        return ", ".join(parts)


class FilterFields(Filters):
    """The filter fields of a request body, flat beside its other fields (the HTTP answer
    routes and the OpenAI-compatible endpoint share them), validated as `Filters`."""

    @property
    def filters(self) -> Filters:
        return Filters.model_validate(self.model_dump(include=set(Filters.model_fields)))


@dataclass(frozen=True)
class Outlet:
    """An outlet of the store: its articles and the days of its first and last one."""

    source: str
    articles: int
    first_published: str = ""
    last_published: str = ""
    undated: int = 0


class Message(BaseModel):
    """One turn of chat history."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class ReportedBy(BaseModel):
    """Another outlet's run of the same story (a near-duplicate, stored once)."""

    article_id: str
    title: str
    url: str
    source: str
    published_at: str

    @classmethod
    def of(cls, record: ArticleRecord) -> ReportedBy:
        return cls(article_id=record.article_id, title=record.title, url=record.url,
                   source=record.source, published_at=record.published_at)


class ArticleText(BaseModel):
    """One stored article as a reader shows it: its details and cleaned body, on which every
    citation's `start`/`end` offsets point."""

    article_id: str
    title: str
    url: str
    source: str = Field(description="The outlet; empty when the article did not give one.")
    author: str
    published_at: str
    lang: str
    body: str = Field(description="The cleaned text that was chunked and indexed.")
    also_reported_by: list[ReportedBy] = Field(
        default_factory=list, description="Other outlets that ran the same story.")


class Citation(BaseModel):
    """The passage a `[n]` marker stands for, with its exact place in the article body."""

    n: int
    article_id: str
    title: str
    url: str
    source: str
    published_at: str
    passage: str
    start: int
    end: int
    score: float
    also_reported_by: list[ReportedBy] = Field(
        default_factory=list, description="Other outlets that ran the same story.")

    @classmethod
    def of(cls, n: int, passage: Passage, text: str | None = None, start: int | None = None,
           end: int | None = None, score: float | None = None) -> Citation:
        """Marker `n` standing for `passage`, or for the part of it given by `text` and its
        offsets in the article body (a quoted sentence)."""
        return cls(
            n=n, article_id=passage.article_id, title=passage.title, url=passage.url,
            source=passage.source, published_at=passage.published_at,
            passage=passage.text if text is None else text,
            start=passage.start if start is None else start,
            end=passage.end if end is None else end,
            score=round(passage.score if score is None else score, 4),
        )


class ConflictVersion(BaseModel):
    """One version of a fact the sources disagree on: the value, who reported it and when
    (its newest report), and the markers of the sentences that state it."""

    value: str
    source: str
    published_at: str
    citations: list[int]


class TimelineEntry(BaseModel):
    """One development of a story: the day it happened or was first reported, one sentence
    that states it and the markers of the passages that report it, and every outlet that did
    (near-duplicates stored once included)."""

    day: str | None = Field(description="YYYY-MM-DD: the date the sentence itself gives for "
                                        "the event, else the day of the first report; null "
                                        "when no article gives one (never guessed).")
    text: str = Field(description="One sentence stating the development.")
    citations: list[int] = Field(description="The `[n]` markers of the passages that report "
                                             "it (`Answer.citations`).")
    outlets: list[str] = Field(default_factory=list,
                               description="Every outlet that reported it, the first "
                                           "report's first.")
    unsupported: bool = Field(False, description="LLM answers: no retrieved passage supports "
                                                 "the sentence (the citation check).")


class Answer(BaseModel):
    """The one answer shape of the Python API, the HTTP API and the UI."""

    answer: str
    citations: list[Citation]
    refused: bool
    mode: Literal["extractive", "llm"]
    conflict: list[ConflictVersion] = Field(
        default_factory=list,
        description="When the sources disagree on the fact asked: each version, newest "
                    "first (offline answers; an LLM answer says so in its text).")
    unsupported: list[int] = Field(
        default_factory=list,
        description="LLM answers: the sentences (0-based, in the order of `answer`, split as "
                    "`assistant.answer.citecheck.answer_sentences` splits it) that no retrieved "
                    "passage supports; show them as unverified. Markers that pointed to the "
                    "wrong passage were already re-pointed. Always empty offline: those answers "
                    "quote passage sentences verbatim.")
    timeline: list[TimelineEntry] = Field(
        default_factory=list,
        description="For a question about how a story developed (\"How has X developed?\", "
                    "\"Timeline of X\"): one entry per development, oldest first, undated "
                    "ones last; `answer` then lists the same entries one a line. Empty for "
                    "other questions.")


# "duplicate": a near-duplicate of a stored article, recorded as another outlet of it.
Status = Literal["added", "updated", "unchanged", "duplicate", "failed"]


@dataclass
class IngestReport:
    """What happened to every article and file of one ingest run."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"added": 0, "updated": 0, "unchanged": 0, "duplicate": 0,
                                 "failed": 0}
    )
    errors: list[IngestError] = field(default_factory=list)
    articles: list[tuple[str, str, Status]] = field(default_factory=list)  # (location, id, status)
    chunks_written: int = 0
    repaired: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def merge(self, other: IngestReport) -> None:
        """Add another run's outcome to this one (files, then URLs, in one report)."""
        for name, n in other.counts.items():
            self.counts[name] += n
        self.errors.extend(other.errors)
        self.articles.extend(other.articles)
        self.chunks_written += other.chunks_written
        self.repaired += other.repaired

    def _record(self, location: str, article_id: str, status: Status) -> None:
        self.counts[status] += 1
        self.articles.append((location, article_id, status))

    def _fail(self, error: IngestError) -> None:
        self.counts["failed"] += 1
        self.errors.append(error)


def chunk_id(article_id: str, content_hash: str, index: int) -> str:
    """The id of chunk `index` of an article version: readers tell a chunk's version by it."""
    return f"{article_id}:{content_hash[:12]}:{index:05d}"


def split_chunk_id(chunk: str) -> tuple[str, str, int] | None:
    """(article id, version, index) of an id made by `chunk_id`, or None."""
    article_id, _, rest = chunk.rpartition(":")
    article_id, _, version = article_id.rpartition(":")
    if not article_id or not rest.isdigit():
        return None
    return article_id, version, int(rest)

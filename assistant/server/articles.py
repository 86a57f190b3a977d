"""The news the server holds: `/articles` (list, add, delete), `/sources`, and the local routes
that `newsdesk-ingest` sends to; every write goes through the server's one `Writer`."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from assistant.index.store_owner import LOCAL_DELETE_ROUTE, LOCAL_INGEST_ROUTE
from assistant.server.auth import require_owner_token
from assistant.server.validation import JsonBody
from assistant.server.writer import IngestResult, Writer
from assistant.service import Assistant
from assistant.types import ArticleText, RawArticle, ReportedBy

# The counts of an ingest result that add up when one request both posts and fetches.
_COUNTS = ("added", "updated", "unchanged", "duplicate", "failed", "chunks_written", "repaired")


class IngestRequest(JsonBody):
    articles: list[dict[str, Any]] = Field(
        default_factory=list, max_length=500,
        description="Article objects with the fields of a .json article: title, "
                    "body|text|content, url, published_at|date, author, source, lang.",
    )
    urls: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=4096)]] = Field(
        default_factory=list, max_length=100,
        description="Page and feed URLs (RSS, Atom, JSON Feed) for the server to fetch and "
                    "ingest, as the chat's second tab does. Public addresses only, unless "
                    "NEWSDESK_FETCH_ALLOW lists the host.",
    )

    @model_validator(mode="after")
    def _something(self) -> "IngestRequest":
        if not self.articles and not self.urls:
            raise ValueError("give `articles` (a list of article objects) or `urls` (page "
                             "and feed URLs), or both")
        return self


class LocalIngestRequest(BaseModel):
    """Articles as `newsdesk-ingest` read them from files (`RawArticle`, validated as is)."""

    articles: list[RawArticle] = Field(min_length=1, max_length=1000)

    @field_validator("articles")
    @classmethod
    def _short_locations(cls, articles: list[RawArticle]) -> list[RawArticle]:
        for article in articles:
            if len(article.location) > 4096:
                raise ValueError("an article's location is over 4,096 characters")
        return articles


class LocalDeleteRequest(BaseModel):
    target: str = Field(min_length=1, max_length=4096, description="An article id or URL.")


class Deleted(BaseModel):
    deleted: list[str] = Field(description="Ids of the articles removed, with all their chunks.")


class ArticleOut(BaseModel):
    article_id: str
    title: str
    url: str
    source: str
    author: str
    published_at: str
    lang: str
    n_chunks: int
    also_reported_by: list[ReportedBy] = Field(
        default_factory=list, description="Other outlets that ran the same story.")


class ArticlePage(BaseModel):
    articles: list[ArticleOut]
    offset: int
    limit: int
    total: int


class SourceOut(BaseModel):
    source: str = Field(description="The outlet, as `sources` takes it.")
    articles: int
    first_published: str = Field(description="Day of its first dated article, YYYY-MM-DD.")
    last_published: str = Field(description="Day of its latest dated article.")
    undated: int = Field(description="Its articles without a date (a date filter leaves "
                                     "them out).")


class SourceList(BaseModel):
    sources: list[SourceOut]
    total: int


def articles_router(assistant: Assistant, writer: Writer, guarded: list[Any]) -> APIRouter:
    """`/articles` and `/sources` over `assistant`, behind `guarded` (the key)."""
    router = APIRouter(dependencies=guarded)

    @router.post("/articles", response_model=IngestResult)
    def ingest_articles(request: IngestRequest) -> IngestResult:
        """Ingest articles, or fetch page and feed URLs and ingest what they give, into the
        running server's store; they are answerable at once. Bad records and URLs are
        reported one by one and never stop the others."""
        if not request.urls:
            return writer.ingest(lambda ing: ing.ingest_records(request.articles,
                                                                origin="articles"))
        fetched = writer.add_urls(request.urls)
        if not request.articles:
            return fetched
        both = writer.ingest(lambda ing: ing.ingest_records(request.articles,
                                                            origin="articles"))
        for name in _COUNTS:
            setattr(both, name, getattr(both, name) + getattr(fetched, name))
        both.errors += fetched.errors
        both.urls = fetched.urls
        return both

    @router.delete("/articles/{article_id}", response_model=Deleted,
                   responses={404: {"description": "No article has this id."}})
    def delete_article(article_id: str) -> Deleted:
        """Remove an article and all its chunks; it is never cited again."""
        if "://" in article_id or not 0 < len(article_id) <= 200:
            raise HTTPException(422, "expected an article id (from GET /articles)")
        deleted = writer(lambda ing: ing.delete(article_id))
        if not deleted:
            raise HTTPException(404, f"no article has the id {article_id!r}")
        return Deleted(deleted=deleted)

    @router.get("/articles/{article_id}", response_model=ArticleText,
                responses={404: {"description": "No article has this id."}})
    def read_article(article_id: str) -> ArticleText:
        """One article with its cleaned body: a citation's `start` and `end` are offsets
        into `body`, so `body[start:end]` is the cited passage."""
        if "://" in article_id or not 0 < len(article_id) <= 200:
            raise HTTPException(422, "expected an article id (from GET /articles or a "
                                     "citation's article_id)")
        found = assistant.article(article_id)
        if found is None:
            raise HTTPException(404, f"no article has the id {article_id!r}")
        return found

    @router.get("/sources", response_model=SourceList)
    def sources() -> SourceList:
        """The outlets of the ingested news (the values `sources` takes), with their article
        counts and the days of their first and last article; most articles first."""
        found = [SourceOut(**asdict(o)) for o in assistant.sources()]
        return SourceList(sources=found, total=len(found))

    # An offset past a billion is no page of any store, and past a C long Chroma's sqlite
    # overflows (a 503 blaming the store): the bound makes it the client's 422.
    @router.get("/articles", response_model=ArticlePage)
    def articles(offset: int = Query(0, ge=0, le=10**9), limit: int = Query(50, ge=1, le=500),
                 ) -> ArticlePage:
        """The indexed articles, a page at a time."""
        records = assistant.articles(offset=offset, limit=limit)
        copies = assistant.store.reported_by([r.article_id for r in records])
        return ArticlePage(
            articles=[ArticleOut(**{k: v for k, v in asdict(r).items()
                                    if k in ArticleOut.model_fields},
                                 also_reported_by=[ReportedBy.of(c) for c in
                                                   copies.get(r.article_id, [])])
                      for r in records],
            offset=offset, limit=limit, total=assistant.store.count_articles(),
        )

    return router


def local_router(assistant: Assistant, writer: Writer) -> APIRouter:
    """The routes `newsdesk-ingest` sends to on this machine (it finds them, and their token,
    in the store directory this server owns); not in the API docs."""
    router = APIRouter(include_in_schema=False,
                       dependencies=[Depends(require_owner_token(assistant))])

    @router.post(LOCAL_INGEST_ROUTE, response_model=IngestResult)
    def ingest_local(request: LocalIngestRequest) -> IngestResult:
        """Articles that `newsdesk-ingest` read from files on this machine."""
        raws = list(request.articles)
        return writer.ingest(lambda ing: ing.ingest_raw(raws))

    @router.post(LOCAL_DELETE_ROUTE, response_model=Deleted)
    def delete_local(request: LocalDeleteRequest) -> Deleted:
        """`newsdesk-ingest --delete ID|URL` on this server's store."""
        return Deleted(deleted=writer(lambda ing: ing.delete(request.target)))

    return router

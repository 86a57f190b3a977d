"""The answer endpoint: a FastAPI app over `Assistant` (no logic of its own)."""


import hmac
import json
import math
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import (
    EmbeddingError,
    ExposureError,
    IngestError,
    LLMError,
    NewsdeskError,
    QuestionError,
    StoreError,
)
from assistant.index.store_owner import LOCAL_DELETE_ROUTE, LOCAL_INGEST_ROUTE
from assistant.server.access import AccessControl
from assistant.server.openai_api import (
    is_openai_path,
    non_finite_number,
    openai_error,
    openai_router,
)
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.text import invalid_unicode, printable
from assistant.types import Answer, FilterFields, IngestReport, RawArticle, ReportedBy
from assistant.types import Message as ChatMessage


def local_request_limit(settings: Settings) -> int:
    """The largest body the local ingest route takes: an article at the size limit, escaped."""
    return max(settings.max_request_bytes, 2 * settings.max_article_bytes + 1_048_576)


# Where the chat's second tab uploads files: Gradio 6's route, the chat being mounted at `/`
# (`ui.create_server`).
GRADIO_UPLOAD_ROUTE = "/gradio_api/upload"


def upload_limit(settings: Settings) -> int:
    """The largest body the chat's file upload takes: an article file at the size limit
    (NEWSDESK_MAX_ARTICLE_BYTES), with room for the multipart framing around it (a boundary
    and the part's headers, its file name included)."""
    return max(settings.max_request_bytes, settings.max_article_bytes + 16_384)


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


def _require_key(settings: Settings) -> Callable[..., None]:
    bearer = HTTPBearer(auto_error=False, description="NEWSDESK_API_KEY, when it is set")

    def require(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if settings.api_key is None:
            return
        expected = settings.api_key.get_secret_value()
        if credentials is None or not key_matches(credentials.credentials, expected):
            raise HTTPException(401, "missing or wrong API key: send "
                                     "'Authorization: Bearer <NEWSDESK_API_KEY>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return require


def _require_owner_token(assistant: Assistant) -> Callable[..., None]:
    """The local ingest route takes only the token this server wrote in its store directory
    (readable by whoever may write the store anyway)."""
    bearer = HTTPBearer(auto_error=False)

    def require(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        lock = assistant.store.lock
        if lock is None or credentials is None or not key_matches(credentials.credentials,
                                                                  lock.token):
            raise HTTPException(401, "the local ingest route takes only the token in the "
                                     "store directory of this server")

    return require


class BodyLimit:
    """ASGI middleware: requests whose body exceeds `max_bytes` get 413 before any parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}  # paths with a limit of their own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        detail = f"request body over {limit} bytes"
        response = (openai_error(413, detail, code="request_too_large")
                    if is_openai_path(scope.get("path", "")) else
                    JSONResponse({"detail": detail}, 413))
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


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


class _JsonBody(BaseModel):
    """A request body: every string in it, and every key, must be valid Unicode text, and
    every number finite."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if problem := _invalid_text(data) or non_finite_number(data):
            raise ValueError(problem)
        return data


def _invalid_text(data: Any) -> str | None:
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


# A validation error quotes at most this much of the input it rejects.
_ECHO_CHARS = 200
# The bits of the largest integer it quotes as a number (about 190 digits).
_ECHO_INT_BITS = 640


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


def _shown_error(error: dict[str, Any]) -> dict[str, Any]:
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


async def _short_validation_errors(request: Request,
                                   exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, but quoting at most `_ECHO_CHARS` of each rejected input (a request of
    10,000 articles came back whole), never a lone surrogate (it cannot be encoded) nor a
    NaN or infinity (JSON has none), and with the message of an exception in `ctx`."""
    errors = [_shown_error(error) for error in exc.errors()]
    if is_openai_path(request.url.path):  # OpenAI answers a bad parameter with a 400
        message = "; ".join(": ".join(filter(None, (_param(e), e.get("msg", ""))))
                            for e in errors) or "invalid request"
        return openai_error(400, message, param=_param(errors[0]) if errors else None,
                            code="invalid_value")
    return await request_validation_exception_handler(request, RequestValidationError(errors))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
    """FastAPI's answer to an HTTP error, in OpenAI's shape on the OpenAI routes."""
    if is_openai_path(request.url.path):
        code = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed"}
        return openai_error(exc.status_code, str(exc.detail), code=code.get(exc.status_code),
                            headers=getattr(exc, "headers", None))
    return await http_exception_handler(request, exc)


class IngestRequest(_JsonBody):
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


class ArticlePage(BaseModel):
    articles: list[ArticleOut]
    offset: int
    limit: int
    total: int


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class ArticleIngestor(Protocol):
    """What the app needs to take articles (`ingest.pipeline.Ingestor` is one)."""

    def ingest_records(self, records: Sequence[object], origin: str = "request") -> IngestReport:
        """Ingest article objects (the fields of a .json article)."""
        ...

    def ingest_raw(self, raws: Sequence[RawArticle | IngestError]) -> IngestReport:
        """Ingest articles that a reader already read."""
        ...

    def delete(self, target: str) -> list[str]:
        """Remove the article with this id (or URL) and its chunks; the ids removed."""
        ...


# Every error the assistant raises, as the HTTP status it answers with (most specific first).
ERROR_STATUS: tuple[tuple[type[NewsdeskError], int], ...] = (
    (QuestionError, 422), (LLMError, 502), (EmbeddingError, 503), (StoreError, 503))


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)
    if is_openai_path(request.url.path):
        return openai_error(400 if status == 422 else status, str(exc))
    return JSONResponse({"detail": str(exc)}, status_code=status)


def build_app(assistant: Assistant, ingestor: Callable[[], ArticleIngestor] | None = None,
              chat_fns: Collection[int] = (), read_urls: UrlReader | None = None) -> FastAPI:
    """The HTTP API over one `Assistant`: /answer, /answer/stream, /health, /articles,
    /sources, /docs,
    and the OpenAI-compatible /v1/chat/completions and /v1/models.

    `ingestor` builds what takes articles on the first POST (without it the server takes
    none: 503); `read_urls` fetches the URLs a user gives (without it, URLs get 503).
    `chat_fns`: ids of the answering functions of a Gradio chat to be mounted on
    the app, charged to the client's budget like /answer (see `assistant.server.access`).
    `assistant.server.app.create_app` wires the ingest pipeline in.
    """
    settings = assistant.settings

    class AnswerRequest(_JsonBody, FilterFields):
        # Its length is checked without the surrounding white space, as the assistant does.
        question: Annotated[str, StringConstraints(
            strip_whitespace=True, min_length=1, max_length=settings.max_question_chars,
        )] = Field(description="The question, in plain text.")
        history: list[ChatMessage] = Field(default_factory=list, max_length=50,
                                       description="Earlier turns, oldest first.")
        k: int | None = Field(None, ge=1, le=50, strict=True,
                              description="Passages to retrieve.")

    app = FastAPI(
        title="newsdesk",
        description="Questions over ingested news, answered with a citation on every claim.",
        version="0.1.0",
    )
    app.state.assistant = assistant
    app.add_exception_handler(RequestValidationError, _short_validation_errors)
    app.add_exception_handler(NewsdeskError, _error_response)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Over the whole app, so it also guards the chat that ui.create_server mounts.
    app.add_middleware(AccessControl, settings=settings, chat_fns=chat_fns)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes,  # outermost
                       larger={LOCAL_INGEST_ROUTE: local_request_limit(settings),
                               GRADIO_UPLOAD_ROUTE: upload_limit(settings)})
    guarded = [Depends(_require_key(settings))]

    @app.get("/health", response_model=Health, response_model_exclude_none=True,
             responses={503: {"model": Health}})
    def health() -> Any:
        """What is indexed and which answer mode is active; HTTP 503 with `"status":
        "degraded"` and a `reason` when the store cannot serve or take new articles."""
        found = assistant.health()
        if found["status"] != "ok":
            return JSONResponse(Health(**found).model_dump(exclude_none=True), status_code=503)
        return found

    @app.post("/answer", response_model=Answer, dependencies=guarded)
    def answer(request: AnswerRequest) -> Answer:
        """Answer a question; `[n]` markers in `answer` refer to `citations[n]`."""
        return assistant.ask(request.question, request.history, request.k, request.filters)

    @app.post("/answer/stream", responses={200: {"content": {"text/event-stream": {}}}},
              dependencies=guarded)
    def answer_stream(request: AnswerRequest) -> StreamingResponse:
        """Server-sent events: `delta` events with text, then one `answer` event (the full
        answer shape), or an `error` event."""
        # The first event before the response starts: an error there is an HTTP status.
        events = assistant.stream(request.question, request.history, request.k,
                                  request.filters)
        first = next(events)

        def body() -> Iterator[str]:
            try:
                for event in _chain(first, events):
                    if isinstance(event, Answer):
                        yield _sse("answer", event.model_dump())
                    else:
                        yield _sse("delta", {"text": event})
            except NewsdeskError as exc:
                yield _sse("error", {"detail": str(exc)})

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    ingest_lock = threading.Lock()
    built: list[ArticleIngestor] = []  # on first use: the read-only API never needs it

    def writing(work: Callable[[ArticleIngestor], Any]) -> Any:
        if ingestor is None:
            raise HTTPException(503, "this server does not take articles")
        with ingest_lock:  # one writer: this process owns the store
            if not built:
                built.append(ingestor())
            return work(built[0])

    app.state.writing = writing  # the server's watcher writes through the same lock

    def result(report: IngestReport, urls: list[UrlOutcome] | None = None) -> IngestResult:
        return IngestResult(
            **report.counts,
            errors=[IngestFailure(location=e.location, reason=e.reason) for e in report.errors],
            chunks_written=report.chunks_written, repaired=report.repaired, urls=urls or [],
        )

    def run_ingest(work: Callable[[ArticleIngestor], IngestReport]) -> IngestResult:
        return result(writing(work))

    def add_urls(urls: Sequence[str],
                 on_url: Callable[[str], None] | None = None) -> IngestResult:
        """Fetch, read and ingest URLs a user gave; the fetching happens outside the one
        writer's lock, so a slow site holds up no other write."""
        if read_urls is None:
            raise HTTPException(503, "this server does not fetch URLs")
        web = read_urls(urls, on_url)
        raws = web.raws()
        report = writing(lambda ing: ing.ingest_raw(raws)) if raws else IngestReport()
        return result(report, url_outcomes(urls, web, report))

    app.state.add_urls = add_urls  # the chat's second tab adds URLs through the same path

    @app.post("/articles", response_model=IngestResult, dependencies=guarded)
    def ingest_articles(request: IngestRequest) -> IngestResult:
        """Ingest articles, or fetch page and feed URLs and ingest what they give, into the
        running server's store; they are answerable at once. Bad records and URLs are
        reported one by one and never stop the others."""
        if not request.urls:
            return run_ingest(lambda ing: ing.ingest_records(request.articles,
                                                             origin="articles"))
        fetched = add_urls(request.urls)
        if not request.articles:
            return fetched
        both = run_ingest(lambda ing: ing.ingest_records(request.articles, origin="articles"))
        for name in ("added", "updated", "unchanged", "duplicate", "failed",
                     "chunks_written", "repaired"):
            setattr(both, name, getattr(both, name) + getattr(fetched, name))
        both.errors += fetched.errors
        both.urls = fetched.urls
        return both

    @app.post(LOCAL_INGEST_ROUTE, response_model=IngestResult, include_in_schema=False,
              dependencies=[Depends(_require_owner_token(assistant))])
    def ingest_local(request: LocalIngestRequest) -> IngestResult:
        """Articles that `newsdesk-ingest` read from files on this machine: it finds this
        route and its token in the store directory, which this server owns."""
        raws = list(request.articles)
        return run_ingest(lambda ing: ing.ingest_raw(raws))

    @app.delete("/articles/{article_id}", response_model=Deleted, dependencies=guarded,
                responses={404: {"description": "No article has this id."}})
    def delete_article(article_id: str) -> Deleted:
        """Remove an article and all its chunks; it is never cited again."""
        if "://" in article_id or not 0 < len(article_id) <= 200:
            raise HTTPException(422, "expected an article id (from GET /articles)")
        deleted = writing(lambda ing: ing.delete(article_id))
        if not deleted:
            raise HTTPException(404, f"no article has the id {article_id!r}")
        return Deleted(deleted=deleted)

    @app.post(LOCAL_DELETE_ROUTE, response_model=Deleted, include_in_schema=False,
              dependencies=[Depends(_require_owner_token(assistant))])
    def delete_local(request: LocalDeleteRequest) -> Deleted:
        """`newsdesk-ingest --delete ID|URL` on this server's store."""
        return Deleted(deleted=writing(lambda ing: ing.delete(request.target)))
    @app.get("/sources", response_model=SourceList, dependencies=guarded)
    def sources() -> SourceList:
        """The outlets of the ingested news (the values `sources` takes), with their article
        counts and the days of their first and last article; most articles first."""
        found = [SourceOut(**asdict(o)) for o in assistant.sources()]
        return SourceList(sources=found, total=len(found))

    # An offset past a billion is no page of any store, and past a C long Chroma's sqlite
    # overflows (a 503 blaming the store): the bound makes it the client's 422.
    @app.get("/articles", response_model=ArticlePage, dependencies=guarded)
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

    app.include_router(openai_router(assistant, guarded))
    return app


def _chain(first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[str | Answer]:
    yield first
    yield from rest

"""URLs -> raw articles: fetch pages and feeds (RSS 0.9x/2.0, Atom, JSON Feed) politely.

`read_urls` fetches every URL (at most `fetch_per_host` requests at a time per host, robots.txt
respected, sizes, redirects and time bounded), tells pages from feeds by content type and
content, extracts pages with trafilatura and feed items through their own pages, falling back
to the item's own text when its page cannot be fetched. Every failure is one `IngestError`
naming the URL and the reason; the other URLs go on. Nothing is written here: the raw articles
go through the same paths as files (`Ingestor.ingest_raw`, or the server that owns the store).
"""

from __future__ import annotations

import codecs
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import charset_normalizer
import feedparser
import httpx
import lxml.html
from dateutil import parser as dateparser
from trafilatura.utils import decode_file

from assistant.errors import IngestError
from assistant.settings import Settings
from assistant.text import count_words
from assistant.types import RawArticle, url_key
from ingest.fetch_guard import AddressPolicy, AddressRefused, guarded_transport
from ingest.metadata import NO_TEXT
from ingest.readers import read_html

_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
_JSON_TYPES = ("application/feed+json", "application/json")
_XML_TYPES = ("application/xml", "text/xml")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_REDIRECTS = (301, 302, 303, 307, 308)
# Requests in flight in all, across hosts (each host has its own, smaller limit).
_WORKERS = 8


def is_url(text: str) -> bool:
    """True for an http(s) URL, as `newsdesk-ingest` tells URLs from paths."""
    return bool(_URL.match(text.strip()))


class FetchError(IngestError):
    """A URL that could not be fetched or read; `location` is the URL."""


@dataclass
class Fetched:
    """A fetched response: the URL after redirects, its status and (unless 304) its body."""

    url: str
    status: int
    content_type: str
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchRefused(FetchError):
    """A URL whose address (or a redirect's, or a feed item link's) the fetch policy refuses."""


class Fetcher:
    """One polite HTTP client: a User-Agent, robots.txt, per-host concurrency and bounds.

    By default it fetches what a user of the server gave, so it connects to public addresses
    only, plus NEWSDESK_FETCH_ALLOW (`ingest.fetch_guard`); `trusted` is for what the operator
    runs (the CLI, the watcher), which may fetch any address. `transport` is for tests that
    serve from memory.
    """

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None,
                 trusted: bool = False) -> None:
        self.settings = settings
        self.trusted = trusted
        if transport is None and not trusted:
            transport = guarded_transport(AddressPolicy(settings.fetch_allow))
        self.client = httpx.Client(
            # Redirects are followed by hand, so that robots.txt is asked for every hop.
            follow_redirects=False,
            timeout=httpx.Timeout(settings.fetch_timeout_s),
            headers={"User-Agent": settings.fetch_user_agent,
                     "Accept-Encoding": "gzip, deflate"},
            transport=transport,
        )
        self._lock = threading.Lock()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._robots: dict[str, RobotFileParser | str] = {}
        self._robot_locks: dict[str, threading.Lock] = {}
        self.requests = 0  # requests made, robots.txt included (the watcher's cost)

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, etag: str = "", last_modified: str = "") -> Fetched:
        """GET a URL that robots.txt allows; raises `FetchError` with the reason otherwise.

        With `etag` / `last_modified` the request is conditional: an unchanged resource comes
        back as status 304 with no body.
        """
        try:
            refusal = self._robots_refusal(url)
        except FetchRefused as exc:  # robots.txt is the first request to a new origin
            raise FetchRefused(url, exc.reason) from None
        if refusal is not None:
            raise FetchError(url, refusal)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._get(url, headers)

    def _get(self, url: str, headers: dict[str, str], robots: bool = True) -> Fetched:
        """GET with redirects followed by hand (at most `fetch_max_redirects`); with
        `robots`, every redirect target must be allowed by its own site's robots.txt too."""
        current = url
        for _ in range(self.settings.fetch_max_redirects + 1):
            hop = self._get_once(url, current, headers)
            if isinstance(hop, Fetched):
                return hop
            current = hop
            try:
                refusal = self._robots_refusal(current) if robots else None
            except FetchRefused as exc:
                raise FetchRefused(url, f"redirected to {current}: {exc.reason}") from None
            if refusal is not None:
                raise FetchError(url, f"redirected to {current}, which {refusal}")
        raise FetchError(url, f"too many redirects (over {self.settings.fetch_max_redirects}; "
                              "a redirect loop?)")

    def _get_once(self, url: str, current: str, headers: dict[str, str]) -> Fetched | str:
        """One request: the response, or the absolute URL it redirects to. Errors name `url`,
        the URL that was asked for."""
        limit = self.settings.fetch_max_bytes
        # A server that trickles bytes is cut off too, not only one that stalls.
        deadline = time.monotonic() + 4 * self.settings.fetch_timeout_s
        with self._host_slot(current):
            with self._lock:
                self.requests += 1
            try:
                with self.client.stream("GET", current, headers=headers) as response:
                    if response.status_code == 304:
                        return _fetched(response, b"")
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        return str(response.url.join(response.headers["location"]))
                    if response.status_code >= 400:
                        raise FetchError(url, f"HTTP {response.status_code} "
                                              f"{response.reason_phrase}".rstrip())
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise FetchError(url, _too_large(int(declared), limit))
                    body = bytearray()
                    for piece in response.iter_bytes():  # gzip already undone
                        body += piece
                        if len(body) > limit:
                            raise FetchError(url, _too_large(None, limit))
                        if time.monotonic() > deadline:
                            raise FetchError(url, "timed out: the response took over "
                                                  f"{4 * self.settings.fetch_timeout_s:g} s")
                    return _fetched(response, bytes(body))
            except AddressRefused as exc:
                raise FetchRefused(url, exc.reason) from None
            except httpx.TimeoutException as exc:
                raise FetchError(url, f"timed out after {self.settings.fetch_timeout_s:g} s "
                                      f"({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise FetchError(url, f"cannot fetch: {type(exc).__name__}: {exc}") from exc

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        host = urlsplit(url).netloc.lower()
        with self._lock:
            if host not in self._hosts:
                self._hosts[host] = threading.BoundedSemaphore(self.settings.fetch_per_host)
            return self._hosts[host]

    def _robots_refusal(self, url: str) -> str | None:
        """Why robots.txt forbids this URL to our agent, or None when it allows it."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        with self._lock:
            origin_lock = self._robot_locks.setdefault(origin, threading.Lock())
        with origin_lock:  # one robots.txt request per origin
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._robots[origin] = self._read_robots(origin)
        if isinstance(rules, str):
            return rules
        if not rules.can_fetch(self.settings.fetch_user_agent, url):
            return f"robots.txt of {origin} disallows it"
        return None

    def _read_robots(self, origin: str) -> RobotFileParser | str:
        parser = RobotFileParser(origin + "/robots.txt")
        try:
            found = self._get(origin + "/robots.txt", {}, robots=False)
        except FetchRefused:
            raise
        except FetchError as exc:
            if re.match(r"HTTP 4\d\d", exc.reason):  # no robots.txt: everything is allowed
                parser.parse([])
                return parser
            # RFC 9309: an unreachable robots.txt means nothing may be fetched.
            return f"robots.txt of {origin} cannot be read ({exc.reason})"
        parser.parse(decode_file(found.body).splitlines())
        return parser


def _fetched(response: httpx.Response, body: bytes) -> Fetched:
    return Fetched(url=str(response.url), status=response.status_code,
                   content_type=response.headers.get("content-type", ""), body=body,
                   etag=response.headers.get("etag", ""),
                   last_modified=response.headers.get("last-modified", ""))


def _too_large(size: int | None, limit: int) -> str:
    shown = f"{size:,} bytes, " if size is not None else ""
    return f"too large: {shown}over the limit of {limit:,} bytes (NEWSDESK_FETCH_MAX_BYTES)"


# ---------------------------------------------------------------------------------------------
# Telling pages from feeds, and reading each.

Kind = Literal["page", "feed", "json_feed"]


def kind_of(fetched: Fetched) -> Kind:
    """What a response is, from its content type and its first bytes; `FetchError` when it
    is neither an HTML page nor a feed."""
    ctype = fetched.content_type.split(";")[0].strip().lower()
    head = fetched.body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    xml_feed = re.search(rb"<(rss|feed|rdf:rdf)[\s>]", head) is not None
    if ctype in _JSON_TYPES or ctype.endswith("+json") or (not ctype and head[:1] == b"{"):
        if b"jsonfeed.org" in fetched.body[:4096]:
            return "json_feed"
        raise FetchError(fetched.url, f"JSON that is not a JSON Feed ({ctype or 'no type'})")
    if ctype in _FEED_TYPES:
        return "feed"
    if ctype in _HTML_TYPES or ctype in _XML_TYPES or ctype in ("", "text/plain"):
        if xml_feed:
            return "feed"  # servers often label feeds text/html or text/xml
        if ctype in _HTML_TYPES or re.search(rb"<(!doctype html|html)[\s>]", head):
            return "page"
    raise FetchError(fetched.url, f"not an HTML page or a feed (content type "
                                  f"{ctype or 'missing'})")


@dataclass
class FeedItem:
    """One entry of a feed, with the fields a newsroom feed carries."""

    feed_url: str
    link: str
    title: str = ""
    text: str = ""  # the item's own content, as plain text
    published: str = ""
    author: str = ""
    guid: str = ""
    outlet: str = ""  # the feed's title

    @property
    def location(self) -> str:
        return self.link or f"{self.feed_url}#{self.guid or self.title}"

    @property
    def key(self) -> str:
        """What identifies the item between polls (the watcher's memory)."""
        return self.guid or self.link or self.title


@dataclass
class Feed:
    """A feed document's items (the newest `max_items`), and what was wrong with it but could
    be read past (one line each)."""

    url: str
    items: list[FeedItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_feed(fetched: Fetched, kind: Kind, max_items: int) -> Feed:
    """The newest `max_items` items of an RSS, Atom or JSON Feed document.

    A document feedparser reads with recoverable errors (an unescaped `&`, a wrong encoding
    label) gives its items and a warning; only one with no items at all fails (`FetchError`).
    """
    feed = _parse_json_feed(fetched) if kind == "json_feed" else _parse_xml_feed(fetched)
    if len(feed.items) > max_items:
        feed.warnings.append(f"{len(feed.items):,} items: kept the newest {max_items:,} "
                             "(NEWSDESK_FEED_MAX_ITEMS)")
        feed.items = newest(feed.items, max_items)
    return feed


def newest(items: list[FeedItem], n: int) -> list[FeedItem]:
    """The `n` newest items, newest first; undated items after dated ones, in document order
    (feeds list newest first)."""
    dated = [(item_day(item), i) for i, item in enumerate(items)]
    order = sorted(range(len(items)), key=lambda i: (dated[i][0] is None,
                                                     -(dated[i][0] or 0.0), i))
    return [items[i] for i in order[:n]]


def item_day(item: FeedItem) -> float | None:
    """An item's publication time as a POSIX timestamp, or None when it has none we read."""
    if not item.published:
        return None
    try:
        return dateparser.parse(item.published).timestamp()
    except (ValueError, OverflowError, TypeError):
        return None


def _parse_xml_feed(fetched: Fetched) -> Feed:
    parsed = feedparser.parse(fetched.body, response_headers={
        "content-type": fetched.content_type or "application/xml",
        "content-location": fetched.url})
    problem = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        detail = f": {problem}" if parsed.get("bozo") else ""
        raise FetchError(fetched.url, f"malformed feed: neither RSS nor Atom{detail}")
    if not parsed.entries:
        if parsed.get("bozo") and not isinstance(problem, feedparser.CharacterEncodingOverride):
            raise FetchError(fetched.url, f"malformed feed: {problem}")
        raise FetchError(fetched.url, "the feed has no items")
    feed = Feed(fetched.url)
    if parsed.get("bozo") and not isinstance(problem, feedparser.CharacterEncodingOverride):
        line = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
        feed.warnings.append(f"not well-formed, read past ({line})")
    outlet = str(parsed.feed.get("title", "")).strip()
    items = feed.items
    for entry in parsed.entries:
        content = entry.get("content") or []
        html = content[0].get("value", "") if content else entry.get("summary", "")
        author = entry.get("author", "")
        items.append(FeedItem(
            feed_url=fetched.url, link=_absolute(fetched.url, entry.get("link", "")),
            title=str(entry.get("title", "")).strip(), text=_html_text(html),
            published=str(entry.get("published") or entry.get("updated") or ""),
            author=str(author), guid=str(entry.get("id", "")), outlet=outlet))
    return feed


def _parse_json_feed(fetched: Fetched) -> Feed:
    # feedparser 6 reads no JSON Feed; the format is small enough to read here.
    try:
        doc = json.loads(decode_file(fetched.body))
    except ValueError as exc:
        raise FetchError(fetched.url, f"malformed feed: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FetchError(fetched.url, "malformed feed: a JSON Feed needs an `items` list")
    outlet = str(doc.get("title", "")).strip()
    feed = Feed(fetched.url)
    items = feed.items
    skipped = 0
    for entry in doc["items"]:
        if not isinstance(entry, dict):
            skipped += 1
            continue
        authors = entry.get("authors") or ([entry["author"]] if entry.get("author") else [])
        names = [str(a.get("name", "")) for a in authors if isinstance(a, dict)]
        text = _text_field(entry, "content_text") or _html_text(
            _text_field(entry, "content_html")) or _text_field(entry, "summary")
        items.append(FeedItem(
            feed_url=fetched.url,
            link=_absolute(fetched.url, _text_field(entry, "url") or
                           _text_field(entry, "external_url")),
            title=_text_field(entry, "title"), text=text,
            published=_text_field(entry, "date_published") or
            _text_field(entry, "date_modified"),
            author=", ".join(n for n in names if n), guid=_text_field(entry, "id"),
            outlet=outlet))
    if not items:
        raise FetchError(fetched.url, "the feed has no items" if not skipped else
                         "malformed feed: no item is an object")
    if skipped:
        feed.warnings.append(f"{skipped} item(s) that are not objects, left out")
    return feed


def _text_field(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    return str(value).strip() if isinstance(value, str | int) else ""


def _absolute(base: str, link: str) -> str:
    link = link.strip()
    return urljoin(base, link) if link else ""


def _html_text(html: str) -> str:
    """Plain text of a feed item's HTML content, a paragraph a line."""
    if not html.strip():
        return ""
    if "<" not in html:
        return html.strip()
    marked = re.sub(r"(?i)<br\s*/?>|</(p|div|h\d|li|blockquote)>", "\n", html)
    try:
        text = lxml.html.fragment_fromstring(marked, create_parent="div").text_content()
    except (ValueError, lxml.etree.ParserError):
        return ""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def page_article(fetched: Fetched, item: FeedItem | None = None, *,
                 min_words: int) -> RawArticle:
    """A fetched HTML page as a raw article (trafilatura: main text, title, date, author,
    outlet); a feed item fills in what the page does not say.

    A page whose main text has fewer than `min_words` words (`assistant.text.count_words`;
    NEWSDESK_MIN_PAGE_WORDS) is navigation, a cookie wall or an error page: `FetchError`
    "no article text".
    """
    try:
        found = read_html(fetched.url, decode_page(fetched.body, fetched.content_type)
                          ).articles[0]
    except IngestError as exc:
        raise FetchError(fetched.url, exc.reason) from exc
    words = count_words(found.body, stop_at=min_words)
    if words < min_words:
        raise FetchError(fetched.url, f"{NO_TEXT} (the page's text is {words} word"
                                      f"{'' if words == 1 else 's'}, fewer than "
                                      f"NEWSDESK_MIN_PAGE_WORDS={min_words})")
    found.location = item.location if item else fetched.url
    # The page's own canonical link names the article when it is on the same site (a page
    # must not claim another site's article); else the URL it was fetched from.
    same_site = found.url and _site(found.url) == _site(fetched.url)
    found.url = found.url if same_site else fetched.url
    if item is not None:
        if not found.title and item.title:
            found.title, found.has_title = item.title, True
        found.published_at = found.published_at or item.published
        found.author = found.author or item.author
        found.source = found.source or item.outlet
    return found


# Labels that browsers read as another, larger charset (WHATWG Encoding): a page labelled
# latin-1 is usually windows-1252 (curly quotes, dashes), one labelled gb2312 uses all of GBK.
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252",
                    "latin-1": "cp1252", "l1": "cp1252", "us-ascii": "cp1252",
                    "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""",
                           re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def decode_page(body: bytes, content_type: str = "") -> str:
    """A fetched page as text: by its byte order mark; else in the first charset that its
    Content-Type header, then its `<meta charset>`, declares and in which the bytes decode
    cleanly; else as UTF-8 when they are UTF-8; else in the charset detected from the bytes
    (charset-normalizer). A windows-1252 page labelled UTF-8 reads "naïvely", not "naďvely".
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, "replace")
    for codec in (*_declared_charsets(body, content_type), "utf-8"):
        try:
            return body.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode(_detected_charset(body), "replace")


def _declared_charsets(body: bytes, content_type: str) -> list[str]:
    header = re.search(r"charset\s*=\s*[\"']?\s*([\w.:-]+)", content_type, re.IGNORECASE)
    meta = _META_CHARSET.search(body[:2048])
    labels = [header.group(1) if header else "", meta.group(1).decode("ascii") if meta else ""]
    return [_CHARSET_ALIASES.get(label.lower(), label.lower()) for label in labels if label]


def _detected_charset(body: bytes) -> str:
    """The charset whose reading of `body` is least garbled (charset-normalizer's "chaos");
    among equally clean ones windows-1252, the most common legacy charset of the web: for a
    few accented letters in English text, windows-1250 or -1257 read just as cleanly."""
    results = charset_normalizer.from_bytes(body)
    best = results.best()
    if best is None:
        return "cp1252"
    cleanest = {match.encoding for match in results if match.chaos <= best.chaos}
    return "cp1252" if "cp1252" in cleanest else best.encoding


def item_article(item: FeedItem) -> RawArticle:
    """A feed item from its own content (its page could not be fetched)."""
    if not item.text.strip():
        raise FetchError(item.location, "the feed item has no text of its own")
    return RawArticle(location=item.location, body=item.text, title=item.title,
                      has_title=bool(item.title), url=item.link, published_at=item.published,
                      author=item.author, source=item.outlet, external_id="" if item.link
                      else item.guid)


def _site(url: str) -> str:
    return urlsplit(url_key(url)).netloc


# ---------------------------------------------------------------------------------------------
# The whole job for a list of URLs.


@dataclass
class WebResult:
    """What reading a list of URLs gave: articles, one error per failure, notes (feed items
    whose page could not be fetched, ingested from the feed's own text), warnings (feeds read
    past an error or cut to their newest items), and for each article or error location the
    URL it came from (a feed item's is its feed's)."""

    articles: list[RawArticle] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)

    def raws(self) -> list[RawArticle | IngestError]:
        return [*self.articles, *self.errors]


def read_urls(urls: Sequence[str], settings: Settings, fetcher: Fetcher | None = None,
              on_url: Callable[[str], None] | None = None, trusted: bool = False) -> WebResult:
    """Fetch and read page and feed URLs into raw articles; `on_url` after each URL is done.

    `trusted`: the operator's own list (the CLI), which may reach any address; by default the
    URLs came from a user of the server and only public addresses are fetched (see
    `Fetcher`). `fetcher`: reuse a client (and its robots.txt cache); by default one is made
    and closed.
    """
    own = fetcher is None
    fetcher = fetcher or Fetcher(settings, trusted=trusted)
    result = WebResult()
    try:
        with ThreadPoolExecutor(_WORKERS, thread_name_prefix="newsdesk-fetch") as pool:
            firsts = list(pool.map(lambda u: _first(fetcher, u), urls))
            items: list[FeedItem] = []
            for url, outcome in zip(urls, firsts, strict=True):
                if isinstance(outcome, IngestError):
                    result.errors.append(outcome)
                    result.origins[outcome.location] = url
                elif isinstance(outcome, RawArticle):
                    result.articles.append(outcome)
                    result.origins[outcome.location] = url
                else:
                    result.warnings += [f"{url}: {warning}" for warning in outcome.warnings]
                    result.origins.update((item.location, url) for item in outcome.items)
                    items.extend(outcome.items)
                if on_url:
                    on_url(url)
            read_items(items, fetcher, result, pool)
    finally:
        if own:
            fetcher.close()
    return result


def read_items(items: Iterable[FeedItem], fetcher: Fetcher, result: WebResult,
               pool: ThreadPoolExecutor) -> None:
    """Feed items into `result`, each through its page or, failing that, its own text."""
    for outcome in pool.map(lambda item: _item(fetcher, item, result), list(items)):
        if isinstance(outcome, IngestError):
            result.errors.append(outcome)
        else:
            result.articles.append(outcome)


def _first(fetcher: Fetcher, url: str) -> RawArticle | Feed | IngestError:
    """A URL given by the user: a page's article, or a feed's items."""
    if not is_url(url):
        return FetchError(url, "not an http(s) URL")
    try:
        fetched = fetcher.get(url)
        kind = kind_of(fetched)
        if kind == "page":
            return page_article(fetched, min_words=fetcher.settings.min_page_words)
        return parse_feed(fetched, kind, fetcher.settings.feed_max_items)
    except IngestError as exc:
        return exc


def _item(fetcher: Fetcher, item: FeedItem, result: WebResult) -> RawArticle | IngestError:
    if item.link:
        try:
            fetched = fetcher.get(item.link)
            if kind_of(fetched) != "page":
                raise FetchError(fetched.url, "the item's link is not an HTML page")
            return page_article(fetched, item, min_words=fetcher.settings.min_page_words)
        except IngestError as exc:
            problem = exc.reason
    else:
        problem = ""  # nothing to fetch: the item is its own article
    try:
        raw = item_article(item)
    except IngestError as exc:
        return FetchError(item.location, f"{problem}; {exc.reason}" if problem else exc.reason)
    if problem:
        result.notes.append(f"{item.location}: {problem}; ingested the feed item's own text")
    return raw

"""Readers: one file on disk -> raw articles, or a clear error naming the file and the reason."""

from __future__ import annotations

import json
import re
import reprlib
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trafilatura

from assistant.errors import IngestError
from assistant.text import invalid_unicode, printable_path
from assistant.types import RawArticle
from ingest.metadata import NO_TEXT, parse_date

BODY_FIELDS = ("body", "text", "content")
DATE_FIELDS = ("published_at", "date", "published", "pubDate")
TOO_DEEP = "JSON is nested too deeply to read"

# A record's bad value, quoted in its error, shortened (the error is one line).
_QUOTE = reprlib.Repr()
_QUOTE.maxstring = _QUOTE.maxother = 40
_QUOTE.maxlist = _QUOTE.maxdict = 4
_QUOTE.maxlevel = 2


@dataclass
class ReadResult:
    """Articles read from one file, plus errors for records that could not be read."""

    articles: list[RawArticle] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)


# A .json/.jsonl file holds many articles: the article limit applies to each record, and
# the file itself may hold this many articles' worth.
CONTAINER_FACTOR = 1000


def read_file(path: Path, max_bytes: int) -> ReadResult:
    """Read one file; raises `IngestError` when the whole file is unusable.

    `max_bytes` limits one article: a whole file of the single-article formats, each record of
    a .json list or .jsonl file.
    """
    location = printable_path(path)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise IngestError(location, f"unsupported file type {path.suffix or '(none)'!r}; "
                                    f"expected one of {', '.join(sorted(_READERS))}")
    container = suffix in (".json", ".jsonl")
    file_limit = max_bytes * CONTAINER_FACTOR if container else max_bytes
    try:
        info = path.stat()
        # A FIFO or device would block or never end: only regular files are read.
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(location, "not a regular file (a pipe, socket or device)")
        size = info.st_size
        if size > file_limit:
            raise IngestError(location, f"file is {size:,} bytes, over the limit of "
                                        f"{file_limit:,} (NEWSDESK_MAX_ARTICLE_BYTES"
                                        f"{' x ' + str(CONTAINER_FACTOR) if container else ''})")
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(location, f"cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise IngestError(location, f"{NO_TEXT} (the file is empty)")
    if b"\x00" in data:
        raise IngestError(location, "file looks binary (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(location, f"not valid UTF-8 (byte {exc.start})") from exc
    result = reader(location, text)
    if result.errors and not result.articles:
        # Nothing usable at all: one error for the file, not one per record.
        first = result.errors[0]
        record = first.location[len(location):].lstrip(":")
        more = len(result.errors) - 1
        detail = f"no readable article ({record}: {first.reason})" if record else first.reason
        if more:
            detail += f" and {more} more bad record{'s' if more > 1 else ''}"
        raise IngestError(location, detail)
    if container:
        kept = []
        for article in result.articles:
            size = len(article.body.encode("utf-8"))
            if size > max_bytes:
                result.errors.append(IngestError(
                    article.location, f"article text is {size:,} bytes, over the limit of "
                                      f"{max_bytes:,} (NEWSDESK_MAX_ARTICLE_BYTES)"))
            else:
                kept.append(article)
        result.articles = kept
    return result


def _read_plain(location: str, text: str) -> ReadResult:
    return ReadResult([RawArticle(location=location, body=text)])


_BYLINE = re.compile(r"^[*_]{1,2}\s*By\s+(?P<byline>[^*_]+?)\s*[*_]{1,2}$", re.IGNORECASE)


def _read_markdown(location: str, text: str) -> ReadResult:
    lines = text.lstrip().splitlines()
    article = RawArticle(location=location, body=text)
    if lines and lines[0].startswith("# "):
        article.title, article.has_title = lines[0][2:].strip(), True
        lines = lines[1:]
        article.body = "\n".join(lines)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    byline = _BYLINE.match(lines[first].strip()) if first is not None else None
    if byline:
        # "*By Jane Doe, Valley Courier, 2026-02-14*": author, then outlet and date if given.
        parts = [p.strip() for p in byline.group("byline").split(",")]
        article.author = parts[0]
        if len(parts) > 1 and any(ch.isdigit() for ch in parts[-1]):
            article.published_at = parts.pop()
        if len(parts) > 1:
            article.source = parts[1]
        article.body = "\n".join(lines[first + 1:])
    return ReadResult([article])


def read_html(location: str, text: str) -> ReadResult:
    try:
        doc = trafilatura.bare_extraction(
            text, with_metadata=True, include_comments=False, include_tables=True,
            favor_precision=True,
        )
    except Exception as exc:  # lxml raises many types on hostile markup
        raise IngestError(location, f"HTML could not be parsed: {exc}") from exc
    if doc is None or not (doc.text or "").strip():
        raise IngestError(location, NO_TEXT)
    body = doc.text
    title = (doc.title or "").strip()
    first, _, rest = body.partition("\n")
    if title and first.strip() == title:
        body = rest  # trafilatura repeats the <h1> headline as the first line
    return ReadResult([RawArticle(
        location=location, body=body, title=title, has_title=bool(title), url=doc.url or "",
        published_at=doc.date or "", author=doc.author or "", source=doc.sitename or "",
        lang=doc.language or "",
    )])


def from_record(location: str, record: Any) -> RawArticle:
    """A raw article from a JSON object with the fields of a .json article.

    A field of the wrong type, text that is not valid Unicode or a date that does not parse
    rejects the whole record: an `IngestError` names the field and quotes its value.
    """
    if not isinstance(record, dict):
        raise IngestError(location, f"expected a JSON object, got {type(record).__name__}")

    def reject(name: str, problem: str) -> IngestError:
        return IngestError(location, f"field {name!r} {problem}; record not ingested")

    def text_field(name: str, integer: bool = False) -> str:
        value = record.get(name)
        if value is None:
            return ""
        if integer and type(value) is int:  # ids and dates such as 20260301
            return str(value)
        if not isinstance(value, str):
            raise reject(name, f"must be a string, not {_json_type(value)}: "
                               f"{_QUOTE.repr(value)}")
        if problem := invalid_unicode(value):
            raise reject(name, problem)
        return value.strip()

    body_field = next((f for f in BODY_FIELDS if isinstance(record.get(f), str)
                       and record[f].strip()), None)
    if body_field is None:
        raise IngestError(location, f"{NO_TEXT} (one of the fields "
                                    f"{', '.join(BODY_FIELDS)} must be a non-empty string)")
    if problem := invalid_unicode(record[body_field]):
        raise reject(body_field, problem)
    dates = [(name, text_field(name, integer=True)) for name in DATE_FIELDS]
    date_field, date = next(((name, d) for name, d in dates if d), ("", ""))
    if date and not parse_date(date):
        raise reject(date_field, f"is not a valid date: {_QUOTE.repr(record[date_field])}")
    title = text_field("title")
    return RawArticle(
        location=location, body=record[body_field], title=title, has_title=bool(title),
        url=text_field("url"), published_at=date, author=text_field("author"),
        source=text_field("source"), lang=text_field("lang"),
        external_id=text_field("id", integer=True),
    )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _read_json(location: str, text: str) -> ReadResult:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(location, f"malformed JSON at line {exc.lineno} column {exc.colno}: "
                                    f"{exc.msg}") from exc
    except RecursionError as exc:  # lists or objects thousands deep
        raise IngestError(location, TOO_DEEP) from exc
    records = data if isinstance(data, list) else [data]
    if not records:
        raise IngestError(location, "JSON list holds no articles")
    result = ReadResult()
    for i, record in enumerate(records):
        where = f"{location}[{i}]" if isinstance(data, list) else location
        try:
            result.articles.append(from_record(where, record))
        except IngestError as exc:
            result.errors.append(exc)
    return result


def _read_jsonl(location: str, text: str) -> ReadResult:
    result = ReadResult()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{location}:{lineno}"
        try:
            result.articles.append(from_record(where, json.loads(line)))
        except json.JSONDecodeError as exc:
            result.errors.append(IngestError(where, f"malformed JSON: {exc.msg}"))
        except RecursionError:
            result.errors.append(IngestError(where, TOO_DEEP))
        except IngestError as exc:
            result.errors.append(exc)
    if not result.articles and not result.errors:
        raise IngestError(location, "file holds no articles")
    return result


_READERS: dict[str, Callable[[str, str], ReadResult]] = {
    ".txt": _read_plain,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
}

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

from assistant.dates import find_dates, first_date
from assistant.errors import IngestError
from assistant.text import invalid_unicode, printable_path
from assistant.types import RawArticle
from ingest.cleaning import normalise
from ingest.metadata import NO_TEXT, canonical_url, looks_like_headline, parse_date

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


def read_file(path: Path, max_bytes: int, location: str | None = None) -> ReadResult:
    """Read one file; raises `IngestError` when the whole file is unusable.

    `max_bytes` limits one article: a whole file of the single-article formats, each record of
    a .json list or .jsonl file. `location` is the name its articles and errors carry (an
    upload's own file name rather than its temporary path); by default, the path.
    """
    location = location or printable_path(path)
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


# The plain-text layout of a .txt or .md article (docs/architecture.md, "Plain-text layout"):
#
#     Headline                      (.md: "# Headline")
#     Source: The Dunmarrow Herald  metadata lines, any order, blank lines allowed between
#     Date: March 3, 2026
#     URL: https://dunmarrow-herald.example/harbour
#     By Jane Doe
#
#     Body ...
#
# A metadata line is never body text. A line the layout cannot read (a label whose value is
# no date or URL, a sentence) starts the body.
_LABELS = {
    "source": "source", "outlet": "source", "publisher": "source", "publication": "source",
    "date": "published_at", "published": "published_at",
    "url": "url", "link": "url", "source url": "url", "source link": "url",
    "original source": "url",
    "author": "author", "authors": "author", "by": "author", "byline": "author",
}
_LABEL = re.compile(
    r"^(?P<label>" + "|".join(sorted((k.replace(" ", r"\s+") for k in _LABELS), key=len,
                                      reverse=True))
    + r")\s*[*_]*\s*[:：]\s*[*_]*\s*(?P<value>.*)$", re.IGNORECASE)
# "By Jane Doe" (no colon): a capital B, as a byline is written; "by the river" is a sentence.
_BY = re.compile(r"^(?:By|BY)\s+(?P<value>.+)$")
_EMPHASIS = re.compile(r"^[*_]{1,3}\s*|\s*[*_]{1,3}$")
# At most this many words beside the date on a line that is only a date ("Tuesday",
# "10:15 a.m. ET", "Updated").
_DATE_LINE_WORDS = 4
# An outlet or author name: longer than this reads as a sentence.
_NAME_WORDS = 12
_NAME_CHARS = 120
# An unlabelled outlet line (see `_names_an_outlet`).
_OUTLET_WORDS = 6
_OUTLET_CHARS = 60


def _read_text(location: str, text: str, markdown: bool) -> ReadResult:
    """A .txt or .md article in the plain-text layout above."""
    lines = text.lstrip().splitlines()
    article = RawArticle(location=location, body=text)
    if not lines:
        return ReadResult([article])
    first = normalise(lines[0])
    start = 0
    if markdown and first.startswith("# "):
        article.title, article.has_title, start = first[2:].strip(), True, 1
    elif (_metadata(first) is None and looks_like_headline(first)
          and any(line.strip() for line in lines[1:])):
        article.title, article.has_title, start = first, True, 1
    found: dict[str, str] = {}
    end = start
    outlet_may_follow = article.has_title
    while end < len(lines):
        line = normalise(lines[end])
        if not line:
            end += 1
            continue
        meta = _metadata(line)
        if meta is None and outlet_may_follow and _ends_header_paragraph(lines, end) and \
                _names_an_outlet(name := _EMPHASIS.sub("", line)):
            meta = {"source": name}
        outlet_may_follow = False
        if meta is None:
            break
        for name, value in meta.items():
            found.setdefault(name, value)
        end += 1
    if end:
        article.body = "\n".join(lines[end:])
    article.source = found.get("source") or found.get("byline_source", "")
    article.url = found.get("url", "")
    article.published_at = found.get("published_at", "")
    article.author = found.get("author", "")
    return ReadResult([article])


def _ends_header_paragraph(lines: list[str], i: int) -> bool:
    """Whether line `i` ends its paragraph (a blank line or a metadata line follows it) and
    body text follows."""
    rest = lines[i + 1:]
    return any(line.strip() for line in rest) and (
        not rest[0].strip() or _metadata(normalise(rest[0])) is not None)


def _read_plain(location: str, text: str) -> ReadResult:
    return _read_text(location, text, markdown=False)


def _read_markdown(location: str, text: str) -> ReadResult:
    return _read_text(location, text, markdown=True)


def _metadata(line: str) -> dict[str, str] | None:
    """The fields a metadata line of the plain-text layout gives, or None for any other
    line."""
    line = _EMPHASIS.sub("", line)
    if labelled := _LABEL.match(line):
        field_name = _LABELS[" ".join(labelled["label"].lower().split())]
        value = _EMPHASIS.sub("", labelled["value"].strip())
        if field_name == "author":
            return _byline(value)
        if field_name == "published_at":
            date = _date_of(value)
            return {"published_at": date} if date else None
        url = _url_of(value)
        if url:  # "Source: https://..." names the article's address
            return {"url": url}
        if field_name == "source" and _is_name(value):
            return {"source": value}
        return None
    if by := _BY.match(line):
        return _byline(by["value"])
    if url := _url_of(line):
        return {"url": url}
    if date := _date_line(line):
        return {"published_at": date}
    return None


def _is_name(value: str) -> bool:
    """A name (an outlet, an author) rather than a sentence: short, one line, not ending as a
    sentence ends."""
    return (0 < len(value.split()) <= _NAME_WORDS and len(value) <= _NAME_CHARS
            and not value.endswith((".", "!", "?", ";", ":")))


def _url_of(value: str) -> str:
    """`value` when it is one http(s) URL (also as `<URL>`), else ''."""
    value = value.strip().removeprefix("<").removesuffix(">")
    if " " in value or not canonical_url(value):
        return ""
    return value


def _date_of(value: str) -> str:
    """The date of a `Date:` line: any form dateutil reads when it names a year (a time kept),
    else the first written date in it."""
    if re.search(r"\b\d{4}\b", value) and (date := parse_date(value)):
        return date
    return first_date(value)


def _date_line(line: str) -> str:
    """The date of a line that is only a date ("March 3, 2026", "Tuesday, 3 March 2026,
    10:15 GMT", "Updated 2026-03-03"), else ''."""
    dates = find_dates(line, need_year=True)
    if len(dates) != 1 or len(line) > _OUTLET_CHARS:
        return ""
    rest = (line[:dates[0].start] + " " + line[dates[0].end:]).split()
    words = [w for w in rest if any(ch.isalnum() for ch in w)]
    if len(words) > _DATE_LINE_WORDS or any(w.endswith(":") for w in rest):
        return ""  # a sentence that names a date, or a label this layout does not know
    return _date_of(line) or dates[0].iso


def _byline(value: str) -> dict[str, str] | None:
    """The author of a byline; with a date at its end, "Author, Outlet, Date" also gives the
    outlet ("Jane Doe, Valley Courier, 2026-02-14"). Without a date, commas separate authors
    ("Ann Lee, Tom Roe and Kim Sato"), so no outlet is read from it."""
    dates = find_dates(value, need_year=True)
    found: dict[str, str] = {}
    if dates:
        found["published_at"] = dates[-1].iso
        value = value[:dates[-1].start] + value[dates[-1].end:]
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or not parts[0][0].isupper() or not all(_is_name(p) for p in parts) or \
            len(value.split()) > _NAME_WORDS or re.search(r'[!?;"“”]|\w:\s', value):
        return None
    if dates and len(parts) == 2:
        found["author"], found["byline_source"] = parts
    else:
        found["author"] = ", ".join(parts)
    return found


def _names_an_outlet(line: str) -> bool:
    """Whether an unlabelled line under the headline reads as an outlet's name ("The Dunmarrow
    Herald"): at most six words and 60 characters, starting with a letter or digit, in title
    case (each word with letters begins with a capital; words of up to three letters after
    the first may be lower case: "of", "de"), not all capitals (a dateline, a section
    kicker), and with no sentence punctuation (no `: ; ! ?` or quotes; no final `.` or `,`).
    The caller also asks that the line ends its paragraph. A name that fails this is
    recognised only with a label: `Source: ...`."""
    words = line.split()
    if not (0 < len(words) <= _OUTLET_WORDS and len(line) <= _OUTLET_CHARS
            and line[0].isalnum() and any(ch.islower() for ch in line)):
        return False
    if re.search(r'[:;!?"“”]', line) or line.endswith((".", ",")):
        return False
    for i, word in enumerate(words):
        letters = [ch for ch in word if ch.isalpha()]
        if letters and not letters[0].isupper() and (i == 0 or len(letters) > 3):
            return False
    return True


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

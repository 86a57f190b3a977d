"""Metadata: title, canonical URL, date, language; and turning a raw article into an `Article`."""

from __future__ import annotations

import re
from datetime import datetime

import pycld2
import regex
from courlan import normalize_url
from dateutil import parser as dateparser

from assistant.dates import first_date
from assistant.errors import IngestError
from assistant.types import Article, RawArticle
from ingest.cleaning import clean_body, normalise

MAX_TITLE_CHARS = 160
# The reason of every article found to have no text (an empty file, a page that is navigation
# only, a body that cleaning empties), whatever it was read from.
NO_TEXT = "no article text"
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")
# Language detection reads a body's start: enough for a language, and a bounded cost.
_LANG_SAMPLE_CHARS = 2000
# CLD2 rejects the whole text when it holds a control character, a surrogate or a
# noncharacter (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF); as spaces they change no language.
_CLD2_REFUSES = regex.compile(r"[\p{Cc}\p{Cs}\p{Noncharacter_Code_Point}]")


def canonical_url(url: str) -> str:
    """Normalised http(s) URL without tracking parameters or fragment; '' if not a URL."""
    url = url.strip()
    if not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
        return ""
    try:
        return normalize_url(url, strict=True, trailing_slash=False)
    except (ValueError, TypeError):
        return url


def parse_date(value: str) -> str:
    """An ISO date (YYYY-MM-DD) or datetime from a free-form date; '' when it does not parse."""
    value = value.strip()
    if not value:
        return ""
    try:
        parsed = dateparser.parse(value, default=datetime(2000, 1, 1))
    except (ValueError, OverflowError, TypeError):
        return ""
    if parsed is None or not 1900 <= parsed.year <= 2200:
        return ""
    # A time written (even midnight) is kept; the "T" of an ISO datetime, not of "Tuesday".
    if parsed.hour or parsed.minute or parsed.second or re.search(r"\dT\d", value) \
            or ":" in value:
        return parsed.isoformat()
    return parsed.date().isoformat()


def date_in_text(body: str) -> str:
    """A dateline such as `March 3, 2026` or `3 March 2026` in the article's opening, if
    any, as YYYY-MM-DD."""
    return first_date(body[:400])


def looks_like_headline(line: str) -> bool:
    """A short line without a sentence's final full stop reads as a headline."""
    words = line.split()
    return (
        0 < len(words) <= 25
        and len(line) <= 200
        and not line.endswith((".", ",", ";", ":", "。"))
    )


def split_title(body: str) -> tuple[str, str]:
    """(title, body) for a plain-text article: a headline first line, else a shortened lead."""
    first, sep, rest = body.partition("\n")
    if sep and rest.strip() and looks_like_headline(first.strip()):
        return first.strip(), rest.strip()
    return shorten(first_sentence(body)), body


def first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip()


def shorten(text: str, limit: int = 100) -> str:
    """Cut at a word boundary with an ellipsis when longer than `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:-") + "…"


def detect_lang(text: str) -> str:
    """The language of a body as an ISO 639-1 code ("en", "zh"), by CLD2; "" when it cannot
    tell (too little text, digits only)."""
    sample = _CLD2_REFUSES.sub(" ", text[:_LANG_SAMPLE_CHARS])
    try:
        _, _, found = pycld2.detect(sample)
    except pycld2.error:  # never seen once the characters it refuses are gone; be safe
        return ""
    code = found[0][1]
    # "zh-Hant" (Traditional Chinese) is Chinese: the primary subtag is what splitting needs.
    return "" if code == "un" else code.split("-")[0]


def to_article(raw: RawArticle) -> Article:
    """Clean a raw article and fill in its metadata; raises `IngestError` if nothing is left."""
    body, source_url = clean_body(raw.body)
    title = normalise(raw.title).replace("\n", " ")
    if not (raw.has_title and title):
        title, body = split_title(body)
    if not body.strip():
        raise IngestError(raw.location, f"{NO_TEXT} (nothing is left after cleaning)")
    url = canonical_url(raw.url) or canonical_url(source_url)
    published = parse_date(raw.published_at) or date_in_text(body)
    # No outlet named and no URL: none. The folder a file lies in (an upload's temporary
    # directory, "articles") names no outlet.
    source = _one_line(raw.source) or _host(url)
    return Article(
        location=raw.location,
        title=shorten(title, MAX_TITLE_CHARS),
        body=body,
        url=url,
        published_at=published,
        author=_one_line(raw.author),
        source=source,
        lang=(_one_line(raw.lang).lower() or detect_lang(body))[:8],
        external_id=raw.external_id[:200],
    )


def _one_line(text: str) -> str:
    return " ".join(normalise(text).split())


def _host(url: str) -> str:
    match = re.match(r"^https?://(?:www\.)?([^/:]+)", url)
    return match.group(1) if match else ""

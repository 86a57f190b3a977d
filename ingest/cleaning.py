"""Cleaning: normalise an article's text and strip what is not news (source lines, disclaimers)."""

from __future__ import annotations

import re
import unicodedata

# Zero-width and control characters (tab and newline excepted) never belong in indexed text.
_INVISIBLE = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_SOURCE_LINE = re.compile(r"^\s*(?:original\s+source|source\s+url|source\s+link)\s*[:：]\s*"
                          r"(?P<url>https?://\S+)\s*$", re.IGNORECASE | re.MULTILINE)
# Paragraphs that end many reposted articles and say nothing about the news itself.
_TRAILING_BOILERPLATE = re.compile(
    r"^\s*(?:disclaimer\s*[:：]|copyright\s*(?:©|\(c\)|\d{4})|all rights reserved|"
    r"©\s*\d{4}|follow us on|subscribe to our|sign up for our|share this article)",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """NFC, one kind of newline, no invisible characters, single spaces, at most one blank line."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def extract_source_url(text: str) -> tuple[str, str]:
    """Remove `Original source: URL` lines; returns (text without them, the first such URL)."""
    match = _SOURCE_LINE.search(text)
    if not match:
        return text, ""
    return _SOURCE_LINE.sub("", text), match.group("url").rstrip(".,;)")


def strip_trailing_boilerplate(text: str) -> str:
    """Drop trailing paragraphs such as `Disclaimer: ...` or copyright lines."""
    paragraphs = text.split("\n\n")
    while len(paragraphs) > 1 and _TRAILING_BOILERPLATE.match(paragraphs[-1]):
        paragraphs.pop()
    # A disclaimer can also sit on the last line of the last paragraph.
    last = paragraphs[-1].split("\n")
    while len(last) > 1 and _TRAILING_BOILERPLATE.match(last[-1]):
        last.pop()
    paragraphs[-1] = "\n".join(last)
    return "\n\n".join(paragraphs).strip()


def clean_body(text: str) -> tuple[str, str]:
    """The indexed body and any source URL found in it."""
    text, url = extract_source_url(normalise(text))
    return strip_trailing_boilerplate(normalise(text)), url

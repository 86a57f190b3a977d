"""Cleaning: normalise an article's text and strip what is not news (source lines, disclaimers)."""

from __future__ import annotations

import re
import unicodedata

import regex

from assistant.text import BIDI_CHARS

# Control characters (tab and newline excepted), the word joiner and the BOM carry no text;
# bidi controls could make the text read otherwise than it is.
_INVISIBLE = re.compile(f"[\x00-\x08\x0e-\x1f\x7f\u2060\ufeff{BIDI_CHARS}]")
# Line breaks besides \n (those str.splitlines knows); removing them would join words.
_LINE_BREAKS = re.compile("[\r\x0b\x0c\x85\u2028\u2029]")
# A zero-width space marks a break between words: it becomes a space there.
_WORD_BREAK = regex.compile(r"(?<=\w)\u200b+(?=\w)")
# Zero-width (non-)joiners shape emoji sequences and Indic and Arabic-script words; anywhere
# else they only hide inside words.
_STRAY_JOINER = regex.compile(
    r"(?<![\p{Extended_Pictographic}\p{Emoji_Modifier}\ufe0f\p{Arabic}\p{Syriac}\p{Thaana}"
    r"\p{Nko}\p{Mongolian}\p{Devanagari}\p{Bengali}\p{Gurmukhi}\p{Gujarati}\p{Oriya}"
    r"\p{Tamil}\p{Telugu}\p{Kannada}\p{Malayalam}\p{Sinhala}])[\u200c\u200d]"
)
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
    """NFC, one kind of newline, no invisible or bidi control characters, single spaces, at
    most one blank line."""
    text = _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", text.replace("\r\n", "\n")))
    if "\u200b" in text:
        text = _WORD_BREAK.sub(" ", text).replace("\u200b", "")
    if "\u200c" in text or "\u200d" in text:
        text = _STRAY_JOINER.sub("", text)
    # After the removals: one may have brought a letter and its accent together.
    text = unicodedata.normalize("NFC", text)
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

"""Text rules shared across the stages: which characters are CJK or word characters, how a
written-out date looks, and the Unicode rules every entry point applies (only valid Unicode
gets in, no lone surrogates; bidirectional controls never reach a reader), and how words are
counted in any script."""

from __future__ import annotations

import calendar
import logging
import os
import re
from functools import lru_cache
from typing import Any

# CJK ideographs (unified, extension A, compatibility): a regex character class.
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Month names and abbreviations, lower case -> 1..12.
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS.update(sep=9, sept=9)
_MONTH_WORD = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|"
               r"Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
# A calendar date written out: "March 3, 2026", "Oct. 7th 2023", "Sept 12, 2023".
MONTH_DATE = re.compile(rf"\b{_MONTH_WORD}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b")
# ... or day first: "10 December 2020", "3rd June, 2026".
DAY_FIRST_DATE = re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH_WORD}\.?,?\s+\d{{4}}\b")
WRITTEN_DATE = re.compile(f"{MONTH_DATE.pattern}|{DAY_FIRST_DATE.pattern}")
_DATE_PARTS = re.compile(r"(\d{4})\b|(\d{1,2})(?:st|nd|rd|th)?\b|([A-Za-z]+)")


def date_key(date: str) -> str:
    """A date `WRITTEN_DATE` found, as yyyy-mm-dd however it is written ("10 December 2020",
    "Dec. 10, 2020"); "" when it is none."""
    day = month = year = 0
    for four, number, word in _DATE_PARTS.findall(date):
        if four:
            year = int(four)
        elif word:
            month = MONTHS.get(word.lower(), month)
        elif number:
            day = int(number)
    return f"{year:04d}-{month:02d}-{day:02d}" if day and month and year else ""


# Kana, which jieba does not segment: a run of hiragana (particles, verb endings) or of
# katakana (mostly one loanword) counts as one word.
_HIRAGANA = "\u3040-\u309f"
_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_NOT_SPACED = CJK_CHARS + _HIRAGANA + _KATAKANA
# A word of a space-separated script: letters and digits, joined by an apostrophe, a hyphen or
# a dot ("don't", "well-known", "U.S.", "3.5"); any other punctuation or space separates.
_WORDS = re.compile(
    rf"(?P<han>[{CJK_CHARS}]+)|[{_HIRAGANA}]+|[{_KATAKANA}]+"
    rf"|[^\W_{_NOT_SPACED}]+(?:['\u2019.\-][^\W_{_NOT_SPACED}]+)*")


@lru_cache(maxsize=1)
def jieba_segmenter() -> Any:
    """The jieba module, its log quietened (Chinese word segmentation, shared by the word
    count and the keyword index)."""
    import jieba  # loads its dictionary (bundled in the package) on first use: ~1 s

    jieba.setLogLevel(logging.WARNING)
    return jieba


def count_words(text: str, stop_at: int | None = None) -> int:
    """Words in `text`, in any script: space-separated scripts by their spaces and
    punctuation, Chinese (and Japanese kanji) segmented into words with jieba, a run of
    kana as one word: "Port workers strike." and "港口工人罢工。" (港口 / 工人 / 罢工) are
    3 words each. `stop_at`: stop counting once that many are found (a long page need not
    be segmented whole to pass a minimum)."""
    count = 0
    for match in _WORDS.finditer(text):
        han = match.group("han")
        count += len(jieba_segmenter().lcut(han)) if han else 1
        if stop_at is not None and count >= stop_at:
            break
    return count


def is_word_char(char: str) -> bool:
    """True for a letter, digit or underscore of any script (what `\\w` matches)."""
    return char.isalnum() or char == "_"


# Embeddings, overrides, isolates and marks that reorder how the text around them is shown
# (U+202E makes "exe.txt" read "txt.exe").
BIDI_CHARS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # a regex character class
_BIDI_CONTROLS = re.compile(f"[{BIDI_CHARS}]")
# JSON's \udfff escape and undecodable file-name bytes give Python strings that hold lone
# surrogates; nothing downstream (UTF-8, the tokenizer, Chroma) can encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")


def strip_bidi(text: str) -> str:
    """`text` without bidirectional control characters."""
    return _BIDI_CONTROLS.sub("", text)


def printable(text: str) -> str:
    """`text` safe to encode as UTF-8: each lone surrogate shown as its escape, `\\udfff`."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def invalid_unicode(text: str) -> str | None:
    """Why `text` is not valid Unicode text (it holds a lone surrogate), or None."""
    match = None if text.isascii() else _SURROGATE.search(text)
    if match is None:
        return None
    return (f"holds a lone surrogate ({printable(match.group())} at character "
            f"{match.start()}), which is not valid Unicode text")


def printable_path(path: os.PathLike[str] | str) -> str:
    """A file path as text; bytes of its name that are not UTF-8 shown as `\\xe9`."""
    try:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    except UnicodeError:  # a lone surrogate that no file-name byte stands for
        return printable(os.fspath(path))

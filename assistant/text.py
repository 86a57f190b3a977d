"""Text rules shared across the stages: which characters are CJK or word characters, the
one stopword list and stemmer every rule uses, the Unicode rules every entry point applies
(only valid Unicode gets in, no lone surrogates; bidirectional controls never reach a
reader), and how words are counted in any script."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import Stemmer


def _bm25s_stopwords() -> ModuleType:
    """bm25s's `stopwords` module (tuples of words, no imports), read from its file: the
    usual import runs `bm25s/__init__`, which imports scipy.sparse, and with it scipy's
    base, for two word lists (docs/architecture.md)."""
    package = importlib.util.find_spec("bm25s")  # finds the package without running it
    if package is None or package.origin is None:
        raise ImportError("bm25s is not installed (pip install bm25s): its stopword lists")
    spec = importlib.util.spec_from_file_location(
        "newsdesk_bm25s_stopwords", Path(package.origin).with_name("stopwords.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LISTS = _bm25s_stopwords()
# CJK ideographs (unified, extension A, compatibility): a regex character class.
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# The one English stopword list of every rule and of the keyword index: NLTK's (179 words,
# as bm25s ships it); and bm25s's Chinese list, for the keyword index.
STOPWORDS = frozenset(_LISTS.STOPWORDS_EN_PLUS)
STOPWORDS_CHINESE = frozenset(_LISTS.STOPWORDS_CHINESE)
_LATIN_WORD = re.compile(r"[^\W_]+")
_stemmer_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    # A PyStemmer object keeps state between calls: one per thread.
    stemmer = getattr(_stemmer_local, "stemmer", None)
    if stemmer is None:
        stemmer = _stemmer_local.stemmer = Stemmer.Stemmer("english")
    return stemmer


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The Snowball (Porter 2) stem of an English word, lower-cased: "chairs" and "chair" ->
    "chair", "manages" and "manager" -> "manag"."""
    return _stemmer().stemWord(word.lower())


def stems(words: list[str]) -> list[str]:
    """`stem` of each word (one call into the stemmer for the list)."""
    return _stemmer().stemWords([w.lower() for w in words]) if words else []


def content_words(text: str) -> list[str]:
    """The lower-cased words of `text` (letters and digits of any script, split at anything
    else) that are not stopwords."""
    return [w for w in _LATIN_WORD.findall(text.lower()) if w not in STOPWORDS]


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

"""What the offline answers are made of, shared by the extractive answerer and the timeline
builder: a passage's sentences with their offsets, a sentence as an answer quotes it, and the
content terms that sentences and questions are compared by."""

from __future__ import annotations

import re

from assistant.answer.conflicts import Sentence
from assistant.index import sentences
from assistant.text import CJK_CHARS, STOPWORDS, stem
from assistant.types import Passage

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(f"[{CJK_CHARS}]")
_BRACKETED_NUMBER = re.compile(r"\[(\s*\d+(?:\s*[,;]\s*\d+)*\s*)\]")


def terms(text: str) -> set[str]:
    """Content terms: Snowball stems of the words that are no stopwords, or CJK character
    bigrams."""
    found: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            chars = [c for c in word if _CJK.match(c)]
            found.update(a + b for a, b in zip(chars, chars[1:], strict=False))
            found.update(chars if len(chars) == 1 else [])
        elif word not in STOPWORDS and (len(word) > 2 or word.isdigit()):
            found.add(stem(word))
    return found


def quote(text: str) -> str:
    """A sentence as the answer quotes it: bracketed numbers in the article ("[99]") become
    "(99)", so every `[n]` in an answer is one of ours. The citation keeps the exact text."""
    return _BRACKETED_NUMBER.sub(r"(\1)", text)


def split_sentences(passage: Passage) -> list[Sentence]:
    """Sentences of a passage with their offsets in the article body."""
    return [Sentence(passage, text, start, end)
            for text, start, end in sentences.split(passage.text, passage.lang, passage.start)]

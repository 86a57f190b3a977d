"""The citation check of LLM answers: each sentence against the passages its `[n]` markers cite.

A claim (a sentence, or the clause before each marker group when a sentence cites passages
apart: "X reported 5 [1], while Y reported 7 [2]") is supported by a passage when every
number, date, time and name it states is found there (in the text, or the title, outlet and
date the model was also given) and its support reaches `SUPPORT`: the packaged model's cosine
to the passage's closest sentence blended with the share of the claim's content words the
passage holds. A claim that restates a sentence closely (cosine >= `CLOSE`) must find its
figures in the sentences it draws on, not just anywhere in the passage, and its names there,
in the two sentences before, or among the passage's recurring names (a figure or a name mixed
up with another one of the same passage). Outcome per claim: supported by what it cites ->
kept (unless another passage supports it `BETTER_BY` more: a marker moved to a passage on
the same story); else the best other retrieved passage that supports it gets the marker
(re-pointed); else its sentence is unsupported.

A sentence without markers is checked only when it states something the cited ones do not: a
number, date, time or name, or at least `MIN_UNCITED_TERMS` content words ("Yes.", "The
sources disagree.", a short lead naming what the cited sentences name are no claims; a short
one is checked on its facts alone). It then gets the marker of the passage that supports it,
or is unsupported. The refusal is not checked; nor are answers in Chinese, Japanese or Korean,
which the packaged (English) model cannot judge.

Sentences are numbered as `answer_sentences` splits the answer (sentencex, per line), from 0:
`Answer.unsupported`, the chat and the OpenAI endpoint use that numbering. The extractive
answerer needs no check: it quotes passage sentences verbatim. The thresholds were set on the
dev half of a set built from MultiHop-RAG (`python -m evals.citecheck`,
docs/evaluation.md#citation-check).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import sentencex

from assistant.answer.conflicts import content_terms
from assistant.answer.entities import names_in
from assistant.cache import LRU
from assistant.dates import MONTHS, split_dates
from assistant.index import sentences
from assistant.index.embeddings import ONNX_MAX_TEXTS, NewsEmbeddings
from assistant.lexicon import CALENDAR_WORDS, NAME_PARTICLES, common_words
from assistant.text import CJK_CHARS, STOPWORDS
from assistant.types import Passage

# A claim is supported when COSINE_WEIGHT * (cosine to the passage's closest sentence) +
# (1 - COSINE_WEIGHT) * (share of its content words the passage holds) reaches SUPPORT, and its
# numbers, dates and names are there. On the dev half of the set, right citations score 0.847
# and up, misplaced ones (moved, absent, foreign) 0.487 at most: SUPPORT is the middle.
SUPPORT = 0.65
COSINE_WEIGHT = 0.5
# A claim its cited passage supports is still re-pointed when another passage supports it
# this much better (a marker moved to a passage on the same story).
BETTER_BY = 0.2
# A claim this close (cosine) to a passage sentence restates it: its numbers, dates and names
# must be in that sentence or in one whose content words it mostly (DRAWN_ON) repeats, not
# just anywhere in the passage.
CLOSE = 0.8
DRAWN_ON = 0.6
# Sentences of a passage embedded per claim: those sharing most words with it (fewer for
# passages it does not cite, which are only looked at when they hold its numbers, dates and
# names and MIN_SHARE of its content words).
SENTENCES_PER_PASSAGE = 4
SENTENCES_UNCITED = 2
MIN_SHARE = 0.3
MIN_UNCITED_TERMS = 6
# Bounded in memory (docs/architecture.md, "Memory"): a vector ~1.9 KB, a passage as read
# ~39 KB (its sentences' term sets and what they hold; measured on MultiHop chunks).
SENTENCE_CACHE_SIZE = 10_000
SOURCE_CACHE_SIZE = 1_000  # passages

# "cited": a sentence without markers that a passage supports, given that passage's marker.
Verdict = Literal["supported", "repointed", "cited", "unsupported", "not_a_claim"]

_MARKER = re.compile(r"\[(\d+)\]")
_MARKER_GROUP = re.compile(r"(?:\s*\[\d+\])+")
_YES_NO = re.compile(r"((?:Yes|No)[.!])\s+(?=[A-Z“\"‘'(])")
_AFTER_MARKERS = re.compile(r"(?<=\])[.!?。！？](\s+)(?=\S)")
_CJK = re.compile(f"[{CJK_CHARS}]")
# What joins clauses or opens a sentence without stating anything.
_CONNECTIVE = re.compile(
    r"^(?:[\s,;:.\-–—]|and\b|but\b|while\b|whereas\b|however\b|meanwhile\b|also\b|"
    r"the sources (?:disagree|differ)\b[^:]*:?|sources (?:disagree|differ)\b[^:]*:?)+",
    re.IGNORECASE)

_TIME = re.compile(r"(?<![\d:.,])(\d{1,2}):(\d{2})(?![\d:])")
_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9,
           "bn": 1e9, "b": 1e9, "trillion": 1e12, "tn": 1e12}
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:st|nd|rd|th)?"
    r"(?:\s?(%|percent\b|per\s?cent\b))?"
    r"(?:\s?(thousand|million|billion|trillion|bn|mn|tn|[kmb])\b)?", re.IGNORECASE)
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
                      "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12})
_NUMBER_WORDS.update({w: i for i, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth".split()) if i})
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Words that are never a name's words: stopwords, month and weekday names.
_NOT_NAMES = STOPWORDS | CALENDAR_WORDS
_ACRONYM_SKIP = STOPWORDS | NAME_PARTICLES | {"&"}
# Names a claim may write differently from its passage.
_ALIASES = {
    "us": ("u.s", "united states", "america", "american"), "u.s": ("us", "united states"),
    "america": ("us", "u.s", "united states"), "american": ("us", "u.s", "america"),
    "uk": ("u.k", "britain", "british", "united kingdom"), "u.k": ("uk", "britain"),
    "britain": ("uk", "u.k", "british"), "british": ("uk", "u.k", "britain"),
    "eu": ("european union", "europe"), "chinese": ("china",), "china": ("chinese",),
    "french": ("france",), "german": ("germany",), "israeli": ("israel",),
    "palestinian": ("palestinians", "palestine"), "ukrainian": ("ukraine",),
    "russian": ("russia",), "indian": ("india",), "canadian": ("canada",),
    "australian": ("australia",), "european": ("europe", "eu"),
}


@dataclass(frozen=True)
class Claim:
    """What one marker group of a sentence (or an unmarked sentence) states."""

    sentence: int
    text: str
    cited: tuple[int, ...]
    # Where its marker groups are in the answer; for an unmarked sentence, where one would go.
    spans: tuple[tuple[int, int], ...]


@dataclass
class SentenceCheck:
    """One sentence of the answer: where it is, the markers it had and has, the verdict."""

    index: int
    start: int
    end: int
    cited: list[int]
    markers: list[int]
    verdict: Verdict
    # The support of its weakest claim by the passages that claim cites (-1: it cites none).
    score: float | None = None


@dataclass
class Checked:
    """The answer after the check: its text (markers re-pointed), the sentences no passage
    supports (indexes into `answer_sentences(text)`), and each sentence's check."""

    text: str
    unsupported: list[int]
    sentences: list[SentenceCheck] = field(default_factory=list)
    embedded: int = 0  # texts sent to the encoder


def answer_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of an answer, stripped, in order: sentencex per line
    (a `[n]` after the full stop stays with its sentence)."""
    lang = "zh" if _CJK.search(text) else "en"
    spans = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            for span in sentencex.get_sentence_boundaries(lang, line):
                raw = span["text"]
                start = pos + span["start_index"] + len(raw) - len(raw.lstrip())
                end = start + len(raw.strip())
                if end > start:
                    spans.append((start, end))
        pos += len(line) + 1
    # Markers closed by a full stop end a sentence even where sentencex runs on (after a
    # bullet, before a figure: "... in 1942 [3]. 152.67 yards ...").
    # A "No." lead is no abbreviation ("No. 5") before a sentence.
    cut = []
    for start, end in spans:
        lead = _YES_NO.match(text, start, end)
        if lead:
            cut.append((start, start + len(lead.group(1))))
            start = lead.end()
        for m in _AFTER_MARKERS.finditer(text, start, end):
            cut.append((start, m.start() + 1))
            start = m.end()
        cut.append((start, end))
    # A sentence that is only markers ("[2]" on a line of its own) belongs to the one before.
    merged: list[tuple[int, int]] = []
    for start, end in cut:
        if merged and _MARKER_GROUP.fullmatch(text[start:end]):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


# -- the hard facts: numbers, dates, names -------------------------------------------------


def _number_value(match: re.Match[str]) -> tuple[float, int, float]:
    """(value, decimals written, scale) of a `_NUMBER` match."""
    whole, fraction, _, scale = match.groups()
    mantissa = float(whole.replace(",", "") + (fraction or ""))
    factor = _SCALES.get((scale or "").lower(), 1.0)
    return mantissa * factor, len(fraction or "") - 1 if fraction else 0, factor


def _dates(text: str) -> tuple[list[tuple[int, int, int | None]], str]:
    """The (month, day, year) dates written in `text`, and the text without them."""
    found, rest = split_dates(text)
    return [(d.month, d.day, d.year) for d in found], rest


@dataclass(frozen=True)
class _Facts:
    """What a claim states (or a passage holds) that must match exactly."""

    numbers: tuple[tuple[float, int, float], ...]
    dates: tuple[tuple[int, int, int | None], ...]
    times: tuple[str, ...]  # "7:35"
    names: tuple[str, ...]  # lower-cased words of capitalised names


def _claim_facts(text: str, capitalised: frozenset[str] = frozenset()) -> _Facts:
    """A claim's numbers, dates and name words. A capitalised common word opening it or one
    of its clauses ("Consistent.", "Shares fell ...", "Since GPT-4 ...") is no name's word
    unless the passages write it capitalised."""
    dates, rest = _dates(text)
    times, rest = _times(rest)
    numbers = tuple(_number_value(m) for m in _NUMBER.finditer(rest))
    words: list[str] = []
    for name in names_in(text):
        parts = re.split(r"[\s\-–/]+", name)
        if _opens_clause(text, name) and _plain(parts[0]) in common_words() \
                and _plain(parts[0]) not in capitalised:
            # A common word capitalised only because it opens the sentence ("Since GPT-4
            # ...") is no name's word.
            parts = parts[1:]
        for word in parts:
            word = _plain(word)
            if (word and word not in MONTHS and word not in _NOT_NAMES
                    and not word.isdigit() and any(c.isalpha() for c in word)):
                words.append(word)
    return _Facts(numbers, tuple(dates), tuple(times), tuple(dict.fromkeys(words)))


def _opens_clause(text: str, word: str) -> bool:
    """`word` stands first in a sentence or clause of `text` somewhere, where any word is
    capitalised ("However, ...", "... said. Meanwhile, ...")."""
    at = text.find(word)
    while at >= 0:
        before = text[:at].rstrip()
        if not before or before[-1] in ".!?:;,\"“”'‘’(—–-":
            return True
        at = text.find(word, at + 1)
    return False


def _times(text: str) -> tuple[list[str], str]:
    """The clock times in `text` ("7:35"), and the text without them."""
    found = [f"{int(h)}:{m}" for h, m in _TIME.findall(text)]
    return found, _TIME.sub(" ", text)


def _plain(word: str) -> str:
    return re.sub(r"['’]s?$", "", word.lower()).strip(".")


@dataclass(frozen=True)
class _Held:
    """What a piece of a passage holds that a claim's facts must match: its words, numbers
    and dates (the passage's title, outlet and date always count)."""

    words: frozenset[str]
    text: str  # lower-cased
    values: tuple[tuple[float, float], ...]  # (value, mantissa) of every number
    dates: tuple[tuple[int, int, int | None], ...]
    times: frozenset[str]
    acronyms: frozenset[str]  # initials of its capitalised names: "ftc"
    capitalised: frozenset[str]  # words of its capitalised names


def _held(text: str) -> _Held:
    dates, rest = _dates(text)
    times, rest = _times(rest)
    values: list[tuple[float, float]] = []
    for m in _NUMBER.finditer(rest):
        value, _, factor = _number_value(m)
        values.append((value, value / factor))
    for word in _WORD.findall(rest.lower()):
        if word in _NUMBER_WORDS:
            values.append((float(_NUMBER_WORDS[word]), float(_NUMBER_WORDS[word])))
    values += [(float(y), float(y)) for y in {y for _, _, y in dates if y}]
    acronyms = set()
    capitalised = set()
    for name in names_in(text):
        capitalised.update(_plain(w) for w in name.split())
        initials = "".join(w[0] for w in re.split(r"[\s\-]+", name)
                           if w and w.lower() not in _ACRONYM_SKIP)
        if len(initials) >= 2:
            acronyms.add(initials.lower())
    return _Held(frozenset(_plain(w) for w in _WORD.findall(text)), text.lower(),
                 tuple(values), tuple(dates), frozenset(times), frozenset(acronyms),
                 frozenset(capitalised))


@dataclass
class _Source:
    """A passage as the check reads it: its sentences (with their content words), and what
    it holds, as a whole and around each sentence."""

    passage: Passage
    sentences: list[tuple[str, int, int]]
    sentence_terms: list[set[str]]
    terms: frozenset[str]
    held: _Held
    prominent: frozenset[str]  # words of its title, and words it uses more than once
    _parts: dict[tuple[int, ...], _Held] = field(default_factory=dict)

    def sentences_held(self, ks: list[int]) -> _Held:
        """What these sentences and the metadata (title, outlet, date) hold."""
        key = tuple(sorted(ks))
        if key not in self._parts:
            p = self.passage
            text = " ".join(self.sentences[k][0] for k in key)
            self._parts[key] = _held(f"{text}\n{p.title}\n{p.source}\n{p.published_at[:10]}")
        return self._parts[key]


def _source(passage: Passage, split: list[tuple[str, int, int]]) -> _Source:
    meta = f"{passage.title}\n{passage.source}\n{passage.published_at[:10]}"
    full = f"{passage.text}\n{meta}"
    counts = Counter(_plain(w) for w in _WORD.findall(passage.text))
    prominent = {w for w, n in counts.items() if n > 1}
    prominent |= {_plain(w) for w in _WORD.findall(passage.title)}
    return _Source(passage, split, [content_terms(t) for t, _, _ in split],
                   frozenset(content_terms(full)), _held(full), frozenset(prominent))


def _number_found(number: tuple[float, int, float], source: _Held) -> bool:
    value, decimals, factor = number
    for full, mantissa in source.values:
        if math.isclose(full, value, rel_tol=1e-9) or (
                factor == 1.0 and math.isclose(mantissa, value, rel_tol=1e-9)):
            return True
        # A rounded figure: "1.2 million" for 1,234,567, "153" for 152.67.
        if full and round(full / factor, max(decimals, 0)) == round(value / factor, 6) \
                and abs(full - value) < abs(value) * 0.05:
            return True
    return False


def _date_found(date: tuple[int, int, int | None], source: _Held) -> bool:
    month, day, year = date
    return any(m == month and d == day and (year is None or y is None or y == year)
               for m, d, y in source.dates)


def _name_found(word: str, source: _Held) -> bool:
    if word in source.words or word in source.acronyms:
        return True
    if not word.isalnum() and re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", source.text):
        return True  # "u.s", "bankman-fried"
    if any(re.search(r"(?<!\w)" + re.escape(alias) + r"(?!\w)", source.text)
           for alias in _ALIASES.get(word, ())):
        return True
    # "Japanese" for "Japan", "Kremlin's": one word the other's start, five letters at least.
    return len(word) >= 5 and any(len(w) >= 5 and (w.startswith(word) or word.startswith(w))
                                  for w in source.words if w[:3] == word[:3])


def _missing_facts(facts: _Facts, sources: Sequence[_Held]) -> list[str]:
    """The numbers, dates and names of a claim that none of `sources` holds."""
    missing = []
    for number in facts.numbers:
        if not any(_number_found(number, s) for s in sources):
            missing.append(f"number {number[0]:g}")
    for date in facts.dates:
        if not any(_date_found(date, s) for s in sources):
            missing.append(f"date {date}")
    for time in facts.times:
        if not any(time in s.times for s in sources):
            missing.append(f"time {time}")
    for word in facts.names:
        if not any(_name_found(word, s) for s in sources):
            missing.append(f"name {word}")
    return missing


# -- the check ------------------------------------------------------------------------------


def split_claims(text: str) -> tuple[list[tuple[int, int]], list[Claim]]:
    """The answer's sentence spans and its claims: per sentence, the text before each marker
    group (markers right after markers cite the same text), and the text after the last one
    as an unmarked claim ("... [4], while 7:14 p.m." where sentencex cut at "p.m."); or the
    whole sentence when it has no marker."""
    spans = answer_sentences(text)
    claims = []
    for index, (start, end) in enumerate(spans):
        sentence = text[start:end]
        groups = list(_MARKER_GROUP.finditer(sentence))
        at = end - 1 if sentence[-1] in ".!?。！？" else end  # where a new marker would go
        if not groups:
            claims.append(Claim(index, sentence, (), ((at, at),)))
            continue
        pending = ""
        cursor = 0
        found: list[Claim] = []
        for g in groups:
            pending += sentence[cursor:g.start()]
            cursor = g.end()
            numbers = tuple(int(n) for n in _MARKER.findall(g.group()))
            if not _CONNECTIVE.sub("", pending).strip() and not found:
                continue  # markers opening a sentence: nothing of it to check them against
            if not _CONNECTIVE.sub("", pending).strip():
                # Markers right after markers or punctuation: they cite the same claim.
                last = found[-1]
                found[-1] = Claim(index, last.text, last.cited + numbers,
                                  (*last.spans, (start + g.start(), start + g.end())))
                continue
            found.append(Claim(index, pending, numbers, ((start + g.start(), start + g.end()),)))
            pending = ""
        tail = sentence[cursor:]
        if _CONNECTIVE.sub("", tail).strip():
            found.append(Claim(index, tail, (), ((at, at),)))
        claims.extend(found)
    return spans, [Claim(c.sentence, _claim_text(c.text), c.cited, c.spans) for c in claims]


def _claim_text(text: str) -> str:
    text = _MARKER.sub("", text)
    return " ".join(_CONNECTIVE.sub("", text).split())


class CitationChecker:
    """Checks an answer's sentences against the passages they cite, with the packaged
    embedding model (the one the assistant already loaded)."""

    def __init__(self, embeddings: NewsEmbeddings, support: float = SUPPORT,
                 better_by: float = BETTER_BY, cosine_weight: float = COSINE_WEIGHT,
                 close: float = CLOSE, drawn_on: float = DRAWN_ON) -> None:
        self.embeddings = embeddings
        self.support = support
        self.better_by = better_by
        self.cosine_weight = cosine_weight
        self.close = close
        self.drawn_on = drawn_on
        self._vectors: LRU[tuple[str, int], np.ndarray] = LRU(SENTENCE_CACHE_SIZE)
        self._sources: LRU[tuple[str, str, str, str], _Source] = LRU(SOURCE_CACHE_SIZE)

    def check(self, text: str, passages: Sequence[Passage]) -> Checked:
        """`text` with its markers re-pointed where another passage supports a claim, and
        the indexes of the sentences no passage supports."""
        spans, claims = split_claims(text)
        if _CJK.search(text):
            return Checked(text, [], [SentenceCheck(i, a, b, _markers(text[a:b]),
                                                    _markers(text[a:b]), "not_a_claim")
                                      for i, (a, b) in enumerate(spans)])
        sources = [self._source(p) for p in passages]
        capitalised = frozenset().union(*(s.held.capitalised for s in sources))
        cited_facts = _claim_facts(" ".join(c.text for c in claims if c.cited), capitalised)
        checked = [c for c in claims
                   if c.cited or self._is_claim(c.text, cited_facts, capitalised)]
        facts = [_claim_facts(c.text, capitalised) for c in checked]
        scores, closest, embedded = self._scores(checked, facts, sources)
        verdicts: dict[int, list[Verdict]] = {}
        weakest: dict[int, float] = {}
        edits: list[tuple[tuple[int, int], str]] = []
        for i, claim in enumerate(checked):
            cited = [n - 1 for n in claim.cited if 1 <= n <= len(sources)]
            own = max((float(scores[i, j]) for j in cited), default=-1.0)
            terms = content_terms(claim.text)
            own_ok = bool(cited) and own >= self.support and self._facts_hold(
                facts[i], terms, [sources[j] for j in cited], [closest[i][j] for j in cited])
            # A short unmarked sentence ("Everton Football Club.", a lead naming the answer)
            # says too little for its meaning to be compared: only its facts are.
            short = not claim.cited and len(terms) < MIN_UNCITED_TERMS
            others = [j for j in range(len(sources))
                      if j not in cited and (
                          not _missing_facts(facts[i], [sources[j].held]) if short else
                          scores[i, j] >= self.support and self._facts_hold(
                              facts[i], terms, [sources[j]], [closest[i][j]]))]
            best = max(others, key=lambda j: scores[i, j], default=None)
            weakest[claim.sentence] = min(weakest.get(claim.sentence, 1.0), own)
            if own_ok and (best is None or scores[i, best] < own + self.better_by):
                verdict: Verdict = "supported"
            elif best is not None:
                verdict = "repointed" if claim.cited else "cited"
                first, *rest = claim.spans
                edits.append((first, f" [{best + 1}]"))
                edits += [(span, "") for span in rest]
            else:
                verdict = "unsupported"
            verdicts.setdefault(claim.sentence, []).append(verdict)
        repaired = _apply(text, edits)
        new_spans = answer_sentences(repaired) if edits else spans
        if len(new_spans) != len(spans):  # never seen; keep the original text then
            repaired, new_spans = text, spans
        result = []
        for index, (start, end) in enumerate(new_spans):
            found = verdicts.get(index, [])
            verdict = next((v for v in ("unsupported", "repointed", "cited", "supported")
                            if v in found), "not_a_claim")
            old = text[spans[index][0]:spans[index][1]]
            result.append(SentenceCheck(index, start, end, _markers(old),
                                        _markers(repaired[start:end]), verdict,
                                        weakest.get(index)))
        return Checked(repaired, [s.index for s in result if s.verdict == "unsupported"],
                       result, embedded)

    def _facts_hold(self, facts: _Facts, terms: set[str], sources: list[_Source],
                    near: list[list[tuple[float, int]]]) -> bool:
        """The claim's numbers, dates and names are in the passages; and when it restates
        one of their sentences closely, its numbers, dates and times are in the sentences it
        draws on (that one, and those whose words it mostly repeats: a claim may join two),
        and its names there too, or in the two sentences before (whom a "he" or "it" of the
        sentence stands for), or are the passage's subject (in its title, or named more than
        once); else it mixed up a figure or a name with another one of the same passage."""
        if _missing_facts(facts, [s.held for s in sources]):
            return False
        best = max((cosine for ranked in near for cosine, _ in ranked), default=0.0)
        if best < self.close:
            return True
        drawn_on, before = [], []
        for source, ranked in zip(sources, near, strict=True):
            top = {k for cosine, k in ranked if cosine == best}
            ks = top | {k for k, t in enumerate(source.sentence_terms)
                        if t and len(t & terms) >= self.drawn_on * len(t)}
            drawn_on.append(source.sentences_held(sorted(ks)))
            before.append(source.sentences_held(sorted(
                {i for k in top for i in (k - 2, k - 1) if i >= 0} | ks)))
        figures = _Facts(facts.numbers, facts.dates, facts.times, ())
        if _missing_facts(figures, drawn_on):
            return False
        names = [w for w in facts.names if not any(w in s.prominent for s in sources)]
        return not _missing_facts(_Facts((), (), (), tuple(names)), before)

    def _is_claim(self, text: str, cited: _Facts, capitalised: frozenset[str]) -> bool:
        """Whether an unmarked sentence states anything the cited ones do not."""
        if not text or "does not say" in text.lower():
            return False
        facts = _claim_facts(text, capitalised)
        new_names = set(facts.names) - set(cited.names)
        new_numbers = {round(v, 6) for v, _, _ in facts.numbers} - {
            round(v, 6) for v, _, _ in cited.numbers}
        new_dates = set(facts.dates) - set(cited.dates)
        new_times = set(facts.times) - set(cited.times)
        return bool(new_names or new_numbers or new_dates or new_times) or \
            len(content_terms(text)) >= MIN_UNCITED_TERMS

    def _source(self, passage: Passage) -> _Source:
        # A chunk's text never changes (its id names its content); its article's title,
        # outlet and date might.
        key = (passage.chunk_id, passage.title, passage.source, passage.published_at)
        found = self._sources.get(key)
        if found is None:
            split = sentences.split(passage.text, passage.lang, passage.start) or [
                (passage.text, passage.start, passage.end)]
            found = _source(passage, split)
            self._sources.put_many({key: found})
        return found

    def _scores(self, claims: list[Claim], facts: list[_Facts], sources: list[_Source]
                ) -> tuple[np.ndarray, list[list[list[tuple[float, int]]]], int]:
        """Each claim's support by each passage (the blend of the cosine to the passage's
        closest sentence and the share of the claim's content words the passage holds; 0 for
        an uncited passage that lacks its facts or most of its words), the (cosine,
        sentence) pairs scored, and how many texts were embedded. The claims and the
        passage sentences that share most words with them go to the model together
        (cached across answers; calls of at most `ONNX_MAX_TEXTS`, usually one)."""
        scores = np.zeros((len(claims), len(sources)), dtype=np.float32)
        closest: list[list[list[tuple[float, int]]]] = [[[] for _ in sources] for _ in claims]
        if not claims or not sources:
            return scores, closest, 0
        terms = [content_terms(c.text) for c in claims]
        share = np.array([[len(t & s.terms) / len(t) if t else 1.0 for s in sources]
                          for t in terms], dtype=np.float32)
        chosen: dict[tuple[int, int], list[int]] = {}
        wanted: dict[tuple[str, int], str] = {}
        for i, claim in enumerate(claims):
            for j, source in enumerate(sources):
                cited = j + 1 in claim.cited
                if not cited and (share[i, j] < MIN_SHARE
                                  or _missing_facts(facts[i], [source.held])):
                    continue  # it cannot support the claim: no need to embed its sentences
                overlap = [len(terms[i] & t) for t in source.sentence_terms]
                keep = sorted(range(len(overlap)), key=lambda k: -overlap[k])
                chosen[i, j] = keep[:SENTENCES_PER_PASSAGE if cited else SENTENCES_UNCITED]
                for k in chosen[i, j]:
                    wanted[(source.passage.chunk_id, source.sentences[k][1])] = \
                        source.sentences[k][0]
        known = self._vectors.get_many(wanted)
        missing = [key for key in wanted if key not in known]
        texts = [c.text for c in claims] + [wanted[key] for key in missing]
        vectors = np.concatenate([self.embeddings.embed(texts[i:i + ONNX_MAX_TEXTS])
                                  for i in range(0, len(texts), ONNX_MAX_TEXTS)])
        fresh = dict(zip(missing, vectors[len(claims):], strict=True))
        self._vectors.put_many(fresh)
        known.update(fresh)
        for (i, j), ks in chosen.items():
            chunk_id, split = sources[j].passage.chunk_id, sources[j].sentences
            closest[i][j] = [(float(known[(chunk_id, split[k][1])] @ vectors[i]), k)
                             for k in ks]
            cosine = max((c for c, _ in closest[i][j]), default=0.0)
            scores[i, j] = self.cosine_weight * cosine + (1 - self.cosine_weight) * share[i, j]
        return scores, closest, len(texts)


def _markers(text: str) -> list[int]:
    return [int(n) for n in _MARKER.findall(text)]


def _apply(text: str, edits: list[tuple[tuple[int, int], str]]) -> str:
    for (start, end), new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text

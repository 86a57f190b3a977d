"""Conflicting reports: retrieved sentences that answer the question alike but disagree on the
fact asked (a number, a date, a place, a name).

Two sentences of different articles conflict when both cover most of the question's terms,
each holds a value of the kind asked for that the other lacks, the two values stand in the
same place (the same word before or after them: "Norway came out on top" / "U.S. came out on
top"), and, the two values set aside, the sentences say the same thing: a near copy, or the
fact retold in other words. Values the question names never count; nor do two values one
passage names together ("Spain beat the Netherlands") or reports of different years. The
versions come newest first, so the answer can show each with its outlet, date and citation
instead of silently picking one. Thresholds were set on RGB en with planted passages and on
its answerable questions (docs/evaluation.md#conflicting-sources).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from assistant.answer.entities import names_in
from assistant.dates import find_dates, split_dates
from assistant.text import STOPWORDS, stem
from assistant.types import ConflictVersion, Passage

Kind = Literal["number", "date", "name"]

# Share of the question's content terms a sentence must hold to count as answering it.
MIN_COVERAGE = 0.5
# Two sentences state the same fact when, their values set aside, they share this share of
# all their content terms (a near copy, at least MIN_FRAME_TERMS each) ...
NEAR_COPY = 0.8
MIN_FRAME_TERMS = 3
# ... or are the same words but for the value ("It was released on July 21, 2017") ...
# ... or, for a question that says what it asks (a number, a date, a name), when the two
# values stand in the same place for sure (see `_aligned`), both sentences cover
# RETOLD_COVERAGE of the question's terms (their headline helping), the shorter one's terms
# (at least RETOLD_FRAME_TERMS) are MIN_FRAME_OVERLAP shared with the other, and
# RETOLD_JACCARD of all: the fact in other words ...
RETOLD_COVERAGE = 0.75
RETOLD_FRAME_TERMS = 4
MIN_FRAME_OVERLAP = 0.5
RETOLD_JACCARD = 0.35
# ... or when each sentence names just the one value and covers all of the question's terms:
# "Turnout was 41 percent" under "Lanford elects mayor" / "The Lanford mayoral election drew a
# turnout of 36 percent". Looser rules flagged 6-16% of RGB's answerable questions.
SLOT_COVERAGE = 1.0
MAX_VERSIONS = 3

_NUMBER_Q = re.compile(
    r"\bhow (?:many|much|old|long|far|large|big|high|tall|often|fast)\b"
    r"|\bwhat (?:percentage|percent|number|share|amount|price|score|rate)\b"
    r"|\b(?:revenue|price|cost|population|salary|budget|score|total|figure|turnout)\b", re.I)
_DATE_Q = re.compile(r"^\s*when\b|\b(?:what|which) (?:year|date|day|month)\b|\bdate\b", re.I)
_NAME_Q = re.compile(r"^\s*(?:who|whom|whose|where|which)\b|\bwhat (?:is|was) the name\b"
                     r"|\blocation\b|\bwhere\b|\bwho\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\s?%| percent)?")
_YEAR = re.compile(r"^(?:1[89]|20)\d\d$")
# The words that ask ("how long does the crossing take") are not what a sentence is about.
_ASKING = re.compile(r"\bhow (?:many|much|long|far|often)\b", re.I)
_SCALE = frozenset("thousand million billion trillion bn m k".split())
_WORD = re.compile(r"[^\W_]+")
_BEFORE = re.compile(r"([^\W_]+)\s*$")
_AFTER = re.compile(r"\s*([^\W_]+)")


def asked_kind(question: str) -> Kind | None:
    """What kind of value the question asks for; None when it does not say."""
    if _NUMBER_Q.search(question):
        return "number"
    if _DATE_Q.search(question):
        return "date"
    if _NAME_Q.search(question):
        return "name"
    return None


def content_terms(text: str) -> set[str]:
    """Snowball stems of the lower-cased words that are no stopwords."""
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage (offsets in the article body)."""

    passage: Passage
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Version:
    """One of the disagreeing versions: its value and the sentences that state it."""

    value: str
    sentences: tuple[Sentence, ...]

    @property
    def newest(self) -> str:
        return max((s.passage.published_at for s in self.sentences), default="")

    def shown(self, citations: list[int]) -> ConflictVersion:
        """The version in the answer shape: its newest report's outlet and date, and
        `citations`, the markers of the sentences that state it."""
        newest = max(self.sentences, key=lambda s: s.passage.published_at).passage
        return ConflictVersion(value=self.value, source=newest.source,
                               published_at=newest.published_at, citations=citations)


def values(text: str, kind: Kind | None, question: str) -> dict[str, str]:
    """The values of the asked kind in `text` (normalised -> as written), leaving out those
    the question names. Unknown kind: numbers and names."""
    asked = question.lower()
    found: dict[str, str] = {}
    if kind == "date":
        for d in find_dates(text, need_year=True):
            if d.text.lower() not in asked:
                found.setdefault(d.iso, d.text)
    if kind in ("number", "date", None):
        # In a written-out date the day is no amount; for a date question, years count.
        rest = text if kind == "date" else split_dates(text, need_year=True)[1]
        for m in _NUMBER.finditer(rest):
            raw = m.group().strip()
            digits = raw.replace(",", "").removesuffix("%").removesuffix(" percent").strip()
            if digits in asked or (kind == "date") != bool(_YEAR.match(digits)):
                continue
            found.setdefault(digits, raw)
    if kind in ("name", None):
        first = _WORD.match(text.lstrip())
        for name in names_in(text):
            if name.lower() in asked or not any(c.isalpha() for c in name):
                continue
            if kind is None and " " not in name and first is not None \
                    and first.group() == name:
                continue  # "Counting finished ...": a capital that only starts the sentence
            # The question's own words around a name are a title ("Facebook CEO Mark
            # Zuckerberg"); a name still holding them ("Super Bowl", "Walt Disney Company To
            # Acquire Twenty-First Century Fox") is a topic or a headline, not an answer.
            asked_terms = content_terms(question)
            words = name.split()
            while words and content_terms(words[0]) & asked_terms:
                words = words[1:]
            while words and content_terms(words[-1]) & asked_terms:
                words = words[:-1]
            name = " ".join(words)
            if not name or content_terms(name) & asked_terms or len(words) > 4:
                continue
            found.setdefault(_norm(name), name)
    return {k: v for k, v in found.items() if k}


def _years(text: str, question: str) -> set[str]:
    """The years a sentence names that the question does not."""
    return {y for y in re.findall(r"\b(?:1[89]|20)\d\d\b", text) if y not in question}


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower().removeprefix("the ")))


def find_conflict(question: str, passages: Sequence[Passage],
                  sentences_of: Callable[[Passage], list[Sentence]]) -> list[Version] | None:
    """The disagreeing versions (newest first) when the passages that answer `question`
    disagree on the fact asked; None when they agree or do not answer it."""
    # "How long does the crossing take?": "long" asks, the crossing is what it is about.
    wanted = content_terms(_ASKING.sub(" ", question))
    if not wanted:
        return None
    kind = asked_kind(question)
    answering: list[tuple[Sentence, dict[str, str], set[str], float, set[str]]] = []
    for passage in passages:
        # The headline says what a sentence is about when the sentence does not ("The crossing
        # takes 45 minutes" under "Ferry link to Skarra island restored").
        headline = content_terms(passage.title)
        for s in sentences_of(passage):
            terms = content_terms(s.text)
            if len(wanted & (terms | headline)) / len(wanted) < MIN_COVERAGE:
                continue
            found = values(s.text, kind, question)
            if found:
                answering.append((s, found, terms, len(wanted & (terms | headline)) / len(wanted),
                                  _years(s.text, question)))
    best: tuple[float, int, int, str, str] | None = None
    for i, (a, va, terms_a, cov_a, years_a) in enumerate(answering):
        for j in range(i + 1, len(answering)):
            b, vb, terms_b, cov_b, years_b = answering[j]
            if a.passage.article_id == b.passage.article_id:
                continue
            only_a, only_b = va.keys() - vb.keys(), vb.keys() - va.keys()
            if not only_a or not only_b:
                continue
            # Reports of different years are about different events, not in conflict.
            if kind != "date" and years_a and years_b and not years_a & years_b:
                continue
            aligned = _aligned(a.text, va, only_a, b.text, vb, only_b)
            if aligned is None:
                continue
            pair, sure = aligned[:2], aligned[2]
            if _together(pair, va, vb, passages):
                continue
            single = _single(va) and _single(vb)
            # What the two say besides the two values.
            fa = terms_a - content_terms(va[pair[0]])
            fb = terms_b - content_terms(vb[pair[1]])
            if not fa or not fb:
                continue
            shared = len(fa & fb)
            # The same sentence with another value (a copy of the report, changed), or the
            # same fact told in other words by two reports that both answer the question.
            same_text = ((shared / len(fa | fb) >= NEAR_COPY
                          and min(len(fa), len(fb)) >= MIN_FRAME_TERMS)
                         or _masked(a.text, va[pair[0]]) == _masked(b.text, vb[pair[1]]))
            retold = (kind is not None and (sure or single)
                      and min(cov_a, cov_b) >= RETOLD_COVERAGE
                      and shared / min(len(fa), len(fb)) >= MIN_FRAME_OVERLAP
                      and shared / len(fa | fb) >= RETOLD_JACCARD
                      and min(len(fa), len(fb)) >= RETOLD_FRAME_TERMS)
            slot = kind is not None and single and min(cov_a, cov_b) >= SLOT_COVERAGE
            if not same_text and not retold and not slot:
                continue
            rank = shared / len(fa | fb) + a.passage.score + b.passage.score
            if best is None or rank > best[0]:
                best = (rank, i, j, *pair)
    if best is None:
        return None
    _, i, j, value_a, value_b = best
    versions = {value_a: [answering[i][0]], value_b: [answering[j][0]]}
    shown = {value_a: answering[i][1][value_a], value_b: answering[j][1][value_b]}
    # Other answering sentences that state one of the two values (and not the other) back it.
    for s, found, *_ in answering:
        keys = [v for v in versions if v in found]
        if len(keys) == 1 and all(s.passage.article_id != o.passage.article_id
                                  for o in versions[keys[0]]):
            versions[keys[0]].append(s)
    out = [Version(shown[v], tuple(sorted(ss, key=lambda s: s.passage.published_at,
                                          reverse=True)[:2])) for v, ss in versions.items()]
    return sorted(out, key=lambda v: v.newest, reverse=True)[:MAX_VERSIONS]


def _aligned(text_a: str, va: dict[str, str], only_a: set[str], text_b: str,
             vb: dict[str, str], only_b: set[str]) -> tuple[str, str, bool] | None:
    """The two values, one of each sentence, that stand in the same place: the word before
    or the word after each is the same ("cost 48 million" / "cost 61 million"), or they are
    amounts of one unit ("paid 1.2 million pounds" / "for 900,000 pounds"); and whether that
    is sure (a content word or a unit, not just "in" or "the"). Values nested in each other
    ("Kerber" / "Angelique Kerber") are one version, not two."""
    for x in sorted(only_a, key=lambda v: text_a.find(va[v])):
        near_a = _context(text_a, va[x])
        for y in sorted(only_b, key=lambda v: text_b.find(vb[v])):
            if x in y or y in x:
                continue
            near_b = _context(text_b, vb[y])
            if near_a is None or near_b is None:
                continue
            same = [w for w, o in zip(near_a, near_b, strict=True) if w and w == o]
            if same:
                return x, y, any(w not in STOPWORDS for w in same)
            unit = _unit(text_a, va[x]) if x[:1].isdigit() else ""
            if unit and y[:1].isdigit() and unit == _unit(text_b, vb[y]):
                return x, y, True
    return None


def _single(found: dict[str, str]) -> bool:
    """Whether a sentence names one value (a value inside another counts as that one)."""
    keys = list(found)
    return sum(not any(k != o and k in o for o in keys) for k in keys) == 1


def _masked(text: str, value: str) -> list[str]:
    """The sentence's words with the value taken out."""
    return _WORD.findall(text.replace(value, " ", 1).lower())


def _unit(text: str, value: str) -> str:
    """What an amount counts: the word after it past any scale word ("1.2 million pounds",
    "900,000 pounds" -> "pounds"; "41 percent" -> "percent"); "" when none follows."""
    if value.endswith(("%", "percent")):
        return "percent"
    at = text.find(value)
    after = _WORD.findall(text[at + len(value):].lower())[:2] if at >= 0 else []
    while after and after[0] in _SCALE:
        after = after[1:]
    return after[0] if after and after[0] not in STOPWORDS else ""


def _context(text: str, value: str) -> tuple[str, str] | None:
    """The word right before and right after `value` in `text` ("" past a comma or a
    bracket: "The Shape Of Water, ... won" has no word after the title)."""
    at = text.find(value)
    if at < 0:
        return None
    before = _BEFORE.search(text[:at].lower())
    after = _AFTER.match(text[at + len(value):].lower())
    return (before.group(1) if before else "", after.group(1) if after else "")


def _together(pair: tuple[str, str], va: dict[str, str], vb: dict[str, str],
              passages: Sequence[Passage]) -> bool:
    """Whether a passage names both values: then they are two parts of one story ("Spain
    beat the Netherlands"), not two versions of one fact."""
    a, b = va[pair[0]].lower(), vb[pair[1]].lower()
    return any(a in p.text.lower() and b in p.text.lower() for p in passages)

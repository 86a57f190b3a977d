"""Conflicting reports: retrieved sentences that answer the question alike but disagree on the
fact asked (a number, a date, a place, a name).

Two sentences of different articles conflict when both cover most of the question's terms,
say nearly the same thing once their values are set aside (their other content terms mostly
shared), and each holds a value of the kind asked for that the other lacks ("Norway came out
on top" / "the U.S. came out on top"). Values the question itself names never count. The
versions come newest first, so the answer can show each with its outlet, date and citation
instead of silently picking one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from assistant.answer.entities import names_in
from assistant.text import MONTH_DATE
from assistant.types import Passage

Kind = Literal["number", "date", "name"]

# Share of the question's content terms a sentence must hold to count as answering it.
MIN_COVERAGE = 0.5
# Share of the shorter sentence's content terms (values set aside) the other must share for
# the two to state the same fact.
MIN_FRAME_OVERLAP = 0.5
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
_WORD = re.compile(r"[^\W_]+")
_STOP = frozenset((
    "a an the and or but of to in on at by for with from as is are was were be been being do "
    "does did has have had what which who whom whose when where why how that this these those "
    "it its than then there their they them he she his her we our you your i not no so if "
    "about into over after before during will would can could should may might said says "
    "also such only all any each more most some many much up out new"
).split())


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
    """Lower-cased content words, cut to 5 letters (a cheap stem)."""
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


@dataclass(frozen=True)
class Candidate:
    """A sentence of a passage that may answer the question (offsets in the article body)."""

    passage: Passage
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Version:
    """One of the disagreeing versions: its value and the sentences that state it."""

    value: str
    sentences: tuple[Candidate, ...]

    @property
    def newest(self) -> str:
        return max((s.passage.published_at for s in self.sentences), default="")


def values(text: str, kind: Kind | None, question: str) -> dict[str, str]:
    """The values of the asked kind in `text` (normalised -> as written), leaving out those
    the question names. Unknown kind: numbers and names."""
    asked = question.lower()
    found: dict[str, str] = {}
    if kind == "date":
        for d in MONTH_DATE.finditer(text):
            if d.group().lower() not in asked:
                found.setdefault(_norm(d.group()), d.group())
    if kind in ("number", "date", None):
        # In a written-out date the day is no amount; for a date question, years count.
        rest = text if kind == "date" else MONTH_DATE.sub(" ", text)
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
            if " " not in name and first is not None and first.group() == name:
                continue  # "Counting finished ...": a capital that only starts the sentence
            # A name of the question's own words ("Super Bowl") is not an answer.
            if content_terms(name) and content_terms(name) <= content_terms(question):
                continue
            found.setdefault(_norm(name), name)
    return {k: v for k, v in found.items() if k}


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower().removeprefix("the ")))


def find_conflict(question: str, passages: Sequence[Passage],
                  sentences_of: Callable[[Passage], list[Candidate]]) -> list[Version] | None:
    """The disagreeing versions (newest first) when the passages that answer `question`
    disagree on the fact asked; None when they agree or do not answer it."""
    wanted = content_terms(question)
    if not wanted:
        return None
    kind = asked_kind(question)
    answering: list[tuple[Candidate, dict[str, str], set[str]]] = []
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
                value_terms = {t for v in found.values() for t in content_terms(v)}
                answering.append((s, found, terms - value_terms))
    best: tuple[float, int, int, str, str] | None = None
    for i, (a, va, fa) in enumerate(answering):
        for j in range(i + 1, len(answering)):
            b, vb, fb = answering[j]
            if a.passage.article_id == b.passage.article_id:
                continue
            only_a, only_b = va.keys() - vb.keys(), vb.keys() - va.keys()
            if not only_a or not only_b or not fa or not fb:
                continue
            overlap = len(fa & fb) / min(len(fa), len(fb))
            if overlap < MIN_FRAME_OVERLAP:
                continue
            # Nested values ("Kerber" / "Angelique Kerber") are one version, not two.
            if all(any(x in y or y in x for y in only_b) for x in only_a):
                continue
            rank = overlap + a.passage.score + b.passage.score
            if best is None or rank > best[0]:
                best = (rank, i, j, min(only_a, key=lambda v: text_pos(a.text, va[v])),
                        min(only_b, key=lambda v: text_pos(b.text, vb[v])))
    if best is None:
        return None
    _, i, j, value_a, value_b = best
    versions = {value_a: [answering[i][0]], value_b: [answering[j][0]]}
    shown = {value_a: answering[i][1][value_a], value_b: answering[j][1][value_b]}
    # Other answering sentences that state one of the two values (and not the other) back it.
    for s, found, _ in answering:
        keys = [v for v in versions if v in found]
        if len(keys) == 1 and all(s.passage.article_id != o.passage.article_id
                                  for o in versions[keys[0]]):
            versions[keys[0]].append(s)
    out = [Version(shown[v], tuple(sorted(ss, key=lambda s: s.passage.published_at,
                                          reverse=True)[:2])) for v, ss in versions.items()]
    return sorted(out, key=lambda v: v.newest, reverse=True)[:MAX_VERSIONS]


def text_pos(text: str, value: str) -> int:
    at = text.find(value)
    return at if at >= 0 else len(text)

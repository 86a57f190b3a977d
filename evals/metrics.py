"""Evaluation metrics: does a ranked passage list hit the evidence, is an answer right, and
the summary figures over many questions (see ../shared/data/README.md for the definitions).

Pure functions over plain data, so every metric can be checked by hand; `evals.run` runs
the product and feeds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.types import Passage

# The order of the figures in the JSON report and the table.
METRIC_KEYS = (
    "questions", "hits_at_1", "hits_at_4", "hits_at_5", "hits_at_10", "recall_at_10",
    "allhit_at_10", "mrr_at_10", "answer_accuracy", "inference_accuracy", "citation_precision",
    "rejection_rate", "false_rejection_rate", "latency_p50_ms", "latency_p95_ms",
    "retrieve_p50_ms", "mode",
)
CUTOFF = 10  # Recall@10, AllHit@10 and MRR@10 look at this many ranked passages


@dataclass(frozen=True)
class EvidenceItem:
    """One thing retrieval should find: a passage of article `article` (a dataset id).

    With `span`, the passage must overlap `[start, end)` of the article's cleaned body; with
    only `fact`, its text must hold the fact (whitespace ignored); with neither, any passage of
    the article hits.
    """

    article: str
    fact: str = ""
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class EvalQuestion:
    """A benchmark question in one shape for both formats (MultiHop-RAG and RGB)."""

    id: str
    question: str
    type: str
    # Every element must appear in the answer; a list element is matched by any of its strings.
    answers: tuple[str | tuple[str, ...], ...]
    answerable: bool
    evidence: tuple[EvidenceItem, ...] = ()
    location: str = ""

    @property
    def evidence_articles(self) -> frozenset[str]:
        return frozenset(item.article for item in self.evidence)


@dataclass
class QuestionResult:
    """What happened to one question; the summary figures are computed from these."""

    id: str
    type: str
    answerable: bool
    n_evidence: int = 0  # evidence items; 0: retrieval is not scored for this question
    first_hit: int | None = None  # 1-based rank of the first passage that hits any item
    items_hit: int = 0  # evidence items hit within the top CUTOFF passages
    correct: bool = False
    refused: bool = False
    citations: int = 0
    good_citations: int = 0  # citations of an evidence article
    answer_ms: float = 0.0
    retrieve_ms: float = 0.0
    error: str = ""
    answer: str = ""
    retrieved: list[str] = field(default_factory=list)  # dataset ids of the ranked passages
    cited: list[str] = field(default_factory=list)  # dataset ids of the cited passages, [1] first


# -- retrieval ---------------------------------------------------------------------------


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def locate_fact(body: str, fact: str, hint: int = 0) -> tuple[int, int] | None:
    """`[start, end)` of `fact` in `body`: exact (the occurrence nearest `hint`), else with
    whitespace ignored; None when it is not there."""
    if not fact.strip():
        return None
    if body[hint:hint + len(fact)] == fact:
        return hint, hint + len(fact)
    starts = [m.start() for m in re.finditer(re.escape(fact), body)]
    if starts:
        start = min(starts, key=lambda s: abs(s - hint))
        return start, start + len(fact)
    pattern = r"\s*".join(re.escape(ch) for ch in _squash(fact))
    matches = list(re.finditer(pattern, body))
    if matches:
        best = min(matches, key=lambda m: abs(m.start() - hint))
        return best.start(), best.end()
    return None


def hits_item(passage: Passage, item: EvidenceItem) -> bool:
    """True when the passage comes from the item's article and holds (a piece of) its fact."""
    if passage.external_id != item.article:
        return False
    if item.span is not None:
        start, end = item.span
        return passage.start < end and start < passage.end
    if item.fact:
        return _squash(item.fact) in _squash(passage.text)
    return True


def score_retrieval(ranked: Sequence[Passage],
                    evidence: Sequence[EvidenceItem]) -> tuple[int | None, int]:
    """(1-based rank of the first passage hitting any item or None, items hit in the top 10)."""
    first_hit = None
    hit_items: set[int] = set()
    for rank, passage in enumerate(ranked, start=1):
        hits = {i for i, item in enumerate(evidence) if hits_item(passage, item)}
        if hits and first_hit is None:
            first_hit = rank
        if rank <= CUTOFF:
            hit_items |= hits
    return first_hit, len(hit_items)


# -- answers -----------------------------------------------------------------------------


def _is_ascii_word_char(ch: str) -> bool:
    # ASCII only, unlike `assistant.text.is_word_char`: a Chinese answer inside Chinese text
    # has no word boundary to respect.
    return ch.isascii() and ch.isalnum()


def contains_answer(text: str, answer: str) -> bool:
    """`answer` appears in `text`, ignoring case. Where the answer starts or ends with a Latin
    letter or digit, the text must not continue the word there, so "no" is not found in
    "not" nor "12" in "120"; Chinese answers match anywhere."""
    text, answer = text.lower(), answer.lower().strip()
    if not answer:
        return False
    for match in re.finditer(re.escape(answer), text):
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if _is_ascii_word_char(answer[0]) and _is_ascii_word_char(before):
            continue
        if _is_ascii_word_char(answer[-1]) and _is_ascii_word_char(after):
            continue
        return True
    return False


def answer_correct(text: str, answers: Iterable[str | Sequence[str]]) -> bool:
    """Every gold element appears in `text` (RGB's rule); a list element needs any of its
    strings. No gold answers: never correct."""
    elements = list(answers)
    if not elements:
        return False
    for element in elements:
        options = [element] if isinstance(element, str) else list(element)
        if not any(contains_answer(text, option) for option in options):
            return False
    return True


# -- summary -----------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarise(results: Sequence[QuestionResult], mode: str) -> dict[str, Any]:
    """The figures of METRIC_KEYS over `results`; a figure no question can give is None.

    Retrieval figures and answer accuracy are over answerable questions (retrieval: those with
    evidence); citation precision over the citations of answered (not refused) answerable
    questions; rejection rate over unanswerable questions, false rejection over answerable ones.
    """
    scored = [r for r in results if r.answerable and r.n_evidence]
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    inference = [r for r in answerable if r.type == "inference"]
    cited = [r for r in answerable if not r.refused]
    n_citations = sum(r.citations for r in cited)

    def hits_at(n: int) -> float | None:
        return _mean([r.first_hit is not None and r.first_hit <= n for r in scored])

    figures: dict[str, Any] = {
        "questions": len(results),
        "hits_at_1": hits_at(1),
        "hits_at_4": hits_at(4),
        "hits_at_5": hits_at(5),
        "hits_at_10": hits_at(10),
        "recall_at_10": _mean([r.items_hit / r.n_evidence for r in scored]),
        "allhit_at_10": _mean([r.items_hit == r.n_evidence for r in scored]),
        "mrr_at_10": _mean([1 / r.first_hit if r.first_hit and r.first_hit <= CUTOFF else 0.0
                            for r in scored]),
        "answer_accuracy": _mean([r.correct for r in answerable]),
        "inference_accuracy": _mean([r.correct for r in inference]),
        "citation_precision": (round(sum(r.good_citations for r in cited) / n_citations, 4)
                               if n_citations else None),
        "rejection_rate": _mean([r.refused for r in unanswerable]),
        "false_rejection_rate": _mean([r.refused for r in answerable]),
        "latency_p50_ms": _percentile([r.answer_ms for r in results], 50),
        "latency_p95_ms": _percentile([r.answer_ms for r in results], 95),
        "retrieve_p50_ms": _percentile([r.retrieve_ms for r in results], 50),
        "mode": mode,
    }
    return {key: figures[key] for key in METRIC_KEYS}


TYPE_ORDER = ("inference", "comparison", "temporal", "null", "answerable", "unanswerable")


def summarise_by_type(results: Sequence[QuestionResult], mode: str) -> dict[str, dict[str, Any]]:
    """`summarise` per question type, known types first in TYPE_ORDER."""
    types = sorted({r.type for r in results},
                   key=lambda t: (TYPE_ORDER.index(t) if t in TYPE_ORDER else len(TYPE_ORDER), t))
    return {t: summarise([r for r in results if r.type == t], mode) for t in types}

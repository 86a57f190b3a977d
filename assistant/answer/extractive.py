"""The offline answerer: the retrieved sentences that best answer the question, each cited.

No language model writes anything here: every sentence of the answer is copied from an article,
so every claim is grounded by construction (no citation check runs; `Answer.unsupported` is
always empty). It refuses when no sentence is close enough to the
question (threshold calibrated on RGB en; see docs/evaluation.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from assistant.answer.answerer import EXTRACTIVE_REFUSAL
from assistant.answer.conflicts import Sentence, Version, find_conflict
from assistant.answer.entities import (
    anchored_name,
    best_name,
    fits_type,
    question_type,
    which_noun,
)
from assistant.answer.followup import split_query, standalone_query
from assistant.answer.quoting import quote, split_sentences, terms
from assistant.answer.timeline import TimelineBuilder, stream_text
from assistant.answer.when import news_question
from assistant.cache import LRU
from assistant.index import sentences
from assistant.index.embeddings import NewsEmbeddings
from assistant.types import Answer, ArticleRecord, Citation, ConflictVersion, Message, Passage

if TYPE_CHECKING:
    from assistant.answer.timeline_ask import TimelineAsk

__all__ = ["ExtractiveAnswerer", "conflict_answer", "disagreement", "quote", "split_sentences",
           "terms"]

REFUSAL = EXTRACTIVE_REFUSAL
# A sentence joins the answer only if it scores this close to the best one.
RELATIVE_MARGIN = 0.20
# Sentences this similar to one already chosen would only repeat it.
REDUNDANCY = 0.88
# Only the most promising candidates are embedded on their own and scored: the model call is
# most of an answer's time. A sentence vector pooled from its chunk's token states at ingest
# (stored with the chunk) ranks them well but is a poor judge between sentences of one chunk
# (the chunk's context dominates it), so it only chooses which sentences are embedded.
# Measured with newsdesk-eval, 8 instead of 16 (chosen by passage score and shared words) cut
# the answer p50 ~40% (MultiHop-RAG dev citation precision .845 -> .833).
MAX_EMBEDDED = 8
# When every candidate has a pooled vector, only this many are embedded.
PRESELECTED = 5
# A follow-up's sentences are scored against this blend of the question's vector and the
# vector of the question with its conversation context (tests/data/conversations.jsonl).
FOCUS = 0.7
# A role read off a long multi-part question is noise (MultiHop's "Which company, recently
# scrutinized by ..." led with "DSA"): only questions this short lead with an anchored name.
ANCHORED_MAX_WORDS = 15
# A "which <noun>" question whose noun no word list knows asks for a person when the
# packaged model puts "a <noun>" this close to "a person" (cosine) and further from "an
# organization" and "a place" by PERSON_MARGIN: "individual" 0.90, "player" 0.67, "singer"
# 0.57; "contractor" 0.45 and "product" 0.48 stay unknown.
PERSON_SIMILARITY = 0.55
PERSON_MARGIN = 0.15
# The answer path's caches are bounded in memory as a server runs for weeks, whatever it is
# asked (docs/architecture.md, "Memory"): a sentence vector ~1.9 KB, a split chunk ~2.1 KB.
SENTENCE_CACHE_SIZE = 10_000
SPLIT_CACHE_SIZE = 5_000  # chunks


# Where an answer's pieces meet: after a citation marker (or the lead's period).
_PIECE_END = re.compile(r"(?<=\]|\.) (?=\S)")


class ExtractiveAnswerer:
    """Selects, de-duplicates and cites the best sentences of the retrieved passages (an
    `Answerer`, offline)."""

    mode: Literal["extractive", "llm"] = "extractive"
    made_whole = True

    def __init__(self, embeddings: NewsEmbeddings, threshold: float, max_sentences: int = 3,
                 max_passages: int = 6) -> None:
        self.embeddings = embeddings
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.max_passages = max_passages
        # Sentence vectors by (chunk id, offset): popular articles are asked about repeatedly.
        self._cache: LRU[tuple[str, int], np.ndarray] = LRU(SENTENCE_CACHE_SIZE)
        self._splits: LRU[str, list[tuple[str, int, int]]] = LRU(SPLIT_CACHE_SIZE)
        self._person_nouns: LRU[str, bool] = LRU(1024)
        self._kind_vectors: np.ndarray | None = None
        self._timelines: TimelineBuilder | None = None

    def standalone(self, question: str, history: Sequence[Message]) -> str:
        """Follow-ups resolved by rules (no model): see `assistant.answer.followup`."""
        return standalone_query(question, list(history))

    def stream(self, question: str, passages: list[Passage],
               vector: np.ndarray) -> Iterator[str | Answer]:
        """The answer sentence by sentence (as an LLM answer streams), then the `Answer`."""
        answer = self.answer(vector, passages, question)
        for i, piece in enumerate(_PIECE_END.split(answer.answer)):
            yield ("" if i == 0 else " ") + piece
        yield answer

    def timeline(self, question: str, ask: TimelineAsk, passages: list[Passage],
                 vector: np.ndarray, copies: Mapping[str, Sequence[ArticleRecord]]
                 ) -> Iterator[str | Answer]:
        """The timeline built from the passages' sentences and days, line by line, then the
        `Answer` (`assistant.answer.timeline.TimelineBuilder`)."""
        if self._timelines is None:
            self._timelines = TimelineBuilder(self.embeddings, threshold=self.threshold)
        yield from stream_text(self._timelines.build(ask, passages, vector, copies))

    def _sentences(self, passage: Passage) -> list[Sentence]:
        # A chunk's sentences never change (its id names its content), so split it once.
        spans = self._splits.get(passage.chunk_id)
        if spans is None:
            spans = [(x.text, x.start, x.end) for x in split_sentences(passage)]
            self._splits.put_many({passage.chunk_id: spans})
        return [Sentence(passage, text, start, end) for text, start, end in spans]

    def _vectors(self, sentences: list[Sentence]) -> np.ndarray:
        keys = [(s.passage.chunk_id, s.start) for s in sentences]
        found = self._cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.embeddings.embed_sentences([sentences[i].text for i in missing])
            new = {keys[i]: vector for i, vector in zip(missing, fresh, strict=True)}
            found.update(new)
            self._cache.put_many(new)
        return np.stack([found[k] for k in keys])

    def score(self, query_vector: np.ndarray, passages: list[Passage],
              question: str = "") -> tuple[list[Sentence], np.ndarray, np.ndarray]:
        """Candidate sentences, their relevance scores and their vectors."""
        candidates = [s for p in passages[: self.max_passages] for s in self._sentences(p)]
        if not candidates:
            return [], np.zeros(0), np.zeros((0, 1))
        query = np.asarray(query_vector, dtype=np.float32)
        passage_score = np.array([s.passage.score for s in candidates], dtype=np.float32)
        wanted = terms(question)
        overlap = np.array(
            [len(wanted & terms(s.text)) / len(wanted) if wanted else 0.0 for s in candidates],
            dtype=np.float32,
        )
        # Which candidates are worth a model call: ranked by the sentence vectors stored with
        # the chunks (pooled from their token states at ingest) when every candidate has one,
        # else by passage score and shared words.
        packed = {p.chunk_id: sentences.unpack(p.sentence_vectors)
                  for p in passages[: self.max_passages]}
        pooled = [packed[s.passage.chunk_id].get(s.start) for s in candidates]
        if all(v is not None for v in pooled):
            rough = np.stack(pooled) @ query
            prior, limit = 0.7 * rough + 0.15 * passage_score + 0.15 * overlap, PRESELECTED
        else:
            prior, limit = passage_score + overlap, MAX_EMBEDDED
        if len(candidates) > limit:
            keep = sorted(int(i) for i in np.argsort(-prior, kind="stable")[:limit])
            candidates = [candidates[i] for i in keep]
            passage_score, overlap = passage_score[keep], overlap[keep]
        vectors = self._vectors(candidates)
        similarity = vectors @ query
        # Mostly the sentence's own meaning; the passage's score pulls toward the context
        # retrieval trusted, and shared words toward sentences naming what was asked about.
        return candidates, 0.7 * similarity + 0.15 * passage_score + 0.15 * overlap, vectors

    def digest(self, passages: list[Passage]) -> Answer:
        """ "What happened today?": the opening sentence of each article (the passages are
        the newest articles' openings, newest first), each cited."""
        parts, citations = [], []
        for passage in passages:
            found = self._sentences(passage)
            if not found or len(parts) == self.max_sentences:
                continue
            s = found[0]
            n = len(parts) + 1
            parts.append(f"{quote(s.text)} [{n}]")
            citations.append(Citation.of(n, passage, s.text, s.start, s.end, passage.score))
        if not parts:
            return Answer(answer=REFUSAL, citations=[], refused=True, mode="extractive")
        return Answer(answer=" ".join(parts), citations=citations, refused=False,
                      mode="extractive")

    def answer(self, query_vector: np.ndarray, passages: list[Passage], question: str = "",
               threshold: float | None = None) -> Answer:
        """An answer whose every sentence is quoted from a passage and ends with its `[n]`.

        A follow-up's query carries the conversation's context on a second line; retrieval
        used it, and the sentences are chosen for the question alone."""
        question, context = split_query(question)
        if news_question(question):
            return self.digest(passages)
        if context:
            # Mostly the question, partly the context: the question alone ("How long did it
            # last?") is too vague to clear the refusal threshold.
            focus = self.embeddings.embed([question])[0]
            query_vector = FOCUS * focus + (1 - FOCUS) * np.asarray(query_vector)
        candidates, scores, vectors = self.score(query_vector, passages, question)
        threshold = self.threshold if threshold is None else threshold
        if not candidates or float(scores.max()) < threshold:
            return Answer(answer=REFUSAL, citations=[], refused=True, mode="extractive")
        # Every retrieved passage: a planted or outdated report may rank below the first few.
        versions = find_conflict(question, passages, self._sentences)
        if versions:
            return conflict_answer(versions)
        chosen: list[int] = []
        best = float(scores.max())
        for i in np.argsort(-scores):
            if len(chosen) == self.max_sentences or scores[i] < best - RELATIVE_MARGIN:
                break
            if chosen and float((vectors[chosen] @ vectors[i]).max()) > REDUNDANCY:
                continue
            chosen.append(int(i))
        lead = self._lead_name(question, passages, candidates, scores, chosen)
        parts, citations = [], []
        for n, i in enumerate(chosen, start=1):
            s = candidates[i]
            parts.append(f"{quote(s.text)} [{n}]")
            citations.append(Citation.of(n, s.passage, s.text, s.start, s.end,
                                         float(scores[i])))
        if lead:
            name, cited = lead
            parts.insert(0, f"{name} " + "".join(f"[{chosen.index(i) + 1}]" for i in cited)
                         + ".")
        return Answer(answer=" ".join(parts), citations=citations, refused=False,
                      mode="extractive")

    def _lead_name(self, question: str, passages: list[Passage], candidates: list[Sentence],
                   scores: np.ndarray, chosen: list[int]) -> tuple[str, list[int]] | None:
        """The name to lead with and the chosen sentences that name it, only when it is right
        with high confidence (`assistant.answer.entities`): a name of the kind the question
        asks for, either right after the role it asks about in a quoted sentence, or the one
        the passages of at least two articles agree on. One sentence naming it is added to
        `chosen` when none does; only the embedded candidates count (always embedding a
        sentence naming a common name put wrong names first in 6 more of 19 sample answers).
        """
        kind = question_type(question)
        if kind is None:
            return None
        if kind == "name" and (noun := which_noun(question)) and self._names_a_person(noun):
            kind = "person"
        if len(question.split()) <= ANCHORED_MAX_WORDS:
            for i in chosen:
                if name := anchored_name(question, candidates[i].text, kind):
                    return name, [i]
        found = best_name(question, [p.text for p in passages],
                          exclude=[p.source for p in passages])
        if found is None or not fits_type(found[0], kind, found[1]):
            return None
        name, forms = found
        pattern = re.compile("|".join(r"(?<!\w)" + re.escape(f) + r"(?!\w)" for f in forms))
        if len(name.split()) == 1 and len(
                {p.article_id for p in passages if pattern.search(p.text)}) < 2:
            # One word that the chunks of a single article share is its subject ("Japan",
            # "US-Japan"), not an answer; a fuller name ("Caesars Sportsbook") may be.
            return None
        naming = [i for i in chosen if pattern.search(candidates[i].text)]
        if not naming:
            extra = [int(i) for i in np.argsort(-scores) if pattern.search(candidates[i].text)]
            if not extra:
                return None
            chosen.append(extra[0])
            naming = [extra[0]]
        return name, naming


    def _names_a_person(self, noun: str) -> bool:
        """Whether the model reads "a <noun>" as a kind of person (`PERSON_SIMILARITY`)."""
        known = self._person_nouns.get(noun)
        if known is None:
            if self._kind_vectors is None:  # embedded once per answerer
                self._kind_vectors = self.embeddings.embed(
                    ["a person", "an organization", "a place"])
            person, organisation, place = (
                self._kind_vectors @ self.embeddings.embed([f"a {noun}"])[0]).tolist()
            known = person >= PERSON_SIMILARITY and \
                person - max(organisation, place) >= PERSON_MARGIN
            self._person_nouns.put_many({noun: known})
        return known


def conflict_answer(versions: list[Version]) -> Answer:
    """The answer when the sources disagree: each version with its outlet, date and markers,
    newest first, then the sentences that state them, quoted and cited."""
    citations: list[Citation] = []
    shown: list[ConflictVersion] = []
    quoted: list[str] = []
    for version in versions:
        markers = []
        for s in version.sentences:
            n = len(citations) + 1
            citations.append(Citation.of(n, s.passage, s.text, s.start, s.end))
            quoted.append(f"{quote(s.text)} [{n}]")
            markers.append(n)
        shown.append(version.shown(markers))
    text = disagreement(shown) + " " + " ".join(quoted)
    return Answer(answer=text, citations=citations, refused=False, mode="extractive",
                  conflict=shown)


def disagreement(shown: list[ConflictVersion]) -> str:
    """The sentence that says the sources disagree: each version with its outlet, date and
    markers, in the order given (newest first)."""
    sides = "; ".join(
        f"{quote(v.value)} according to {_reporter(v)} "
        + "".join(f"[{n}]" for n in v.citations) for v in shown)
    return f"The sources disagree: {sides}."


def _reporter(version: ConflictVersion) -> str:
    who = version.source or "an unnamed outlet"
    return f"{who} ({version.published_at[:10]})" if version.published_at else who

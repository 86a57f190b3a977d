"""Offline (extractive) answering over the seed article and the samples: facts, citations,
refusals, follow-ups."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import KATO_STATEMENT, ROOT, SEED

from assistant.answer import extractive
from assistant.answer.extractive import ExtractiveAnswerer
from assistant.errors import QuestionError
from assistant.index import sentences
from assistant.index.embeddings import NewsEmbeddings
from assistant.service import Assistant
from assistant.types import Answer, Message
from ingest.metadata import to_article
from ingest.readers import read_file

QUESTIONS = [json.loads(line) for line in
             (Path(__file__).parent / "data" / "sample_questions.jsonl").read_text().splitlines()]
SEED_QUESTIONS = [(q["question"], q["answers"][0]) for q in QUESTIONS
                  if q["answerable"] and q["file"].endswith("us-japan-trade-talks.txt")]
SAMPLE_QUESTIONS = [(q["question"], q["answers"][0], q["file"]) for q in QUESTIONS
                    if q["answerable"] and q["file"].startswith("samples/")]
UNRELATED = [q["question"] for q in QUESTIONS if not q["answerable"]]


def _check_shape(answer: Answer) -> None:
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    assert markers == {c.n for c in answer.citations}
    for sentence in re.split(r"(?<=\])\s+", answer.answer.strip()):
        assert re.search(r"\[\d+\]$", sentence), f"uncited sentence: {sentence!r}"


@pytest.mark.parametrize(("question", "fact"), SEED_QUESTIONS)
def test_cited_answer_holds_the_fact(news_assistant: Assistant, seed_body: str,
                                     question: str, fact: str) -> None:
    answer = news_assistant.ask(question)
    assert not answer.refused and answer.mode == "extractive"
    assert fact in answer.answer
    _check_shape(answer)
    cited = [c for c in answer.citations if fact in c.passage]
    assert cited, "the fact must come from a cited passage"
    for citation in cited:
        assert seed_body[citation.start:citation.end] == citation.passage
        assert citation.url == "https://www.toutiao.com/article/7500067747854959156"


def _articles_holding(file: str, fact: str) -> set[str]:
    """Ids of the articles of a sample file (or the seed article) whose body holds `fact`."""
    path = SEED if file.endswith(SEED.name) else ROOT / file  # the seed: wherever it is
    articles = [to_article(a) for a in read_file(path, 2_000_000).articles]
    found = {a.article_id for a in articles if fact in a.body}
    assert found, f"{fact!r} is in no article of {file}"
    return found


def test_sample_questions_are_answered_from_their_article(news_assistant: Assistant) -> None:
    """Over the bundled samples most paraphrased questions get the fact, cited to its file."""
    hits = 0
    for question, fact, file in SAMPLE_QUESTIONS:
        answer = news_assistant.ask(question)
        _check_shape(answer)
        own = _articles_holding(file, fact)
        cited = [c for c in answer.citations if fact in c.passage and c.article_id in own]
        hits += bool(cited)
        assert not answer.refused, question
    # Measured 13 of 14; a floor a little under it catches regressions.
    assert hits >= 12, f"only {hits} of {len(SAMPLE_QUESTIONS)} sample facts found"


def test_calibration_questions_are_none_of_the_tests_questions() -> None:
    """The refusal threshold is calibrated on `evals/data/calibration_questions.jsonl`
    (`python -m evals.calibrate`) and checked here on other questions: no test asks a
    calibration question, and each calibration answer is in the article it names."""
    calibration = [json.loads(line) for line in
                   (ROOT / "evals" / "data" / "calibration_questions.jsonl").open()]
    tests = " ".join(path.read_text(encoding="utf-8").lower()
                     for path in (ROOT / "tests").rglob("*")
                     if path.suffix in (".py", ".jsonl") and path.is_file())
    assert sum(q["answerable"] for q in calibration) >= 30
    assert sum(not q["answerable"] for q in calibration) >= 10
    for q in calibration:
        assert q["question"].lower().rstrip("?") not in tests, q["question"]
        if q["answerable"]:
            assert _articles_holding(q["file"], q["answers"][0])


@pytest.mark.parametrize("question", UNRELATED)
def test_unrelated_question_is_refused_without_citations(news_assistant: Assistant,
                                                         question: str) -> None:
    answer = news_assistant.ask(question)
    assert answer.refused
    assert answer.citations == []
    # A question about a time ("last week") with no article then says so.
    assert answer.answer.startswith(("The ingested news does not say",
                                     "No ingested article was published"))


def test_every_citation_quotes_its_article_exactly(news_assistant: Assistant) -> None:
    answer = news_assistant.ask("What did Japan's finance minister say about Treasury bonds?")
    assert answer.citations
    for c in answer.citations:
        rows = news_assistant.store.chunks_of(c.article_id)
        text, meta = next((t, m) for _, t, m in rows if m["start"] <= c.start < m["end"])
        assert text[c.start - meta["start"]:c.end - meta["start"]] == c.passage
        assert c.title and c.score > 0


def test_follow_up_question_carries_the_subject(news_assistant: Assistant,
                                                 seed_body: str) -> None:
    history = [
        Message(role="user", content="Who is Japan's finance minister in the trade dispute?"),
        Message(role="assistant", content="Japanese Finance Minister Katsunobu Kato [1]"),
    ]
    alone = news_assistant.ask("What did he say?")
    followed = news_assistant.ask("What did he say?", history)
    assert not followed.refused
    # What he said is one sentence of the seed article; the answer quotes it and cites the
    # passage holding it, at its place in the article.
    start = seed_body.index(KATO_STATEMENT)
    end = start + len(KATO_STATEMENT)
    cited = [c for c in followed.citations if c.start <= start and end <= c.end
             and seed_body[c.start:c.end] == c.passage]
    assert cited, [c.passage for c in followed.citations]
    assert KATO_STATEMENT in followed.answer
    assert KATO_STATEMENT not in alone.answer  # without the history, "he" is no one


def test_stream_deltas_join_to_the_final_answer(news_assistant: Assistant) -> None:
    events = list(news_assistant.stream(SEED_QUESTIONS[1][0]))
    assert isinstance(events[-1], Answer)
    assert all(isinstance(e, str) for e in events[:-1])
    assert "".join(events[:-1]) == events[-1].answer


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001])
def test_empty_or_overlong_question_is_rejected(news_assistant: Assistant, question: str) -> None:
    with pytest.raises(QuestionError):
        news_assistant.ask(question)


def test_answers_are_not_redundant(news_assistant: Assistant) -> None:
    answer = news_assistant.ask("What happened in the US-Japan trade negotiations?")
    passages = [c.passage for c in answer.citations]
    assert len(passages) == len(set(passages))


def test_question_about_an_outlet_the_store_lacks_says_so(news_assistant: Assistant) -> None:
    answer = news_assistant.ask("What did the Reuters report say about the Elmstead budget?")
    assert answer.refused and answer.citations == []
    assert "no articles from Reuters" in answer.answer
    # The same question without the outlet is answered.
    assert not news_assistant.ask("What did the reports say about the Elmstead budget?").refused


def test_ingest_stores_a_vector_for_every_sentence_the_answerer_splits(
        news_assistant: Assistant) -> None:
    got = news_assistant.store.chunks.get(include=["documents", "metadatas"])
    assert got["ids"]
    for text, meta in zip(got["documents"], got["metadatas"], strict=True):
        stored = sentences.unpack(str(meta.get("sentence_vectors", "")))
        split = sentences.split(text, str(meta.get("lang", "")), int(meta["start"]))
        assert set(stored) == {start for _, start, _ in split}


class _CountingEmbeddings:
    """The real model, counting the passage sentences it is asked to embed (not the short
    phrases that say what kind of name a question asks for: "a contractor", "a person")."""

    def __init__(self, inner: NewsEmbeddings, passages: list) -> None:
        self.inner = inner
        self.passage_text = "\n".join(p.text for p in passages)
        self.texts = 0

    def _count(self, texts: list[str]) -> None:
        self.texts += sum(len(t) > 20 and t in self.passage_text for t in texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        self._count(texts)
        return self.inner.embed(texts)

    def embed_sentences(self, texts: list[str]) -> np.ndarray:
        self._count(texts)
        return self.inner.embed_sentences(texts)


@pytest.mark.parametrize(("question", "fact", "_file"), SAMPLE_QUESTIONS)
def test_stored_sentence_vectors_choose_which_sentences_are_embedded(
        news_assistant: Assistant, question: str, fact: str, _file: str) -> None:
    passages, vector = news_assistant.retriever.retrieve(question)
    older = [replace(p, sentence_vectors="") for p in passages]  # a store built before them
    answers = {}
    for label, given, limit in (("stored", passages, extractive.PRESELECTED),
                                ("older", older, extractive.MAX_EMBEDDED)):
        counting = _CountingEmbeddings(news_assistant.embeddings, given)
        answerer = ExtractiveAnswerer(counting,
                                      threshold=news_assistant.settings.refusal_threshold)
        answers[label] = answerer.answer(vector, given, question)
        assert counting.texts == limit, label
    assert not answers["stored"].refused

"""Timeline answers in LLM mode: the model writes the lines from passages given in date order,
each line's day is checked against its passages and its sentence goes through the citation
check. A stand-in server (tests/openai_stub.py) plays a model that errs in known ways; the
packaged SmolLM2-135M, served by newsdesk, checks the path and the answer's shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_stub import OpenAIStub, find_passages, last_user_text, system_text
from timeline_story import QUESTION, article, ingest_story

from assistant.answer.citecheck import answer_sentences
from assistant.answer.local_model import LocalModel
from assistant.answer.timeline import HEADER, TIMELINE_PROMPT
from assistant.dates import find_dates
from assistant.index.embeddings import NewsEmbeddings
from assistant.service import Assistant
from assistant.settings import Settings, smollm2_gguf
from assistant.types import Answer


@pytest.fixture(scope="module")
def story_dir(tmp_path_factory: pytest.TempPathFactory, embeddings: NewsEmbeddings) -> Path:
    data_dir = tmp_path_factory.mktemp("timeline-llm") / "store"
    ingest_story(data_dir, embeddings)
    return data_dir


def collect(assistant: Assistant, question: str) -> tuple[str, Answer]:
    deltas, final = [], None
    for event in assistant.stream(question):
        if isinstance(event, Answer):
            final = event
        else:
            assert final is None, "no text after the Answer"
            deltas.append(event)
    assert final is not None
    return "".join(deltas), final


def check_shape(answer: Answer) -> None:
    """Lines `DAY: sentence [n]`, in day order; citations exactly the markers; each entry's
    day given by its passages; `unsupported` sentences inside the entries marked so."""
    lines = answer.answer.split("\n")
    assert lines[0] == HEADER and len(lines) == len(answer.timeline) + 1
    by_n = {c.n: c for c in answer.citations}
    assert set(by_n) == {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    days = [(e.day is None, e.day or "") for e in answer.timeline]
    assert days == sorted(days)
    for line, entry in zip(lines[1:], answer.timeline, strict=True):
        assert line.startswith(f"{entry.day or 'Undated'}: {entry.text}")
        assert all(n in by_n for n in entry.citations)
        if entry.day is not None:
            cited = [by_n[n] for n in entry.citations]
            year = entry.day[:4]
            given = {c.published_at[:10] for c in cited} | {
                d.iso or f"{year}-{d.month:02d}-{d.day:02d}" for c in cited
                for d in find_dates(c.passage)}
            assert entry.day in given, f"{entry.day} is no day its passages give"
    spans = answer_sentences(answer.answer)
    flagged_lines = {answer.answer.count("\n", 0, spans[i][0]) for i in answer.unsupported}
    assert flagged_lines == {i + 1 for i, e in enumerate(answer.timeline) if e.unsupported}


# -- a stand-in model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture(scope="module")
def assistant(story_dir: Path, stub: OpenAIStub) -> Assistant:
    settings = Settings(_env_file=None, data_dir=story_dir, openai_base_url=stub.base_url,
                        openai_api_key="test-key", llm_model="stub-chat", chroma_host=None,
                        llm_gguf=None)
    return Assistant(settings)


def _number(passages: list[dict[str, Any]], words: str) -> int:
    return next(i for i, p in enumerate(passages, start=1) if words in p["text"])


def erring_model(messages: list[dict[str, Any]]) -> str:
    """A timeline with an intro line, lines out of order, a day no passage gives, a claim no
    passage supports, and a marker on the wrong passage."""
    passages = find_passages(last_user_text(messages)) or []
    vote = _number(passages, "voted 7-2")
    lawsuit = _number(passages, "filed a lawsuit")
    ruling = _number(passages, "superior court judge denied")
    return "\n".join([
        "Here is the timeline:",
        f"2026-01-22: Three environmental groups filed a lawsuit to stop construction of the "
        f"Kestrel Bay desalination plant [{lawsuit}].",
        f"2026-01-12: The Marlow County council voted 7-2 to approve the Kestrel Bay "
        f"desalination plant [{vote}].",
        f"2026-02-09: A superior court judge denied the environmental groups' request for an "
        f"injunction, allowing work on the plant to continue [{ruling}].",
        f"2026-01-22: The county fined each of the groups 2 million dollars for delaying the "
        f"harbour tunnel [{lawsuit}].",
        f"Undated: Once it opens, the Kestrel Bay desalination plant will supply drinking "
        f"water to about 40,000 homes in Marlow County [{vote}].",
    ])


def test_the_model_gets_the_passages_in_date_order(assistant: Assistant,
                                                   stub: OpenAIStub) -> None:
    stub.reply = erring_model
    collect(assistant, QUESTION)
    request = stub.chat_requests()[-1]
    assert system_text(request["messages"]) == TIMELINE_PROMPT
    passages = find_passages(last_user_text(request["messages"])) or []
    days = [p["published_at"][:10] for p in passages]
    assert days and days == sorted(d for d in days if d) + [""] * days.count("")


def test_the_model_s_lines_are_ordered_dated_and_checked(assistant: Assistant,
                                                         stub: OpenAIStub) -> None:
    stub.reply = erring_model
    streamed, answer = collect(assistant, QUESTION)
    assert answer.mode == "llm" and not answer.refused
    check_shape(answer)
    by_n = {c.n: c.article_id for c in answer.citations}
    texts = [e.text for e in answer.timeline]
    assert texts[0].startswith("The Marlow County council voted")
    assert answer.timeline[0].day == "2026-01-12"
    # The day no passage gives is the ruling article's own day.
    ruling = next(e for e in answer.timeline if "injunction" in e.text)
    assert ruling.day == "2026-02-03" and not ruling.unsupported
    # The invented claim stays, marked unverified.
    fine = next(e for e in answer.timeline if "fined" in e.text)
    assert fine.unsupported
    assert all(not e.unsupported for e in answer.timeline if e is not fine)
    # The marker on the wrong passage points at the explainer now: an undated entry, last.
    homes = answer.timeline[-1]
    assert "40,000 homes" in homes.text and homes.day is None
    assert {by_n[n] for n in homes.citations} == {article("kb-explainer")}
    lawsuit = next(e for e in answer.timeline if "lawsuit" in e.text)
    assert lawsuit.outlets == ["The Coast Ledger", "Pacific Wire Service"]
    # Streamed as the model wrote it; the final answer is authoritative.
    assert streamed.startswith(HEADER + "\n2026-01-22: Three environmental groups")


def test_a_refusing_model_gives_a_refusal(assistant: Assistant, stub: OpenAIStub) -> None:
    stub.reply = lambda messages: "The ingested news does not say."
    streamed, answer = collect(assistant, QUESTION)
    assert answer.refused and not answer.citations and not answer.timeline
    assert streamed == answer.answer


# -- the local model -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_local_model_writes_a_checked_timeline(story_dir: Path) -> None:
    """SmolLM2-135M writes no days and no markers, so what it writes is checked like any
    model's lines: each entry's sentence through the citation check, its day only from the
    passages it ends up citing. Asked twice: a fresh server's first reply differs from later
    ones (its prompt cache), and the 135M model often refuses the first."""
    settings = Settings(_env_file=None, data_dir=story_dir, chroma_host=None,
                        openai_base_url=None, openai_api_key=None, llm_max_tokens=160)
    with LocalModel(smollm2_gguf(), threads=settings.llm_threads) as model:
        local = Assistant(settings.model_copy(update={"llm_gguf": model.gguf}),
                          local_model=model)
        assert local.mode == "llm" and local.answerer.checker is not None
        answers = [collect(local, QUESTION)[1] for _ in range(2)]
    for answer in answers:
        assert answer.mode == "llm"
        if answer.refused:
            assert not answer.citations and not answer.timeline
        else:
            check_shape(answer)

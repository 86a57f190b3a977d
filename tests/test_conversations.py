"""Follow-ups the way the chat sends them: the full history, the assistant's own replies
included (issue 13, item 3). The conversations are data (`tests/data/conversations.jsonl`,
played by `tests/conversations.py`) over the samples, the seed article and MultiHop articles
read from the shared data at run time.

Measured 2026-12-02: 58 of 60 final answers hold the expected fact, through the chat and over
HTTP (29 of 60 before: the previous answer's first 200 characters, its lead included, went into
the query). The floor sits a few points under.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import SAMPLES, SEED, SHARED_DATA, live_server, make_settings
from conversations import conversations, multihop_ids, play, write_multihop_articles

from assistant.answer.followup import answer_person, split_query, standalone_query
from assistant.index.embeddings import NewsEmbeddings
from assistant.service import Assistant
from assistant.types import Message
from ingest.pipeline import Ingestor
from ui import make_respond
from wiring import create_app

FLOOR = 0.90


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory, embeddings: NewsEmbeddings) -> Assistant:
    """The offline assistant over the samples, the seed and 17 MultiHop articles."""
    root = tmp_path_factory.mktemp("conversations")
    multihop = write_multihop_articles(SHARED_DATA / "multihop" / "articles.jsonl",
                                       root / "multihop.jsonl", multihop_ids())
    settings = make_settings(root / "store")
    report = Ingestor(settings, embeddings=embeddings).ingest([SEED, SAMPLES, multihop])
    assert report.ok, report.errors
    return Assistant(settings)


def _rate(ask: Callable[[str, list[dict[str, Any]]], str]) -> tuple[float, list[str]]:
    results = [(c["id"], play(c, ask)[0]) for c in conversations()]
    failed = [cid for cid, ok in results if not ok]
    return 1 - len(failed) / len(results), failed


def test_the_set_holds_forty_conversations_of_two_to_four_turns() -> None:
    found = conversations()
    assert len(found) >= 40
    assert all(2 <= len(c["turns"]) <= 4 and c["expect"] for c in found)
    abouts = {c["about"] for c in found}
    assert "seed" in abouts and any(a.startswith("samples/") for a in abouts)
    assert any(a.startswith("mhr-") for a in abouts)


@pytest.mark.slow
def test_follow_ups_hold_the_fact_through_the_chat(assistant: Assistant) -> None:
    """Each reply goes back as the chat keeps it (escaped Markdown with its sources list) and
    is read back by `ui.history_from_chat`, as Gradio does."""
    respond = make_respond(assistant)
    rate, failed = _rate(lambda question, history: list(respond(question, history))[-1])
    assert rate >= FLOOR, f"{rate:.2f}: {failed}"


@pytest.mark.slow
@pytest.mark.server
def test_follow_ups_hold_the_fact_over_http(assistant: Assistant) -> None:
    with live_server(create_app(assistant)) as url, httpx.Client(base_url=url,
                                                                 timeout=60) as client:
        def ask(question: str, history: list[dict[str, Any]]) -> str:
            response = client.post("/answer", json={"question": question, "history": history})
            response.raise_for_status()
            return response.json()["answer"]

        rate, failed = _rate(ask)
    assert rate >= FLOOR, f"{rate:.2f}: {failed}"


def test_the_previous_answer_s_text_and_lead_stay_out_of_the_query() -> None:
    history = [Message(role="user", content="Who is Japan's finance minister in this story?"),
               Message(role="assistant", content=(
                   "US-Japan [2][3]. Japanese Finance Minister Katsunobu Kato openly stated in a "
                   "live broadcast to the world: \"It is only natural.\" [1] Prime Minister "
                   "Shigeru Ishiba's cabinet might choose to take a bold gamble. [2]"))]
    query = standalone_query("What did he say on the live broadcast?", history)
    question, context = split_query(query)
    assert question == "What did Katsunobu Kato say on the live broadcast?"
    assert context == "Who is Japan's finance minister in this story?"
    assert "US-Japan" not in query and "gamble" not in query


def test_he_is_resolved_only_to_a_person_in_the_role_asked_about() -> None:
    reply = ("Therefore, it is not excluded that Prime Minister Shigeru Ishiba's cabinet might "
             "choose to take a bold gamble. [1]")
    assert answer_person("Who is Japan's finance minister?", reply) is None
    assert answer_person("Which Japanese prime minister is mentioned?", reply) == "Shigeru Ishiba"
    assert answer_person("Who is the council president?",
                         "Council president Ruth Abernathy defended it. [1]") == "Ruth Abernathy"


def test_a_third_turn_keeps_the_first_turn_s_subject() -> None:
    history = [Message(role="user", content="What was stolen from the Vellmar Museum?"),
               Message(role="assistant", content="A gold astrolabe was stolen. [1]"),
               Message(role="user", content="When was it made?"),
               Message(role="assistant", content="It was made in 1561. [1]")]
    _, context = split_query(standalone_query("How many of its kind survive?", history))
    assert "Vellmar Museum" in context


def test_a_question_that_stands_alone_is_left_as_it_is() -> None:
    history = [Message(role="user", content="Who is Japan's finance minister?"),
               Message(role="assistant", content="Katsunobu Kato [1]. ...")]
    question = "How many residents attended the Elmstead budget hearing?"
    assert standalone_query(question, history) == question

"""Timeline answers offline: a story of own articles from three outlets (one a wire copy stored
once, one undated) asked "how has it developed?" through the real assistant, store and model;
the question forms that ask for one; the day rule; the HTTP and OpenAI-compatible shapes."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from fastapi.testclient import TestClient
from timeline_story import QUESTION, article, ingest_story

from assistant.answer.timeline import HEADER, spread, stated_day
from assistant.answer.timeline_ask import timeline_question
from assistant.index.embeddings import NewsEmbeddings
from assistant.present import format_timeline
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import Answer, Passage
from wiring import create_app


@pytest.fixture(scope="module")
def story_settings(tmp_path_factory: pytest.TempPathFactory,
                   embeddings: NewsEmbeddings) -> Settings:
    return ingest_story(tmp_path_factory.mktemp("timeline") / "store", embeddings)


@pytest.fixture(scope="module")
def assistant(story_settings: Settings) -> Assistant:
    return Assistant(story_settings)


@pytest.fixture(scope="module")
def answer(assistant: Assistant) -> Answer:
    return assistant.ask(QUESTION)


def cited_articles(answer: Answer) -> list[set[str]]:
    by_n = {c.n: c.article_id for c in answer.citations}
    return [{by_n[n] for n in entry.citations} for entry in answer.timeline]


# -- the timeline ----------------------------------------------------------------------------


def test_each_development_is_one_entry_oldest_first(answer: Answer) -> None:
    assert not answer.refused and answer.mode == "extractive"
    assert [e.day for e in answer.timeline] == ["2026-01-12", "2026-01-22", "2026-02-03", None]
    assert cited_articles(answer) == [
        {article("kb-vote")}, {article("kb-lawsuit")},
        {article("kb-ruling"), article("kb-ruling-ledger")}, {article("kb-explainer")}]


def test_a_day_the_sentence_states_is_the_day_of_the_development(answer: Answer) -> None:
    vote = answer.timeline[0]
    cited = next(c for c in answer.citations if c.n == vote.citations[0])
    assert cited.published_at.startswith("2026-01-14")
    assert vote.day == "2026-01-12" and "On January 12" in vote.text


def test_the_same_development_from_several_outlets_is_one_entry_naming_each(
        answer: Answer) -> None:
    lawsuit, ruling = answer.timeline[1], answer.timeline[2]
    # The wire copy, stored once as a near-duplicate, and an article in other words.
    assert lawsuit.outlets == ["The Coast Ledger", "Pacific Wire Service"]
    wire = next(c for c in answer.citations if c.n == lawsuit.citations[0]).also_reported_by
    assert [r.source for r in wire] == ["Pacific Wire Service"]
    assert ruling.outlets == ["The Harbor Times", "The Coast Ledger"]
    assert len(ruling.citations) == 2
    lines = answer.answer.split("\n")
    assert lines[2].endswith("(also reported by Pacific Wire Service)")
    assert lines[3].endswith("(also reported by The Coast Ledger)")


def test_an_undated_article_gives_an_undated_entry_after_the_dated_ones(answer: Answer) -> None:
    last = answer.timeline[-1]
    assert last.day is None and last.outlets == ["The Coast Ledger"]
    assert answer.answer.split("\n")[-1].startswith("Undated: Once it opens")


def test_every_entry_quotes_its_cited_sentences_where_they_are(assistant: Assistant,
                                                                answer: Answer) -> None:
    by_n = {c.n: c for c in answer.citations}
    assert sorted(by_n) == sorted(n for e in answer.timeline for n in e.citations)
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)} == set(by_n)
    for entry in answer.timeline:
        assert by_n[entry.citations[0]].passage == entry.text
        for n in entry.citations:
            found = assistant.article(by_n[n].article_id)
            assert found is not None
            assert found.body[by_n[n].start:by_n[n].end] == by_n[n].passage
    unrelated = {article("other-coach"), article("other-bakery")}
    assert not unrelated & {c.article_id for c in answer.citations}


def test_the_text_answer_lists_the_entries_one_a_line(answer: Answer) -> None:
    lines = answer.answer.split("\n")
    assert lines[0] == HEADER and len(lines) == len(answer.timeline) + 1
    for line, entry in zip(lines[1:], answer.timeline, strict=True):
        markers = "".join(f"[{n}]" for n in entry.citations)
        assert line.startswith(f"{entry.day or 'Undated'}: {entry.text} {markers}")


def test_the_stream_gives_the_lines_then_the_answer(assistant: Assistant,
                                                    answer: Answer) -> None:
    events = list(assistant.stream(QUESTION))
    final = events[-1]
    assert isinstance(final, Answer) and all(isinstance(e, str) for e in events[:-1])
    assert "".join(events[:-1]) == final.answer == answer.answer
    assert final.timeline == answer.timeline


def test_since_a_day_leaves_out_what_came_before(assistant: Assistant) -> None:
    later = assistant.ask("What has happened with the desalination plant since January 20?")
    days = [e.day for e in later.timeline]
    assert days and None not in days and min(days) >= "2026-01-20"
    assert {article("kb-lawsuit")} in cited_articles(later)


def test_other_questions_are_answered_as_before(assistant: Assistant) -> None:
    plain = assistant.ask("Who was named head coach of Marlow Rovers?")
    assert not plain.timeline and "Dana Whitfield" in plain.answer
    assert not plain.answer.startswith(HEADER)


@pytest.mark.parametrize("question", ["What has happened today?", "What's happened this week?"])
def test_news_of_some_days_is_still_the_digest(assistant: Assistant, question: str) -> None:
    digest = assistant.ask(question, filters={"today": "2026-02-04"})
    assert not digest.timeline and not digest.answer.startswith(HEADER)
    assert digest.citations


def test_the_chat_shows_a_dated_list(answer: Answer) -> None:
    shown = format_timeline(answer).split("\n")
    assert shown[0] == "**Timeline**, oldest first:"
    assert shown[2].startswith("- **2026\\-01\\-12** On January 12") and shown[2].endswith(
        "\\[1\\]")
    assert shown[3].endswith("— also reported by Pacific Wire Service")
    assert shown[-1].startswith("- **Undated** Once it opens")
    assert format_timeline(answer.model_copy(update={"timeline": []})) == ""


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(assistant: Assistant) -> TestClient:
    return TestClient(create_app(assistant))


def test_answer_endpoints_return_the_timeline(client: TestClient, answer: Answer) -> None:
    body = client.post("/answer", json={"question": QUESTION}).json()
    assert body["timeline"] == [e.model_dump() for e in answer.timeline]
    assert set(body["timeline"][0]) == {"day", "text", "citations", "outlets", "unsupported"}
    streamed = client.post("/answer/stream", json={"question": QUESTION}).text
    final = [json.loads(block.split("data: ", 1)[1]) for block in streamed.strip().split("\n\n")
             if block.startswith("event: answer")]
    assert final[0]["timeline"] == body["timeline"]


def test_openai_endpoint_content_shows_the_timeline(client: TestClient, answer: Answer) -> None:
    reply = client.post("/v1/chat/completions", json={
        "model": "newsdesk", "messages": [{"role": "user", "content": QUESTION}]})
    assert reply.status_code == 200, reply.text
    content = reply.json()["choices"][0]["message"]["content"]
    assert content.startswith(answer.answer + "\n\nSources:")


# -- the parts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("question", [
    "How has the row over the stadium lease developed?",
    "How did the hostage crisis in the embassy unfold?",
    "how is the bird flu outbreak evolving",
    "Timeline of the chemical spill",
    "Can I get a chronology for the ferry disaster?",
    "What has happened to the new tram line since May?",
    "What's been going on with the teachers' pay dispute?",
    "What happened with the water tariffs over the last two months?",
    "the heatwave over the past few days",
    "Any new developments on the pension reform?",
    "Explain how the price of cocoa changed this year.",
])
def test_questions_about_how_a_story_developed_ask_for_a_timeline(question: str) -> None:
    assert timeline_question(question) is not None


@pytest.mark.parametrize(("question", "search"), [
    ("Catch me up on the harbour tunnel row.", "the harbour tunnel row"),
    ("Bring me up to speed on the nurses' walkout", "the nurses' walkout"),
    ("Can you recap the bridge collapse for me?", "the bridge collapse"),
    ("How did it come to this for the ferry company?", "the ferry company"),
    ("How did the chain go from record sales to administration?", "the chain"),
    ("What has changed since the dam burst?", "since the dam burst"),
    ("What's the backstory of the fishing quota dispute?", "the fishing quota dispute"),
    ("What led up to the mayor's resignation?", "the mayor's resignation"),
    ("Give me a blow-by-blow account of the recount.", "the recount"),
    ("The cable car accident as it happened", "The cable car accident as it happened"),
    ("History of the dispute over the harbour lease", "the dispute over the harbour lease"),
    ("I missed the whole stadium saga, what happened?", "the whole stadium saga"),
    ("Where are we now with the tram plan, and how did we get here?", "the tram plan"),
    ("Take me through the mine rescue from day one", "the mine rescue from day one"),
    ("How did the border protests escalate?", "the border protests"),
])
def test_requests_to_be_caught_up_on_a_story_ask_for_a_timeline(question: str,
                                                                 search: str) -> None:
    found = timeline_question(question)
    assert found is not None and found.search == search


@pytest.mark.parametrize("question", [
    "How did the engineers develop the new vaccine?",
    "How much has the price of cocoa changed?",
    "How do analysts expect the market to evolve?",
    "What happened at the press conference?",
    "Which clubs signed new players over the past week?",
    "What is the timeline for the tram line's opening?",
    "Since when has the museum been closed?",
    "Did the company change its logo?",
    "Who won the final?",
    # Close to the wider forms: a schedule, one number, a method, a procedure, a record.
    "What's the construction timeline for the tram line?",
    "How many votes has the candidate received so far?",
    "How much have rents risen over the past year?",
    "Walk me through how to file a claim against the airline.",
    "What is the step-by-step process for renewing a permit?",
    "Give me the day-by-day forecast for the weekend.",
    "What caused the refinery explosion?",
    "Does the new chief executive have a history of fraud?",
    "What's the latest price of cocoa?",
    "Who heads the history department at the university?",
    "How did the vineyard's harvest go this year?",
    "Where does the party stand on taxes?",
    "What documents do I need in order to apply?",
])
def test_other_questions_ask_for_no_timeline(question: str) -> None:
    assert timeline_question(question) is None


def test_the_topic_leaves_the_asking_words_out() -> None:
    found = timeline_question("How has the story of the Brenner Pass closure developed?")
    assert found is not None and found.topic == "the Brenner Pass closure"
    since = timeline_question("What has happened with the metro strike since March 3?")
    assert since is not None and since.search == "the metro strike"
    assert since.since_date is not None and (since.since_date.month, since.since_date.day) == (
        3, 3)


@pytest.mark.parametrize(("sentence", "published", "day"), [
    ("On March 3 the council voted to close the pier.", "2026-03-05", "2026-03-03"),
    ("The pier closed on 28 February 2026 after a storm.", "2026-03-05", "2026-02-28"),
    ("On December 30 the pier closed.", "2026-01-04", "2025-12-30"),
    # Background from long before, a plan for later, or two dates: the report's own day.
    ("The firm, founded on May 1, 2001, closed the pier.", "2026-03-05", None),
    ("The pier will close on March 20.", "2026-03-05", None),
    ("Talks held on March 1 and March 2 failed.", "2026-03-05", None),
    # An undated article: only a date with its year gives a day.
    ("The pier closed on March 3, 2026.", "", "2026-03-03"),
    ("The pier closed on March 3.", "", None),
])
def test_a_stated_date_is_the_day_only_when_it_can_be_the_event_s(
        sentence: str, published: str, day: str | None) -> None:
    found = stated_day(sentence, dt.date.fromisoformat(published) if published else None)
    assert (found.isoformat() if found else None) == day


def _passage(article_id: str, index: int) -> Passage:
    return Passage(chunk_id=f"{article_id}:v:{index:05d}", article_id=article_id, title="",
                   url="", source="", published_at="", lang="en", text="x", index=index,
                   start=0, end=1, score=1.0)


def test_timeline_retrieval_spreads_over_articles() -> None:
    ranked = [_passage("a", 0), _passage("a", 1), _passage("a", 2), _passage("b", 0),
              _passage("c", 0), _passage("a", 3), _passage("b", 1)]
    chosen = spread(ranked, limit=5, per_article=2)
    assert [(p.article_id, p.index) for p in chosen] == [
        ("a", 0), ("a", 1), ("b", 0), ("c", 0), ("b", 1)]

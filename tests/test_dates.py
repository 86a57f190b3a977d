"""Dates in questions: "today", "this week", "latest", "in March", "before the vote"."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from assistant.answer.when import TimeAsk, asks_for_news, narrow, read_time, without_time
from assistant.server.http import build_app
from assistant.service import Assistant
from assistant.types import Filters

REF = dt.date(2026, 3, 5)  # a Thursday


@pytest.mark.parametrize(("question", "since", "until"), [
    ("What happened today?", REF, REF),
    ("Today, what did the council say?", REF, REF),
    ("Any news yesterday?", dt.date(2026, 3, 4), dt.date(2026, 3, 4)),
    ("What did the council decide this week?", dt.date(2026, 2, 27), REF),
    ("What happened last week?", dt.date(2026, 2, 20), dt.date(2026, 2, 26)),
    ("What happened in the past 3 days?", dt.date(2026, 3, 3), REF),
    ("What changed this month?", dt.date(2026, 3, 1), REF),
    ("What changed last month?", dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
    # A month later in the year than the reference day is last year's.
    ("What did Ishiba say in March?", dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
    ("What happened in November?", dt.date(2025, 11, 1), dt.date(2025, 11, 30)),
    ("What happened in May 2025?", dt.date(2025, 5, 1), dt.date(2025, 5, 31)),
    ("What was built since June?", dt.date(2025, 6, 1), None),
    ("What was said before 2026?", None, dt.date(2025, 12, 31)),
])
def test_time_words_become_a_range_of_published_days(
        question: str, since: dt.date | None, until: dt.date | None) -> None:
    ask = read_time(question, REF)
    assert ask is not None and (ask.since, ask.until) == (since, until)


def test_relative_days_are_strict_and_calendar_ones_give_way() -> None:
    assert read_time("What happened today?", REF).strict
    assert not read_time("Who founded the company in 1998?", REF).strict


@pytest.mark.parametrize("question", [
    "What did Business Today report on the merger?",  # an outlet's name, not a day
    "Which company, recently fined by regulators, is now facing a lawsuit?",
    "What may the council do next?",
    "Did TechCrunch report on it after the report by The Verge?",
])
def test_words_that_only_describe_the_subject_are_not_read_as_time(question: str) -> None:
    assert read_time(question, REF) is None


def test_latest_asks_for_the_newest_reports_without_a_range() -> None:
    ask = read_time("What is the latest on the rail strike?", REF)
    assert ask == TimeAsk(phrase="latest", recent=True)
    assert without_time("What is the latest on the rail strike?", ask).endswith("rail strike?")


def test_an_event_is_read_with_its_side() -> None:
    ask = read_time("How did the shares move before the vote?", REF)
    assert ask is not None and (ask.event, ask.side) == ("vote", "before")
    assert without_time("How did the shares move before the vote?", ask) == \
        "How did the shares move ?"


def test_questions_about_the_news_as_a_whole() -> None:
    assert asks_for_news("What happened?") and asks_for_news("any news") \
        and asks_for_news("What's new?")
    assert not asks_for_news("What happened to the ferry?")


def test_the_client_range_and_the_question_range_both_hold() -> None:
    ask = read_time("What happened this week?", REF)
    both = narrow(Filters(since=dt.date(2026, 3, 2), sources=["Valley Courier"]), ask)
    assert (both.since, both.until, both.sources) == (dt.date(2026, 3, 2), REF,
                                                      ["Valley Courier"])


# -- over the samples and the seed (newest article: 2026-04-26) ---------------------------


def _days(answer) -> set[str]:
    return {c.published_at[:10] for c in answer.citations}


def test_today_is_the_newest_articles_day_and_the_answer_says_when(
        news_assistant: Assistant) -> None:
    answer = news_assistant.ask("What happened today?")
    assert not answer.refused and _days(answer) == {"2026-04-26"}
    assert "Kelby Rovers" in answer.answer
    assert answer.answer.endswith("As of 2026-04-26, per Northern Wire Service [1].")


def test_today_is_the_clients_day_when_it_sends_one(news_assistant: Assistant) -> None:
    answer = news_assistant.ask("What happened today?", filters={"today": "2026-03-11"})
    assert not answer.refused and _days(answer) == {"2026-03-11"}
    assert "walk" in answer.answer
    empty = news_assistant.ask("What happened today?", filters={"today": "2026-12-02"})
    assert empty.refused and not empty.citations
    assert "published on 2026-12-02" in empty.answer and "2026-04-26" in empty.answer


def test_in_march_cites_only_march_articles(news_assistant: Assistant) -> None:
    answer = news_assistant.ask("What was approved in March?")
    assert not answer.refused and _days(answer)
    assert all(day.startswith("2026-03") for day in _days(answer))
    assert "As of 2026-03" in answer.answer


def test_before_and_after_an_event_the_news_reports(news_assistant: Assistant) -> None:
    # The council's budget vote is reported on 2026-03-03.
    before = news_assistant.ask("What happened before the vote?")
    assert not before.refused and all(day < "2026-03-03" for day in _days(before))
    after = news_assistant.ask("How was the budget received after the vote?")
    assert not after.refused and all(day >= "2026-03-03" for day in _days(after))


def test_latest_puts_the_newest_report_first_and_says_when(news_assistant: Assistant) -> None:
    answer = news_assistant.ask("What is the latest on the rail strike?")
    assert not answer.refused and "strike" in answer.answer
    assert "As of 2026-01-19, per The Midland Ledger" in answer.answer


def test_questions_without_time_are_answered_as_before(news_assistant: Assistant) -> None:
    answer = news_assistant.ask("Who won the regional cup?")
    assert "As of" not in answer.answer and "Kelby Rovers" in answer.answer


def test_the_http_api_and_the_openai_endpoint_take_the_clients_today(
        news_assistant: Assistant) -> None:
    client = TestClient(build_app(news_assistant))
    body = client.post("/answer", json={"question": "What happened today?",
                                        "today": "2026-03-11"}).json()
    assert {c["published_at"][:10] for c in body["citations"]} == {"2026-03-11"}
    bad = client.post("/answer", json={"question": "What happened today?", "today": "soon"})
    assert bad.status_code == 422 and "today" in bad.text
    reply = client.post("/v1/chat/completions", json={
        "model": "newsdesk", "today": "2026-03-11",
        "messages": [{"role": "user", "content": "What happened today?"}]}).json()
    assert "As of 2026-03-11" in reply["choices"][0]["message"]["content"]

"""The OpenAI-compatible endpoint, driven by the real `openai` client against a live server:
answers with markers and a plain-text Sources list, citations in an extra field, streaming, the
key, and errors in OpenAI's shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from conftest import live_server
from pydantic import SecretStr

from assistant.server.openai_api import ChatTurn, conversation
from assistant.service import Assistant
from assistant.settings import Settings
from wiring import create_app

pytestmark = [pytest.mark.slow, pytest.mark.server]

KEY = "s3cret-openai-key"
QUESTION = "What wage increase are the striking Carrow signal staff seeking?"


@pytest.fixture(scope="module")
def base_url(news_store: Settings) -> Iterator[str]:
    settings = news_store.model_copy(update={"api_key": SecretStr(KEY),
                                             "rate_limit_enabled": False})
    with live_server(create_app(Assistant(settings))) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)


def test_models_lists_newsdesk(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["newsdesk"]
    assert client.models.retrieve("newsdesk").owned_by == "newsdesk"


def test_completion_carries_markers_sources_and_citations(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="newsdesk", messages=[{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": QUESTION}])
    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert "7.5 percent" in content and "[1]" in content
    answer, sources = content.split("\n\nSources:\n")
    citations = completion.model_extra["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    # One line per article, its markers first: the three passages are of one article.
    assert {c["article_id"] for c in citations} == {citations[0]["article_id"]}
    markers = "".join(f"[{c['n']}]" for c in citations)
    assert sources.splitlines() == [
        f"- {markers} Rail workers in Carrow County begin 72-hour strike over pay — The Midland "
        "Ledger · 2026-01-19 — https://midland-ledger.test/2026/01/carrow-rail-strike"]
    assert {"title", "url", "source", "published_at", "passage", "start", "end"} <= set(
        citations[0])
    assert completion.model_extra["refused"] is False
    assert completion.model_extra["conflict"] == []  # the sources agree here
    assert completion.usage.total_tokens > 0


def test_content_is_plain_text_without_markdown_escapes(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="newsdesk", messages=messages).choices[0]
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="newsdesk", messages=messages, stream=True) if c.choices)
    for content in (whole.message.content, streamed):
        # The answer says "72-hour"; the Sources line the title's "72-hour" and the date.
        assert "72-hour strike that has halted" in content
        assert "· 2026-01-19 —" in content
        assert "\\" not in content and "**" not in content and "](" not in content


def test_stream_joins_to_the_completion_and_ends_with_citations(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="newsdesk", messages=messages)
    chunks = list(client.chat.completions.create(
        model="newsdesk", messages=messages, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices]) > 3  # really streamed
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert finish[0].model_extra["citations"] == whole.model_extra["citations"]
    assert chunks[-1].usage is not None and chunks[-1].model_extra["citations"]


def test_earlier_turns_are_the_history(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model="newsdesk", messages=[{"role": "user", "content": QUESTION}])
    follow = client.chat.completions.create(model="newsdesk", messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": [{"type": "text", "text": "And what did the company "
                                                             "offer?"}]}])
    # Alone, "the company" names nothing; with the history it is the Carrow railway.
    assert all("carrow" in c["url"] for c in follow.model_extra["citations"])
    assert follow.model_extra["citations"]


def test_an_earlier_reply_is_history_without_its_sources_and_marks() -> None:
    reply = ("Fares rose 5-10% [1]. A stadium opens [1]. ⚠ unverified\n\nCitation check:\n"
             "- sentence 2: ⚠ unverified, no retrieved passage supports it\n\nSources:\n"
             "- [1] Fares — Coast Daily · 2026-01-19 — https://coast.test/fares")
    question, history = conversation([ChatTurn(role="user", content="Fares?"),
                                      ChatTurn(role="assistant", content=reply),
                                      ChatTurn(role="user", content="Why?")])
    assert question == "Why?"
    assert [m.content for m in history] == ["Fares?",
                                            "Fares rose 5-10% [1]. A stadium opens [1]."]


def test_filters_travel_in_extra_body(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="newsdesk", messages=[{"role": "user", "content": QUESTION}],
        extra_body={"sources": ["Valley Courier"], "since": "2026-01-01"})
    assert {c["source"] for c in completion.model_extra["citations"]} <= {"Valley Courier"}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="newsdesk", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"since": "2026-03-01", "until": "2026-01-01"})
    assert "after until" in raised.value.message


def test_unanswerable_question_is_refused_without_sources(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="newsdesk", messages=[
        {"role": "user", "content": "What is the boiling point of liquid nitrogen on Mars?"}])
    assert completion.model_extra["refused"] is True
    assert "Sources" not in completion.choices[0].message.content
    assert completion.model_extra["citations"] == []


def test_wrong_key_is_an_authentication_error(base_url: str) -> None:
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        bad.chat.completions.create(model="newsdesk",
                                    messages=[{"role": "user", "content": QUESTION}])
    assert raised.value.body["type"] == "authentication_error"
    assert KEY not in raised.value.response.text
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()  # charged and slowed like any failed key: no free guessing here


def test_errors_have_openai_shape(client: openai.OpenAI, base_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o",
                                       messages=[{"role": "user", "content": QUESTION}])
    assert raised.value.code == "model_not_found" and raised.value.param == "model"
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="newsdesk", messages=[
            {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Hi"}])
    assert "last message" in raised.value.message
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="newsdesk", messages=[])
    assert raised.value.param == "messages"
    with pytest.raises(openai.BadRequestError):  # an empty question
        client.chat.completions.create(model="newsdesk",
                                       messages=[{"role": "user", "content": "  "}])
    raw = httpx.post(f"{base_url}/v1/chat/completions", content=b"{not json",
                     headers={"Authorization": f"Bearer {KEY}",
                              "content-type": "application/json"})
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param",
                                                                    "code"}


def test_completions_are_charged_to_the_rate_limit(news_store: Settings) -> None:
    settings = news_store.model_copy(update={"rate_limit": "2/minute",
                                             "rate_limit_enabled": True})
    with live_server(create_app(Assistant(settings))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": QUESTION}]
        for _ in range(2):
            client.chat.completions.create(model="newsdesk", messages=messages)
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model="newsdesk", messages=messages, stream=True)
        assert raised.value.body["type"] == "rate_limit_error"
        assert int(raised.value.response.headers["Retry-After"]) >= 1

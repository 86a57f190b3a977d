"""Filters (published from / to, outlets) applied inside retrieval, through the Python API and
the HTTP API; `GET /sources` lists the store's outlets."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from assistant.service import Assistant
from assistant.types import Filters
from wiring import create_app

CARROW = "What wage increase are the striking Carrow signal staff seeking?"
LEDGER = "The Midland Ledger"


@pytest.fixture(scope="module")
def client(news_assistant: Assistant) -> TestClient:
    return TestClient(create_app(news_assistant))


def test_date_filter_applies_inside_retrieval_so_k_passages_come_back(
        news_assistant: Assistant) -> None:
    window = Filters(since="2026-02-01", until="2026-03-31")
    unfiltered, _ = news_assistant.retriever.retrieve(CARROW, 5)
    inside = [p for p in unfiltered if "2026-02-01" <= p.published_at[:10] <= "2026-03-31"]
    assert len(inside) < 5  # a filter on the results would leave fewer than k
    filtered, _ = news_assistant.retriever.retrieve(CARROW, 5, window)
    assert len(filtered) == 5
    assert all("2026-02-01" <= p.published_at[:10] <= "2026-03-31" for p in filtered)


def test_outlet_filter_keeps_only_those_outlets(news_assistant: Assistant) -> None:
    outlets = ["Valley Courier", "Vellmar Tribune"]
    passages, _ = news_assistant.retriever.retrieve(CARROW, 8, Filters(sources=outlets))
    assert passages and {p.source for p in passages} <= set(outlets)


def test_filter_matching_nothing_says_so(news_assistant: Assistant) -> None:
    answer = news_assistant.ask(CARROW, filters={"until": "2000-01-01"})
    assert answer.refused and not answer.citations
    assert answer.answer == ("No ingested article matches the filters (published on or "
                             "before 2000-01-01).")


def test_answer_accepts_filters(client: TestClient) -> None:
    everything = client.post("/answer", json={"question": CARROW}).json()
    assert {c["source"] for c in everything["citations"]} == {LEDGER}
    elsewhere = client.post("/answer", json={"question": CARROW,
                                             "sources": ["Valley Courier"]}).json()
    assert {c["source"] for c in elsewhere["citations"]} <= {"Valley Courier"}
    dated = client.post("/answer", json={"question": CARROW, "since": "2026-01-19",
                                         "until": "2026-01-19"}).json()
    assert dated["citations"] and {c["published_at"][:10] for c in dated["citations"]} == {
        "2026-01-19"}


def test_stream_accepts_filters(client: TestClient) -> None:
    with client.stream("POST", "/answer/stream",
                       json={"question": CARROW, "since": "2027-01-01"}) as response:
        body = response.read().decode()
    final = json.loads(body.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert final["refused"] and "published on or after 2027-01-01" in final["answer"]


@pytest.mark.parametrize("body", [
    {"since": "2026-03-01", "until": "2026-01-01"},
    {"since": "yesterday"},
    {"sources": "The Midland Ledger"},
])
def test_bad_filters_get_422(client: TestClient, body: dict) -> None:
    assert client.post("/answer", json={"question": CARROW, **body}).status_code == 422


def test_sources_lists_outlets_with_counts_and_dates(client: TestClient,
                                                     news_assistant: Assistant) -> None:
    response = client.get("/sources")
    assert response.status_code == 200
    found = {s["source"]: s for s in response.json()["sources"]}
    assert response.json()["total"] == len(found)
    assert found[LEDGER] == {"source": LEDGER, "articles": 1, "first_published": "2026-01-19",
                             "last_published": "2026-01-19", "undated": 0}
    assert found["Northern Wire Service"]["articles"] == 2
    assert found["Northern Wire Service"]["first_published"] <= found[
        "Northern Wire Service"]["last_published"]
    counts = [s["articles"] for s in response.json()["sources"]]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) <= news_assistant.store.count_articles()

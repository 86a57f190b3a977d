"""Filters (published from / to, outlets) applied inside retrieval, through the Python API and
the HTTP API; `GET /sources` lists the store's outlets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES
from fastapi.testclient import TestClient

from assistant.index import store as store_module
from assistant.index.store import NewsStore, chroma_where
from assistant.service import Assistant
from assistant.types import Filters
from ingest.pipeline import Ingestor
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


# -- the filter planner: a filtered dense query without a `where` when the filters let
# through a large share of the chunks (`NewsStore._filtered_nearest`) ----------------------

PLANNED = {
    "outlets": Filters(sources=["Valley Courier", "Vellmar Tribune"]),
    "dates": Filters(since="2026-02-01", until="2026-03-31"),
    "both": Filters(sources=["Northern Wire Service", "Valley Courier"], since="2026-03-01"),
}


class _QuerySpy:
    """Wraps a real Chroma collection's `query`, noting each call's `where`."""

    def __init__(self, store: NewsStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.wheres: list[object] = []
        real = store.chunks.query

        def query(*args: Any, **kwargs: Any) -> Any:
            self.wheres.append(kwargs.get("where"))
            return real(*args, **kwargs)

        monkeypatch.setattr(store.chunks, "query", query)


def _where_only(store: NewsStore, vector: Any, k: int, filters: Filters,
                monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """What `nearest` returned before the planner: Chroma's `where` query."""
    with monkeypatch.context() as patch:
        patch.setattr(store, "post_filter_depth", 0)
        patch.setattr(store, "exact_filter_max", 0)
        return store.nearest(vector, k, filters=filters)


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_the_post_filtered_query_equals_the_where_query(
        name: str, news_assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    store, filters = news_assistant.store, PLANNED[name]
    vector = news_assistant.embeddings.embed([CARROW])[0]
    expected = _where_only(store, vector, 4, filters, monkeypatch)
    assert len(expected) == 4
    spy = _QuerySpy(store, monkeypatch)
    monkeypatch.setattr(store, "post_filter_depth", 10**6)
    monkeypatch.setattr(store, "exact_filter_max", 0)
    before = Counter(store.plans)
    found = store.nearest(vector, 4, filters=filters)
    assert store.plans - before == Counter(post_filter=1)
    assert spy.wheres == [None]  # one unfiltered query, filtered on the catalog
    assert list(found) == list(expected)
    assert found == pytest.approx(expected)


def test_too_few_matches_in_the_unfiltered_query_fall_back_to_the_where_query(
        news_assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The carrow strike's nearest chunks are The Midland Ledger's: an unfiltered query as
    deep as k holds none of Northern Wire Service's."""
    store, filters = news_assistant.store, Filters(sources=["Northern Wire Service"])
    vector = news_assistant.embeddings.embed([CARROW])[0]
    expected = _where_only(store, vector, 3, filters, monkeypatch)
    spy = _QuerySpy(store, monkeypatch)
    # As deep as k: n = ceil(k * oversample / share), the share of 4 chunks in 30.
    monkeypatch.setattr(store, "post_filter_oversample", 4 / 30)
    monkeypatch.setattr(store_module, "POST_FILTER_DEPTH", (1, 10**6))
    monkeypatch.setattr(store, "post_filter_depth", 3)  # the cap: no deeper try
    monkeypatch.setattr(store, "exact_filter_max", 0)
    monkeypatch.setattr(store, "short_filtered", False)
    before = Counter(store.plans)
    found = store.nearest(vector, 3, filters=filters)
    assert store.plans - before == Counter(fallback=1)
    assert spy.wheres == [None, chroma_where(filters)]
    assert list(found) == list(expected) and len(found) == 3
    # With room under the cap, one deeper unfiltered query (as deep as the cap) finds them.
    monkeypatch.setattr(store, "post_filter_depth", 10**6)
    spy.wheres.clear()
    before = Counter(store.plans)
    found = store.nearest(vector, 3, filters=filters)
    assert store.plans - before == Counter(deeper=1, post_filter=1)
    assert spy.wheres == [None, None]
    assert list(found) == list(expected)


def test_past_the_cap_the_matching_chunks_found_are_the_where_querys_best(
        news_assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer than k matching chunks among the cap's nearest: those, with no `where` (which
    costs seconds at 1,000,000 chunks), and they are the `where` query's first ones."""
    store, filters = news_assistant.store, Filters(sources=["Northern Wire Service"])
    vector = news_assistant.embeddings.embed([CARROW])[0]
    expected = list(_where_only(store, vector, 4, filters, monkeypatch))
    everything = list(store.nearest(vector, 100))
    ranks = [everything.index(cid) for cid in expected]
    # A cap that holds some of the matches and not the next one.
    held = next(i + 1 for i in range(len(ranks) - 1) if ranks[i + 1] > ranks[i] + 1)
    spy = _QuerySpy(store, monkeypatch)
    monkeypatch.setattr(store, "post_filter_oversample", 4 / 30)
    monkeypatch.setattr(store_module, "POST_FILTER_DEPTH", (1, 10**6))
    monkeypatch.setattr(store, "post_filter_depth", ranks[held - 1] + 1)
    monkeypatch.setattr(store, "exact_filter_max", 0)
    before = Counter(store.plans)
    found = store.nearest(vector, 4, filters=filters)
    assert store.plans - before in (Counter(short=1), Counter(deeper=1, short=1))
    assert all(where is None for where in spy.wheres)
    assert list(found) == expected[:held]


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_few_matching_chunks_are_compared_exactly_without_a_query(
        name: str, news_assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their vectors read by id from the catalog's list: the `where` query's answer (exact on a
    store this small), with no Chroma query at all."""
    store, filters = news_assistant.store, PLANNED[name]
    vector = news_assistant.embeddings.embed([CARROW])[0]
    expected = _where_only(store, vector, 4, filters, monkeypatch)
    spy = _QuerySpy(store, monkeypatch)
    monkeypatch.setattr(store, "post_filter_depth", 0)  # the alternative is a `where`
    # On a store of 30 chunks the `where` costs less than reading the matching vectors.
    before = Counter(store.plans)
    store.nearest(vector, 4, filters=filters)
    assert store.plans - before == Counter(where=1)
    # Its cost grows with the collection (seconds at 1,000,000 chunks): as it would be there.
    monkeypatch.setattr(store_module, "WHERE_COST_OUTLETS", 10**5)
    monkeypatch.setattr(store_module, "WHERE_COST_DAYS", 10**5)
    spy.wheres.clear()
    before = Counter(store.plans)
    found = store.nearest(vector, 4, filters=filters)
    assert store.plans - before == Counter(exact=1)
    assert spy.wheres == []
    assert list(found) == list(expected)
    assert found == pytest.approx(expected, abs=1e-5)
    # Too many matching chunks for it: the `where` query.
    monkeypatch.setattr(store, "exact_filter_max", store.keywords().filtered_chunks(filters) - 1)
    store.nearest(vector, 4, filters=filters)
    assert store.plans - before == Counter(exact=1, where=1)


@pytest.mark.parametrize("filters", [Filters(until="2000-01-01"),
                                     Filters(sources=["No Such Outlet"]),
                                     Filters(sources=["Valley Courier"], since="2026-03-01")])
def test_a_filter_matching_nothing_asks_chroma_nothing(
        filters: Filters, news_assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    store = news_assistant.store
    spy = _QuerySpy(store, monkeypatch)
    vector = news_assistant.embeddings.embed([CARROW])[0]
    assert store.nearest(vector, 8, filters=filters) == {}
    assert spy.wheres == []


def test_a_write_just_committed_is_found_by_a_filtered_query(ingestor: Ingestor,
                                                              tmp_path: Path) -> None:
    """The planner reads the keyword catalog, which follows the store's commit log: it must
    catch up first, or a new outlet (or day) would look empty."""
    assert ingestor.ingest([SAMPLES]).ok
    store = ingestor.store
    vector = store.embeddings.embed(["Which lighthouse did the keepers move back into?"])[0]
    fresh = Filters(sources=["Skerrow Herald"])
    new_day = Filters(since="2026-05-02", until="2026-05-02")
    assert store.nearest(vector, 5, filters=fresh) == {}  # the catalog is open and current
    assert store.nearest(vector, 5, filters=new_day) == {}
    story = tmp_path / "story.json"
    story.write_text(json.dumps({
        "title": "Lighthouse keepers return to Skerrow", "source": "Skerrow Herald",
        "url": "https://skerrow.test/keepers", "published_at": "2026-05-02",
        "body": "Two keepers moved back into the Skerrow lighthouse on Saturday. " * 40}))
    report = ingestor.ingest([story])
    assert report.counts["added"] == 1
    article_id = report.articles[0][1]
    for filters in (fresh, new_day, Filters(sources=["Skerrow Herald", "Valley Courier"],
                                            since="2026-05-01")):
        found = store.nearest(vector, 5, filters=filters)
        assert found and all(cid.startswith(f"{article_id}:") for cid in found), filters

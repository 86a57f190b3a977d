"""Store faults as people meet them: /health says degraded and why (HTTP 503), the chat says
the service is unavailable in plain words, never a library error."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from conftest import SAMPLES, make_settings
from fastapi.testclient import TestClient

from assistant.service import Assistant
from ingest.pipeline import Ingestor
from ui import make_respond, status_line
from wiring import create_app


@pytest.fixture
def assistant(tmp_path: Path, embeddings) -> Assistant:
    settings = make_settings(tmp_path / "store")
    Ingestor(settings, embeddings=embeddings).ingest([SAMPLES])
    return Assistant(settings)


def _stall(assistant: Assistant) -> None:
    """Every store call now outlives its bound, as on a stalled disk."""
    assistant.store.settings = assistant.store.settings.model_copy(
        update={"store_timeout_s": 1e-9})


def test_health_is_degraded_with_a_reason_when_the_store_directory_is_deleted(
        assistant: Assistant) -> None:
    client = TestClient(create_app(assistant))
    assert client.get("/health").json()["status"] == "ok"
    shutil.rmtree(assistant.settings.data_dir)
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["cause"] == "missing"
    assert str(assistant.settings.data_dir) in body["reason"] and "restart" in body["reason"]
    assert "read-only" not in body["reason"]


def test_health_is_degraded_when_the_store_stalls(assistant: Assistant) -> None:
    _stall(assistant)
    response = TestClient(create_app(assistant)).get("/health")
    assert response.status_code == 503
    assert response.json()["cause"] == "timeout"
    assert "did not answer within" in response.json()["reason"]


def test_answers_on_a_stalled_store_are_503_not_a_hang(assistant: Assistant) -> None:
    _stall(assistant)
    response = TestClient(create_app(assistant)).post(
        "/answer", json={"question": "What did the council approve?"})
    assert response.status_code == 503 and "did not answer within" in response.json()["detail"]


def test_the_chat_says_the_service_is_unavailable_in_plain_words(assistant: Assistant) -> None:
    _stall(assistant)
    replies = list(make_respond(assistant)("What did the council approve?", []))
    assert replies == ["Sorry, the service is unavailable right now: the news store is not "
                       "responding. Please try again in a few minutes."]
    assert status_line(assistant) == "**The service is degraded**: the news store is not " \
                                     "responding."


def _works(client) -> bool:
    try:
        client.get_collection("news_chunks").count()
        return True
    except Exception:  # a stopped core fails every call
        return False


def test_a_replaced_core_is_stopped_once_no_call_can_be_on_it(tmp_path: Path,
                                                              embeddings) -> None:
    """Each embedded core holds the collection's vector index (2.1 GB at 1M chunks): a
    store fault that replaces the client must not leave the old core running."""
    from assistant.index.store import NewsStore

    store = NewsStore(make_settings(tmp_path / "store", store_timeout_s=0.5), embeddings)
    replaced = store.client
    store._mark_broken()
    assert store.count_chunks() == 0  # on a new client
    assert store.client is not replaced and _works(replaced)  # calls may still be on it
    deadline = time.monotonic() + 10
    while _works(replaced) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _works(replaced), "the replaced core was never stopped"
    assert _works(store.client)


def test_a_core_another_open_store_uses_is_never_stopped(tmp_path: Path, embeddings) -> None:
    from assistant.index.store import NewsStore

    settings = make_settings(tmp_path / "store", store_timeout_s=0.5)
    first = NewsStore(settings, embeddings)
    second = NewsStore(settings, embeddings, client=None)
    shared = first.client
    first._mark_broken()
    first.count_chunks()
    time.sleep(2)  # past the retirement delay
    assert _works(second.client) and _works(shared)


def test_a_slow_call_on_a_store_that_still_answers_keeps_its_client(tmp_path: Path,
                                                                     embeddings) -> None:
    """One slow call (at 1M chunks a `where` over tens of thousands of chunks takes seconds)
    must not reopen the store: a new core loads the whole vector index again while the slow
    call still holds the old one."""
    from assistant.errors import StoreTimeoutError
    from assistant.index.store import NewsStore, _chroma_errors

    store = NewsStore(make_settings(tmp_path / "store", store_timeout_s=1.0), embeddings)
    client = store.client

    @_chroma_errors
    def slow_count(store: NewsStore) -> int:
        time.sleep(3.0)  # the call itself is slow; the core is not stuck
        return store.chunks.count()

    with pytest.raises(StoreTimeoutError, match="did not answer within"):
        slow_count(store)
    assert not store._broken
    assert store.count_chunks() == 0 and store.client is client
    time.sleep(2.5)  # the slow call ends on its own, on the same core
    assert _works(client)


def test_a_store_that_does_not_answer_the_check_is_reopened(assistant: Assistant) -> None:
    """A regression guard: here the check runs out because of the bound, as a check on a
    stalled core would."""
    client = assistant.store.client
    from assistant.errors import StoreTimeoutError

    _stall(assistant)  # the check after the timeout runs out too
    with pytest.raises(StoreTimeoutError, match="did not answer within"):
        assistant.store.count_chunks()
    assert assistant.store._broken
    assistant.store.settings = assistant.store.settings.model_copy(
        update={"store_timeout_s": 20.0})
    assert assistant.store.count_chunks() > 0 and assistant.store.client is not client


def test_a_write_past_its_bound_replaces_the_client(tmp_path: Path, embeddings) -> None:
    """A write that ran out of disk can leave the embedded core's next write hanging: a
    write past its (longer) bound always gets a fresh client, even if the store answers."""
    from assistant.errors import StoreTimeoutError
    from assistant.index.store import NewsStore, _chroma_writes

    store = NewsStore(make_settings(tmp_path / "store", store_timeout_s=0.2), embeddings)
    client = store.client

    @_chroma_writes
    def slow_write(store: NewsStore) -> int:
        time.sleep(3.0)  # past 10 x 0.2 s, while the store answers a check at once
        return store.chunks.count()

    with pytest.raises(StoreTimeoutError):
        slow_write(store)
    assert store._broken
    store.settings = store.settings.model_copy(update={"store_timeout_s": 20.0})
    assert store.count_chunks() == 0 and store.client is not client


def test_a_late_verdict_on_a_replaced_core_spares_its_successor(tmp_path: Path,
                                                                embeddings) -> None:
    """In a stall several reads time out together; once one check has replaced the core,
    the others' verdicts on the old one must not condemn the new client (each reopening
    loads the whole vector index)."""
    from assistant.index.store import NewsStore

    store = NewsStore(make_settings(tmp_path / "store", store_timeout_s=5.0), embeddings)
    old = store.client
    store._mark_broken(old)
    assert store.count_chunks() == 0 and store.client is not old and not store._broken
    store._mark_broken(old)  # a late verdict on the replaced core
    assert not store._broken
    store._after_timeout(old, store.chunks)  # not checked again at all
    assert not store._broken

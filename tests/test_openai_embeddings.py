"""`NEWSDESK_EMBEDDINGS=openai`: embeddings from an OpenAI-compatible server (the loopback stub)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openai_stub import EMBED_DIMENSION, OpenAIStub

from assistant.errors import EmbeddingError, EmbeddingMismatchError
from assistant.index.embeddings import OpenAIEmbeddingModel, get_embeddings
from assistant.index.store import NewsStore
from assistant.service import Assistant
from assistant.settings import Settings
from ingest.pipeline import Ingestor


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def test_ingest_and_answer_with_openai_embeddings(settings_factory: Callable[..., Settings],
                                                  stub: OpenAIStub, seed_path: Path,
                                                  embeddings) -> None:
    settings = settings_factory(embeddings="openai", openai_embedding_model="stub-embed",
                                openai_base_url=stub.base_url, openai_api_key="test-key")
    model = get_embeddings(settings)
    assert isinstance(model, OpenAIEmbeddingModel)
    assert (model.name, model.dimension) == ("openai/stub-embed", EMBED_DIMENSION)
    report = Ingestor(settings).ingest([seed_path])
    assert report.ok and report.chunks_written > 3
    assert any(r.get("model") == "stub-embed" and isinstance(r.get("input"), list)
               for r in stub.requests)

    assistant = Assistant(settings)
    assert assistant.health()["embedding_model"] == "openai/stub-embed"
    passages, _ = assistant.retriever.retrieve("Akira Akazawa ordered to withdraw", 3)
    assert any("Akazawa" in p.text for p in passages)

    # The same store opened with the packaged model says how to re-index.
    with pytest.raises(EmbeddingMismatchError, match="openai/stub-embed"):
        NewsStore(settings.model_copy(update={"embeddings": "local"}), embeddings)


def test_unreachable_embedding_server_is_a_clear_error(
        settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(embeddings="openai", openai_base_url="http://127.0.0.1:9/v1",
                                openai_api_key="secret-key-123")
    with pytest.raises(EmbeddingError) as info:
        OpenAIEmbeddingModel(settings)
    assert "embedding server failed" in str(info.value)
    assert "secret-key-123" not in str(info.value)

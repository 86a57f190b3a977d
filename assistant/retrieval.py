"""Retrieval: a question -> the nearest passages in the store, as a LangChain retriever."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.embeddings import NewsEmbeddings
from assistant.models import Passage
from assistant.store import NewsStore


class NewsRetriever(BaseRetriever):
    """Dense retrieval over the store's chunks (cosine similarity of the packaged embedder)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: NewsStore
    embeddings: NewsEmbeddings
    k: int = 8

    def retrieve(self, query: str, k: int | None = None) -> tuple[list[Passage], np.ndarray]:
        """The top passages for `query`, best first, and the query's vector."""
        vector = self.embeddings.embed([query])[0]
        return self.store.query(vector, k or self.k), vector

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        passages, _ = self.retrieve(query)
        return [Document(page_content=p.text, metadata=asdict(p)) for p in passages]

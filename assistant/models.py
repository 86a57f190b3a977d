"""The typed shapes that flow between steps: stored chunks, retrieved passages, answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class ArticleRecord:
    """What the store keeps about one article (its chunks carry the same fields)."""

    article_id: str
    content_hash: str
    title: str
    url: str = ""
    source: str = ""
    author: str = ""
    published_at: str = ""
    lang: str = ""
    external_id: str = ""
    path: str = ""
    n_chunks: int = 0


@dataclass(frozen=True)
class Chunk:
    """A piece of an article's cleaned body: `body[start:end] == text`."""

    index: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its article's metadata and its similarity to the question."""

    chunk_id: str
    article_id: str
    title: str
    url: str
    source: str
    published_at: str
    lang: str
    text: str
    index: int
    start: int
    end: int
    score: float
    external_id: str = ""
    # The chunk's sentence vectors as stored (`assistant.sentences.pack`), for the answerer.
    sentence_vectors: str = field(default="", repr=False, compare=False)


class Message(BaseModel):
    """One turn of chat history."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class Citation(BaseModel):
    """The passage a `[n]` marker stands for, with its exact place in the article body."""

    n: int
    article_id: str
    title: str
    url: str
    source: str
    published_at: str
    passage: str
    start: int
    end: int
    score: float


class Answer(BaseModel):
    """The one answer shape of the Python API, the HTTP API and the UI."""

    answer: str
    citations: list[Citation]
    refused: bool
    mode: Literal["extractive", "llm"]

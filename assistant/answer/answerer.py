"""What every answerer does, so the service holds no mode branches: turn a follow-up into a
standalone question, then write a cited answer from the retrieved passages, streamed.

`ExtractiveAnswerer` (offline, quotes sentences) and `LLMAnswerer` (any OpenAI-compatible
chat model) implement it. A refusal is an `Answer` with `refused=True` and no citations; the
refusal texts live here, the one place that knows them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from assistant.types import Answer, ArticleRecord, Message, Passage

if TYPE_CHECKING:
    from assistant.answer.timeline_ask import TimelineAsk

EXTRACTIVE_REFUSAL = "The ingested news does not say anything that answers this question."
LLM_REFUSAL = "The ingested news does not say."


def is_refusal(text: str) -> bool:
    """True for one of our refusal texts, or a model's wording of one (it was asked to reply
    with `LLM_REFUSAL` exactly, and sometimes adds to it)."""
    return text.startswith((EXTRACTIVE_REFUSAL, LLM_REFUSAL)) or \
        "does not say" in text.lower()[:200]


class Answerer(Protocol):
    """Writes cited answers from retrieved passages."""

    mode: Literal["extractive", "llm"]
    # True when the whole answer is made here, on this process's cores, before its first
    # piece (the offline answerer): the service makes it in one of its few slots. An LLM's
    # answer comes from the model's server as it is written, and streams as it comes.
    made_whole: bool

    def standalone(self, question: str, history: Sequence[Message]) -> str:
        """The question made understandable without the conversation (for retrieval)."""
        ...

    def stream(self, question: str, passages: list[Passage],
               vector: np.ndarray) -> Iterator[str | Answer]:
        """Text deltas as the answer is written, then the complete `Answer` (whose text the
        deltas join to). `vector` is the question's embedding."""
        ...

    def timeline(self, question: str, ask: TimelineAsk, passages: list[Passage],
                 vector: np.ndarray, copies: Mapping[str, Sequence[ArticleRecord]]
                 ) -> Iterator[str | Answer]:
        """A timeline answer (`assistant.answer.timeline`) to a question that asks how a story
        developed: text deltas, then the `Answer` with its `timeline`. `copies`: per article
        id, its near-duplicates stored once (other outlets)."""
        ...

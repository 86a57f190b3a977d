"""Follow-up questions: carry the conversation's subject into a short or pronoun-led question."""

from __future__ import annotations

import re

from assistant.answer.answerer import is_refusal
from assistant.types import Message

_PRONOUN_LEAD = re.compile(
    r"^(?:and|but|so|also|what about|how about|he|she|it|its|they|them|their|his|her|this|that|"
    r"these|those|there|then)\b",
    re.IGNORECASE,
)
_REFERS_BACK = re.compile(r"\b(?:he|she|it|they|them|his|her|its|their|this|that|these|those)\b",
                          re.IGNORECASE)


def needs_context(question: str) -> bool:
    """True for questions that make little sense alone ("And the second round?", "Why did he?")."""
    words = question.split()
    return len(words) <= 4 or bool(_PRONOUN_LEAD.match(question.strip())) or (
        len(words) <= 10 and bool(_REFERS_BACK.search(question))
    )


def previous_question(history: list[Message]) -> str:
    for message in reversed(history):
        if message.role == "user" and message.content.strip():
            return message.content.strip()
    return ""


def previous_answer(history: list[Message], limit: int = 200) -> str:
    """The start of the last assistant reply, without citation markers or refusals."""
    for message in reversed(history):
        if message.role == "assistant":
            text = re.sub(r"\s*\[\d+\]", "", message.content).strip()
            return "" if is_refusal(text) else text[:limit]
    return ""


def standalone_query(question: str, history: list[Message]) -> str:
    """The retrieval query: a follow-up is prefixed by the previous question and the start of
    its answer, which name the subject that "he" or "it" refers to."""
    previous = previous_question(history)
    if previous and needs_context(question):
        return " ".join(x for x in (previous, previous_answer(history), question) if x)
    return question

"""Follow-up questions: carry the conversation's subject into a short or pronoun-led question."""

from __future__ import annotations

import re

from assistant.models import Message

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


def standalone_query(question: str, history: list[Message]) -> str:
    """The retrieval query: `question`, prefixed by the previous question for a follow-up."""
    previous = previous_question(history)
    if previous and needs_context(question):
        return f"{previous} {question}"
    return question

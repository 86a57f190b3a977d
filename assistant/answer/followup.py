"""Follow-up questions: carry the conversation's subject into a short or pronoun-led question.

A language model's own rewrite of the follow-up is checked here too (`with_condensed`): it is
used only when it reads as a question about names the conversation holds.

Offline there is no model to rewrite "What did he say?", so the subject comes from what the
conversation holds: the user's own earlier questions (resolved in turn, so a third turn
still knows the first one's subject) and the names in the previous answer's quoted sentences
(an extractive answer quotes its passages, so those are the cited passages' names). The
previous answer's own text never goes into the query: its lead may be wrong, and its other
words pull retrieval back to the sentences already shown.
"""

from __future__ import annotations

import re
from collections import Counter

from assistant.answer.answerer import is_refusal
from assistant.answer.entities import names_in, person_name, role_stems
from assistant.text import content_words, stem
from assistant.types import Message

_PRONOUN_LEAD = re.compile(
    r"^(?:and|but|so|also|what about|how about|he|she|it|its|they|them|their|his|her|this|that|"
    r"these|those|there|then)\b",
    re.IGNORECASE,
)
_REFERS_BACK = re.compile(r"\b(?:he|she|it|they|them|his|her|its|their|this|that|these|those|"
                          r"there|then)\b", re.IGNORECASE)
SHORT_WORDS = 5
EXTRA_NAMES = 2
_ASKS_WHO = re.compile(r"^\s*(?:who|whom|which\s+\w+)\b", re.IGNORECASE)
_NAME_RUN = re.compile(r"(?:[A-Z][\w'’.-]*\s+)*[A-Z][\w'’.-]*")
_PERSON_PRONOUN = re.compile(r"\b(?:he|she|him|his|her|hers)\b", re.IGNORECASE)
# A lead the extractive answerer writes before its quotes: "Tomasz Wrona [1][2]."
_LEAD = re.compile(r"^[^.\[\]]{1,80}?(?:\s*\[\d+\])+\.\s+")
_MARKER = re.compile(r"\s*\[\d+\]")
def needs_context(question: str) -> bool:
    """True for questions that make little sense alone ("And the second round?", "Why did he?",
    "How did the venue react?")."""
    words = question.split()
    return len(words) <= SHORT_WORDS or bool(_PRONOUN_LEAD.match(question.strip())) or (
        len(words) <= 10 and bool(_REFERS_BACK.search(question))
    )


def _quoted_text(reply: str) -> str:
    """An answer's quoted sentences, without its lead and markers; empty for a refusal."""
    if not reply.strip() or is_refusal(reply.strip()):
        return ""
    return _MARKER.sub("", _LEAD.sub("", reply.strip(), count=1))


def answer_names(reply: str) -> list[str]:
    """The names in an answer's quoted sentences, most mentioned first (then in order of
    appearance), without its lead and its markers. Empty for a refusal."""
    found = names_in(_quoted_text(reply))
    counts = Counter(found)
    first = {name: i for i, name in reversed(list(enumerate(found)))}
    return sorted(counts, key=lambda n: (-counts[n], first[n]))


def _words(text: str) -> set[str]:
    return {stem(w) for w in content_words(text) if len(w) > 2}


def answer_person(question: str, reply: str) -> str | None:
    """The person the previous answer names as the answer to `question` ("Who is Japan's
    finance minister?"): a person's name in its quotes whose role words and the words just
    before it ("Finance Minister Dorota Pelc", "council president Lise Adjei") hold
    the roles the question asks about (both "finance" and "minister"), or, when the question
    names no role, most of its words. None when no person fits: a wrong "he" is worse than
    none (the answer may have quoted another minister)."""
    text = _quoted_text(reply)
    if alone := person_name(text.strip().rstrip(".")):
        return alone  # the whole reply is the name: "Dorota Pelc [1]."
    asked = _words(question)
    roles = role_stems(question)
    best, best_score = None, 0
    for match in _NAME_RUN.finditer(text):
        for name in names_in(match.group()):
            person = person_name(name)
            if person is None:
                continue
            start = text.find(name, match.start())
            window = _words(text[max(0, start - 40):start + len(name) - len(person)])
            if roles and not roles <= window:
                continue
            score = len(asked & window) if not roles else len(roles) + 1
            if score > best_score:
                best, best_score = person, score
    return best


def _split_turns(history: list[Message]) -> list[tuple[str, str]]:
    """(user question, the reply to it) for each user turn, in order."""
    turns: list[tuple[str, str]] = []
    for message in history:
        if message.role == "user" and message.content.strip():
            turns.append((" ".join(message.content.split()), ""))
        elif message.role == "assistant" and turns and not turns[-1][1]:
            turns[-1] = (turns[-1][0], message.content)
    return turns


def _resolve(question: str, turns: list[tuple[str, str]]) -> str:
    if not turns or not needs_context(question):
        return question
    earlier, (previous, reply) = turns[:-1], turns[-1]
    # The previous question as it was understood (itself resolved against the turns before).
    subject = _resolve(previous, earlier)
    earlier_subject = " ".join(split_query(subject)).strip()
    known = f"{question} {subject}".lower()
    names = [n for n in answer_names(reply) if n.lower() not in known]
    person = answer_person(previous, reply) if _ASKS_WHO.match(previous) else None
    if person and _PERSON_PRONOUN.search(question):
        # "What did he say?" -> "What did Dorota Pelc say?": the answer is then scored
        # against the question itself, not the one already answered.
        question = _PERSON_PRONOUN.sub(lambda m: _person_form(m.group(), person), question,
                                       count=1)
        return f"{question}\n{earlier_subject}"
    extra = [person] if person else names[:EXTRA_NAMES]
    context = " ".join(x for x in (earlier_subject, *extra) if x)
    return f"{question}\n{context}"


def split_query(query: str) -> tuple[str, str]:
    """A standalone query's question (its first line) and the conversation's context (the
    rest, for retrieval only)."""
    question, _, context = query.partition("\n")
    return question, context


def _person_form(pronoun: str, name: str) -> str:
    return f"{name}'s" if pronoun.lower() in ("his", "hers") else name


def standalone_query(question: str, history: list[Message]) -> str:
    """The retrieval query: a follow-up gets the subject of the conversation from the user's
    earlier questions and the names in the previous answer (see the module docstring).

    The question comes first, with "he" or "she" replaced by the person the previous answer
    named when one fits; the context follows on a second line. Retrieval reads both; the
    answer's sentences are chosen for the first line alone (`split_query`), so the sentences
    that answered the previous question do not come back.
    """
    # One line each: the query's line break is ours (`split_query`).
    return _resolve(" ".join(question.split()), _split_turns(history))


_LABEL = re.compile(r"^\s*(?:standalone question|question|rewritten question)\s*:\s*", re.I)
CONDENSED_WORDS = 40


def checked_condensed(condensed: str, question: str, history: list[Message]) -> str | None:
    """A model's standalone rewrite of `question`, when it reads as one: one line, a question
    (ending in "?") of at most `CONDENSED_WORDS` words (or three times the question's), whose
    names all occur in the conversation. None otherwise: small models often answer instead
    of rewriting, or bring in a name of their own, which would steer retrieval away."""
    lines = [line for line in condensed.strip().splitlines() if line.strip()]
    if len(lines) != 1:
        return None
    line = " ".join(_LABEL.sub("", lines[0]).strip().strip("\"'").split())
    if not line.endswith("?") or len(line.split()) > max(CONDENSED_WORDS,
                                                          3 * len(question.split())):
        return None
    known = " ".join([question, *(m.content for m in history)]).lower()
    if any(name.lower() not in known for name in names_in(line)):
        return None
    return line


def with_condensed(condensed: str, question: str, history: list[Message]) -> str:
    """The retrieval query for a follow-up that a model rewrote: the model's question (when
    `checked_condensed` keeps it) or the offline rewrite's, then the offline context line
    (the subject from the user's earlier questions and the names in the previous answer)."""
    offline = standalone_query(question, history)
    checked = checked_condensed(condensed, question, history)
    if checked is None:
        return offline
    _, context = split_query(offline)
    return f"{checked}\n{context}" if context else checked

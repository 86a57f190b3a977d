"""The multi-turn conversations of `tests/data/conversations.jsonl`, played as the chat plays
them: each turn is asked with the full history, the assistant's own replies included.

Each conversation names the article it is about (`about`: `seed`, a `samples/` file or a
MultiHop article id) and the strings of which the final answer must hold one (`expect`). The
MultiHop articles are read from the shared data at run time, never copied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "conversations.jsonl"
# MultiHop articles ingested beside the ones the conversations are about, so that retrieval
# has to choose (two on the same topics: Gemini and Uber, and ten others).
DISTRACTORS = ("mhr-a-70808d4f68", "mhr-a-a62d255569", "mhr-a-f9576d2f4a", "mhr-a-a039a968f3",
               "mhr-a-404400d537", "mhr-a-4e4e4fdacb", "mhr-a-9765381cb9", "mhr-a-a891fd7ef6",
               "mhr-a-0609bfbbb2", "mhr-a-fda51978e1")

# (question, history as role/content dicts) -> the reply text as the client shows it.
Ask = Callable[[str, list[dict[str, Any]]], str]


def conversations() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def multihop_ids() -> list[str]:
    ids = {c["about"] for c in conversations() if c["about"].startswith("mhr-")}
    return sorted(ids | set(DISTRACTORS))


def write_multihop_articles(articles_jsonl: Path, out: Path, ids: Iterable[str]) -> Path:
    """The MultiHop articles with these ids, as a JSONL file newsdesk ingests."""
    wanted = set(ids)
    with articles_jsonl.open() as source, out.open("w") as sink:
        for line in source:
            if json.loads(line)["id"] in wanted:
                sink.write(line)
    return out


def play(conversation: dict[str, Any], ask: Ask) -> tuple[bool, list[str]]:
    """Asks every turn with the history so far; True when the final reply holds one of the
    expected strings. Also returns the replies."""
    history: list[dict[str, Any]] = []
    replies = []
    for question in conversation["turns"]:
        reply = ask(question, history)
        replies.append(reply)
        history += [{"role": "user", "content": question},
                    {"role": "assistant", "content": reply}]
    # A chat reply is Markdown-escaped ("61\\.4"); the check reads it as the user does.
    final = re.sub(r"\\(.)", r"\1", replies[-1]).lower()
    return any(e.lower() in final for e in conversation["expect"]), replies

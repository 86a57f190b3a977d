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


def main(argv: list[str] | None = None) -> int:
    """`python tests/conversations.py [--llm-gguf PATH|smollm2] [--limit N] [--json OUT]`:
    play the conversations through the chat (as `test_conversations.py` does) over a fresh
    store, in LLM mode with a local GGUF model when one is given, and print the share whose
    final reply holds the expected fact, the share whose final passages hold it (what the
    follow-up rewrite found) and the latency per turn."""
    import argparse
    import statistics
    import tempfile
    import time

    from assistant.answer.retrieval import NewsRetriever
    from assistant.service import Assistant
    from assistant.settings import Settings
    from evals.data import SHARED_DATA
    from ingest.pipeline import Ingestor
    from ui import make_respond

    parser = argparse.ArgumentParser(prog="python tests/conversations.py")
    parser.add_argument("--llm-gguf", default=None, help="a GGUF file, or `smollm2`")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    found: list[list[str]] = []  # the passages retrieved for each question, in order
    retrieve = NewsRetriever.retrieve

    def recording(self: NewsRetriever, query: str, *rest: Any, **kw: Any) -> Any:
        ranked = retrieve(self, query, *rest, **kw)
        found.append([p.text for p in ranked[0]])
        return ranked

    with tempfile.TemporaryDirectory(prefix="newsdesk-conversations-") as tmp:
        store = Path(tmp) / "store"
        multihop = write_multihop_articles(SHARED_DATA / "multihop" / "articles.jsonl",
                                           Path(tmp) / "multihop.jsonl", multihop_ids())
        base = Settings(_env_file=None, data_dir=store, llm_gguf=None, openai_api_key=None,
                        openai_base_url=None)
        report = Ingestor(base).ingest([SHARED_DATA / "seed" / "us-japan-trade-talks.txt",
                                        root / "samples", multihop])
        assert report.ok, report.errors
        settings = Settings(_env_file=None, data_dir=store, llm_gguf=args.llm_gguf,
                            openai_api_key=None, openai_base_url=None)
        assistant = Assistant(settings)
        respond = make_respond(assistant)
        turns: list[float] = []

        def ask(question: str, history: list[dict[str, Any]]) -> str:
            started = time.perf_counter()
            reply = list(respond(question, history))[-1]
            turns.append(time.perf_counter() - started)
            return reply

        NewsRetriever.retrieve = recording  # type: ignore[method-assign]
        rows = []
        try:
            for convo in conversations()[:args.limit]:
                held, replies = play(convo, ask)
                last = " ".join(found[-1]).lower() if found else ""
                in_passages = any(e.lower() in last for e in convo["expect"])
                rows.append({"id": convo["id"], "held": held, "in_passages": in_passages,
                             "final": replies[-1][:300]})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            NewsRetriever.retrieve = retrieve  # type: ignore[method-assign]
            assistant.close()
    summary = {"mode": assistant.mode, "model": settings.llm_gguf.name if settings.llm_gguf
               else None, "conversations": len(rows),
               "held": sum(r["held"] for r in rows) / len(rows),
               "in_passages": sum(r["in_passages"] for r in rows) / len(rows),
               "turn_p50_s": statistics.median(turns),
               "turn_p95_s": sorted(turns)[int(0.95 * (len(turns) - 1))]}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({**summary, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

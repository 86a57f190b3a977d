"""What following stories adds to a write: `python -m bench.follows`.

    python -m bench.follows [--base 100] [--follows 1000] [--writes 12]

MultiHop-RAG's first `--base` articles by publication date are ingested once into a store
that is then copied: one copy gets no follows, the other `--follows` of them, made through
`Assistant.follow` (MultiHop's dev questions, RGB en's questions, then "What is the latest
on <title>?" and "What happened after <title>?" over MultiHop's titles: about a tenth of them
are stories the written articles belong to). Then each of the next `--writes` articles (after
one more, a warm-up) is written alone to both copies in turn, the first copy alternating,
each write followed by its watcher's `check()`, as the server's watcher would look after it.

Per write it times the ingest call and the check (split as the watcher reports it: `match_s`,
reading the new chunks and comparing them with every follow; `answer_s`, answering the follows
a chunk came near and recording their updates) and counts the follows near and updated. The
extra cost of a write with the follows is the check with them minus the check without, paired
per article: the write itself runs the same code in both copies (the watcher is apart from
it), so its difference is noise, reported beside. It fails when a write stored no chunk or
the check did not see every follow: such a timing measures nothing. Writes
`bench/follows-results.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from assistant.follows import FollowWatcher, Matched
from assistant.index.embeddings import get_embeddings
from assistant.service import Assistant
from assistant.settings import Settings
from bench.latency import percentile
from bench.run import _git, offline_settings
from evals.data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "follows-results.json"
ARTICLES = SHARED_DATA / "multihop" / "articles.jsonl"
QUESTION_FILES = (SHARED_DATA / "multihop" / "queries_dev.jsonl",
                  SHARED_DATA / "rgb" / "en" / "questions.jsonl")
TITLE_QUESTIONS = ("What is the latest on {}?", "What happened after {}?")
GOAL_EXTRA_MS = 50.0  # the issue: a write with 1,000 follows costs at most this much more
PER_OWNER = 1000  # assistant.follows.MAX_FOLLOWS_PER_OWNER: more follows take more keys


def _records() -> list[dict[str, Any]]:
    """MultiHop's articles, oldest first."""
    records = [json.loads(line) for line in ARTICLES.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    return sorted(records, key=lambda r: (str(r.get("published_at") or ""), str(r.get("id"))))


def follow_questions(n: int, titles: list[str]) -> list[str]:
    """`n` realistic questions to follow: benchmark questions first, then title questions."""
    found: list[str] = []
    for path in QUESTION_FILES:
        found += [str(json.loads(line)["question"]) for line in
                  path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for template in TITLE_QUESTIONS:
        found += [template.format(title.strip().rstrip(".?!")) for title in titles
                  if title.strip()]
    if len(found) < n:
        raise SystemExit(f"only {len(found)} questions to follow, {n} asked for")
    return found[:n]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _spread(values_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values_ms), 1),
            "p95_ms": round(percentile(values_ms, 0.95), 1),
            "max_ms": round(max(values_ms), 1)}


class _Side:
    """One copy of the store, its follows and its watcher."""

    def __init__(self, settings: Settings) -> None:
        from ingest.pipeline import Ingestor

        self.assistant = Assistant(settings)
        self.ingestor = Ingestor(settings, store=self.assistant.store,
                                 embeddings=self.assistant.embeddings)
        self.watcher = FollowWatcher(self.assistant, self.assistant.follow_book)

    def write(self, record: dict[str, Any]) -> tuple[float, int, float, Matched]:
        """Ingest one article, then let the watcher look: (write s, chunks stored, check s,
        what the check did)."""
        started = time.perf_counter()
        report = self.ingestor.ingest_records([record], origin="bench")
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        done = self.watcher.check()
        return write_s, report.chunks_written, time.perf_counter() - started, done


def measure(base: int = 100, n_follows: int = 1000, writes: int = 12,
            workdir: Path | None = None, log: Any = print) -> dict[str, Any]:
    """Build the two stores, write `writes` articles to both, and the figures."""
    records = _records()
    if base + writes + 1 > len(records):
        raise SystemExit(f"--base {base} + --writes {writes} + 1 warm-up is more than the "
                         f"{len(records)} articles")
    if base < 1 or writes < 1:
        raise SystemExit("--base and --writes must be at least 1")
    questions = follow_questions(n_follows, [str(r.get("title") or "") for r in records])
    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-follows-", dir=workdir) as tmp:
        none_dir, some_dir = Path(tmp) / "no-follows", Path(tmp) / "follows"
        # The product's settings (near-duplicates collapsed, as a server ingests), offline.
        settings = offline_settings(none_dir, dedup=True)
        get_embeddings(settings).embed(["warm-up"])  # the model loads before any clock
        from ingest.pipeline import Ingestor

        started = time.perf_counter()
        ingestor = Ingestor(settings)
        built = ingestor.ingest_records(records[:base], origin="bench")
        ingestor.close()
        log(f"base store: {base} articles, {built.chunks_written} chunks in "
            f"{time.perf_counter() - started:.0f} s")
        shutil.copytree(none_dir, some_dir)
        sides = {"none": _Side(settings),
                 "follows": _Side(settings.model_copy(update={"data_dir": some_dir}))}
        started = time.perf_counter()
        owner = sides["follows"].assistant
        for i, question in enumerate(questions):
            owner.follow(question, owner=f"bench-{i // PER_OWNER}")
        follow_s = time.perf_counter() - started
        log(f"{n_follows} follows made in {follow_s:.0f} s")
        for side in sides.values():
            side.watcher.check()  # the first look: from the head on
        rows: list[dict[str, Any]] = []
        warmed = False
        for record in records[base:]:
            if len(rows) == writes:
                break
            order = ["none", "follows"] if len(rows) % 2 == 0 else ["follows", "none"]
            got = {name: sides[name].write(record) for name in order}
            if not any(chunks for _, chunks, _, _ in got.values()):
                log(f"{record.get('id')}: a near-duplicate, stored no chunk; the next one")
                continue
            if not warmed:
                warmed = True  # the warm-up write: first calls pay for lazy set-up
                continue
            row: dict[str, Any] = {"article": record.get("id"), "title": record.get("title")}
            for name, (write_s, chunks, check_s, done) in got.items():
                row[name] = {"write_ms": _ms(write_s), "check_ms": _ms(check_s),
                             "match_ms": _ms(done.match_s), "answer_ms": _ms(done.answer_s),
                             "chunks_written": chunks, **asdict(done)}
            _check_measured(row, n_follows)
            row["extra_ms"] = round(row["follows"]["check_ms"] - row["none"]["check_ms"], 1)
            row["extra_match_ms"] = round(row["follows"]["match_ms"]
                                          - row["none"]["match_ms"], 1)
            row["write_difference_ms"] = round(row["follows"]["write_ms"]
                                               - row["none"]["write_ms"], 1)
            rows.append(row)
            log(f"write {len(rows)}: {row['follows']['chunks']} chunks, extra {row['extra_ms']} ms "
                f"(match {row['follows']['match_ms']}, answer {row['follows']['answer_ms']}; "
                f"{row['follows']['near']} near, {row['follows']['updates']} updated)")
        for side in sides.values():
            side.assistant.close()
    if len(rows) < writes:
        raise SystemExit(f"only {len(rows)} of {writes} writes stored chunks")
    return _figures(rows, base, built.chunks_written, n_follows, follow_s)


def _check_measured(row: dict[str, Any], n_follows: int) -> None:
    """Fail unless both checks read the new chunks and, with follows, compared every one."""
    for name in ("none", "follows"):
        if row[name]["chunks_written"] <= 0:
            raise SystemExit(f"writing {row['article']} stored no chunk ({name}): the timing "
                             "would measure nothing")
    if row["follows"]["chunks"] <= 0 or row["follows"]["follows"] != n_follows:
        raise SystemExit(f"the check after {row['article']} compared {row['follows']['chunks']}"
                         f" chunks with {row['follows']['follows']} follows, not {n_follows}")


def _figures(rows: list[dict[str, Any]], base: int, base_chunks: int, n_follows: int,
             follow_s: float) -> dict[str, Any]:
    def column(side: str, name: str) -> list[float]:
        return [row[side][name] for row in rows]

    extra = [row["extra_ms"] for row in rows]
    with_total = [row["follows"]["write_ms"] + row["follows"]["check_ms"] for row in rows]
    none_total = [row["none"]["write_ms"] + row["none"]["check_ms"] for row in rows]
    return {
        "base_articles": base, "base_chunks": base_chunks, "follows": n_follows,
        "follows_made_s": round(follow_s, 1), "writes": len(rows),
        "chunks_per_write": statistics.median(column("follows", "chunks")),
        "extra_ms": _spread(extra),
        "extra_match_ms": _spread([row["extra_match_ms"] for row in rows]),
        "with_follows": {"match_ms": _spread(column("follows", "match_ms")),
                         "answer_ms": _spread(column("follows", "answer_ms")),
                         "check_ms": _spread(column("follows", "check_ms")),
                         "write_ms": _spread(column("follows", "write_ms")),
                         "near_per_write": statistics.median(column("follows", "near")),
                         # What one near follow costs: the answer is per near follow.
                         "answer_ms_per_near": round(sum(column("follows", "answer_ms"))
                                                     / max(1, sum(column("follows", "near"))),
                                                     1),
                         "near_max": max(column("follows", "near")),
                         "updates": sum(column("follows", "updates"))},
        "without_follows": {"check_ms": _spread(column("none", "check_ms")),
                            "write_ms": _spread(column("none", "write_ms"))},
        "write_difference_ms": _spread([row["write_difference_ms"] for row in rows]),
        # A write and its check, with the follows / without: medians of the paired writes.
        "ratio": round(statistics.median(w / n for w, n in zip(with_total, none_total,
                                                               strict=True)), 3),
        "goal_extra_ms": GOAL_EXTRA_MS,
        "goal_met": statistics.median(extra) <= GOAL_EXTRA_MS,
        "per_write": rows,
    }


def table(result: dict[str, Any]) -> str:
    """The figures as markdown (as pasted into docs/benchmarks.md)."""
    w = result["with_follows"]
    lines = [
        f"{result['base_articles']} articles ({result['base_chunks']} chunks) in the store, "
        f"{result['follows']} follows, {result['writes']} single-article writes "
        f"(median {result['chunks_per_write']} chunks)", "",
        "| per write | p50 ms | p95 ms |", "|---|---:|---:|",
        f"| **extra with the follows** (check with − check without) | "
        f"**{result['extra_ms']['p50_ms']}** | {result['extra_ms']['p95_ms']} |",
        f"| of which matching (match_s with − without) | {result['extra_match_ms']['p50_ms']} | "
        f"{result['extra_match_ms']['p95_ms']} |",
        f"| check with follows: match_s | {w['match_ms']['p50_ms']} | {w['match_ms']['p95_ms']} |",
        f"| check with follows: answer_s | {w['answer_ms']['p50_ms']} | "
        f"{w['answer_ms']['p95_ms']} |",
        f"| check without follows | {result['without_follows']['check_ms']['p50_ms']} | "
        f"{result['without_follows']['check_ms']['p95_ms']} |",
        f"| the write itself, with / without | {w['write_ms']['p50_ms']} / "
        f"{result['without_follows']['write_ms']['p50_ms']} | {w['write_ms']['p95_ms']} / "
        f"{result['without_follows']['write_ms']['p95_ms']} |",
        "",
        f"follows near per write: median {w['near_per_write']}, max {w['near_max']} "
        f"({w['answer_ms_per_near']} ms of answer_s per near follow); "
        f"updates in all: {w['updates']}; (write + check) with / without follows, median "
        f"ratio {result['ratio']}; goal extra <= {result['goal_extra_ms']:.0f} ms: "
        f"{'met' if result['goal_met'] else 'NOT met'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.follows",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=100,
                        help="articles in the store before the timed writes (default 100)")
    parser.add_argument("--follows", type=int, default=1000, help="follows (default 1000)")
    parser.add_argument("--writes", type=int, default=12,
                        help="timed single-article writes (default 12, after a warm-up)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    load_start = [round(x, 2) for x in os.getloadavg()]
    result = measure(args.base, args.follows, args.writes)
    out = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), **_git(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
           "load_average_start": load_start,
           "load_average_end": [round(x, 2) for x in os.getloadavg()], **result}
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

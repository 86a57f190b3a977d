"""Archive scale: a store of N chunks served by the real server, as an operator runs it.

`python -m bench.archive --chunks 10000 100000 [1000000] [--ingest-minutes 2]`. For each
size: build (or reuse) the store of copies of the MultiHop articles (`bench.scale.build`),
start `python ui.py` on it, time questions over HTTP with no writes and while
`newsdesk-ingest` adds a new article every 10 s, time how soon each new article is
answerable, read what each write cost the keyword index from `/health`, and the server's
memory and the store's disk size; with `--distinct N`, then N different questions
(headlines) and the memory again, once the caches have filled. The test articles are deleted
afterwards, so the cached store returns to its built state. Prints a table per size and a
comparison, writes JSON, and exits non-zero when any check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assistant.index.embeddings import NewsEmbeddings, get_embeddings
from assistant.index.store import NewsStore
from assistant.service import Assistant
from bench import http_load, scale
from bench.corpora import CORPORA, prepare
from bench.latency import percentile
from bench.run import SCALE_CACHE, offline_settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "archive-results.json"
SOURCE_DIR = SCALE_CACHE / "bench-archive-source"
INGEST_CLI = Path(sys.executable).with_name("newsdesk-ingest")
COUNTERS = ("chunks_read", "chunks_tokenized", "articles_applied", "log_entries_read",
            "rebuilds")
_POLL_S = 0.1
_ANSWERABLE_TIMEOUT_S = 60.0
_REQUEST_TIMEOUT_S = 120.0
# A store that leaves more of the questions uncited than this with no writes is not serving
# (an index where nothing is visible leaves them all): the run fails.
MAX_UNCITED_WITHOUT_WRITES = 0.05


class BenchFailure(Exception):
    """A check of the benchmark failed: the figures cannot be trusted."""


# -- the stores ----------------------------------------------------------------------------


def source_store(embeddings: NewsEmbeddings) -> tuple[Path, dict[str, Any]]:
    """The MultiHop store the scale stores copy (ingested as `bench.run` ingests it), built
    once and kept under `SOURCE_DIR`; its directory and what it holds."""
    from ingest.pipeline import Ingestor

    settings = offline_settings(SOURCE_DIR / "store")
    marker = SOURCE_DIR / "source.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("model") == embeddings.name:
            return settings.data_dir, {**info, "cached": True}
    shutil.rmtree(SOURCE_DIR, ignore_errors=True)
    print(f"building the MultiHop source store in {SOURCE_DIR} (once; minutes) ...")
    started = time.perf_counter()
    corpus = prepare(CORPORA["multihop"], SOURCE_DIR / "prepared", embeddings,
                     settings.chunk_tokens, settings.chunk_overlap)
    ingestor = Ingestor(settings, embeddings=embeddings)
    try:
        report = ingestor.ingest([corpus.path])
    finally:
        ingestor.close()
    if report.errors or not report.chunks_written:
        raise SystemExit(f"the MultiHop source store failed to build: {report.errors[:3]}")
    info = {"articles": corpus.articles, "chunks": report.chunks_written,
            "model": embeddings.name, "build_s": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info))
    return settings.data_dir, {**info, "cached": False}


def scale_dir(target: int) -> Path:
    return SCALE_CACHE / f"bench-archive-{target}"


def build_store(embeddings: NewsEmbeddings, target: int) -> dict[str, Any]:
    """The cached store of at least `target` chunks (built from the MultiHop source store
    when missing); `bench.scale.build`'s info."""
    settings = offline_settings(scale_dir(target), collection=scale.COLLECTION)
    found = scale.cached(settings, embeddings, target)
    if found is not None:  # without opening the source store, which a build may hold
        return found
    source_dir, _ = source_store(embeddings)
    source = NewsStore(offline_settings(source_dir), embeddings)
    try:
        print(f"store of >= {target:,} chunks in {settings.data_dir} ...")
        return scale.build(settings, embeddings, [source], target)
    finally:
        source.close()  # its keyword index too: the server takes the one the build made


def answered_questions(embeddings: NewsEmbeddings, questions: list[str]) -> list[str]:
    """The questions the MultiHop source store answers with a citation (the product refuses
    about 1 in 100 dev questions it should answer, rightly or not): over its copies, each of
    them must still be answered with one. Checked once, kept beside the source store."""
    source_dir, _ = source_store(embeddings)
    cache = SOURCE_DIR / "answered.json"
    if cache.is_file():
        found = json.loads(cache.read_text())
        if found.get("model") == embeddings.name and found.get("asked") == questions:
            return list(found["answered"])
    settings = offline_settings(source_dir)
    assistant = Assistant(settings, store=NewsStore(settings, embeddings))
    try:
        answered = [q for q in questions if assistant.ask(q).citations]
    finally:
        assistant.close()
        assistant.store.close()
    cache.write_text(json.dumps({"model": embeddings.name, "asked": questions,
                                 "answered": answered}))
    return answered


# -- the test articles ---------------------------------------------------------------------

_SYLLABLES = ("ka", "vor", "lin", "dre", "mos", "tal", "quen", "bri", "sho", "rud", "fel",
              "nix", "por", "zam", "eth", "gul", "wen", "ost", "ira", "bel", "tov", "sal")
_ROLES = ("harbour master", "council clerk", "ferry engineer", "union steward", "deputy mayor",
          "dock inspector", "weather officer", "school governor", "market warden")
_VERBS = ("inspected", "repainted", "postponed", "audited", "reopened", "measured",
          "relocated", "insured", "rebuilt", "catalogued", "surveyed", "approved")
_ADJECTIVES = ("northern", "flooded", "narrow", "municipal", "wooden", "disused", "coastal",
               "crowded", "temporary", "eastern", "restored", "heated")
_NOUNS = ("pier", "grain store", "bus depot", "footbridge", "lighthouse", "fish market",
          "library annex", "tram shed", "sea wall", "boathouse", "clock tower", "water tank")
_WHEN = ("before dawn", "over the weekend", "late on Thursday", "after a short vote",
         "during the storm", "at the second attempt", "within the hour", "by noon")


def _name(rng: random.Random, parts: int = 3) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts)).capitalize()


@dataclass
class ProbeArticle:
    """A fictional news item the store cannot hold: unique names and numbers, one question
    only it answers."""

    url: str
    title: str
    body: str
    question: str

    def write(self, path: Path) -> Path:
        record = {"title": self.title, "body": self.body, "url": self.url,
                  "source": "Archive Bench Gazette", "author": "Bench Desk",
                  "published_at": "2026-12-06"}
        path.write_text(json.dumps(record) + "\n", encoding="utf-8")
        return path


def make_article(run_id: str, n: int, sentences: int = 22) -> ProbeArticle:
    """Article `n` of run `run_id`: a key sentence amid random ones, so no two articles are
    near-duplicates of each other (or of anything stored)."""
    rng = random.Random(f"{run_id}-{n}")
    town, vessel, person = _name(rng), _name(rng, 2), f"{_name(rng, 2)} {_name(rng)}"
    passengers = rng.randrange(1_000, 99_999)
    key = (f"{person}, who runs the {vessel} ferry out of {town}, said it carried "
           f"{passengers:,} passengers on its first crossing.")
    filler = [f"{_name(rng, 2)} {_name(rng)}, the {rng.choice(_ROLES)} of {_name(rng)}, "
              f"{rng.choice(_VERBS)} the {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} "
              f"{rng.choice(_WHEN)}, {rng.randrange(2, 9_999):,} "
              f"{rng.choice(('metres', 'tonnes', 'crates', 'lamps', 'seats'))} in all."
              for _ in range(sentences)]
    filler.insert(rng.randrange(0, 4), key)
    paragraphs = [" ".join(filler[i:i + 4]) for i in range(0, len(filler), 4)]
    return ProbeArticle(
        url=f"https://archive-bench.example/{run_id}/a{n:03d}",
        title=f"{vessel} ferry opens in {town} with {passengers:,} passengers",
        body="\n\n".join(paragraphs),
        question=f"How many passengers did the {vessel} ferry from {town} carry on its "
                 "first crossing?")


# -- talking to the server -----------------------------------------------------------------


@dataclass
class Asked:
    """Latencies of answered questions, and the questions answered without a citation."""

    ms: list[float] = field(default_factory=list)
    uncited: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {"questions": len(self.ms), "p50_ms": round(percentile(self.ms, 0.50), 1),
                "p95_ms": round(percentile(self.ms, 0.95), 1), "uncited": len(self.uncited),
                "uncited_questions": sorted(set(self.uncited)),
                "errors": len(self.errors)}


def ask(client: httpx.Client, question: str) -> tuple[float, dict[str, Any] | None, str]:
    """POST /answer: milliseconds, the answer (None on an error) and what went wrong."""
    started = time.perf_counter()
    try:
        response = client.post("/answer", json={"question": question})
    except httpx.HTTPError as exc:
        return (time.perf_counter() - started) * 1000, None, type(exc).__name__
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        return elapsed, None, f"HTTP {response.status_code}: {response.text[:200]}"
    return elapsed, response.json(), ""


def ask_all(client: httpx.Client, questions: list[str], asked: Asked) -> None:
    for question in questions:
        ms, answer, error = ask(client, question)
        if answer is None:
            asked.errors.append(f"{question[:60]}: {error}")
        elif not answer.get("citations"):
            asked.uncited.append(question)
        else:
            asked.ms.append(ms)


def health(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/health")
    if response.status_code != 200:
        raise BenchFailure(f"/health answered {response.status_code}: {response.text[:300]}")
    return dict(response.json())


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident set now (VmRSS) and at its peak (VmHWM), in MiB (the keys say
    "mb" for the figures recorded before), and how much of it is file pages mapped (RssFile:
    the keyword index and libraries, which the kernel can drop and read again)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM", "RssFile"):
            found[key] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mb": found.get("VmRSS", 0.0), "peak_rss_mb": found.get("VmHWM", 0.0),
            "file_rss_mb": found.get("RssFile", 0.0)}


def memory_by_mapping(pid: int, data_dir: Path) -> dict[str, float]:
    """Where the resident set is, in MiB (`/proc/<pid>/smaps`): anonymous memory (the Python
    heap, Chroma's vector index, model weights read into memory), the keyword index's files,
    the store's other files, shared libraries, and other files."""
    parts = {"anonymous": 0.0, "keyword_index_files": 0.0, "store_files": 0.0,
             "libraries": 0.0, "other_files": 0.0}
    store = str(data_dir.resolve())
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
            name = fields[5] if len(fields) > 5 else ""
        elif fields and fields[0] == "Rss:":
            kib = int(fields[1])
            if not name.startswith("/"):
                key = "anonymous"
            elif name.startswith(store) and "keyword-index" in name:
                key = "keyword_index_files"
            elif name.startswith(store):
                key = "store_files"
            elif ".so" in name:
                key = "libraries"
            else:
                key = "other_files"
            parts[key] += kib / 1024
    return {key: round(value, 1) for key, value in parts.items()}


def disk_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return round(int(out.stdout.split()[0]) / 1024, 1)


def cli_env() -> dict[str, str]:
    """The environment `newsdesk-ingest` runs with: the server's collection, none of the
    developer's store settings."""
    env = {k: v for k, v in os.environ.items() if k not in http_load._CLEARED}
    env["NEWSDESK_COLLECTION"] = scale.COLLECTION
    return env


def run_cli(args: list[str], data_dir: Path, workdir: Path,
            timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
    """`newsdesk-ingest ARGS --data-dir DIR --quiet`, from `workdir` (so no `.env` is read)."""
    return subprocess.run([str(INGEST_CLI), *args, "--data-dir", str(data_dir), "--quiet"],
                          cwd=workdir, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout_s)


_REPORT_ROW = re.compile(r"^\W*(\d+)\W+(\d+)\W+(\d+)\W+(\d+)\W+(\d+)\W*$")


def cli_counts(stdout: str) -> dict[str, int] | None:
    """The CLI's report row: added, updated, unchanged, failed, chunks written."""
    for line in stdout.splitlines():
        if match := _REPORT_ROW.match(line):
            values = [int(v) for v in match.groups()]
            return dict(zip(("added", "updated", "unchanged", "failed", "chunks_written"),
                            values, strict=True))
    return None


# -- one size ------------------------------------------------------------------------------


@dataclass
class Ingested:
    """One article sent by the CLI while questions ran, and what it took."""

    article: ProbeArticle
    cli_s: float = 0.0
    chunks: int = 0
    answerable_s: float | None = None
    polls: int = 0
    cost: dict[str, int] = field(default_factory=dict)
    problem: str = ""


def ingest_loop(url: str, data_dir: Path, workdir: Path, run_id: str, count: int,
                interval_s: float, done: list[Ingested], stop: threading.Event,
                crashed: list[str]) -> None:
    """Every `interval_s`, send a new article with the CLI, then poll until it is cited."""
    try:
        _ingest_loop(url, data_dir, workdir, run_id, count, interval_s, done, stop)
    except Exception as exc:  # reported as a failed check, not lost with the thread
        crashed.append(f"the ingest thread stopped: {type(exc).__name__}: {exc}")


def _ingest_loop(url: str, data_dir: Path, workdir: Path, run_id: str, count: int,
                 interval_s: float, done: list[Ingested], stop: threading.Event) -> None:
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=_REQUEST_TIMEOUT_S) as client:
        for n in range(count):
            wait = started + n * interval_s - time.perf_counter()
            if wait > 0 and stop.wait(wait):
                return
            item = Ingested(make_article(run_id, n))
            done.append(item)
            path = item.article.write(workdir / f"archive-{run_id}-{n:03d}.jsonl")
            before = health(client)["keyword_index"]
            t0 = time.perf_counter()
            run = run_cli([str(path)], data_dir, workdir)
            item.cli_s = round(time.perf_counter() - t0, 2)
            counts = cli_counts(run.stdout)
            if run.returncode != 0 or counts is None or counts["added"] != 1:
                item.problem = (f"newsdesk-ingest exited {run.returncode}, report {counts}: "
                                f"{(run.stdout + run.stderr)[-500:]}")
                continue
            item.chunks = counts["chunks_written"]
            t1 = time.perf_counter()
            while time.perf_counter() - t1 < _ANSWERABLE_TIMEOUT_S and not stop.is_set():
                item.polls += 1
                _, answer, _ = ask(client, item.article.question)
                if answer and any(c.get("url", "").endswith(item.article.url.split("/", 3)[3])
                                  for c in answer.get("citations", [])):
                    item.answerable_s = round(time.perf_counter() - t1, 2)
                    break
                time.sleep(_POLL_S)
            if item.answerable_s is None:
                item.problem = (f"not cited within {_ANSWERABLE_TIMEOUT_S:.0f} s of the CLI "
                                "returning")
            after = health(client)["keyword_index"]
            item.cost = {k: after[k] - before[k] for k in COUNTERS}


def measure_size(target: int, info: dict[str, Any], questions: list[str], workdir: Path,
                 ingest_minutes: float, interval_s: float, n_questions: int,
                 run_id: str, distinct: list[str] | None = None) -> dict[str, Any]:
    """Serve the built store and measure it; the test articles (the same texts at every
    size of one run) are deleted at the end."""
    data_dir = scale_dir(target)
    failures: list[str] = []
    out: dict[str, Any] = {"target": target, "chunks": info["chunks"],
                           "articles": info["articles"], "build_s": info["build_s"],
                           "build_cached": info["cached"],
                           # an older keyword index in the cached store, rebuilt before the start
                           "index_rebuilt": info.get("index_rebuilt", False),
                           "failures": failures}
    ingested: list[Ingested] = []
    distinct = distinct or []
    timeout = max(120.0, info["chunks"] / 1000)
    with http_load.serve(data_dir, workdir, timeout_s=timeout,
                         env={"NEWSDESK_COLLECTION": scale.COLLECTION}) as server, \
            httpx.Client(base_url=server.url, timeout=_REQUEST_TIMEOUT_S) as client:
        out["startup_s"] = round(server.startup_s, 2)
        try:
            _serve_and_measure(server, client, out, questions, n_questions, data_dir, workdir,
                               run_id, ingest_minutes, interval_s, ingested, distinct)
        except BenchFailure as exc:
            failures.append(str(exc))
        finally:
            _restore(client, out, info, data_dir, workdir, ingested)
    out["disk_mb_after_cleanup"] = disk_mb(data_dir)
    return out


def _serve_and_measure(server: http_load.Server, client: httpx.Client, out: dict[str, Any],
                       questions: list[str], n_questions: int, data_dir: Path, workdir: Path,
                       run_id: str, ingest_minutes: float, interval_s: float,
                       ingested: list[Ingested], distinct: list[str]) -> None:
    failures: list[str] = out["failures"]
    found = health(client)
    out["health_chunks"], out["health_articles"] = found.get("chunks"), found.get("articles")
    out["keyword_index_at_start"] = found.get("keyword_index")
    if found.get("chunks") != out["chunks"]:
        raise BenchFailure(
            f"/health reports {found.get('chunks')} chunks, the build wrote {out['chunks']:,}: "
            "a scale figure over a store where no chunk is visible is a bug")
    out["memory_at_start"] = memory_mb(server.process.pid)

    first = Asked()
    started = time.perf_counter()
    ask_all(client, questions[:1], first)
    out["first_question_ms"] = round((time.perf_counter() - started) * 1000, 1)

    quiet = Asked()
    ask_all(client, questions[1:1 + n_questions], quiet)
    out["quiet"] = quiet.figures()
    # The same questions again: the baseline for the questions under ingest, which repeat
    # the list and so find the rows and sentence splits they read already cached.
    warm = Asked()
    ask_all(client, questions[1:1 + n_questions], warm)
    out["quiet_warm"] = warm.figures()

    # Every other question once with no writes, so that the check under ingest can tell a
    # question the writes took away from one this store never answers.
    others = Asked()
    ask_all(client, questions[1 + n_questions:], others)
    out["quiet_others"] = others.figures()

    count = int(ingest_minutes * 60 / interval_s) + 1
    stop = threading.Event()
    crashed: list[str] = []
    thread = threading.Thread(target=ingest_loop, daemon=True, args=(
        server.url, data_dir, workdir, run_id, count, interval_s, ingested, stop, crashed))
    loaded = Asked()
    rest = questions[1 + n_questions:] + questions[1:1 + n_questions]
    limit = count * interval_s + 10 * _ANSWERABLE_TIMEOUT_S
    started = time.perf_counter()
    thread.start()
    i = 0
    while thread.is_alive() and time.perf_counter() - started < limit and i < 20_000:
        ask_all(client, [rest[i % len(rest)]], loaded)
        i += 1
    stop.set()
    thread.join(_REQUEST_TIMEOUT_S + 10)
    out["under_ingest"] = {**loaded.figures(), "seconds": round(time.perf_counter() - started,
                                                                 1)}
    out["memory_after_load"] = memory_mb(server.process.pid)
    out["memory_after_load_by_mapping"] = memory_by_mapping(server.process.pid, data_dir)
    out["disk_mb_after_load"] = disk_mb(data_dir)
    if distinct:
        # Many different questions after the load: the caches (sentence vectors, rows,
        # splits) fill toward their bounds, which the repeated dev questions never reach.
        spread = Asked()
        ask_all(client, distinct, spread)
        out["distinct"] = spread.figures()
        out["memory_after_distinct"] = memory_mb(server.process.pid)
        if spread.errors:
            failures.append(f"distinct questions: {len(spread.errors)} failed request(s), "
                            f"e.g. {spread.errors[0]}")
        if len(spread.ms) < len(distinct) // 2:  # headlines the store answers, mostly
            failures.append(f"distinct questions: only {len(spread.ms)} of {len(distinct)} "
                            "were answered with a citation: the caches were not filled")

    out["uncited_without_writes"] = sorted(set(
        first.uncited + quiet.uncited + warm.uncited + others.uncited))
    failures.extend(answer_checks([first, quiet, warm, others], loaded,
                                  len(set(questions))))
    for name, asked in (("first", first), ("no writes", quiet), ("no writes, again", warm),
                        ("no writes, the other questions", others), ("under ingest", loaded)):
        if asked.errors:
            failures.append(f"{name}: {len(asked.errors)} failed request(s), e.g. "
                            f"{asked.errors[0]}")
    failures.extend(crashed)
    out["ingest"] = {**_ingest_figures(ingested, count, failures), "interval_s": interval_s}


def answer_checks(without_writes: list[Asked], under_ingest: Asked,
                  distinct_questions: int) -> list[str]:
    """What the answers fail: more than `MAX_UNCITED_WITHOUT_WRITES` of the questions without
    a citation with no writes (the store is not serving), or a question answered with a
    citation with no writes and not under ingest (the writes took it away).

    A question this store never answers is reported, not failed: over the 1M store (100
    identical copies of each chunk) one question's every candidate list is copies of one
    chunk that does not answer it, with or without writes (docs/benchmarks.md)."""
    failures = []
    never = {q for asked in without_writes for q in asked.uncited}
    if len(never) > MAX_UNCITED_WITHOUT_WRITES * distinct_questions:
        failures.append(f"no writes: {len(never)} of {distinct_questions} questions answered "
                        f"without a citation, e.g. {sorted(never)[0]!r}")
    lost = [q for q in under_ingest.uncited if q not in never]
    if lost:
        distinct = list(dict.fromkeys(lost))
        failures.append(f"under ingest: {len(lost)} answer(s) without a citation, to "
                        f"{len(distinct)} distinct question(s) cited with no writes, e.g. "
                        f"{distinct[0]!r}")
    return failures


def _ingest_figures(ingested: list[Ingested], count: int,
                    failures: list[str]) -> dict[str, Any]:
    if len(ingested) < count:
        failures.append(f"only {len(ingested)} of {count} articles were sent")
    for item in ingested:
        if item.problem:
            failures.append(f"{item.article.url}: {item.problem}")
    ok = [i for i in ingested if not i.problem]
    answerable = [i.answerable_s for i in ok if i.answerable_s is not None]
    per_write = [{"chunks": i.chunks, **i.cost} for i in ok]
    exact = all(w["chunks_read"] == w["chunks_tokenized"] == w["chunks"] for w in per_write)
    if not exact:
        failures.append("the keyword index read or tokenized more than the new article's "
                        f"chunks: {per_write}")
    if any(w["rebuilds"] for w in per_write):
        failures.append("the keyword index was rebuilt during the ingest")
    return {
        "articles": len(ingested),
        "cli_s_median": round(statistics.median([i.cli_s for i in ok]), 2) if ok else None,
        "cli_s_max": max((i.cli_s for i in ok), default=None),
        "answerable_s_median": round(statistics.median(answerable), 2) if answerable else None,
        "answerable_s_max": max(answerable, default=None),
        "polls_max": max((i.polls for i in ok), default=0),
        "chunks_per_article": [w["chunks"] for w in per_write],
        "per_write": per_write,
        "chunks_read_equals_article_chunks": exact and bool(per_write),
    }


def _restore(client: httpx.Client, out: dict[str, Any], info: dict[str, Any], data_dir: Path,
             workdir: Path, ingested: list[Ingested]) -> None:
    """Delete the test articles; the store must hold what the build wrote again, else its
    marker goes (the next run rebuilds it)."""
    failures: list[str] = out["failures"]
    if ingested:
        run = run_cli([a for i in ingested for a in ("--delete", i.article.url)], data_dir,
                      workdir)
        out["deleted_test_articles"] = deleted = run.stdout.count("deleted:")
        if deleted < sum(1 for i in ingested if i.chunks):
            failures.append(f"deleting the test articles failed ({run.returncode}): "
                            f"{(run.stdout + run.stderr)[-500:]}")
    try:
        found = health(client)
    except (BenchFailure, httpx.HTTPError) as exc:
        found = {"error": str(exc)}
    out["final_chunks"], out["final_articles"] = found.get("chunks"), found.get("articles")
    if (found.get("chunks"), found.get("articles")) != (info["chunks"], info["articles"]):
        failures.append(f"after the clean-up the store holds {found.get('chunks')} chunks and "
                        f"{found.get('articles')} articles, built with {info['chunks']} and "
                        f"{info['articles']}: its marker is removed, the next run rebuilds it")
        (data_dir / "bench-scale.json").unlink(missing_ok=True)


# -- reporting -----------------------------------------------------------------------------


def _rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    quiet, loaded, ing = r.get("quiet", {}), r.get("under_ingest", {}), r.get("ingest", {})
    warm = r.get("quiet_warm", {})
    mem = r.get("memory_after_load", {})
    cached = " (cached build)" if r["build_cached"] else ""
    if r.get("index_rebuilt"):
        cached = " (cached build, its older keyword index rebuilt before the start)"
    return [
        ("chunks / articles", f"{r['chunks']:,} / {r['articles']:,}"),
        ("build, s", f"{r['build_s']}{cached}"),
        ("server start-up to 200 /health, s", str(r.get("startup_s"))),
        ("first question, ms", str(r.get("first_question_ms"))),
        ("questions, no writes: p50 / p95 ms (n)", _latency(quiet)),
        ("same questions again, no writes: p50 / p95 ms (n)", _latency(warm)),
        ("questions under ingest: p50 / p95 ms (n)", _latency(loaded)),
        ("articles ingested, CLI median / max s",
         f"{ing.get('articles')} (1 per {ing.get('interval_s')} s): {ing.get('cli_s_median')} / "
         f"{ing.get('cli_s_max')}"),
        ("CLI return to answerable: median / max s",
         f"{ing.get('answerable_s_median')} / {ing.get('answerable_s_max')}"),
        ("per write: chunks read = tokenized = article's chunks",
         f"{_per_write(ing)} ({'yes' if ing.get('chunks_read_equals_article_chunks') else 'NO'})"),
        ("server RSS / peak after load, MiB (file pages of it)",
         f"{mem.get('rss_mb')} / {mem.get('peak_rss_mb')} ({mem.get('file_rss_mb', '-')})"),
        ("store on disk, MB", str(r.get("disk_mb_after_load"))),
        *([("then distinct questions: p50 / p95 ms (n)", _latency(r["distinct"])),
           ("server RSS / peak after them, MiB",
            f"{r['memory_after_distinct'].get('rss_mb')} / "
            f"{r['memory_after_distinct'].get('peak_rss_mb')}")] if "distinct" in r else []),
        ("questions never cited with no writes (reported)",
         str(len(r.get("uncited_without_writes", [])))),
        ("checks", "ok" if not r["failures"] else f"FAILED ({len(r['failures'])})"),
    ]


def _latency(asked: dict[str, Any]) -> str:
    return f"{asked.get('p50_ms')} / {asked.get('p95_ms')} ({asked.get('questions')})"


def _per_write(ing: dict[str, Any]) -> str:
    writes = ing.get("per_write") or []
    return ", ".join(sorted({f"{w['chunks_read']}/{w['chunks_tokenized']}/{w['chunks']}"
                             for w in writes})) or "-"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def comparison(results: list[dict[str, Any]]) -> str:
    per = [dict(_rows(r)) for r in results]
    labels = [label for label, _ in _rows(results[0])]
    header = ("figure", *(f"{r['chunks']:,} chunks" for r in results))
    return table([header, *((label, *(p.get(label, "") for p in per)) for label in labels)])


# -- the command ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000],
                        help="store sizes to measure, in chunks (each built once and cached "
                             "under .newsdesk-cache/bench-archive-N)")
    parser.add_argument("--ingest-minutes", type=float, default=2.0,
                        help="how long new articles are ingested while questions run")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="seconds between two ingested articles")
    parser.add_argument("--questions", type=int, default=60,
                        help="questions timed with no writes (MultiHop dev questions)")
    parser.add_argument("--distinct", type=int, default=0,
                        help="after the load, this many different questions (MultiHop "
                             "headlines, asked as written), then RSS again: the caches fill "
                             "toward their bounds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    return parser.parse_args(argv)


def dev_questions() -> list[str]:
    """The MultiHop dev questions the corpus answers (the null ones are left out: the right
    answer to those cites nothing)."""
    lines = CORPORA["multihop"].questions.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [r["question"] for r in rows if r.get("type") not in (None, "null")]


def headline_questions(count: int) -> list[str]:
    """`count` different questions: MultiHop-RAG's headlines as written, in a fixed shuffle
    (the scale stores hold copies of those articles, so each finds passages)."""
    rows = [json.loads(line) for line in
            CORPORA["multihop"].articles.read_text(encoding="utf-8").splitlines() if line.strip()]
    titles = list(dict.fromkeys(r["title"].strip() for r in rows if r.get("title", "").strip()))
    random.Random(7).shuffle(titles)
    return titles[:count]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if any(n < 1 for n in args.chunks) or args.interval <= 0 or args.ingest_minutes <= 0:
        raise SystemExit("--chunks, --interval and --ingest-minutes must be positive")
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "cpu_count": os.cpu_count(), "load_average_start": list(os.getloadavg()),
        "ingest_minutes": args.ingest_minutes, "sizes": []}
    with tempfile.TemporaryDirectory(prefix="newsdesk-archive-") as tmp_name:
        tmp = Path(tmp_name)
        embeddings = get_embeddings(offline_settings(tmp / "unused"))
        _, report["source"] = source_store(embeddings)
        asked = dev_questions()
        questions = answered_questions(embeddings, asked)
        report["questions"] = {"dev_non_null": len(asked), "answered_by_source": len(questions)}
        print(f"{len(questions)} of the {len(asked)} non-null MultiHop dev questions are "
              "answered with a citation over the source store: those are asked")
        if len(questions) < args.questions + 1:
            raise SystemExit(f"only {len(questions)} usable questions; ask for fewer")
        run_id = f"r{int(time.time())}"
        for target in args.chunks:
            info = build_store(embeddings, target)
            print(f"{target:,}: {info['chunks']:,} chunks, built in {info['build_s']} s"
                  f"{' (cached)' if info['cached'] else ''}; serving it ...")
            result = measure_size(target, info, questions, tmp, args.ingest_minutes,
                                  args.interval, args.questions, run_id,
                                  headline_questions(args.distinct))
            report["sizes"].append(result)
            print(table([("figure", "value"), *_rows(result)]))
            for failure in result["failures"]:
                print(f"FAILED: {failure}")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    report["load_average_end"] = list(os.getloadavg())
    sizes = report["sizes"]
    # The same articles at every size: the same work per write, however large the store.
    patterns = {tuple((w["chunks_read"], w["chunks_tokenized"])
                      for w in r.get("ingest", {}).get("per_write", [])) for r in sizes}
    report["write_cost_same_at_every_size"] = len(patterns) == 1 and all(
        r.get("ingest", {}).get("chunks_read_equals_article_chunks") for r in sizes)
    report["ok"] = not any(r["failures"] for r in sizes)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if len(sizes) > 1:
        print("\n" + comparison(sizes))
    print("\nchunks read and tokenized per write = the article's chunks, the same at every "
          f"size: {report['write_cost_same_at_every_size']}")
    print(f"written to {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

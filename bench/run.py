"""The benchmark suite: `make bench` / `python -m bench` (`--quick` for a small slice).

Measures, in one run so that ratios hold on a noisy machine: the encoder ceiling, newsdesk's
ingest and the plain LangChain path on the main corpus; re-ingest of the unchanged corpus;
retrieval and answer latency on every corpus; the running server under load; retrieval on a
store of at least 200,000 chunks. Prints a table and writes `bench/results.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.index.embeddings import ONNX_MAX_TEXTS, get_embeddings
from assistant.settings import Settings
from bench import http_load, latency, scale
from bench.corpora import CORPORA, PreparedCorpus, prepare, question_rounds
from bench.ingest_paths import EncoderCeiling, LangChainPlain, median_of, newsdesk_ingest
from ingest.pipeline import Ingestor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results.json"
SCALE_CACHE = ROOT / ".newsdesk-cache"

# (full, quick) sizes.
ARTICLES = {"multihop": (None, 3), "rgb_zh": (None, 30)}
QUESTIONS = (200, 12)
HTTP_SECONDS = (30.0, 4.0)
SCALE_CHUNKS = (200_000, 2_000)

GOALS: dict[str, tuple[str, float]] = {
    "ingest_vs_ceiling": (">=", 0.90),
    "ingest_vs_langchain": (">=", 1.30),
    "reingest_speedup": (">=", 50.0),
    "retrieve_p50_ms": ("<=", 30.0),
    "answer_p50_ms": ("<=", 80.0),
    "http_answers_per_s": (">=", 30.0),
    "startup_s": ("<=", 8.0),
}


def offline_settings(data_dir: Path, **overrides: Any) -> Settings:
    """An offline configuration over `data_dir` that ignores any `.env` file. Near-duplicate
    collapsing is off: the plain LangChain path stores every article, and the comparison must
    index the same chunks (`python -m evals.dedup` measures the collapsing)."""
    values: dict[str, Any] = {"data_dir": data_dir, "chroma_host": None, "openai_api_key": None,
                              "openai_base_url": None, "dedup": False}
    values.update(overrides)
    return Settings(_env_file=None, **values)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a small slice of every corpus (seconds, for CI): checks the code "
                             "paths, its figures mean little")
    parser.add_argument("--corpora", default="multihop,rgb_zh",
                        help="comma-separated, the first is the main ingest corpus "
                             f"(known: {', '.join(CORPORA)})")
    parser.add_argument("--articles", type=int, default=None,
                        help="ingest only the first N articles of each corpus")
    parser.add_argument("--questions", type=int, default=None,
                        help="ask at least N questions per corpus (repeating the list)")
    parser.add_argument("--http-seconds", type=float, default=None,
                        help="how long the load generator runs")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--scale-chunks", type=int, default=None,
                        help="chunks in the scale store (0: skip the scale figures)")
    parser.add_argument("--repeat-under", type=float, default=None,
                        help="repeat the timed ingest paths to 3 runs (and take the medians) "
                             "when the slowest first run took less than this many seconds "
                             "(default 60; 0 with --quick)")
    parser.add_argument("--slices", type=int, default=12,
                        help="the main corpus is ingested in this many slices, the three ingest "
                             "paths taking turns on each, so that load changes hit them alike")
    parser.add_argument("--skip", default="",
                        help="comma-separated parts to leave out: latency, scale, http "
                             "(figures left out are null; for development)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pick = 1 if args.quick else 0
    names = [n.strip() for n in args.corpora.split(",") if n.strip()]
    unknown = [n for n in names if n not in CORPORA]
    if unknown or not names:
        raise SystemExit(f"unknown corpus {unknown}; known: {', '.join(CORPORA)}")
    min_questions = args.questions or QUESTIONS[pick]
    http_seconds = args.http_seconds or HTTP_SECONDS[pick]
    scale_chunks = SCALE_CHUNKS[pick] if args.scale_chunks is None else args.scale_chunks
    if args.repeat_under is None:
        args.repeat_under = 0.0 if args.quick else 60.0

    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **_git(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "cpu_count": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "quick": args.quick,
        "main_corpus": names[0],
    }
    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-") as tmp_name:
        tmp = Path(tmp_name)
        base = offline_settings(tmp / "unused")
        started = time.perf_counter()
        embeddings = get_embeddings(base)
        # An ingest-sized call: PyTorch loads on the first one, before any clock starts.
        embeddings.embed(["warm-up"] * (ONNX_MAX_TEXTS + 1))
        results["model_load_s"] = round(time.perf_counter() - started, 1)
        print(f"model loaded in {results['model_load_s']} s")

        prepared: dict[str, PreparedCorpus] = {}
        for name in names:
            limit = args.articles or ARTICLES.get(name, (None, 4))[pick]
            prepared[name] = prepare(CORPORA[name], tmp / "corpora", embeddings,
                                     base.chunk_tokens, base.chunk_overlap, max_articles=limit,
                                     max_questions=6 if args.quick else None)
            print(f"{name}: {prepared[name].articles} articles, {prepared[name].chunks} chunks, "
                  f"{len(prepared[name].questions)} questions")

        corpora: dict[str, dict[str, Any]] = {}
        stores: dict[str, Settings] = {}

        def checkpoint(stage: str) -> None:
            """Figures so far, so that an interrupted long run still leaves what it measured."""
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({**results, "corpora": corpora, "complete": False,
                                            "last_stage": stage}, indent=2,
                                           ensure_ascii=False) + "\n")

        ingestors = []
        for i, name in enumerate(names):
            corpus = prepared[name]
            if i == 0:
                figures, settings, ingestor = _compare_ingest(corpus, embeddings, tmp, args,
                                                              base.embed_batch_size)
            else:
                figures, settings, ingestor = _ingest_only(corpus, embeddings, tmp)
            figures.update(_reingest(ingestor, corpus))
            figures["reingest_speedup"] = round(
                figures["ingest_s"] / max(figures["reingest_unchanged_s"], 1e-6), 1)
            stores[name], corpora[name] = settings, figures
            ingestors.append(ingestor)
            checkpoint(f"ingest {name}")

        skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        for name in names if "latency" not in skip else []:
            print(f"{name}: latency over >= {min_questions} questions ...")
            rounds = question_rounds(prepared[name].questions, min_questions)
            corpora[name].update(latency.measure(stores[name], rounds))
            checkpoint(f"latency {name}")

        if scale_chunks and "scale" not in skip:
            results["scale"] = _scale(embeddings, [ing.store for ing in ingestors],
                                      [q for n in names for q in prepared[n].questions],
                                      scale_chunks, min_questions, tmp, args.quick)
            checkpoint("scale")
        if "http" not in skip:
            results.update(_http(stores[names[0]], prepared[names[0]].questions, tmp,
                                 clients=args.clients, seconds=http_seconds, quick=args.quick))

    main_figures = corpora[names[0]]
    for key in ("encoder_ceiling_chunks_per_s", "ingest_chunks_per_s", "ingest_vs_ceiling",
                "langchain_plain_chunks_per_s", "ingest_vs_langchain", "reingest_unchanged_s",
                "reingest_speedup", "retrieve_p50_ms", "retrieve_p95_ms", "answer_p50_ms",
                "answer_p95_ms"):
        results[key] = main_figures.get(key)
    results["corpora"] = corpora
    results["complete"] = True
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["goals"] = _goals(results, corpora)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    print(f"\nwritten to {args.out}")
    if not main_figures.get("chunks_match", True):
        print("FAILED: newsdesk and the plain LangChain path stored different numbers of chunks")
        return 1
    return 0


def _compare_ingest(corpus: PreparedCorpus, embeddings: Any, tmp: Path,
                    args: argparse.Namespace,
                    batch_size: int) -> tuple[dict[str, Any], Settings, Any]:
    """Ceiling, newsdesk and the plain path, interleaved slice by slice."""
    print(f"{corpus.spec.name}: encoder ceiling, newsdesk ingest and the plain LangChain path "
          "...")
    ceiling = EncoderCeiling(batch_size)
    batches = ceiling.ideal_batches(corpus.texts)
    ceiling.run(batches[:1])  # warm-up: first calls pay for lazy set-up in torch
    plain = LangChainPlain(corpus.chunk_size, corpus.chunk_overlap)
    plain.embeddings.embed_documents(["warm-up"])
    embeddings.embed(["warm-up"] * (ONNX_MAX_TEXTS + 1))
    slices = _slice_files(corpus, tmp, args.slices)
    ceiling_runs: list[tuple[float]] = []
    newsdesk_runs: list[tuple[float, int, Any, Settings]] = []
    plain_runs: list[tuple[float, int]] = []
    for rep in range(3):
        times = {"ceiling": 0.0, "newsdesk": 0.0, "plain": 0.0}
        settings = offline_settings(tmp / f"{corpus.spec.name}-newsdesk-{rep}")
        plain_dir = tmp / f"{corpus.spec.name}-plain-{rep}"
        ingestor, written, plain_chunks = None, 0, 0
        for k, part in enumerate(slices):
            # The three paths take turns slice by slice (in a rotating order), so a change in
            # the machine's load hits all three alike.
            for path in _rotate(["ceiling", "newsdesk", "plain"], k):
                if path == "ceiling":
                    times[path] += ceiling.run(batches[k::len(slices)])
                elif path == "newsdesk":
                    started = time.perf_counter()
                    if ingestor is None:  # opening the store is part of the ingest
                        ingestor = Ingestor(settings, embeddings=embeddings)
                    report = ingestor.ingest([part])
                    times[path] += time.perf_counter() - started
                    if report.errors:
                        raise SystemExit(f"newsdesk ingest failed: {report.errors[:3]}")
                    written += report.chunks_written
                else:
                    seconds, plain_chunks = plain.run(part, plain_dir)
                    times[path] += seconds
        ceiling_runs.append((times["ceiling"],))
        newsdesk_runs.append((times["newsdesk"], written, ingestor, settings))
        plain_runs.append((times["plain"], plain_chunks))
        print(f"  run {rep + 1} ({len(slices)} slices): ceiling {times['ceiling']:.1f} s, "
              f"newsdesk {times['newsdesk']:.1f} s, plain {times['plain']:.1f} s")
        if rep == 0 and max(times.values()) >= args.repeat_under:
            break
    ceiling_s = median_of(ceiling_runs)[0]
    newsdesk_s, newsdesk_chunks, ingestor, settings = median_of(newsdesk_runs)
    plain_s, plain_chunks = median_of(plain_runs)
    chunks = corpus.chunks
    figures = {
        "articles": corpus.articles,
        "chunks": chunks,
        "newsdesk_chunks": newsdesk_chunks,
        "langchain_plain_chunks": plain_chunks,
        "chunks_match": newsdesk_chunks == chunks == plain_chunks,
        "interleaved_slices": len(slices),
        "chunk_size_tokens": corpus.chunk_size,
        "chunk_overlap_tokens": corpus.chunk_overlap,
        "ingest_runs": len(newsdesk_runs),
        "encoder_ceiling_s": round(ceiling_s, 2),
        "ingest_s": round(newsdesk_s, 2),
        "langchain_plain_s": round(plain_s, 2),
        "encoder_ceiling_chunks_per_s": round(chunks / ceiling_s, 1),
        "ingest_chunks_per_s": round(newsdesk_chunks / newsdesk_s, 1),
        "langchain_plain_chunks_per_s": round(plain_chunks / plain_s, 1),
        "ingest_vs_ceiling": round(ceiling_s / newsdesk_s, 3),
        "ingest_vs_langchain": round(plain_s / newsdesk_s, 3),
    }
    # Only the kept store stays open: the others' files go with the temp dir.
    for run in newsdesk_runs:
        if run[2] is not ingestor:
            shutil.rmtree(run[3].data_dir, ignore_errors=True)
    return figures, settings, ingestor


def _slice_files(corpus: PreparedCorpus, tmp: Path, count: int) -> list[Path]:
    """The prepared corpus cut into `count` files of consecutive articles."""
    lines = corpus.path.read_text(encoding="utf-8").splitlines(keepends=True)
    count = max(1, min(count, len(lines)))
    paths = []
    for k in range(count):
        part = tmp / "slices" / f"{corpus.spec.name}-{k:03d}.jsonl"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_text("".join(lines[k * len(lines) // count:(k + 1) * len(lines) // count]),
                        encoding="utf-8")
        paths.append(part)
    return paths


def _rotate(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


def _ingest_only(corpus: PreparedCorpus, embeddings: Any,
                 tmp: Path) -> tuple[dict[str, Any], Settings, Any]:
    print(f"{corpus.spec.name}: newsdesk ingest ...")
    settings = offline_settings(tmp / f"{corpus.spec.name}-newsdesk")
    seconds, report, ingestor = newsdesk_ingest(settings, embeddings, [corpus.path])
    return {
        "articles": corpus.articles,
        "chunks": corpus.chunks,
        "newsdesk_chunks": report.chunks_written,
        "ingest_s": round(seconds, 2),
        "ingest_chunks_per_s": round(report.chunks_written / seconds, 1),
    }, settings, ingestor


def _reingest(ingestor: Any, corpus: PreparedCorpus) -> dict[str, Any]:
    """Three re-ingests of the unchanged corpus into the same store: the median time."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        report = ingestor.ingest([corpus.path])
        times.append(time.perf_counter() - started)
        if report.counts["unchanged"] != corpus.articles or report.chunks_written:
            raise SystemExit(f"re-ingest of the unchanged {corpus.spec.name} corpus changed "
                             f"something: {report.counts}, {report.chunks_written} chunks")
    return {"reingest_unchanged_s": round(statistics.median(times), 3)}


def _scale(embeddings: Any, stores: list[Any], questions: list[str], target: int,
           min_questions: int, tmp: Path, quick: bool) -> dict[str, Any]:
    where = tmp / "scale" if quick else SCALE_CACHE / f"bench-scale-{target}"
    settings = offline_settings(where, collection=scale.COLLECTION)
    print(f"scale store of >= {target:,} chunks in {where} ...")
    info = scale.build(settings, embeddings, stores, target)
    figures = latency.measure(settings, question_rounds(questions, min_questions),
                              answers=False)
    from assistant.service import Assistant

    # Latency over a store that returns nothing is no figure: every question must get passages.
    assistant = Assistant(settings)
    try:
        found = [len(assistant.retriever.retrieve(q, settings.k)[0]) for q in questions]
    finally:
        assistant.close()
    if not found or min(found) == 0:
        empty = [q for q, n in zip(questions, found, strict=True) if n == 0]
        raise SystemExit(f"the scale store of {info['chunks']:,} chunks returned no passages "
                         f"for {len(empty)} of {len(found)} questions, e.g. {empty[:1]}")
    return {**info, "path": str(where.relative_to(ROOT)) if not quick else "(temp)",
            "passages_per_question": round(sum(found) / len(found), 2),
            **{k: v for k, v in figures.items() if k.startswith(("retrieve", "store", "quest"))}}


def _http(settings: Settings, questions: list[str], tmp: Path, clients: int, seconds: float,
          quick: bool) -> dict[str, Any]:
    print(f"server under load: {clients} clients for {seconds:.0f} s ...")
    # The server gets its own copy: two processes never write one embedded store.
    data_dir = tmp / "http-store"
    shutil.copytree(settings.data_dir, data_dir)
    startups = []
    for _ in range(0 if quick else 2):  # extra launches, for a median start-up time
        with http_load.serve(data_dir, tmp) as server:
            startups.append(server.startup_s)
    with http_load.serve(data_dir, tmp) as server:
        startups.append(server.startup_s)
        with http_load.httpx.Client(base_url=server.url, timeout=60) as client:
            for question in questions[:clients]:  # warm-up
                client.post("/answer", json={"question": question}).raise_for_status()
        figures = http_load.load(server.url, questions, clients=clients, duration_s=seconds)
        figures["peak_rss_mb"] = server.peak_rss_mb()
    figures["startup_s"] = round(statistics.median(startups), 2)
    figures["startup_runs"] = [round(s, 2) for s in startups]
    return {"http_answers_per_s": figures.pop("http_answers_per_s"),
            "http_p95_ms": figures.pop("http_p95_ms"),
            "peak_rss_mb": figures.pop("peak_rss_mb"),
            "startup_s": figures.pop("startup_s"),
            "http": figures}


def _goals(results: dict[str, Any], corpora: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (op, goal) in GOALS.items():
        if key in ("retrieve_p50_ms", "answer_p50_ms"):
            values = {name: c.get(key) for name, c in corpora.items()}
        else:
            values = {"value": results.get(key)}
        present = [v for v in values.values() if v is not None]
        met = bool(present) and all(v >= goal if op == ">=" else v <= goal for v in present)
        out[key] = {"goal": f"{op} {goal:g}", **values, "met": met}
    return out


def _git() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "worktree_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table (as pasted into docs/benchmarks.md)."""
    rows = [("figure", "value", "goal", "met")]
    goals = results.get("goals", {})

    def row(label: str, value: Any, key: str | None = None, corpus: str | None = None) -> None:
        goal = goals.get(key or "", {})
        # A goal held on every corpus is judged per row on that corpus's own figure.
        ok = goal.get("met") if corpus is None or goal.get(corpus) is None else (
            goal[corpus] <= float(goal["goal"].split()[1]))
        met = "" if not goal else ("yes" if ok else "**no**")
        rows.append((label, _fmt(value), goal.get("goal", ""), met))

    main = results["main_corpus"]
    c = results["corpora"][main]
    row(f"corpus ({main})", f"{c['articles']:,} articles, {c['chunks']:,} chunks")
    row("encoder ceiling, chunks/s", c.get("encoder_ceiling_chunks_per_s"))
    row("newsdesk ingest, chunks/s", c.get("ingest_chunks_per_s"))
    row("plain LangChain path, chunks/s", c.get("langchain_plain_chunks_per_s"))
    row("ingest / ceiling", c.get("ingest_vs_ceiling"), "ingest_vs_ceiling")
    row("ingest / plain LangChain", c.get("ingest_vs_langchain"), "ingest_vs_langchain")
    row("chunks stored: newsdesk = plain", f"{c.get('newsdesk_chunks'):,} = "
        f"{c.get('langchain_plain_chunks'):,}")
    row("re-ingest unchanged, s", c.get("reingest_unchanged_s"))
    row("re-ingest speed-up", results.get("reingest_speedup"), "reingest_speedup")
    for name, fig in results["corpora"].items():
        if "questions" in fig:
            n = f"{fig['questions']} questions"
            row(f"{name}: retrieve p50 / p95, ms ({n})",
                f"{fig['retrieve_p50_ms']} / {fig['retrieve_p95_ms']}", "retrieve_p50_ms", name)
            row(f"{name}: answer p50 / p95, ms",
                f"{fig['answer_p50_ms']} / {fig['answer_p95_ms']}", "answer_p50_ms", name)
        if name != main:
            row(f"{name}: ingest, chunks/s ({fig['chunks']:,} chunks)",
                fig.get("ingest_chunks_per_s"))
    if "http" in results:
        http = results["http"]
        row(f"HTTP answers/s ({http['clients']} clients, {http['duration_s']} s)",
            results["http_answers_per_s"], "http_answers_per_s")
        row("HTTP p50 / p95, ms", f"{http['http_p50_ms']} / {results['http_p95_ms']}")
        row("server start-up to /health, s", results["startup_s"], "startup_s")
        row("server peak RSS after load, MiB", results["peak_rss_mb"])
    if "scale" in results:
        s = results["scale"]
        row(f"scale: retrieve p50 / p95, ms ({s['chunks']:,} chunks)",
            f"{s['retrieve_p50_ms']} / {s['retrieve_p95_ms']}")
        row("scale: store query alone p50 / p95, ms",
            f"{s['store_query_p50_ms']} / {s['store_query_p95_ms']}")
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    lines = ["| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return "" if value is None else str(value)


if __name__ == "__main__":
    raise SystemExit(main())

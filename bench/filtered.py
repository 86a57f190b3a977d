"""Filtered dense queries at archive scale: Chroma's `where` against the filter planner.

    python -m bench.filtered --chunks 10000 100000 [--questions 30] [--k 50] [--cap N]

For each size, on the cached scale store of `bench.archive` (built when missing), MultiHop
dev questions are asked of `NewsStore.nearest` unfiltered and inside outlet filters (a small,
a medium and a large outlet, two outlets), date filters (a month, a week, a day) and both,
each twice: by the old path (a Chroma `where`: the planner pinned to it) and by the planner.
Per filter it reports the share of chunks the filter lets through, p50 / p95 ms of both
paths, the paths the planner took, the overlap of the two top-k lists, each one's recall of
the exact top k (brute force over every visible chunk vector), and how deep an unfiltered
query must go to hold k matches (what the planner's thresholds are chosen from). It fails
when a filter matches nothing or a query comes back empty (but for the planner's `short`
path, which returns the matching chunks it found as deep as its cap, fewer than k): such a
timing measures nothing. Past the planner's cap it reports how many of a short answer are the
exact best of the filter by similarity (`short_exact`; the store holds copies of each
vector, so ids of equal vectors differ), and, for every filter, how many of the 8 passages
retrieval gives (`NewsRetriever.retrieve`, keyword side included) are the same by both paths.
`--cap N` pins the planner's deepest query to N, so a smaller store shows what the cap's share
of a larger one does (2,000 of 100,000 chunks is the 20,000 of 1,000,000).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.answer.retrieval import NewsRetriever
from assistant.index.embeddings import NewsEmbeddings, get_embeddings
from assistant.index.lexical import day_number
from assistant.index.store import EXACT_FILTER_MAX, POST_FILTER_DEPTH, NewsStore, post_filter_cap
from assistant.types import Filters, split_chunk_id
from bench import scale
from bench.archive import build_store, scale_dir
from bench.corpora import SHARED_DATA
from bench.latency import percentile
from bench.run import offline_settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "filtered-results.json"
# The oversampling factors the calibration table tries (the planner's is one of them).
OVERSAMPLES = (1.0, 1.5, 2.0, 3.0, 4.0)
_PAGE = 5_000

# The MultiHop copies span 2023-09-26 to 2023-12-25; outlets by their share of the chunks
# (Hacker News 0.2 %, Wired 2.6 %, The Verge 9.8 %, TechCrunch 13.2 %, Sporting News 18 %).
FILTERS: dict[str, Filters] = {
    "outlet small (Hacker News)": Filters(sources=["Hacker News"]),
    "outlet medium (Wired)": Filters(sources=["Wired"]),
    "outlet large (The Verge)": Filters(sources=["The Verge"]),
    "outlet large (TechCrunch)": Filters(sources=["TechCrunch"]),
    "outlet largest (Sporting News)": Filters(sources=["Sporting News"]),
    "two outlets (TechCrunch, The Verge)": Filters(sources=["TechCrunch", "The Verge"]),
    "date: a month (2023-10)": Filters(since="2023-10-01", until="2023-10-31"),
    "date: a week (2023-12-18..24)": Filters(since="2023-12-18", until="2023-12-24"),
    "date: a day (2023-10-10)": Filters(since="2023-10-10", until="2023-10-10"),
    "date: from 2023-12-01": Filters(since="2023-12-01"),
    "outlet + month (TechCrunch, 2023-11)": Filters(sources=["TechCrunch"], since="2023-11-01",
                                                    until="2023-11-30"),
}


class BenchFailure(Exception):
    """A check of the benchmark failed: the figures cannot be trusted."""


@dataclass
class Archive:
    """Every visible chunk's unit vector with its outlet and day (the exact reference)."""

    ids: list[str]
    vectors: np.ndarray
    sources: np.ndarray
    days: np.ndarray  # YYYYMMDD, 0 when undated

    def mask(self, filters: Filters) -> np.ndarray:
        keep = np.ones(len(self.ids), dtype=bool)
        if filters.sources:
            keep &= np.isin(self.sources, list(filters.sources))
        if filters.since:
            keep &= self.days >= int(filters.since.strftime("%Y%m%d"))
        if filters.until:
            keep &= (self.days <= int(filters.until.strftime("%Y%m%d"))) & (self.days > 0)
        return keep


def load_archive(store: NewsStore) -> Archive:
    """Read every chunk readers see (ids from the keyword catalog, vectors by id)."""
    index = store.keywords()
    ids = index.chunk_ids()
    about = index.articles(p[0] for cid in ids if (p := split_chunk_id(cid)))
    vectors: list[np.ndarray] = []
    found: list[str] = []
    for start in range(0, len(ids), _PAGE):
        got = store.chunks.get(ids=ids[start:start + _PAGE], include=["embeddings"])
        found += got["ids"]
        vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
    matrix = np.concatenate(vectors)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    articles = [split_chunk_id(cid)[0] for cid in found]  # type: ignore[index]
    return Archive(found, matrix,
                   np.asarray([about[a][0] for a in articles]),
                   np.asarray([day_number(about[a][1]) or 0 for a in articles]))


def questions(n: int) -> list[str]:
    """The first `n` MultiHop dev questions."""
    with (SHARED_DATA / "multihop" / "queries_dev.jsonl").open() as f:
        return [json.loads(line)["question"] for line in f][:n]


def _pinned(store: NewsStore, depth: int | None) -> None:
    """Pin the planner's deepest query to `depth` (0: the old path, a `where`; None: the
    planner's own rule)."""
    store.post_filter_depth = depth
    store.exact_filter_max = 0 if depth == 0 else EXACT_FILTER_MAX


def _timed(store: NewsStore, vector: np.ndarray, k: int, total: int,
           filters: Filters | None, depth: int | None) -> tuple[float, list[str], Counter[str]]:
    """(ms, ids, the plans it took) of one `nearest`, pinned as `_pinned` says."""
    before = Counter(store.plans)
    _pinned(store, depth)
    try:
        started = time.perf_counter()
        hits = store.nearest(vector, k, total=total, filters=filters)
        ms = (time.perf_counter() - started) * 1000
    finally:
        _pinned(store, None)
    return ms, list(hits), store.plans - before


def _retrieved(retriever: NewsRetriever, question: str, filters: Filters,
               depth: int | None) -> list[str]:
    """The chunk ids of the passages retrieval gives, pinned as `_pinned` says."""
    _pinned(retriever.store, depth)
    try:
        return [p.chunk_id for p in retriever.retrieve(question, filters=filters)[0]]
    finally:
        _pinned(retriever.store, None)


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.5), 1),
            "p95_ms": round(percentile(values, 0.95), 1)}


def measure_size(embeddings: NewsEmbeddings, target: int, n_questions: int,
                 k: int, cap: int | None = None) -> dict[str, Any]:
    """Every filter's figures over the cached store of `target` chunks."""
    info = build_store(embeddings, target)
    settings = offline_settings(scale_dir(target), collection=scale.COLLECTION)
    store = NewsStore(settings, embeddings)
    try:
        total = store.keywords().counts()[1]
        archive = load_archive(store)
        if len(archive.ids) != total:
            raise BenchFailure(f"read {len(archive.ids):,} chunk vectors of {total:,}")
        asked = questions(n_questions)
        vectors = embeddings.embed(asked)
        # The first queries pay for loading the vector index and lazy set-up.
        for vector in vectors[:3]:
            store.nearest(vector, k, total=total)
        unfiltered: list[float] = []
        for vector in vectors:
            ms, ids, _ = _timed(store, vector, k, total, None, None)
            if len(ids) != k:
                raise BenchFailure(f"an unfiltered query returned {len(ids)} of {k}")
            unfiltered.append(ms)
        retriever = NewsRetriever(store=store, embeddings=embeddings)
        rows = {name: _measure_filter(store, archive, vectors, k, total, filters, cap,
                                      retriever, asked)
                for name, filters in FILTERS.items()}
        return {"target": target, "chunks": total, "cached_store": info.get("cached", False),
                "questions": len(asked), "k": k,
                "planner": {"oversample": store.post_filter_oversample,
                            "depth": list(POST_FILTER_DEPTH), "pinned_cap": cap},
                "unfiltered": _ms(unfiltered), "filters": rows}
    finally:
        store.close()


def _measure_filter(store: NewsStore, archive: Archive, vectors: np.ndarray, k: int,
                    total: int, filters: Filters, cap: int | None,
                    retriever: NewsRetriever, asked: list[str]) -> dict[str, Any]:
    mask = archive.mask(filters)
    matching = int(mask.sum())
    catalog = store.keywords().filtered_chunks(filters)
    if matching == 0 or catalog != matching:
        raise BenchFailure(f"{filters.describe()}: {matching} chunks match by their vectors' "
                           f"articles, {catalog} by the catalog (must be equal, above 0)")
    want = min(k, matching)
    old_ms: list[float] = []
    new_ms: list[float] = []
    overlap: list[float] = []
    recall_old: list[float] = []
    recall_new: list[float] = []
    depth_needed: list[int] = []
    short_exact: list[float] = []
    same_passages: list[float] = []
    plans: Counter[str] = Counter()
    position = {cid: j for j, cid in enumerate(archive.ids)}
    for i, vector in enumerate(vectors):
        unit = vector / (float(np.linalg.norm(vector)) or 1.0)
        sims = archive.vectors @ unit
        order = np.argsort(-sims, kind="stable")
        inside = np.cumsum(mask[order])
        depth_needed.append(int(np.searchsorted(inside, want)) + 1)
        best = [archive.ids[j] for j in order[mask[order]][:want]]
        exact = set(best)
        # Alternate which path goes first, so neither gets the other's warm caches.
        runs = [("old", 0), ("new", cap)] if i % 2 == 0 else [("new", cap), ("old", 0)]
        got: dict[str, list[str]] = {}
        for name, depth in runs:
            ms, ids, took = _timed(store, vector, k, total, filters, depth)
            short = name == "new" and took["short"] > 0
            if len(ids) != want and not (short and len(ids) < want):
                raise BenchFailure(f"{filters.describe()}: the {name} path returned "
                                   f"{len(ids)} of {want}")
            (old_ms if name == "old" else new_ms).append(ms)
            got[name] = ids
            if name == "new":
                plans += took
                if short and ids:
                    # By similarity, not id: the scale store holds copies of each vector.
                    floor = float(sims[order[mask[order]][len(ids) - 1]]) - 1e-5
                    short_exact.append(float(np.mean(
                        [sims[position[cid]] >= floor for cid in ids])))
        overlap.append(len(set(got["old"]) & set(got["new"])) / want)
        old_passages = _retrieved(retriever, asked[i], filters, 0)
        new_passages = _retrieved(retriever, asked[i], filters, cap)
        if not old_passages:
            raise BenchFailure(f"{filters.describe()}: retrieval gave no passage")
        same_passages.append(len(set(old_passages) & set(new_passages)) / len(old_passages))
        recall_old.append(len(set(got["old"]) & exact) / want)
        recall_new.append(len(set(got["new"]) & exact) / want)
    share = matching / total
    return {
        "filters": filters.describe(), "matching_chunks": matching,
        "share": round(share, 4),
        "planner_cap": cap if cap is not None else post_filter_cap(total, filters),
        "old_where": _ms(old_ms), "planner": _ms(new_ms),
        "speedup_p50": round(percentile(old_ms, 0.5) / max(percentile(new_ms, 0.5), 1e-9), 1),
        "plans": dict(plans),
        "overlap_mean": round(float(np.mean(overlap)), 3),
        "overlap_min": round(float(np.min(overlap)), 3),
        "recall_old": round(float(np.mean(recall_old)), 3),
        "recall_new": round(float(np.mean(recall_new)), 3),
        # Of the planner's short answers: the share that is the filter's exact best.
        "short_exact": round(float(np.mean(short_exact)), 3) if short_exact else None,
        "same_passages": round(float(np.mean(same_passages)), 3),
        "same_passages_min": round(float(np.min(same_passages)), 3),
        "depth_needed": {"p50": int(percentile(depth_needed, 0.5)),
                         "p95": int(percentile(depth_needed, 0.95)),
                         "max": max(depth_needed)},
        # How often an unfiltered query of ceil(want * o / share) results holds k matches.
        "held_at_oversample": {str(o): round(float(np.mean(
            [d <= math.ceil(want * o / share) for d in depth_needed])), 3)
            for o in OVERSAMPLES},
        "per_question": {"where_ms": [round(v, 2) for v in old_ms],
                         "planner_ms": [round(v, 2) for v in new_ms],
                         "depth_needed": depth_needed},
    }


def table(result: dict[str, Any]) -> str:
    """The figures of one size as a markdown table."""
    planner = result["planner"]
    lines = [f"{result['chunks']:,} chunks, {result['questions']} questions, k = "
             f"{result['k']}; unfiltered {result['unfiltered']['p50_ms']} / "
             f"{result['unfiltered']['p95_ms']} ms (p50 / p95); planner: oversample "
             f"{planner['oversample']:g}, depth {planner['depth'][0]:,} to the cap", "",
             "| filter | share | cap | `where` p50 / p95 ms | planner p50 / p95 ms | paths | "
             "same top k | recall `where` / planner | short ones exact | same passages "
             "(mean / min) | depth for k p50 / p95 |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for name, row in result["filters"].items():
        paths = ", ".join(f"{p} {n}" for p, n in sorted(row["plans"].items()))
        lines.append(
            f"| {name} | {row['share']:.1%} | {row['planner_cap']:,} | "
            f"{row['old_where']['p50_ms']} / "
            f"{row['old_where']['p95_ms']} | {row['planner']['p50_ms']} / "
            f"{row['planner']['p95_ms']} | {paths} | {row['overlap_mean']:.3f} | "
            f"{row['recall_old']:.3f} / {row['recall_new']:.3f} | "
            f"{'' if row['short_exact'] is None else format(row['short_exact'], '.3f')} | "
            f"{row['same_passages']:.3f} / {row['same_passages_min']:.3f} | "
            f"{row['depth_needed']['p50']:,} / {row['depth_needed']['p95']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--k", type=int, default=50, help="results per query (retrieval "
                        "asks for its `candidates`, 50)")
    parser.add_argument("--cap", type=int, default=None, help="pin the planner's deepest "
                        "query (default: its own cap for the store's size)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    embeddings = get_embeddings(offline_settings(ROOT / ".newsdesk-cache" / "unused"))
    results = []
    for target in args.chunks:
        try:
            result = measure_size(embeddings, target, args.questions, args.k, args.cap)
        except BenchFailure as exc:
            print(f"FAILED at {target:,} chunks: {exc}")
            return 1
        results.append(result)
        print(table(result), "\n", flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m evals.follows --split dev|test`: following a story, replayed on MultiHop-RAG.

An empty store gets one follow per temporal or inference question of the split (made before
any article, so each starts as a refusal); then MultiHop-RAG's 609 articles are ingested in
published-date order, one day a batch, through the product's ingest, while the follow watcher
looks at the commit log every second on a thread beside it, as `FollowWatcher.run` does in
the server. Scored per follow, then pooled over the follows (and per question type):

- recall: the share of the question's evidence articles that some update of its follow cites;
- precision: the share of its updates that cite at least one of its evidence articles (an
  update citing only other articles is a false one, however on-topic they are);
- latency: per update, from the commit of the earliest new article it reports (its batch's
  ingest returning) to the update being in the follow book, where the SSE stream reads it
  (the stream itself polls the book every 0.5 s more).

Splits: only MultiHop-RAG's 100 dev questions are shared, so they are halved by position in
the file (as `evals.citecheck` halves them): `dev` the even lines (29 follows), `test` the odd
ones (26), kept for one final run; `--questions` reads another MultiHop-RAG file (all of it).
`--sweep 0.40,0.45,0.45/3` replays once with a follow book and a watcher per setting
(`assistant.follows.MATCH_MIN`, and after a slash `PASSAGES_PER_UPDATE`), each looking after
every batch, no latency figures: what the thresholds were chosen on (dev only). Every run
also reports the reach of each threshold: the share of evidence articles with a chunk that
near the question at all (what recall can reach before the answerer's refusal and the
fresh-passage rule) and how many other articles come that near; and, estimated from the
same updates, recall and precision if a follow whose question names outlets were updated by
their articles only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant import follows
from assistant.answer.outlets import named_outlets
from assistant.follows import OPEN_OWNER, FollowBook, FollowUpdate, FollowWatcher
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import Citation, chunk_id, split_chunk_id
from evals.data import SHARED_DATA
from evals.metrics import EvalQuestion
from evals.run import ArticleEntry, load_articles, load_questions

ARTICLES = SHARED_DATA / "multihop" / "articles.jsonl"
QUESTIONS = SHARED_DATA / "multihop" / "queries_dev.jsonl"
SPLITS = ("dev", "test", "all")
TYPES = ("temporal", "inference")
# Thresholds whose reach (the share of evidence articles that come near at all) is reported.
REACH = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70)


# -- the questions and the articles ------------------------------------------------------


def split_questions(questions: Sequence[EvalQuestion], split: str) -> list[EvalQuestion]:
    """The temporal and inference questions of a split: `dev` those at even positions of the
    file, `test` those at odd ones, `all` every one."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return [q for i, q in enumerate(questions) if q.type in TYPES
            and (split == "all" or i % 2 == (0 if split == "dev" else 1))]


def day_batches(articles: Sequence[ArticleEntry]) -> list[list[ArticleEntry]]:
    """The articles in published order, one batch per publication day."""
    ordered = sorted(articles, key=lambda e: (str(e.record.get("published_at") or ""),
                                              e.dataset_id))
    days: dict[str, list[ArticleEntry]] = {}
    for entry in ordered:
        days.setdefault(str(entry.record.get("published_at") or "")[:10], []).append(entry)
    return list(days.values())


# -- scoring (pure, so it can be checked by hand) ----------------------------------------


@dataclass
class FollowResult:
    """One follow's updates against its question's evidence articles (dataset ids)."""

    id: str
    type: str
    evidence: list[str]
    updates: list[list[str]] = field(default_factory=list)  # articles each update cites
    latency_s: list[float] = field(default_factory=list)  # per update, when measured

    @property
    def found(self) -> list[str]:
        """The evidence articles some update cites."""
        cited = {a for update in self.updates for a in update}
        return [a for a in self.evidence if a in cited]

    @property
    def good_updates(self) -> int:
        """Updates that cite at least one evidence article."""
        wanted = set(self.evidence)
        return sum(bool(wanted.intersection(update)) for update in self.updates)


def summarise(results: Sequence[FollowResult]) -> dict[str, Any]:
    """Recall and precision pooled over the follows (micro), and their per-follow means."""
    evidence = sum(len(r.evidence) for r in results)
    updates = sum(len(r.updates) for r in results)
    with_updates = [r for r in results if r.updates]
    latency = sorted(s for r in results for s in r.latency_s)
    return {
        "follows": len(results),
        "evidence_articles": evidence,
        "found": sum(len(r.found) for r in results),
        "recall": round(sum(len(r.found) for r in results) / evidence, 3) if evidence else None,
        "updates": updates,
        "good_updates": sum(r.good_updates for r in results),
        "precision": (round(sum(r.good_updates for r in results) / updates, 3)
                      if updates else None),
        "recall_mean": (round(statistics.mean(len(r.found) / len(r.evidence)
                                              for r in results if r.evidence), 3)
                        if evidence else None),
        "precision_mean": (round(statistics.mean(r.good_updates / len(r.updates)
                                                 for r in with_updates), 3)
                           if with_updates else None),
        "follows_without_updates": len(results) - len(with_updates),
        "latency_p50_s": _pct(latency, 0.50),
        "latency_p95_s": _pct(latency, 0.95),
        "latency_max_s": round(latency[-1], 2) if latency else None,
    }


def named_outlets_only(result: FollowResult, named: set[str],
                       sources: dict[str, str]) -> FollowResult:
    """The follow's updates, keeping only those that cite an article of an outlet its
    question names (all of them when it names none): what a rule "a follow that names
    outlets is updated by their articles only" would leave, estimated after the fact (a
    dropped update's passages would not have been shown, so later ones could differ)."""
    if not named:
        return result
    return FollowResult(result.id, result.type, result.evidence,
                        [u for u in result.updates if any(sources.get(a) in named for a in u)])


def summarise_by_type(results: Sequence[FollowResult]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, list[FollowResult]] = defaultdict(list)
    for r in results:
        kinds[r.type].append(r)
    return {kind: summarise(rs) for kind, rs in sorted(kinds.items())}


def _pct(ordered: list[float], q: float) -> float | None:
    """The q quantile of sorted values by the nearest rank; None for none."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 2)


# -- the replay --------------------------------------------------------------------------


class _TimedBook(FollowBook):
    """The follow book, noting when each update is in it (when the SSE stream can read it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.written: dict[tuple[str, int], float] = {}

    def add_update(self, follow_id: str, text: str, citations: list[Citation],
                   article_ids: list[str]) -> FollowUpdate | None:
        update = super().add_update(follow_id, text, citations, article_ids)
        if update is not None:
            self.written[(follow_id, update.n)] = time.time()
        return update


@dataclass(frozen=True)
class Tuning:
    """The watcher's thresholds for a run (None: the product's)."""

    match_min: float | None = None
    passages: int | None = None

    @classmethod
    def parse(cls, text: str) -> Tuning:
        """`0.45` or `0.45/3` (MATCH_MIN / PASSAGES_PER_UPDATE)."""
        match_min, _, passages = text.strip().partition("/")
        return cls(float(match_min), int(passages) if passages else None)

    @property
    def label(self) -> str:
        return f"{self.value('match_min'):.2f}/{self.value('passages')}"

    def value(self, name: str) -> Any:
        mine = getattr(self, name)
        product = {"match_min": follows.MATCH_MIN, "passages": follows.PASSAGES_PER_UPDATE}
        return product[name] if mine is None else mine

    def watcher(self, assistant: Assistant, book: FollowBook, every_s: float) -> FollowWatcher:
        """A watcher over `book` with these thresholds."""
        return FollowWatcher(assistant, book, every_s=every_s,
                             match_min=self.value("match_min"), passages=self.value("passages"))


@dataclass
class Replay:
    """What one replay produced: the follows' books, and when each article was committed."""

    books: dict[str, _TimedBook]  # "run", or a swept setting's label -> its book
    follow_ids: dict[str, str]  # question id -> follow id (the same in every book)
    committed: dict[str, float]  # store article id -> commit time (time.time())
    external: dict[str, str]  # store article id -> dataset id
    reach: dict[str, Any]
    counts: dict[str, int]
    ingest_s: float
    looks: dict[str, dict[str, float]]  # per book: checks, chunks, near, updates, seconds


def replay(settings: Settings, articles: Sequence[ArticleEntry],
           questions: Sequence[EvalQuestion], sweep: Sequence[Tuning] | None = None,
           tuning: Tuning = Tuning(), console: Console | None = None,
           quiet: bool = False, every_s: float = 1.0, origin: str = str(ARTICLES)) -> Replay:
    """Follow `questions` on an empty store at `settings.data_dir`, then ingest `articles`
    a day at a time. Without `sweep`, one watcher polls in the background every `every_s`
    (with `tuning`'s thresholds); with it, a book and watcher per setting, each looking
    after every batch."""
    from ingest.pipeline import Ingestor

    console = console or Console(stderr=True)
    assistant = Assistant(settings)
    try:
        follow_ids = {q.id: assistant.follow(q.question).id for q in questions}
        source = assistant.follow_book.path
        labels = [t.label for t in sweep] if sweep else ["run"]
        books = {}
        for label in labels:
            path = source.with_name(f"follows-{label.replace('/', '-')}.sqlite")
            shutil.copyfile(source, path)
            books[label] = _TimedBook(path)
        tunings = dict(zip(labels, sweep or [tuning], strict=True))
        watchers = {label: tunings[label].watcher(assistant, book, every_s)
                    for label, book in books.items()}
        for watcher in watchers.values():
            watcher.check()  # the first look: follow from the (empty) store's head on
        looks = {label: {"checks": 0, "chunks": 0, "near": 0, "updates": 0, "match_s": 0.0,
                         "answer_s": 0.0} for label in labels}

        def note(label: str, done: follows.Matched) -> None:
            look = looks[label]
            look["checks"] += 1
            for name in ("chunks", "near", "updates", "match_s", "answer_s"):
                look[name] += getattr(done, name)

        ingestor = Ingestor(settings, store=assistant.store, embeddings=assistant.embeddings)
        committed: dict[str, float] = {}
        counts: dict[str, int] = {}
        stop = threading.Event()
        failures: list[BaseException] = []
        background = None
        if not sweep:
            background = threading.Thread(target=_poll, name="follow-watcher",
                                          args=(watchers["run"], stop, every_s, note,
                                                failures),
                                          daemon=True)
        batches = day_batches(articles)
        started = time.perf_counter()
        with _progress(console, quiet) as progress:
            task = progress.add_task("Replaying", total=len(articles))
            if background is not None:
                background.start()
            for batch in batches:
                # Named as `newsdesk-eval` names them, so metadata defaults come out the same.
                report = ingestor.ingest_records([e.record for e in batch], origin=origin)
                now = time.time()
                for name, n in report.counts.items():
                    counts[name] = counts.get(name, 0) + n
                for _, article_id, status in report.articles:
                    if status in ("added", "updated"):
                        committed.setdefault(article_id, now)
                for label in labels if sweep else ():
                    note(label, watchers[label].check())
                progress.update(task, advance=len(batch), refresh=True)
                if failures:
                    break
            ingest_s = time.perf_counter() - started
            if background is not None:
                # Let the watcher finish the last batches, then stop it.
                head = assistant.store.log_head()
                while (books["run"].cursor() or 0) < head and background.is_alive():
                    time.sleep(0.2)
                stop.set()
                background.join()
                if failures:
                    raise RuntimeError("the follow watcher failed") from failures[0]
        external = _external_ids(assistant)
        reach = _reach(assistant, books[labels[0]], questions, follow_ids, external)
        return Replay(books, follow_ids, committed, external, reach, counts,
                      round(ingest_s, 1),
                      {label: {k: round(v, 2) for k, v in look.items()}
                       for label, look in looks.items()})
    finally:
        assistant.close()


def _poll(watcher: FollowWatcher, stop: threading.Event, every_s: float, note: Any,
          failures: list[BaseException]) -> None:
    """`FollowWatcher.run`'s loop, keeping what each look did (and a failure, which ends
    the replay: its figures would miss the updates)."""
    while not stop.is_set():
        try:
            note("run", watcher.check())
        except Exception as exc:
            failures.append(exc)
            return
        stop.wait(every_s)


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=quiet, transient=True,
                    auto_refresh=False)


def _external_ids(assistant: Assistant) -> dict[str, str]:
    """Store article id -> dataset id, for every stored article."""
    found: dict[str, str] = {}
    while True:
        page = assistant.store.list_articles(offset=len(found), limit=5000)
        found.update((r.article_id, r.external_id) for r in page)
        if len(page) < 5000:
            return found


def _reach(assistant: Assistant, book: FollowBook, questions: Sequence[EvalQuestion],
           follow_ids: dict[str, str], external: dict[str, str]) -> dict[str, Any]:
    """Per threshold: the share of evidence articles with a chunk that near their follow's
    question, and the mean count of other articles that near, per follow."""
    store = assistant.store
    versions = store.visible_versions(list(external))
    ids = [chunk_id(aid, v.content_hash, i) for aid, v in versions.items()
           for i in range(v.n_chunks)]
    vectors = store.chunk_vectors(ids)
    ids = [cid for cid in ids if cid in vectors]
    owners = [external[split_chunk_id(cid)[0]] for cid in ids]  # type: ignore[index]
    chunks = np.stack([vectors[cid] for cid in ids])
    targets = {t.id: t for t in book.targets()}
    names = sorted(set(owners))
    index = {name: i for i, name in enumerate(names)}
    column = np.array([index[o] for o in owners])
    reach: dict[str, Any] = {}
    best_per_follow = []
    for q in questions:
        vector = targets[follow_ids[q.id]].vector
        sims = chunks @ (vector / (float(np.linalg.norm(vector)) or 1.0))
        best = np.full(len(names), -1.0)
        np.maximum.at(best, column, sims)
        best_per_follow.append((q, best))
    for t in REACH:
        near_evidence = total = others = 0
        for q, best in best_per_follow:
            gold = [index[a] for a in q.evidence_articles if a in index]
            total += len(q.evidence_articles)
            near_evidence += sum(best[g] >= t for g in gold)
            others += int((best >= t).sum()) - sum(best[g] >= t for g in gold)
        reach[f"{t:.2f}"] = {"evidence_near": round(near_evidence / total, 3) if total else None,
                             "other_articles_near_per_follow":
                                 round(others / len(best_per_follow), 1)}
    return reach


def score(run: Replay, label: str, questions: Sequence[EvalQuestion]) -> list[FollowResult]:
    """Each follow's updates in the book `label`, against its question's evidence."""
    book = run.books[label]
    results = []
    for q in questions:
        follow = book.get(OPEN_OWNER, run.follow_ids[q.id])
        assert follow is not None
        result = FollowResult(q.id, q.type, sorted(q.evidence_articles))
        for update in follow.updates:
            result.updates.append(sorted({run.external.get(c.article_id, c.article_id)
                                          for c in update.citations}))
            written = book.written.get((follow.id, update.n))
            commits = [run.committed[a] for a in update.article_ids if a in run.committed]
            if label == "run" and written is not None and commits:
                result.latency_s.append(written - min(commits))
        results.append(result)
    return results


# -- running -----------------------------------------------------------------------------


def evaluate(split: str = "dev", questions_path: Path = QUESTIONS,
             articles_path: Path = ARTICLES, sweep: Sequence[Tuning] | None = None,
             tuning: Tuning = Tuning(), settings: Settings | None = None,
             limit_articles: int | None = None, every_s: float = 1.0,
             console: Console | None = None, quiet: bool = False) -> dict[str, Any]:
    """Replay the corpus for the split's follows in a temporary store; the report.

    `settings` (default: from the environment) choose the index and the answer mode; their
    store location is replaced by a temporary one. `every_s`: the watcher's poll interval
    (the server's is 1 s)."""
    settings = settings or Settings()
    console = console or Console(stderr=True)
    articles = load_articles(articles_path)
    questions = load_questions(questions_path, articles)
    # The shared dev file is halved; another file (held-out questions) is used whole.
    split = split if Path(questions_path).resolve() == QUESTIONS.resolve() else "all"
    chosen = split_questions(questions, split)
    if limit_articles:
        articles = sorted(articles, key=lambda e: str(e.record.get("published_at")))
        articles = articles[:limit_articles]
    with tempfile.TemporaryDirectory(prefix="newsdesk-follows-") as tmp:
        # Every article stored on its own, as `newsdesk-eval` does: an evidence article
        # collapsed into a near-duplicate could never be cited under its own id.
        run_settings = settings.model_copy(update={"data_dir": Path(tmp) / "store",
                                                   "chroma_host": None, "dedup": False})
        run = replay(run_settings, articles, chosen, sweep=sweep, tuning=tuning,
                     console=console, quiet=quiet, every_s=every_s, origin=str(articles_path))
        sources = {e.dataset_id: str(e.record.get("source") or "") for e in articles}
        held = sorted(set(sources.values()) - {""})
        named = {q.id: {o for o, _ in named_outlets(q.question, held)} for q in chosen}
        runs = {}
        for label in run.books:
            results = score(run, label, chosen)
            narrowed = [named_outlets_only(r, named[r.id], sources) for r in results]
            setting = tuning if label == "run" else Tuning.parse(label)
            runs[label] = {
                "match_min": setting.value("match_min"),
                "passages_per_update": setting.value("passages"),
                **summarise(results), "by_type": summarise_by_type(results),
                "looks": run.looks[label],
                "if_named_outlets_only": {
                    k: v for k, v in summarise(narrowed).items()
                    if k in ("recall", "found", "precision", "good_updates", "updates")},
                "per_follow": [{**asdict(r), "found": r.found, "good_updates": r.good_updates}
                               for r in results],
            }
    report: dict[str, Any] = {
        "split": split,
        "questions_file": str(questions_path), "articles_file": str(articles_path),
        "articles": len(articles), "ingest": run.counts, "replay_s": run.ingest_s,
        "batches": "one per publication day",
        "reach": run.reach,
    }
    if sweep:
        report["sweep"] = runs
    else:
        report.update(runs["run"])
    return report


def _line(name: str, figures: dict[str, Any]) -> str:
    def fmt(value: Any) -> str:
        return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    latency = ("" if figures.get("latency_p50_s") is None else
               f" | {figures['latency_p50_s']:.2f} / {figures['latency_p95_s']:.2f} / "
               f"{figures['latency_max_s']:.2f}")
    return (f"| {name} | {figures['follows']} | {fmt(figures['recall'])} "
            f"({figures['found']}/{figures['evidence_articles']}) | "
            f"{fmt(figures['precision'])} ({figures['good_updates']}/{figures['updates']}) | "
            f"{figures['follows_without_updates']}{latency} |")


def _what_if(figures: dict[str, Any]) -> str:
    narrowed = figures["if_named_outlets_only"]
    return " / ".join("—" if narrowed[k] is None else f"{narrowed[k]:.3f}"
                      for k in ("recall", "precision"))


def report_text(report: dict[str, Any]) -> str:
    """The figures as markdown tables (as pasted into docs/evaluation.md)."""
    lines = [f"split {report['split']}: {report['articles']} articles replayed in "
             f"{report['replay_s']} s", ""]
    if "sweep" in report:
        lines += ["| MATCH_MIN / passages | follows | recall | precision | "
                  "follows without updates | named outlets only: recall / precision |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [_line(label, figures)[:-1] + f"| {_what_if(figures)} |"
                  for label, figures in report["sweep"].items()]
    else:
        lines += [f"MATCH_MIN {report['match_min']}, PASSAGES_PER_UPDATE "
                  f"{report['passages_per_update']}", "",
                  "| follows | n | recall | precision | without updates | "
                  "latency p50 / p95 / max, s |", "|---|---:|---:|---:|---:|---:|"]
        lines += [_line(kind, figures) for kind, figures in report["by_type"].items()]
        lines += [_line("all", report), "",
                  f"updates only from outlets the question names (estimated): recall / "
                  f"precision {_what_if(report)}"]
    lines += ["", "| threshold | evidence articles that near | other articles that near, "
                  "per follow |", "|---|---:|---:|"]
    lines += [f"| {t} | {r['evidence_near']} | {r['other_articles_near_per_follow']} |"
              for t, r in report["reach"].items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.follows",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, default="dev",
                        help="dev: even lines of the dev file; test: odd lines (default dev)")
    parser.add_argument("--questions", type=Path, default=QUESTIONS,
                        help="a MultiHop-RAG questions file (another than the shared dev "
                             "file is used whole)")
    parser.add_argument("--sweep", default=None, metavar="T1,T2/P,...",
                        help="replay once with a watcher per MATCH_MIN value (and, after a "
                             "slash, PASSAGES_PER_UPDATE)")
    parser.add_argument("--match-min", type=float, default=None,
                        help="run at this MATCH_MIN instead of the product's")
    parser.add_argument("--passages", type=int, default=None,
                        help="run at this PASSAGES_PER_UPDATE instead of the product's")
    parser.add_argument("--corpus", type=Path, default=ARTICLES,
                        help="the MultiHop-RAG articles file (default the shared one)")
    parser.add_argument("--first", type=int, default=None, metavar="N",
                        help="only the first N articles by date (for development)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sweep = [Tuning.parse(v) for v in args.sweep.split(",")] if args.sweep else None
    report = evaluate(args.split, args.questions, args.corpus, sweep=sweep,
                      tuning=Tuning(args.match_min, args.passages),
                      limit_articles=args.first, quiet=args.quiet)
    print(report_text(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

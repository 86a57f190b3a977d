"""`newsdesk-eval ARTICLES QUESTIONS`: measure retrieval and answers on a benchmark.

The articles go through the product's own ingest (cleaning, metadata, chunking, embeddings,
store) into a store cached per articles file and ingest code; every question goes through the
product's own retriever and answering chain (`Assistant`). Reads MultiHop-RAG and RGB files
(../shared/data); the metrics are in `evals.metrics`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.errors import EmbeddingError, IngestError, LLMError, QuestionError, StoreError
from assistant.index.embeddings import NewsEmbeddings, get_embeddings
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import Passage
from evals.metrics import (
    METRIC_KEYS,
    EvalQuestion,
    EvidenceItem,
    QuestionResult,
    answer_correct,
    locate_fact,
    score_retrieval,
    summarise,
    summarise_by_type,
)
from ingest.cleaning import normalise
from ingest.metadata import to_article
from ingest.readers import from_record

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(".newsdesk-cache") / "eval"
# The modules that decide what is stored for an article (its text, offsets, chunks and
# metadata): a cached store built with other versions of them is not reused. Speed-ups
# elsewhere (pipeline batching, the embedder) keep the cache; `--fresh` ignores it.
INGEST_CODE = [*(ROOT / "ingest" / f"{name}.py"
                 for name in ("readers", "cleaning", "metadata", "chunking")),
               ROOT / "assistant" / "types.py", ROOT / "assistant" / "index" / "sentences.py"]
INGEST_SLICE = 32  # articles per ingest call: the progress bar moves, batches stay full


class EvalInputError(ValueError):
    """An articles or questions file cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class ArticleEntry:
    """One article record of the articles file and where it is."""

    location: str
    record: dict[str, Any]

    @property
    def dataset_id(self) -> str:
        return str(self.record.get("id") or "").strip()


# -- reading the files -------------------------------------------------------------------


def _json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """(file:line, value) of every non-blank line of a JSONL file, or of every item of a JSON
    list (file[i])."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path}: cannot read: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from exc
        items = data if isinstance(data, list) else [data]
        yield from ((f"{path}[{i}]", item) for i, item in enumerate(items))
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{lineno}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}:{lineno}: malformed JSON: {exc.msg}") from exc


def load_articles(path: Path) -> list[ArticleEntry]:
    """The article records of a .jsonl (or .json list) file; each must be ingestible JSON."""
    entries = []
    for location, record in _json_lines(path):
        try:
            from_record(location, record)
        except IngestError as exc:
            raise EvalInputError(str(exc)) from exc
        entries.append(ArticleEntry(location, record))
    if not entries:
        raise EvalInputError(f"{path}: holds no articles")
    return entries


def _text(record: dict[str, Any], name: str, location: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise EvalInputError(f"{location}: field {name!r} must be a non-empty string")
    return value


def _multihop_question(location: str, record: dict[str, Any],
                       bodies: dict[str, str | None]) -> EvalQuestion:
    kind = str(record.get("type") or "null")
    evidence = record.get("evidence")
    if not isinstance(evidence, list):
        raise EvalInputError(f"{location}: field 'evidence' must be a list")
    items = []
    for j, ev in enumerate(evidence):
        if not isinstance(ev, dict) or not isinstance(ev.get("article_id"), str):
            raise EvalInputError(f"{location}: evidence[{j}] needs an 'article_id'")
        fact = str(ev.get("fact") or "")
        hint = ev.get("fact_start") if isinstance(ev.get("fact_start"), int) else 0
        body = bodies.get(ev["article_id"])
        # Cleaning also normalises the fact's characters (NFC, no invisible ones, spaces).
        span = (locate_fact(body, fact, hint) or locate_fact(body, normalise(fact), hint)
                if body else None)
        items.append(EvidenceItem(ev["article_id"], fact, span))
    answer = str(record.get("answer") or "")
    answerable = kind != "null"
    return EvalQuestion(
        id=str(record.get("id") or location), question=_text(record, "question", location),
        type=kind, answers=(answer,) if answer else (), answerable=answerable,
        evidence=tuple(items) if answerable else (), location=location)


def _rgb_question(location: str, record: dict[str, Any]) -> EvalQuestion:
    answers = record.get("answers")
    if not isinstance(answers, list) or not all(
            isinstance(a, str) or (isinstance(a, list) and all(isinstance(x, str) for x in a))
            for a in answers):
        raise EvalInputError(f"{location}: field 'answers' must be a list of strings or of "
                             "lists of strings")
    positives = record.get("positive_ids") or []
    if not isinstance(positives, list):
        raise EvalInputError(f"{location}: field 'positive_ids' must be a list")
    answerable = bool(record.get("answerable", True))
    return EvalQuestion(
        id=str(record.get("id") or location), question=_text(record, "question", location),
        type="answerable" if answerable else "unanswerable",
        answers=tuple(a if isinstance(a, str) else tuple(a) for a in answers),
        answerable=answerable,
        # Unanswerable questions' positives are left out of the corpus: nothing to retrieve.
        evidence=tuple(EvidenceItem(str(p)) for p in positives) if answerable else (),
        location=location)


def cleaned_bodies(articles: Sequence[ArticleEntry], ids: set[str]) -> dict[str, str | None]:
    """The body the store keeps (which chunk offsets refer to) of the articles with these
    dataset ids, made by the product's own reader and cleaning; None when cleaning fails."""
    bodies: dict[str, str | None] = {}
    for entry in articles:
        if entry.dataset_id in ids and entry.dataset_id not in bodies:
            try:
                bodies[entry.dataset_id] = to_article(
                    from_record(entry.location, entry.record)).body
            except IngestError:
                bodies[entry.dataset_id] = None
    return bodies


def load_questions(path: Path, articles: Sequence[ArticleEntry]) -> list[EvalQuestion]:
    """The questions of a MultiHop-RAG or RGB file (the format is told per record)."""
    raw = list(_json_lines(path))
    wanted = {ev.get("article_id") for _, r in raw if isinstance(r, dict)
              for ev in (r.get("evidence") if isinstance(r.get("evidence"), list) else [])
              if isinstance(ev, dict)}
    bodies = cleaned_bodies(articles, {w for w in wanted if isinstance(w, str)})
    questions = []
    for location, record in raw:
        if not isinstance(record, dict):
            raise EvalInputError(f"{location}: expected a JSON object, got "
                                 f"{type(record).__name__}")
        if "evidence" in record:
            questions.append(_multihop_question(location, record, bodies))
        elif "answers" in record:
            questions.append(_rgb_question(location, record))
        else:
            raise EvalInputError(
                f"{location}: neither a MultiHop-RAG question (question, answer, type, evidence) "
                "nor an RGB question (question, answers, positive_ids, answerable)")
    if not questions:
        raise EvalInputError(f"{path}: holds no questions")
    return questions


# -- the store ---------------------------------------------------------------------------


def cache_key(articles: Path, settings: Settings, embeddings: NewsEmbeddings) -> str:
    """Changes with the articles file, the index settings and the ingest code."""
    digest = hashlib.sha1(articles.read_bytes())
    digest.update(f"|{embeddings.name}|{settings.chunk_tokens}|{settings.chunk_overlap}|"
                  f"{settings.collection}".encode())
    for path in INGEST_CODE:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _store_dir(cache_dir: Path, key: str, fresh: bool) -> Iterator[Path]:
    """The cached store directory for `key` (locked against a concurrent run), or a temporary
    one with `fresh`."""
    if fresh:
        with tempfile.TemporaryDirectory(prefix="newsdesk-eval-") as tmp:
            yield Path(tmp) / "store"
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield cache_dir / key


def _progress(console: Console, quiet: bool) -> Progress:
    # Refreshed by hand after each step, so no refresh thread competes with the timed work.
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=quiet, transient=True,
                    auto_refresh=False)


@dataclass
class BuiltStore:
    """The ingestor over the eval store, what the ingest did, and the articles it refused."""

    ingestor: Any  # ingest.pipeline.Ingestor, imported late (it loads the model)
    counts: dict[str, int]
    failures: list[str]


def build_store(settings: Settings, articles_path: Path, articles: Sequence[ArticleEntry],
                embeddings: NewsEmbeddings, console: Console, quiet: bool = False) -> BuiltStore:
    """Ingest the articles with the product's ingest. Articles already stored unchanged are
    skipped, so re-running on a cached store is quick and also finishes an interrupted build."""
    from ingest.pipeline import Ingestor

    ingestor = Ingestor(settings, embeddings=embeddings)
    built = BuiltStore(ingestor, {"added": 0, "updated": 0, "unchanged": 0, "failed": 0}, [])
    with _progress(console, quiet) as progress:
        task = progress.add_task("Ingesting", total=len(articles))
        for start in range(0, len(articles), INGEST_SLICE):
            part = articles[start:start + INGEST_SLICE]
            # Named like the file route names records, so metadata defaults come out the same.
            report = ingestor.ingest_records([e.record for e in part], origin=str(articles_path))
            for name, n in report.counts.items():
                built.counts[name] = built.counts.get(name, 0) + n
            for error in report.errors:
                index = re.search(r"\[(\d+)\]$", error.location)
                where = part[int(index.group(1))].location if index else error.location
                built.failures.append(f"{where}: {error.reason}")
            progress.update(task, advance=len(part), refresh=True)
    return built


# -- running -----------------------------------------------------------------------------


def _external_ids(assistant: Assistant) -> dict[str, str]:
    """Store article id -> dataset id, for every stored article."""
    found: dict[str, str] = {}
    offset = 0
    while True:
        page = assistant.store.list_articles(offset=offset, limit=5000)
        found.update((r.article_id, r.external_id) for r in page)
        if len(page) < 5000:
            return found
        offset += len(page)


def _timed_retrieve(assistant: Assistant, query: str, k: int) -> tuple[list[Passage], float]:
    """The top k passages and the milliseconds taken, retrieved on a fresh worker thread as the
    server's requests are (FastAPI and Gradio run the sync handlers on worker threads): on a
    busy machine, torch on the main thread can take ten times longer for the same query,
    which would time this process rather than the product."""

    def run() -> tuple[list[Passage], float]:
        started = time.perf_counter()
        ranked, _ = assistant.retriever.retrieve(query, k)
        return ranked, (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(1) as worker:
        return worker.submit(run).result()


def ask_question(assistant: Assistant, question: EvalQuestion, k: int,
                 external: dict[str, str]) -> QuestionResult:
    """Retrieve the top k passages and answer one question; score both."""
    result = QuestionResult(question.id, question.type, question.answerable,
                            n_evidence=len(question.evidence))
    ranked, result.retrieve_ms = _timed_retrieve(assistant, question.question, k)
    result.retrieved = [p.external_id for p in ranked]
    if question.evidence:
        result.first_hit, result.items_hit = score_retrieval(ranked, question.evidence)
    started = time.perf_counter()
    try:
        answer = assistant.ask(question.question)
    except (LLMError, QuestionError) as exc:
        result.answer_ms = (time.perf_counter() - started) * 1000
        result.error = str(exc)
        return result
    result.answer_ms = (time.perf_counter() - started) * 1000
    result.answer = answer.answer
    result.refused = answer.refused
    result.correct = not result.refused and answer_correct(answer.answer, question.answers)
    if not result.refused:
        good = question.evidence_articles
        result.citations = len(answer.citations)
        result.cited = [external.get(c.article_id, "") for c in answer.citations]
        result.good_citations = sum(external.get(c.article_id, "") in good
                                    for c in answer.citations)
    return result


def evaluate(articles_path: Path, questions_path: Path, settings: Settings | None = None, *,
             k: int = 10, limit: int | None = None, cache_dir: Path = DEFAULT_CACHE,
             fresh: bool = False, console: Console | None = None,
             quiet: bool = False) -> dict[str, Any]:
    """Ingest the articles, ask the questions and return the report (the `--json` content).

    `settings` (default: from the environment) choose the index and the answer mode; their
    store location is replaced by the eval's own store. Raises `EvalInputError` for bad files.
    """
    settings = settings or Settings()
    console = console or Console(stderr=True)
    articles = load_articles(articles_path)
    questions = load_questions(questions_path, articles)[:limit]
    embeddings = get_embeddings(settings)
    key = cache_key(articles_path, settings, embeddings)
    with _store_dir(cache_dir, key, fresh) as store_dir:
        # The datasets score retrieval and citations by passage id: a copy collapsed into
        # another passage would count as a miss though its text is retrieved. So every
        # passage is stored on its own here (RGB zh holds ~890 near-duplicate snippets).
        run_settings = settings.model_copy(update={"data_dir": store_dir, "chroma_host": None,
                                                   "dedup": False})
        built = build_store(run_settings, articles_path, articles, embeddings, console, quiet)
        for failure in built.failures:
            console.print(f"[yellow]not ingested:[/yellow] {escape(failure)}", soft_wrap=True)
        assistant = Assistant(run_settings, store=built.ingestor.store)
        try:
            report = _ask_all(assistant, questions, k, console, quiet)
        finally:
            assistant.close()  # the local model's server, with `llm_gguf`
        report.update({
            "k": k, "articles": len(articles), "articles_file": str(articles_path),
            "questions_file": str(questions_path),
            "store": None if fresh else str(store_dir.resolve()),
            "ingest": built.counts, "ingest_failures": built.failures,
        })
    return report


def _ask_all(assistant: Assistant, questions: Sequence[EvalQuestion], k: int,
             console: Console, quiet: bool) -> dict[str, Any]:
    """Every question asked and scored: the report without its ingest part."""
    external = _external_ids(assistant)
    known = set(external.values())
    missing = {item.article for q in questions for item in q.evidence} - known
    if missing:
        console.print(f"[yellow]warning:[/yellow] {len(missing)} evidence article(s) are not "
                      "in the store; their evidence can never be found", soft_wrap=True)
    # First-call costs (lazy imports, caches) stay out of the timings; a remote model is
    # not asked (it may be paid for).
    _timed_retrieve(assistant, "warm-up", k)
    if assistant.mode == "extractive" or assistant.settings.llm_gguf is not None:
        assistant.ask("warm-up")
    results = []
    with _progress(console, quiet) as progress:
        task = progress.add_task("Asking", total=len(questions))
        for question in questions:
            results.append(ask_question(assistant, question, k, external))
            progress.update(task, advance=1, refresh=True)
    for r in results:
        if r.error:
            console.print(f"[red]failed:[/red] {escape(r.id)}: {escape(r.error)}",
                          soft_wrap=True)
    report: dict[str, Any] = summarise(results, assistant.mode)
    report["by_type"] = summarise_by_type(results, assistant.mode)
    report.update({
        "errors": sum(bool(r.error) for r in results),
        "per_question": [asdict(r) for r in results],
    })
    if assistant.settings.llm_gguf is not None:
        report["llm_gguf"] = assistant.settings.llm_gguf.name
    return report


# -- presenting --------------------------------------------------------------------------


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.endswith("_ms"):
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def report_table(report: dict[str, Any]) -> Table:
    """Metrics down, question types (and overall) across."""
    columns = {**report["by_type"], "overall": report}
    model = f", {report['llm_gguf']}" if report.get("llm_gguf") else ""
    table = Table(title=f"newsdesk-eval ({report['mode']} mode{model}, k={report['k']})")
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right", style="bold" if name == "overall" else None)
    for key in METRIC_KEYS:
        if key != "mode":
            table.add_row(key, *(_cell(key, figures[key]) for figures in columns.values()))
    return table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdesk-eval",
        description="Evaluate retrieval and answers on MultiHop-RAG or RGB files: ingest the "
                    "articles into a cached store, ask every question, print the figures.")
    parser.add_argument("articles", type=Path, help="articles, one JSON object a line (.jsonl)")
    parser.add_argument("questions", type=Path, help="questions (.jsonl), MultiHop-RAG or RGB")
    parser.add_argument("--k", type=int, default=10,
                        help="passages ranked per question for the retrieval figures "
                             "(default 10; the @10 figures need at least 10)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"where built stores are kept (default {DEFAULT_CACHE})")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore the cache: build a temporary store, removed afterwards")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--llm-gguf", default=None, metavar="PATH",
                        help="answer in LLM mode with this GGUF model, served by newsdesk "
                             "(as NEWSDESK_LLM_GGUF; `smollm2` for the packaged SmolLM2-135M)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: 0 when done, 2 for unusable input files, 1 when the store or model fails."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.k < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--k and --limit must be at least 1")
    err = Console(stderr=True, highlight=False)
    try:
        settings = Settings(**({"llm_gguf": args.llm_gguf} if args.llm_gguf else {}))
    except ValidationError as exc:
        parser.error(f"--llm-gguf: {exc.errors()[0]['msg']}")
    try:
        report = evaluate(args.articles, args.questions, settings, k=args.k, limit=args.limit,
                          cache_dir=args.cache_dir, fresh=args.fresh, console=err,
                          quiet=args.quiet)
    except EvalInputError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return 2
    except (StoreError, EmbeddingError, LLMError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return 1
    Console(highlight=False).print(report_table(report))
    if report["store"]:
        err.print(f"store: {report['store']}", soft_wrap=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

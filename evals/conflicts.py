"""Conflicting sources: how often an answer shows both versions when the news disagrees, and
how often it shows a disagreement that is not there.

`python -m evals.conflicts [--sets NAME ...] [--limit N] [--json OUT]` ingests each set's
articles with the product's ingest into a store kept under `.newsdesk-cache/conflicts/<set>`
(a rerun skips unchanged articles) and asks every question through `Assistant.ask`:

- `rgb-counterfactual`: RGB en passages plus `counterfactual.jsonl` (the same passages with a
  planted wrong fact); the answerable questions that have planted passages. Shown: the answer
  lists a disagreement, a version holds an accepted answer, and one cites a planted passage.
- `own`: `evals/conflict_set/` (written for newsdesk): pairs of reports that disagree on a
  number, a date, a place or a name (shown: both values in the answer's versions), and pairs
  that agree in other words (false: any disagreement shown). The rules were tuned on it.
- `own-second`: `evals/conflict_set/second/`, the same kind of set written apart from the
  rules (by another hand); measured once as held out, then studied and tuned on.
- `own-heldout`: `evals/conflict_set/heldout/`, a third such set, written apart and never
  studied: the figure that says how the rules do on reports they were not fitted to.
- `rgb-answerable`, `multihop-dev`: the RGB en answerable questions over the RGB en passages,
  and the MultiHop-RAG dev questions over its articles: the share with a disagreement shown,
  none being planted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.dates import replace_dates
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import Answer, make_article_id
from evals.data import SHARED_DATA

HERE = Path(__file__).resolve().parent
OWN = HERE / "conflict_set"
OWN_SECOND = OWN / "second"
OWN_HELDOUT = OWN / "heldout"
CACHE = Path(".newsdesk-cache") / "conflicts"
SETS = ("rgb-counterfactual", "own", "own-second", "own-heldout", "rgb-answerable",
        "multihop-dev")


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _assistant(name: str, files: list[Path], cache: Path) -> Assistant:
    from ingest.pipeline import Ingestor

    settings = Settings(_env_file=None, data_dir=cache / name, openai_api_key=None,
                        openai_base_url=None, chroma_host=None)
    ingestor = Ingestor(settings)
    report = ingestor.ingest(files)
    if report.errors:
        raise SystemExit(f"ingest of {name} failed: {report.errors[:3]}")
    return Assistant(settings, store=ingestor.store)


def _plain(text: str) -> str:
    """Lower case, punctuation as spaces, dates as yyyy-mm-dd: "Jul 21, 2017" matches
    "jul 21 2017" and "21 July 2017"."""
    text = replace_dates(text, lambda d: d.iso.replace("-", " "), need_year=True)
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


def _versions_text(answer: Answer) -> list[str]:
    """Each version's value and the passages it cites, in `_plain` form."""
    cited = {c.n: c.passage for c in answer.citations}
    return [_plain(" ".join([v.value, *(cited.get(n, "") for n in v.citations)]))
            for v in answer.conflict]


def _shown(answer: Answer, wanted: list[str]) -> bool:
    """The answer lists a disagreement in which every wanted value has a version."""
    texts = _versions_text(answer)
    return bool(answer.conflict) and all(any(_plain(w) in t for t in texts) for w in wanted)


def rgb_counterfactual(assistant: Assistant, limit: int | None) -> dict[str, Any]:
    rgb = SHARED_DATA / "rgb" / "en"
    planted: dict[int, set[str]] = {}
    for row in _lines(rgb / "counterfactual.jsonl"):
        planted.setdefault(int(row["query_id"]), set()).add(make_article_id(row["id"]))
    rows = []
    for i, q in enumerate(_lines(rgb / "questions.jsonl")):
        if q["answerable"] and i in planted:
            rows.append((i, q))
    rows = rows[:limit]
    shown, results = 0, []
    for i, q in rows:
        answer = assistant.ask(q["question"])
        texts = _versions_text(answer)
        golds = list(_strings(q["answers"]))
        true_side = any(_plain(g) in t for g in golds for t in texts)
        cited = {c.n: c.article_id for c in answer.citations}
        planted_side = any(cited.get(n) in planted[i] for v in answer.conflict
                           for n in v.citations)
        ok = bool(answer.conflict) and true_side and planted_side
        shown += ok
        results.append({"question": q["question"], "shown": ok, "answers": golds,
                        "conflict": bool(answer.conflict), "answer": answer.answer[:300]})
    return {"questions": len(rows), "both_shown": _share(shown, len(rows)),
            "conflict_shown": _share(sum(r["conflict"] for r in results), len(rows)),
            "results": results}


def own(assistant: Assistant, limit: int | None, folder: Path = OWN) -> dict[str, Any]:
    rows = list(_lines(folder / "questions.jsonl"))[:limit]
    disagree = [r for r in rows if r["versions"]]
    agree = [r for r in rows if not r["versions"]]
    results = []
    for r in rows:
        answer = assistant.ask(r["question"])
        results.append({"question": r["question"], "expected": r["versions"],
                        "shown": _shown(answer, r["versions"]) if r["versions"] else False,
                        "conflict": bool(answer.conflict)})
    both = sum(x["shown"] for x in results if x["expected"])
    false = sum(x["conflict"] for x in results if not x["expected"])
    return {"questions": len(rows), "disagreeing": len(disagree),
            "both_shown": _share(both, len(disagree)), "agreeing": len(agree),
            "false_conflict": _share(false, len(agree)), "results": results}


def false_conflicts(assistant: Assistant, questions: list[str]) -> dict[str, Any]:
    results = []
    for question in questions:
        answer = assistant.ask(question)
        results.append({"question": question, "conflict": bool(answer.conflict),
                        "answer": answer.answer[:300] if answer.conflict else ""})
    flagged = sum(r["conflict"] for r in results)
    return {"questions": len(results), "false_conflict": _share(flagged, len(results)),
            "results": [r for r in results if r["conflict"]]}


def _strings(value: Any) -> Iterator[str]:
    """Every string of an RGB `answers` field (a list, or lists of alternatives)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _share(n: int, total: int) -> float | None:
    return round(n / total, 3) if total else None


def measure(name: str, limit: int | None = None, cache: Path = CACHE) -> dict[str, Any]:
    """The figures of one set (see the module docstring)."""
    rgb = SHARED_DATA / "rgb" / "en"
    if name == "rgb-counterfactual":
        assistant = _assistant(name, [rgb / "corpus.jsonl", rgb / "counterfactual.jsonl"], cache)
        return rgb_counterfactual(assistant, limit)
    if name == "own":
        return own(_assistant(name, [OWN / "articles.jsonl"], cache), limit)
    if name in ("own-second", "own-heldout"):
        folder = OWN_SECOND if name == "own-second" else OWN_HELDOUT
        return own(_assistant(name, [folder / "articles.jsonl"], cache), limit, folder)
    if name == "rgb-answerable":
        questions = [q["question"] for q in _lines(rgb / "questions.jsonl") if q["answerable"]]
        return false_conflicts(_assistant(name, [rgb / "corpus.jsonl"], cache),
                               questions[:limit])
    if name == "multihop-dev":
        multihop = SHARED_DATA / "multihop"
        questions = [q["query"] if "query" in q else q["question"]
                     for q in _lines(multihop / "queries_dev.jsonl")]
        return false_conflicts(_assistant(name, [multihop / "articles.jsonl"], cache),
                               questions[:limit])
    raise ValueError(f"unknown set {name!r}: one of {', '.join(SETS)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.conflicts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--limit", type=int, default=None, help="questions per set")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    report = {name: measure(name, args.limit, args.cache_dir) for name in args.sets}
    for name, figures in report.items():
        shown = {k: v for k, v in figures.items() if k != "results"}
        print(f"{name}: {json.dumps(shown)}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

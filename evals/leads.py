"""`python -m evals.leads`: how often the offline answerer leads with a short name, and how
often that name is right, on question sets its rules were and were not written from.

- `independent`: `evals/data/leads_independent/` (45 fictional articles on health, courts,
  science, aviation, schools, local government and culture; 148 who / which questions),
  written on 2026-12-07 by a writer who did not read the rules, and never studied since: the
  figure that says how the rules do on news nobody tuned them on.
- `samples`: `tests/data/leads.jsonl` over the bundled samples and the seed article (the set
  the rules were first written from; `tests/test_leads.py` holds its floor).
- `multihop`: MultiHop-RAG's dev questions that ask for a name (`question_type`) and have a
  one-name gold answer, over the MultiHop store `newsdesk-eval` caches.

A lead is the short name an answer starts with ("Katsunobu Kato [1]. ..."). It is right when
it is an answer, its surname, or its first words ("Everton" for "Everton Football Club").
Reports per set: questions, leads shown (share), right, precision.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.answer.entities import question_type
from assistant.service import Assistant
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
INDEPENDENT = ROOT / "evals" / "data" / "leads_independent"
SAMPLE_LEADS = ROOT / "tests" / "data" / "leads.jsonl"
SHARED = Path(os.environ.get("NEWSDESK_SHARED_DATA", ROOT.parent / "shared" / "data"))
_LEAD = re.compile(r"^([^\[\].]{1,80}?) ((?:\[\d+\])+)\. ")


def lead_of(answer: str) -> str | None:
    """The short lead an answer starts with ("Katsunobu Kato [1]. ..."), if any."""
    match = _LEAD.match(answer)
    return match.group(1) if match else None


def lead_is_right(lead: str, answers: Iterable[str]) -> bool:
    """The lead is an answer, or its surname ("Kato"), or an answer is its surname, or it is
    the answer's first words, the short name ("Everton" for "Everton Football Club")."""
    lead = lead.lower()
    return any(lead == a.lower() or a.lower().endswith(" " + lead) or
               lead.endswith(" " + a.lower()) or a.lower().startswith(lead + " ")
               for a in answers)


def score(assistant: Assistant, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Ask each question ({"question", "answers"}); the lead figures, and the wrong leads."""
    shown, right, wrong = 0, 0, []
    for q in questions:
        lead = lead_of(assistant.ask(q["question"]).answer)
        if lead is None:
            continue
        shown += 1
        if lead_is_right(lead, q["answers"]):
            right += 1
        else:
            wrong.append({"question": q["question"], "lead": lead})
    n = len(questions)
    return {"questions": n, "leads": shown, "lead_share": round(shown / n, 3) if n else 0.0,
            "right": right, "precision": round(right / shown, 3) if shown else None,
            "wrong": wrong}


def _offline(data_dir: Path) -> Settings:
    # Every article stored on its own, as `newsdesk-eval` stores them (its cache is shared).
    return Settings(_env_file=None, data_dir=data_dir, openai_api_key=None,
                    openai_base_url=None, chroma_host=None, dedup=False)


def independent_set(work: Path) -> dict[str, Any]:
    """The independent set, ingested into a fresh store under `work`."""
    from ingest.pipeline import Ingestor

    settings = _offline(work / "independent")
    records = [json.loads(line) for line in
               (INDEPENDENT / "articles.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    ingestor = Ingestor(settings)
    report = ingestor.ingest_records(records, origin=str(INDEPENDENT / "articles.jsonl"))
    if not report.ok:
        raise SystemExit(f"the independent set did not ingest: {report.errors}")
    questions = [json.loads(line) for line in
                 (INDEPENDENT / "questions.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    figures = score(Assistant(settings, store=ingestor.store), questions)
    ingestor.close()
    return figures


def samples_set(work: Path) -> dict[str, Any]:
    """tests/data/leads.jsonl over the samples and the seed article."""
    from ingest.pipeline import Ingestor

    settings = _offline(work / "samples")
    ingestor = Ingestor(settings)
    report = ingestor.ingest([SHARED / "seed", ROOT / "samples"])
    if not report.ok:
        raise SystemExit(f"the samples did not ingest: {report.errors}")
    questions = [json.loads(line) for line in
                 SAMPLE_LEADS.read_text(encoding="utf-8").splitlines() if line.strip()]
    figures = score(Assistant(settings, store=ingestor.store), questions)
    ingestor.close()
    return figures


def multihop_set() -> dict[str, Any]:
    """MultiHop dev questions that ask for a name and have a one-name answer, over the store
    `newsdesk-eval` caches (built here when missing)."""
    from rich.console import Console

    from assistant.index.embeddings import get_embeddings
    from evals.run import DEFAULT_CACHE, _store_dir, build_store, cache_key, load_articles

    articles_path = SHARED / "multihop" / "articles.jsonl"
    settings = _offline(Path("unused"))
    embeddings = get_embeddings(settings)
    key = cache_key(articles_path, settings, embeddings)
    questions = []
    for line in (SHARED / "multihop" / "queries_dev.jsonl").read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        answer = str(record.get("answer") or "")
        if record and question_type(record["question"]) and answer and \
                answer.lower() not in {"yes", "no", "insufficient information."}:
            questions.append({"question": record["question"], "answers": [answer]})
    with _store_dir(ROOT / DEFAULT_CACHE, key, fresh=False) as store_dir:
        settings = _offline(store_dir)
        built = build_store(settings, articles_path, load_articles(articles_path), embeddings,
                            Console(), quiet=True)
        figures = score(Assistant(settings, store=built.ingestor.store), questions)
        built.ingestor.close()
    return figures


SETS = {"independent": independent_set, "samples": samples_set, "multihop": multihop_set}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.leads",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: "
                        + ", ".join(SETS))
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--show-wrong", action="store_true",
                        help="print the wrong leads (never for the independent set: it is "
                             "not to be studied)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="newsdesk-leads-") as tmp:
        for name in args.sets.split(","):
            runner = SETS[name]
            results[name] = runner() if name == "multihop" else runner(Path(tmp))
    print(f"{'set':<12} {'questions':>9} {'leads':>6} {'share':>6} {'right':>6} "
          f"{'precision':>9}")
    for name, r in results.items():
        precision = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        print(f"{name:<12} {r['questions']:>9} {r['leads']:>6} {r['lead_share']:>6.3f} "
              f"{r['right']:>6} {precision:>9}")
        if args.show_wrong and name != "independent":
            for w in r["wrong"]:
                print(f"    wrong: {w['question']} -> {w['lead']}")
    if args.json:
        args.json.write_text(json.dumps(
            {name: {k: v for k, v in r.items() if name != "independent" or k != "wrong"}
             for name, r in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

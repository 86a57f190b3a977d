"""Calibrate the extractive refusal threshold on answerable vs unanswerable questions.

`python -m evals.calibrate` scores two question sets with the product's own ingest and
answerer (each corpus ingested once into a cached store) and prints refusal figures per
threshold:
- RGB en (../shared/data/rgb/en): real news questions; its unanswerable questions keep
  same-topic passages in the corpus (the hard case). The answerable questions the tests ask
  (the first TESTED_RGB_EN) are left out;
- the bundled samples and the seed article with `evals/data/calibration_questions.jsonl`:
  paraphrased questions, and questions on topics no article covers. No test asks them: the
  tests check the threshold with other questions (`tests/data/sample_questions.jsonl`).
The recommended threshold has the best mean balanced accuracy over the sets among those that
falsely refuse at most 10% of the answerable questions of every set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

from assistant.answer.extractive import ExtractiveAnswerer
from assistant.service import Assistant
from assistant.settings import Settings
from evals.data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
RGB_EN = SHARED_DATA / "rgb" / "en"
SEED = SHARED_DATA / "seed"
MAX_FALSE_REJECTION = 0.10
# tests/test_conflicts.py asks the first 30 answerable RGB en questions (and
# tests/test_server_process.py the first 10 of them): calibration leaves them to the tests.
TESTED_RGB_EN = 30
GRID = [round(0.20 + 0.01 * i, 2) for i in range(61)]


@dataclass(frozen=True)
class Scored:
    answerable: bool
    best: float  # the best candidate sentence's score: what the refusal rule looks at
    correct_if_answered: bool  # an acceptable answer string is in the (unrefused) answer


@dataclass(frozen=True)
class QuestionSet:
    name: str
    corpus: list[Path]
    questions: Path
    skip_answerable: int = 0  # the first answerable questions, which tests ask

    def load(self) -> list[dict]:
        rows = [json.loads(x) for x in self.questions.read_text().splitlines() if x.strip()]
        answerable = [i for i, q in enumerate(rows) if q["answerable"]]
        skipped = set(answerable[:self.skip_answerable])
        return [q for i, q in enumerate(rows) if i not in skipped]


def default_sets() -> list[QuestionSet]:
    return [
        QuestionSet("rgb-en", [RGB_EN / "corpus.jsonl"], RGB_EN / "questions.jsonl",
                    skip_answerable=TESTED_RGB_EN),
        QuestionSet("calibration", [ROOT / "samples", SEED],
                    ROOT / "evals" / "data" / "calibration_questions.jsonl"),
    ]


def score_questions(assistant: Assistant, questions: list[dict], label: str = "") -> list[Scored]:
    results = []
    answerer = assistant.answerer
    if not isinstance(answerer, ExtractiveAnswerer):
        raise SystemExit("calibration is for the offline answerer: unset OPENAI_API_KEY and "
                         "OPENAI_BASE_URL")
    for q in track(questions, description=f"Scoring {label}", transient=True):
        passages, vector = assistant.retriever.retrieve(q["question"], assistant.settings.k)
        _, scores, _ = answerer.score(vector, passages, q["question"])
        best = float(scores.max()) if len(scores) else 0.0
        forced = answerer.answer(vector, passages, q["question"], threshold=-1.0).answer.lower()
        answers = [a for a in q["answers"] if isinstance(a, str)]
        results.append(Scored(bool(q["answerable"]), best,
                              any(a.lower() in forced for a in answers)))
    return results


def rates(results: list[Scored], threshold: float) -> dict[str, float]:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    rejection = sum(r.best < threshold for r in unanswerable) / max(len(unanswerable), 1)
    false_rejection = sum(r.best < threshold for r in answerable) / max(len(answerable), 1)
    accuracy = sum(r.best >= threshold and r.correct_if_answered for r in answerable) / max(
        len(answerable), 1)
    return {"threshold": threshold, "rejection_rate": rejection,
            "false_rejection_rate": false_rejection,
            "balanced_accuracy": (rejection + 1 - false_rejection) / 2,
            "answer_accuracy": accuracy}


def recommend(sets: dict[str, list[Scored]],
              max_false_rejection: float = MAX_FALSE_REJECTION) -> float:
    """The middle of the best plateau of mean balanced accuracy, within the false-refusal cap."""
    def mean_balanced(t: float) -> float:
        return round(sum(rates(r, t)["balanced_accuracy"] for r in sets.values()) / len(sets), 6)

    allowed = [t for t in GRID if all(rates(r, t)["false_rejection_rate"] <= max_false_rejection
                                      for r in sets.values())] or GRID
    best = max(mean_balanced(t) for t in allowed)
    plateau = [t for t in allowed if mean_balanced(t) == best]
    return plateau[len(plateau) // 2]


def _store_settings(cache_dir: Path, qs: QuestionSet) -> Settings:
    digest = hashlib.sha1()
    for path in qs.corpus:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                digest.update(f.read_bytes())
    return Settings(data_dir=cache_dir / f"calibrate-{qs.name}-{digest.hexdigest()[:12]}",
                    openai_api_key=None, openai_base_url=None, chroma_host=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.calibrate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(".newsdesk-cache"))
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--held-out", type=Path, default=None, metavar="QUESTIONS",
                        help="also show the figures of these questions over the samples and "
                             "the seed article (e.g. tests/data/sample_questions.jsonl); they "
                             "are never used to choose the threshold")
    args = parser.parse_args(argv)

    from ingest.pipeline import Ingestor

    sets: dict[str, list[Scored]] = {}
    for qs in default_sets():
        settings = _store_settings(args.cache_dir, qs)
        ingestor = Ingestor(settings)
        ingestor.ingest(qs.corpus)
        assistant = Assistant(settings, store=ingestor.store)
        sets[qs.name] = score_questions(assistant, qs.load(), qs.name)
        if args.held_out is not None and qs.name == "calibration":
            held_out = QuestionSet("held-out", qs.corpus, args.held_out)
            held = score_questions(assistant, held_out.load(), held_out.name)

    configured = Settings().refusal_threshold
    chosen = recommend(sets)
    shown_sets = dict(sets)
    if args.held_out is not None:
        shown_sets["held out"] = held
    console = Console()
    table = Table(title="Refusal threshold: rejection / false rejection / answer accuracy",
                  caption=f"recommended: best mean balanced accuracy with false rejection <= "
                          f"{MAX_FALSE_REJECTION:.2f} on every set")
    table.add_column("threshold", justify="right")
    for name, results in shown_sets.items():
        n_ans = sum(r.answerable for r in results)
        table.add_column(f"{name} ({n_ans} ans., {len(results) - n_ans} unans.)",
                         justify="right")
    shown = sorted({0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, chosen,
                    configured})
    for t in shown:
        mark = (" recommended" if t == chosen else "") + (" configured" if t == configured else "")
        cells = []
        for results in shown_sets.values():
            r = rates(results, t)
            cells.append(f"{r['rejection_rate']:.2f} / {r['false_rejection_rate']:.2f} / "
                         f"{r['answer_accuracy']:.2f}")
        table.add_row(f"{t:.2f}{mark}", *cells)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(
            {"recommended": chosen, "configured": configured,
             "sets": {name: {"recommended": rates(r, chosen), "configured": rates(r, configured)}
                      for name, r in shown_sets.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

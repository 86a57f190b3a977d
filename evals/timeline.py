"""`python -m evals.timeline`: measure timeline answers (docs/evaluation.md#timelines).

Three parts, each selectable with `--parts`:

- `recogniser`: which questions `assistant.answer.timeline_ask.timeline_question` takes for
  timeline questions. Precision and recall on `evals/data/timeline_questions.jsonl` (40
  timeline and 40 other questions, written before the rule) and on the development set
  `evals/data/timeline_questions_dev2.jsonl` (50 and 50, written before the rule's widening;
  its misses are printed), and the share caught of questions that ask no timeline:
  MultiHop-RAG dev (all 100), RGB en (100), and the project's own question sets.
- `stories`: MultiHop-RAG's temporal dev questions. Each question's evidence articles form a
  story; the eval asks "How has the story of <topic> developed?" through `Assistant` over the
  609 articles (the store `newsdesk-eval` caches) and reports the share of the story's
  articles the timeline cites (`story_recall`, aim >= 0.70), the share of its entries that
  cite an article of the story (`entry_precision`, aim >= 0.80) and the share of timelines
  whose entries are in day order, undated last (`in_order`, aim 1.00). The temporal questions
  are split by a hash of their id (`split_of`): `dev` (tuned on) and `test` (run once at the
  end, never tuned on); `--split all` runs both. `--split other` asks the same of the
  comparison and inference questions (a further check nobody tuned on).
- `merge`: the cosine at which two sentences of different articles state one development
  (`assistant.answer.timeline.MERGE`), measured on RGB en: pairs of sentences of different
  passages that both state a question's answer are the same development, pairs of one of
  them with a sentence of another passage of the question that does not are different ones.

The topic rule (`topic_of`), question -> topic: the question's names are its runs of
capitalised words (a word that starts with a capital, or has one second: "iPhone"; "of",
"at", "the", "for", "&" may join two of them: "Tears of the Kingdom"), cut at punctuation,
possessives ("'s") removed, leading stopwords ("Between", "The") dropped. Left out: runs
that are an outlet of the store (its leading stopwords dropped too: "Verge") or a part of
one of two or more words ("Business Today"), runs of calendar words and numbers only
("October"), and the question's first word alone. Runs that share a word are one name
("Google Search", "Google"), shown in its most frequent form (the shortest of those tied).
The topic is the names mentioned most often (all of those tied, at most three, in the order
first mentioned), joined with "and". A question that names nothing: its most frequent
content words of four letters or more (at most three tied) instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from assistant.answer.timeline_ask import timeline_question
from assistant.dates import find_dates
from assistant.lexicon import CALENDAR_WORDS
from assistant.settings import Settings
from assistant.text import STOPWORDS
from assistant.types import Answer
from evals.data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
RECOGNISER_SET = ROOT / "evals" / "data" / "timeline_questions.jsonl"
# A development set: written before the rule was widened, then tuned on (misses are printed).
DEV2_SET = ROOT / "evals" / "data" / "timeline_questions_dev2.jsonl"
# Written apart from the rule, by a helper who never read it; never studied afterwards.
INDEPENDENT_SET = ROOT / "evals" / "data" / "timeline_questions_independent.jsonl"
MULTIHOP = SHARED_DATA / "multihop"
RGB_EN = SHARED_DATA / "rgb" / "en"
# Questions of the project that ask no timeline (the recogniser must leave them alone).
OWN_QUESTION_SETS = [ROOT / "tests" / "data" / "sample_questions.jsonl",
                     ROOT / "evals" / "data" / "calibration_questions.jsonl",
                     ROOT / "evals" / "conflict_set" / "questions.jsonl",
                     ROOT / "evals" / "data" / "leads_independent" / "questions.jsonl"]
TEMPLATE = "How has the story of {topic} developed?"
MAX_NAMES = 3

# -- the topic rule ----------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_](?:[\w.\-&]|['’](?=\w))*|[|:;,()?!\"“”'‘’]")
_JOINERS = frozenset({"of", "at", "the", "for", "&"})


def _plain(word: str) -> str:
    return re.sub(r"['’]s?$", "", word.rstrip(".")).lower()


def _is_name_word(word: str) -> bool:
    """Capitalised ("Google", "GPT-4"), or capitalised after its first letter ("iPhone")."""
    return word[0].isupper() or (len(word) > 1 and word[0].islower() and word[1].isupper())


def _runs(question: str) -> list[tuple[int, list[str]]]:
    """(position of the first word, words) of each run of capitalised words."""
    tokens = _TOKEN.findall(question)
    runs: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for i, token in enumerate(tokens):
        if _is_name_word(token):
            if not current:
                start = i
            current.append(token)
        elif current and token.lower() in _JOINERS and _joins(tokens, i):
            current.append(token)
        else:
            if current:
                runs.append((start, current))
            current = []
    if current:
        runs.append((start, current))
    return runs


def _joins(tokens: list[str], i: int) -> bool:
    """Whether joiners from `i` on lead to a name word ("of the Kingdom")."""
    for token in tokens[i:]:
        if token.lower() not in _JOINERS:
            return _is_name_word(token)
    return False


def _without_lead(words: list[str]) -> list[str]:
    while words and (words[0].lower() in STOPWORDS or words[0].lower() in _JOINERS):
        words = words[1:]
    return words


def _names(question: str, outlets: Sequence[str]) -> list[tuple[int, str]]:
    """(position, name) of the question's names, by the rule of the module's docstring."""
    outlet_names = [" ".join(_plain(w) for w in _without_lead(
        [w for w in _TOKEN.findall(o) if w[0].isalnum()])) for o in outlets]
    found = []
    for start, words in _runs(question):
        words = [w.rstrip(".") if w.endswith(".") and len(w) > 2 else w for w in words]
        kept = _without_lead(words)
        start, words = start + len(words) - len(kept), kept
        if not words:
            continue
        plain = " ".join(_plain(w) for w in words)
        if any(plain == o or (len(words) > 1 and re.search(rf"(?<!\w){re.escape(plain)}(?!\w)",
                                                             o)) for o in outlet_names):
            continue
        if all(_plain(w) in CALENDAR_WORDS or re.fullmatch(r"\d+(st|nd|rd|th)?,?", w)
               for w in words):
            continue
        if start == 0 and len(words) == 1:
            continue
        found.append((start, " ".join(re.sub(r"['’]s$", "", w) for w in words)))
    return found


def topic_of(question: str, outlets: Sequence[str]) -> str:
    """The topic of a MultiHop question, by the rule of the module's docstring."""
    names = _names(question, outlets)
    if names:
        groups: list[list[tuple[int, str]]] = []
        for position, name in names:
            words = {_plain(w) for w in name.split()} - STOPWORDS - _JOINERS
            for group in groups:
                if any(words & ({_plain(w) for w in n.split()} - STOPWORDS - _JOINERS)
                       for _, n in group):
                    group.append((position, name))
                    break
            else:
                groups.append([(position, name)])
        most = max(len(g) for g in groups)
        chosen = [g for g in groups if len(g) == most][:MAX_NAMES]
        labels = []
        for group in chosen:
            forms = Counter(n for _, n in group)
            labels.append(min(forms, key=lambda f: (-forms[f], len(f), f)))
        return _joined(labels)
    outlet_words = {_plain(w) for o in outlets for w in o.split()}
    words = [w for w in re.findall(r"[^\W\d_]{4,}", question.lower())
             if w not in STOPWORDS and w not in outlet_words and w not in CALENDAR_WORDS]
    counts = Counter(words)
    if not counts:
        return question
    most = max(counts.values())
    return _joined([w for w in dict.fromkeys(words) if counts[w] == most][:MAX_NAMES])


_MONTHS = "|".join(sorted({w for w in CALENDAR_WORDS if len(w) > 3}, key=len, reverse=True))
# What a question says a report is about: "the report on X", "the article discussing X",
# "regarding X", up to a comma, "published", "reported", "and the", a date or the end.
_SUBJECT = re.compile(
    r"\b(?:on|about|regarding|discussing|detailing|concerning|involving|highlighting|"
    r"mentioning|covering|alleging|analy[sz]ing)\s+(?P<subject>.+?)(?=,|\?|\s+published\b|"
    r"\s+(?:as\s+)?reported\b|\s+and the\b|\s+(?:on|in|from|after|before|by|at)\s+"
    rf"(?:\d|(?:{_MONTHS})\b)|$)", re.IGNORECASE)
MAX_SUBJECTS = 2


def subjects_of(question: str, outlets: Sequence[str]) -> list[str]:
    """What the question says its reports are about (`_SUBJECT`), dates and outlets left
    out, at most `MAX_SUBJECTS`, in order."""
    found = []
    for match in _SUBJECT.finditer(question):
        subject = match.group("subject").strip(" \"'“”")
        dates = find_dates(subject)
        if (dates and dates[0].start == 0) or not re.search(r"[^\W\d_]{3}", subject):
            continue
        if any(o.lower() in subject.lower() for o in outlets) or subject in found:
            continue
        found.append(subject)
    return found[:MAX_SUBJECTS]


def topic_with_subjects(question: str, outlets: Sequence[str]) -> str:
    """The names topic (`topic_of`) and what the question says its reports are about
    (`subjects_of`), joined with "and"."""
    names = topic_of(question, outlets)
    subjects = [x for x in subjects_of(question, outlets) if x.lower() != names.lower()]
    return _joined([names, *subjects])


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def split_of(question_id: str) -> str:
    """"dev" or "test": a stable half of the questions, by the first byte of the id's
    SHA-1."""
    return "dev" if hashlib.sha1(question_id.encode()).digest()[0] % 2 == 0 else "test"


# -- the recogniser ------------------------------------------------------------------------


def _questions(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if isinstance(record.get("question"), str):
                out.append(record["question"])
    return out


def independent_report() -> dict[str, Any]:
    """Precision and recall on `INDEPENDENT_SET`, written by a helper who never read the rule
    (120 questions, half of them timeline ones). Only the counts: the questions it gets wrong
    are never printed, so the set stays unstudied."""
    rows = [json.loads(line) for line in INDEPENDENT_SET.read_text().splitlines() if line]
    caught = [timeline_question(row["question"]) is not None for row in rows]
    tp = sum(c and row["timeline"] for c, row in zip(caught, rows, strict=True))
    fp = sum(c and not row["timeline"] for c, row in zip(caught, rows, strict=True))
    fn = sum(not c and row["timeline"] for c, row in zip(caught, rows, strict=True))
    return {"set": str(INDEPENDENT_SET.relative_to(ROOT)), "questions": len(rows),
            "precision": round(tp / max(tp + fp, 1), 4), "recall": round(tp / max(tp + fn, 1), 4),
            "caught": tp + fp}


def labelled_report(path: Path) -> dict[str, Any]:
    """Precision and recall on a set of questions labelled `timeline`, with the questions it
    misses and those it wrongly catches (for the sets that may be studied)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    tp = fp = fn = 0
    missed, wrong = [], []
    for row in rows:
        caught = timeline_question(row["question"]) is not None
        tp += caught and row["timeline"]
        fp += caught and not row["timeline"]
        fn += not caught and row["timeline"]
        if caught != row["timeline"]:
            (missed if row["timeline"] else wrong).append(row["question"])
    return {"set": str(path.relative_to(ROOT)), "questions": len(rows),
            "precision": round(tp / max(tp + fp, 1), 4), "recall": round(tp / max(tp + fn, 1), 4),
            "missed": missed, "wrongly_caught": wrong}


def recogniser_report() -> dict[str, Any]:
    """Precision and recall on the written set and on the development set (`dev2`); the share
    caught of other question sets."""
    others: dict[str, Any] = {}
    sets = {"multihop_dev": MULTIHOP / "queries_dev.jsonl", "rgb_en": RGB_EN / "questions.jsonl",
            **{str(p.relative_to(ROOT)): p for p in OWN_QUESTION_SETS}}
    for name, path in sets.items():
        if not path.is_file():
            continue
        questions = _questions(path)
        caught = [q for q in questions if timeline_question(q) is not None]
        others[name] = {"questions": len(questions), "caught": len(caught),
                        "false_positive_rate": round(len(caught) / max(len(questions), 1), 4),
                        "examples": caught[:5]}
    return {**labelled_report(RECOGNISER_SET), "dev2": labelled_report(DEV2_SET),
            "non_timeline_sets": others}


# -- stories ---------------------------------------------------------------------------------


@dataclass
class StoryResult:
    id: str
    split: str
    question: str
    story: list[str]
    entries: int = 0
    on_story: int = 0
    cited_story: list[str] = field(default_factory=list)
    in_order: bool = True
    refused: bool = False
    ms: float = 0.0
    answer: str = ""

    @property
    def recall(self) -> float:
        return len(self.cited_story) / len(self.story) if self.story else 0.0


def in_day_order(answer: Answer) -> bool:
    """Entries oldest first, undated ones after every dated one."""
    keys = [(e.day is None, e.day or "") for e in answer.timeline]
    return keys == sorted(keys)


def score_story(result: StoryResult, answer: Answer, external: dict[str, str]) -> None:
    by_n = {c.n: external.get(c.article_id, "") for c in answer.citations}
    story = set(result.story)
    result.refused = answer.refused
    result.entries = len(answer.timeline)
    result.on_story = sum(any(by_n.get(n) in story for n in e.citations)
                          for e in answer.timeline)
    result.cited_story = sorted(story & {by_n.get(n, "") for e in answer.timeline
                                         for n in e.citations})
    result.in_order = in_day_order(answer)
    result.answer = answer.answer


def summarise(results: Sequence[StoryResult]) -> dict[str, Any]:
    entries = sum(r.entries for r in results)
    timelines = [r for r in results if not r.refused]
    return {
        "questions": len(results),
        "story_recall": round(sum(r.recall for r in results) / max(len(results), 1), 4),
        "entry_precision": round(sum(r.on_story for r in results) / max(entries, 1), 4),
        "in_order": round(sum(r.in_order for r in timelines) / max(len(timelines), 1), 4),
        "entries_per_timeline": round(entries / max(len(timelines), 1), 2),
        "refused": sum(r.refused for r in results),
        "p50_ms": round(sorted(r.ms for r in results)[len(results) // 2], 1) if results else None,
    }


def story_questions(split: str) -> list[dict[str, Any]]:
    """MultiHop dev questions of `split`: dev/test halves of the temporal ones, `all` of
    them, or `other` (comparison and inference)."""
    out = []
    for line in (MULTIHOP / "queries_dev.jsonl").read_text().splitlines():
        record = json.loads(line)
        kind = record.get("type")
        if split == "other":
            if kind in ("comparison", "inference"):
                out.append(record)
        elif kind == "temporal" and split in ("all", split_of(record["id"])):
            out.append(record)
    return out


TOPIC_RULES = {"names": topic_of, "subjects": topic_with_subjects}


def stories_report(split: str, settings: Settings, console: Console, quiet: bool = False,
                   topic_rule: str = "subjects") -> dict[str, Any]:
    from assistant.index.embeddings import get_embeddings
    from assistant.service import Assistant
    from evals.run import (
        DEFAULT_CACHE,
        _external_ids,
        _store_dir,
        build_store,
        cache_key,
        load_articles,
    )

    path = MULTIHOP / "articles.jsonl"
    articles = load_articles(path)
    embeddings = get_embeddings(settings)
    results: list[StoryResult] = []
    with _store_dir(DEFAULT_CACHE, cache_key(path, settings, embeddings), False) as store_dir:
        run_settings = settings.model_copy(update={"data_dir": store_dir, "chroma_host": None,
                                                   "dedup": False})
        built = build_store(run_settings, path, articles, embeddings, console, quiet)
        assistant = Assistant(run_settings, store=built.ingestor.store)
        try:
            external = _external_ids(assistant)
            outlets = [o.source for o in assistant.sources()]
            assistant.ask("warm-up")
            for record in story_questions(split):
                topic = TOPIC_RULES[topic_rule](record["question"], outlets)
                question = TEMPLATE.format(topic=topic)
                story = sorted({e["article_id"] for e in record["evidence"]})
                result = StoryResult(record["id"], split_of(record["id"]), question, story)
                started = time.perf_counter()
                answer = assistant.ask(question)
                result.ms = (time.perf_counter() - started) * 1000
                score_story(result, answer, external)
                results.append(result)
                if not quiet:
                    console.print(f"{record['id']} recall {result.recall:.2f} "
                                  f"{result.on_story}/{result.entries} on story: {question}",
                                  soft_wrap=True, highlight=False, markup=False)
        finally:
            assistant.close()
    return {"split": split, "template": TEMPLATE, "topic_rule": topic_rule, **summarise(results),
            "per_question": [{**asdict(r), "recall": round(r.recall, 4)} for r in results]}


# -- merging -------------------------------------------------------------------------------


def merge_pairs() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """RGB en: (same development pairs, different development pairs) of sentences."""
    from assistant.index.sentences import split

    corpus = {}
    for line in (RGB_EN / "corpus.jsonl").read_text().splitlines():
        record = json.loads(line)
        corpus[record["id"]] = record
    same, different = [], []
    for line in (RGB_EN / "questions.jsonl").read_text().splitlines():
        q = json.loads(line)
        if not q["answerable"]:
            continue
        answers = [a.lower() for a in q["answers"] if isinstance(a, str)]
        holding: list[tuple[str, str]] = []  # (passage, sentence)
        other: list[tuple[str, str]] = []
        for pid in q["positive_ids"]:
            if pid not in corpus:
                continue
            for text, _, _ in split(corpus[pid]["body"], "en"):
                (holding if any(a in text.lower() for a in answers) else other).append(
                    (pid, text))
        for i, (pa, a) in enumerate(holding):
            for pb, b in holding[i + 1:]:
                if pa != pb and a != b:
                    same.append((a, b))
            for pb, b in other:
                if pa != pb:
                    different.append((a, b))
    return same, different


def merge_report(thresholds: Sequence[float] = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
                 ) -> dict[str, Any]:
    import numpy as np

    from assistant.index.embeddings import get_embeddings

    embeddings = get_embeddings(Settings(_env_file=None))
    same, different = merge_pairs()
    texts = sorted({t for pair in same + different for t in pair})
    vectors = dict(zip(texts, embeddings.embed(texts), strict=True))

    def cosines(pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.array([float(vectors[a] @ vectors[b]) for a, b in pairs])

    s, d = cosines(same), cosines(different)
    rows = []
    for t in thresholds:
        merged_same, merged_different = int((s >= t).sum()), int((d >= t).sum())
        rows.append({"threshold": t, "precision": round(
            merged_same / max(merged_same + merged_different, 1), 4),
            "recall": round(merged_same / max(len(s), 1), 4),
            "different_merged": round(merged_different / max(len(d), 1), 4)})
    return {"same_pairs": len(same), "different_pairs": len(different), "thresholds": rows}


# -- the command -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.timeline",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="recogniser,stories",
                        help="comma-separated: recogniser, stories, merge "
                             "(default recogniser,stories)")
    parser.add_argument("--split", default="dev", choices=["dev", "test", "all", "other"],
                        help="which MultiHop questions the stories part asks (default dev; "
                             "test only once, at the end)")
    parser.add_argument("--topic", default="subjects", choices=sorted(TOPIC_RULES),
                        help="the topic rule: names, or names and what the reports are about "
                             "(default subjects)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    console = Console(stderr=True, highlight=False)
    report: dict[str, Any] = {}
    parts = {p.strip() for p in args.parts.split(",")}
    if "recogniser" in parts:
        report["recogniser"] = recogniser_report()
        report["recogniser_independent"] = independent_report()
    if "merge" in parts:
        report["merge"] = merge_report()
    if "stories" in parts:
        report["stories"] = stories_report(args.split, Settings(), console, args.quiet,
                                           args.topic)
    shown = {k: ({kk: vv for kk, vv in v.items() if kk != "per_question"}
                 if isinstance(v, dict) else v) for k, v in report.items()}
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

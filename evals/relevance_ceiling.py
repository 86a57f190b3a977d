"""`python -m evals.relevance_ceiling --for follows|timelines --split dev|test`: how far a
rule that judges articles by their relevance to a question can take the precision aims of
following a story (`evals.follows`) and of timelines (`evals.timeline`).

Both count an article that is not one of the question's evidence articles as wrong, however
on-topic (an update citing only such articles; a timeline entry citing none of the story's).
This asks what relevance alone can give, with hindsight neither has: all 609 MultiHop-RAG
articles are known at once (the store `newsdesk-eval` caches), and for each question its
articles are ranked by the product's own scores of their best chunk. The questions:
`follows` the temporal and inference questions of the split as `evals.follows` halves them,
asked as written; `timelines` the temporal questions as `evals.timeline` splits them, asked
as "How has the story of <topic> developed?" with its topic rule. The scores:

- `keyword`: BM25 from the keyword index (`KeywordIndex.search`, exact lengths);
- `dense`: the cosine of the chunk's stored vector to the question's (what `MATCH_MIN` gates);
- `hybrid`: retrieval's blend, keyword score over the question's best plus `DENSE_WEIGHT`
  times the cosine (without the date and outlet levers, which need the question's days and
  sub-queries).

A rule "take the question's N best articles" is then scored per article: recall = evidence
articles taken / evidence articles, precision = evidence articles taken / articles taken. So
are thresholds on the cosine alone (the follow watcher's gate) and on the cosine together
with the share of the question's IDF weight an article's best chunk holds. A follow sees
articles a day at a time, and a timeline only what retrieval brings back, so neither can do
better than a ranking that knows every competitor.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from assistant.answer.retrieval import DENSE_WEIGHT
from assistant.index.embeddings import get_embeddings
from assistant.index.lexical import indexed_text, tokenize
from assistant.settings import Settings
from assistant.types import chunk_id, split_chunk_id
from evals.follows import ARTICLES, QUESTIONS, split_questions
from evals.run import (
    DEFAULT_CACHE,
    ROOT,
    _store_dir,
    build_store,
    cache_key,
    load_articles,
    load_questions,
)

TOP = (1, 2, 3, 4, 6, 10)
COSINES = (0.43, 0.50, 0.60)
SHARES = (0.2, 0.3, 0.4)
RANKINGS = ("keyword", "dense", "hybrid")


def _offline(data_dir: Path) -> Settings:
    # Every article stored on its own, as `newsdesk-eval` stores them (its cache is shared).
    return Settings(_env_file=None, data_dir=data_dir, chroma_host=None, openai_api_key=None,
                    openai_base_url=None, dedup=False)


def score_rule(taken: dict[str, set[str]], evidence: dict[str, set[str]]) -> dict[str, Any]:
    """Recall and precision of the articles a rule takes per question (dataset ids)."""
    wanted = sum(len(e) for e in evidence.values())
    took = sum(len(t) for t in taken.values())
    good = sum(len(taken.get(q, set()) & e) for q, e in evidence.items())
    return {"recall": round(good / wanted, 3) if wanted else None,
            "precision": round(good / took, 3) if took else None,
            "taken_per_question": round(took / len(evidence), 1) if evidence else None}


def article_scores(store: Any, index: Any, embeddings: Any, question: str,
                   vectors: np.ndarray, chunk_ids: list[str], chunk_terms: dict[str, list[str]],
                   idf: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per stored article: its best chunk's keyword score, cosine, blend and IDF share."""
    vector = embeddings.embed([question])[0]
    cosine = vectors @ (vector / (float(np.linalg.norm(vector)) or 1.0))
    keyword = index.search(question, len(chunk_ids))
    best_keyword = max(keyword.values(), default=0.0) or 1.0
    wanted = set(tokenize(question))
    mass = sum(idf.get(t, 0.0) for t in wanted) or 1.0
    found: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(
        ("keyword", "dense", "hybrid", "share"), 0.0))
    for cid, cos in zip(chunk_ids, cosine.tolist(), strict=True):
        article = split_chunk_id(cid)[0]
        kw = keyword.get(cid, 0.0)
        share = sum(idf.get(t, 0.0) for t in wanted & set(chunk_terms.get(cid, ()))) / mass
        mine = found[article]
        mine["keyword"] = max(mine["keyword"], kw)
        mine["dense"] = max(mine["dense"], cos)
        mine["hybrid"] = max(mine["hybrid"], kw / best_keyword + DENSE_WEIGHT * cos)
        mine["share"] = max(mine["share"], share)
    return found


def ceiling(questions: Sequence[tuple[str, str, set[str]]], store: Any, embeddings: Any,
            console: Console) -> dict[str, Any]:
    """The rules' figures over `questions`, (id, question, evidence dataset ids) each (see
    the module docstring)."""
    index = store.keywords()
    external: dict[str, str] = {}
    while True:
        page = store.list_articles(offset=len(external), limit=5000)
        external.update((r.article_id, r.external_id) for r in page)
        if len(page) < 5000:
            break
    versions = store.visible_versions(list(external))
    chunk_ids = [chunk_id(aid, v.content_hash, i) for aid, v in versions.items()
                 for i in range(v.n_chunks)]
    found_vectors = store.chunk_vectors(chunk_ids)
    chunk_ids = [cid for cid in chunk_ids if cid in found_vectors]
    vectors = np.stack([found_vectors[cid] for cid in chunk_ids])
    # The terms the keyword index made of each chunk (its catalog keeps counts by hash).
    chunk_terms = {cid: tokenize(indexed_text(meta, text))
                   for cid, text, meta in store.get_chunks(chunk_ids)}
    df = Counter(t for terms in chunk_terms.values() for t in set(terms))
    n = len(chunk_ids)
    idf = {t: math.log(1.0 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    evidence = {qid: set(wanted) for qid, _, wanted in questions}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for i, (qid, question, _) in enumerate(questions, 1):
        by_article = article_scores(store, index, embeddings, question, vectors, chunk_ids,
                                    chunk_terms, idf)
        scores[qid] = {external.get(a, a): s for a, s in by_article.items()}
        console.print(f"[dim]{i}/{len(questions)} {qid}[/dim]")

    rules: dict[str, Any] = {}
    for ranking in RANKINGS:
        for top in TOP:
            taken = {qid: {a for a, _ in sorted(s.items(), key=lambda x: -x[1][ranking])[:top]}
                     for qid, s in scores.items()}
            rules[f"{ranking} top {top}"] = score_rule(taken, evidence)
    for cos in COSINES:
        rules[f"cosine >= {cos}"] = score_rule(
            {qid: {a for a, f in s.items() if f["dense"] >= cos} for qid, s in scores.items()},
            evidence)
        for share in SHARES:
            rules[f"cosine >= {cos} and IDF share >= {share}"] = score_rule(
                {qid: {a for a, f in s.items() if f["dense"] >= cos and f["share"] >= share}
                 for qid, s in scores.items()}, evidence)
    return {"questions": len(questions),
            "evidence_articles": sum(len(e) for e in evidence.values()), "rules": rules}


def asked(kind: str, split: str, outlets: Sequence[str]) -> list[tuple[str, str, set[str]]]:
    """(id, question, evidence dataset ids) of the follows or the timelines of a split."""
    from evals import timeline

    if kind == "timelines":
        return [(r["id"], timeline.TEMPLATE.format(
                    topic=timeline.topic_with_subjects(r["question"], outlets)),
                 {e["article_id"] for e in r["evidence"]})
                for r in timeline.story_questions(split)]
    questions = split_questions(load_questions(QUESTIONS, load_articles(ARTICLES)), split)
    return [(q.id, q.question, set(q.evidence_articles)) for q in questions]


def table(figures: dict[str, Any]) -> str:
    lines = ["| rule (hindsight of all 609 articles) | recall | precision | articles per "
             "question |", "| --- | --- | --- | --- |"]
    for name, f in figures["rules"].items():
        lines.append(f"| {name} | {f['recall']} | {f['precision']} | "
                     f"{f['taken_per_question']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.relevance_ceiling",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--for", dest="kind", default="follows",
                        choices=("follows", "timelines"))
    parser.add_argument("--split", default="dev", choices=("dev", "test", "all"))
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    settings = _offline(Path("unused"))
    embeddings = get_embeddings(settings)
    articles = load_articles(ARTICLES)
    with _store_dir(ROOT / DEFAULT_CACHE, cache_key(ARTICLES, settings, embeddings),
                    fresh=False) as store_dir:
        settings = _offline(store_dir)
        built = build_store(settings, ARTICLES, articles, embeddings, console, quiet=True)
        store = built.ingestor.store
        questions = asked(args.kind, args.split, [o.source for o in store.outlets()])
        figures = {"for": args.kind, "split": args.split,
                   **ceiling(questions, store, embeddings, console)}
        built.ingestor.close()
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

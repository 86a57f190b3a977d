"""`python -m evals.dedup`: near-duplicate detection measured on a set built from MultiHop.

The set is built at run time from `multihop/articles.jsonl` (nothing of it is stored in the
repository): originals, one or two "wire copies" of each as another outlet would run them
(an edited lead with a dateline, a new headline, added boilerplate, a cut ending, a few words
changed), and genuinely different stories on the same event (MultiHop articles that share
the most words with an original, and follow-ups that quote an original's lead paragraph).
The articles go through the detector in a shuffled order, as ingest sees them; each joins
the story of the stored article it duplicates. Reported: precision and recall of duplicate
pairs (two articles in one story), and the detector's cost per article.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass

from evals.data import SHARED_DATA
from ingest.dedup import DuplicateIndex, shingles, signature

ARTICLES = SHARED_DATA / "multihop" / "articles.jsonl"

DATELINES = ["LONDON (Newswire) - ", "NEW YORK, Nov 27 (Wire) - ", "(AP) — ",
             "SAN FRANCISCO (Reuters) - "]
BOILERPLATE = [
    "Sign up for our daily newsletter to get the top stories in your inbox.",
    "Copyright 2023 The Wire Service. All rights reserved. This material may not be "
    "published, broadcast, rewritten or redistributed.",
    "Related coverage: read more of our reporting on this story and others like it.",
    "Follow us on social media for the latest updates. Advertisement.",
]
SWAPS = {"said": "stated", "says": "states", "but": "however", "also": "as well",
         "company": "firm", "people": "individuals", "big": "large", "new": "latest"}


@dataclass
class Doc:
    key: str
    body: str
    story: str  # what the article truly is: copies share their original's story


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text.strip())


def wire_copy(body: str, rng: random.Random, heavy: bool = False) -> str:
    """Another outlet's run of a story: a dateline, an edited lead, boilerplate, a cut end,
    a few words changed. `heavy`: the lead paragraph rewritten and only the first 70% run."""
    paragraphs = [p for p in body.split("\n") if p.strip()]
    if heavy:
        paragraphs = paragraphs[: max(2, round(len(paragraphs) * 0.7))]
        paragraphs[0] = ("In a development that drew wide attention this week, "
                         + " ".join(_sentences(paragraphs[0])[1:]))
    lead = _sentences(paragraphs[0])
    words = lead[0].split()
    # Edit the lead sentence: drop a few words, reword another.
    for _ in range(min(3, len(words) // 6)):
        words.pop(rng.randrange(1, len(words)))
    lead[0] = rng.choice(DATELINES) + " ".join(words)
    paragraphs[0] = " ".join(lead)
    if len(paragraphs) > 4 and rng.random() < 0.5:  # the outlet cut the last paragraphs
        paragraphs = paragraphs[: max(3, int(len(paragraphs) * 0.8))]
    text = "\n".join(paragraphs)
    text = " ".join(SWAPS.get(w, w) if rng.random() < 0.3 else w for w in text.split(" "))
    extra = rng.sample(BOILERPLATE, rng.randint(1, 3))
    return "\n".join([*extra[:1], text, *extra[1:]])


def follow_up(own: str, quoted: str) -> str:
    """A different story that quotes two paragraphs of another (its lead and the next), as
    a roundup or a story on the same event quoting the same statement does."""
    paragraphs = [p for p in quoted.split("\n") if p.strip()]
    mine = [p for p in own.split("\n") if p.strip()]
    half = mine[: max(2, len(mine) // 2)]  # a shorter piece, so the quote weighs more
    return "\n".join([*half, "As reported earlier:", *paragraphs[:2]])


def build(n_originals: int, seed: int) -> list[Doc]:
    rows = [json.loads(line) for line in ARTICLES.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if len((r.get("body") or "").split()) >= 150]
    # MultiHop holds a few syndicated copies itself: they would be unlabelled duplicates.
    index = DuplicateIndex(0.3)
    clash: set[str] = set()
    for r in rows:
        found = signature(r["body"])
        if found is None:
            continue
        if (match := index.find(found)) is not None:
            clash |= {r["id"], match[0]}
        index.add(r["id"], found)
    rows = [r for r in rows if r["id"] not in clash]
    rng = random.Random(seed)
    originals = rng.sample(rows, n_originals)
    docs = [Doc(r["id"], r["body"], r["id"]) for r in originals]
    chosen = {r["id"] for r in originals}
    words = {r["id"]: set(re.findall(r"\w+", (r["title"] + " " + r["body"]).lower()))
             for r in rows}
    for i, r in enumerate(originals):
        for j in range(1 if i % 2 else 2):
            docs.append(Doc(f"{r['id']}~copy{j}", wire_copy(r["body"], rng, heavy=j == 1),
                            r["id"]))
        if i % 3 == 0:  # the MultiHop article closest in words: the same event, another story
            near = max((o for o in rows if o["id"] not in chosen),
                       key=lambda o: len(words[o["id"]] & words[r["id"]]) /
                       len(words[o["id"]] | words[r["id"]]))
            chosen.add(near["id"])
            docs.append(Doc(near["id"], near["body"], near["id"]))
        if i % 4 == 0:
            other = rng.choice([o for o in rows if o["id"] not in chosen])
            chosen.add(other["id"])
            docs.append(Doc(f"{other['id']}~quotes", follow_up(other["body"], r["body"]),
                            f"{other['id']}~quotes"))
    rng.shuffle(docs)
    return docs


def measure(docs: list[Doc], threshold: float) -> dict[str, float]:
    index = DuplicateIndex(threshold)
    story_of: dict[str, str] = {}  # predicted: each article's canonical article
    start = time.perf_counter()
    for doc in docs:
        found = signature(doc.body)
        match = index.find(found) if found is not None else None
        if match is not None:
            story_of[doc.key] = story_of[match[0]]
        else:
            story_of[doc.key] = doc.key
            if found is not None:
                index.add(doc.key, found)
    per_article_ms = (time.perf_counter() - start) * 1000 / len(docs)
    true_pairs = predicted = hits = 0
    for a, b in itertools.combinations(docs, 2):
        truth = a.story == b.story
        said = story_of[a.key] == story_of[b.key]
        true_pairs += truth
        predicted += said
        hits += truth and said
    return {"articles": len(docs), "duplicate_pairs": true_pairs, "predicted_pairs": predicted,
            "precision": hits / predicted if predicted else 1.0,
            "recall": hits / true_pairs if true_pairs else 1.0,
            "ms_per_article": per_article_ms}


def ingest_cost(docs: list[Doc], dedup: bool) -> tuple[float, dict[str, int]]:
    """Seconds per article to ingest `docs` through the product's `Ingestor` into a fresh
    store (model loaded before the clock starts), and the report's counts."""
    import tempfile
    from pathlib import Path

    from assistant.index.embeddings import get_embeddings
    from assistant.settings import Settings
    from assistant.types import RawArticle
    from ingest.pipeline import Ingestor

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp) / "store", dedup=dedup,
                            openai_api_key=None, openai_base_url=None, chroma_host=None)
        embeddings = get_embeddings(settings)
        embeddings.embed_documents(["warm up"])
        ingestor = Ingestor(settings, embeddings=embeddings)
        raws = [RawArticle(location=d.key, body=d.body, title=d.key, has_title=True,
                           external_id=d.key) for d in docs]
        start = time.perf_counter()
        report = ingestor.ingest_raw(raws)
        seconds = time.perf_counter() - start
        ingestor.close()
    return seconds / len(docs), report.counts


def _jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / max(len(a | b), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.dedup", description=__doc__)
    parser.add_argument("--originals", type=int, default=150)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--thresholds", default="0.2,0.25,0.3,0.35,0.4,0.5")
    parser.add_argument("--ingest", type=int, default=0, metavar="N",
                        help="also ingest the first N articles of the set with the product's "
                             "Ingestor, with and without near-duplicate detection (the cost "
                             "per article at ingest)")
    args = parser.parse_args(argv)
    docs = build(args.originals, args.seed)
    kinds = Counter("copy" if "~copy" in d.key else "quotes" if "~quotes" in d.key
                    else "original or other story" for d in docs)
    print(f"{len(docs)} articles: {dict(kinds)}")
    sets = {d.key: shingles(d.body) for d in docs}
    by_story: dict[str, list[str]] = {}
    for d in docs:
        by_story.setdefault(d.story, []).append(d.key)
    lowest = min(_jaccard(sets[a], sets[b]) for keys in by_story.values()
                 for a, b in itertools.combinations(keys, 2))
    highest = max(_jaccard(sets[a.key], sets[b.key])
                  for a, b in itertools.combinations(docs, 2) if a.story != b.story)
    print(f"true Jaccard of word 3-grams: lowest within a story {lowest:.2f}, highest between "
          f"two stories {highest:.2f}")
    print("| threshold | duplicate pairs | predicted | precision | recall | ms per article |")
    print("| --- | --- | --- | --- | --- | --- |")
    for threshold in (float(t) for t in args.thresholds.split(",")):
        m = measure(docs, threshold)
        print(f"| {threshold:.2f} | {m['duplicate_pairs']} | {m['predicted_pairs']} | "
              f"{m['precision']:.3f} | {m['recall']:.3f} | {m['ms_per_article']:.2f} |")
    if args.ingest:
        sample = docs[: args.ingest]
        for dedup in (False, True):
            per, counts = ingest_cost(sample, dedup)
            print(f"ingest of {len(sample)} articles, NEWSDESK_DEDUP={str(dedup).lower()}: "
                  f"{per * 1000:.0f} ms per article; {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m evals.citecheck`: how well the citation check of LLM answers finds wrong markers.

The set is answers made of MultiHop-RAG sentences (`tests/data/citecheck.jsonl` stores only
references: article ids, character offsets, the edits to make and the markers to write; the
text is read from `multihop/articles.jsonl` at run time). Each answer cites the chunks that
hold its question's evidence plus chunks of the same articles, cut by the product's chunker.
Its sentences are, by kind:

- right: `verbatim` (a passage sentence cited to its passage), `paraphrase` (the same with a
  few light edits: a leading "But" dropped, words swapped, "4 percent" as "4%", "According to
  <outlet>, ..." added, a trailing "he said" dropped), `pair` (two of them from different
  articles in one sentence, "X ... [1], while Y ... [2]", each clause cited to its own);
- wrong: `moved` (the marker moved to another passage of the answer: another evidence
  article's chunk or another chunk of the same article), `number` and `name` (one number or
  name changed to one its passage does not hold, cited to its own passage), `foreign` (a
  sentence of an article outside the answer), `pair-swapped` (a pair with its markers
  swapped);
- `lead`: an unmarked opening ("Yes.", the gold short answer) that must not be flagged.

Detection: a sentence is flagged when the check re-points a marker of it or reports it
unsupported; precision and recall of flagging the wrong ones, on the dev half (where the
thresholds were chosen), the held-out half and all. Repair: the share of moved markers
re-pointed to the passage that holds the sentence. `--write-spec` rebuilds the spec from the
shared data (seeded; it needs `faker`, in the `dev` extra); `--sweep` reports the grid the
thresholds were chosen on.

The names the set edits (`name`, `name-swap`, `resolved`) are found and invented without the
product's recogniser (`assistant.answer.entities`), which the check itself uses: people by
faker's given names, their surnames, faker's countries and US states, the gold answers and the
outlets; replacements are faker's invented people and firms (see `_Names`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.answer.citecheck import CitationChecker, answer_sentences
from assistant.index import sentences as sentence_split
from assistant.index.embeddings import NewsEmbeddings
from assistant.types import Passage
from evals.data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "data" / "citecheck.jsonl"
MULTIHOP = SHARED_DATA / "multihop"
WRONG = frozenset({"moved", "number", "name", "number-swap", "name-swap", "foreign",
                   "absent", "pair-swapped"})
RIGHT = frozenset({"verbatim", "paraphrase", "clause", "merged", "resolved", "pair"})
SEED = 13


# -- reading the spec ------------------------------------------------------------------------


@dataclass
class Case:
    """One answer of the set: its passages, its text, and each sentence's kind and place."""

    id: str
    split: str
    passages: list[Passage]
    text: str
    kinds: list[str]  # per constructed sentence
    spans: list[tuple[int, int]]  # their places in `text`
    right: list[list[int] | None]  # markers that would be right, per sentence (moved only)


def load_articles(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or MULTIHOP / "articles.jsonl"
    with path.open(encoding="utf-8") as f:
        return {a["id"]: a for a in map(json.loads, f) if a}


def load_spec(path: Path = SPEC) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


_ANSWERS: dict[str, str] = {}


def _answers() -> dict[str, str]:
    """The gold short answers of the MultiHop dev questions, by question id."""
    if not _ANSWERS:
        with (MULTIHOP / "queries_dev.jsonl").open(encoding="utf-8") as f:
            _ANSWERS.update((q["id"], q["answer"]) for q in map(json.loads, f))
    return _ANSWERS


def _fingerprint(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def _passage(article: dict[str, Any], start: int, end: int) -> Passage:
    return Passage(
        chunk_id=f"{article['id']}:{start}", article_id=article["id"], title=article["title"],
        url=article["url"], source=article["source"] or "",
        published_at=article["published_at"] or "", lang="en",
        text=article["body"][start:end], index=0, start=start, end=end, score=0.5)


def _sentence(articles: dict[str, dict[str, Any]], ref: dict[str, Any]) -> str:
    """A referenced sentence with its edits made (offsets in the sentence, last first)."""
    body = articles[ref["article"]]["body"]
    text = body[ref["start"]:ref["end"]]
    if _fingerprint(text) != ref["sha"]:
        raise ValueError(f"{ref['article']}[{ref['start']}:{ref['end']}] is not the sentence "
                         "the spec was built on: is the shared data the public release?")
    for start, end, new in sorted(ref.get("edits", []), key=lambda e: e[0], reverse=True):
        if isinstance(new, dict):  # text of an article: a name or a figure, by reference
            new = articles[new["article"]]["body"][new["start"]:new["end"]]
        text = text[:start] + new + text[end:]
    if ref.get("prefix"):
        source = articles[ref["article"]]["source"]
        text = ref["prefix"].format(source=source) + text
    return text


def _cited(text: str, markers: list[int], style: str = "inside") -> str:
    """A sentence with its markers: before its full stop ("... [1].") or after ("... . [1]")."""
    tags = "".join(f"[{n}]" for n in markers)
    text = text.rstrip()
    if style == "after" or not text.endswith((".", "!")):
        return f"{text} {tags}" if style == "after" else f"{text} {tags}."
    return f"{text[:-1].rstrip()} {tags}{text[-1]}"


def build_cases(spec: list[dict[str, Any]],
                articles: dict[str, dict[str, Any]] | None = None) -> list[Case]:
    """The answers of the spec, with their text read from the shared data."""
    articles = articles if articles is not None else load_articles()
    cases = []
    for answer in spec:
        passages = [_passage(articles[p["article"]], p["start"], p["end"])
                    for p in answer["passages"]]
        for p, ref in zip(passages, answer["passages"], strict=True):
            if _fingerprint(p.text) != ref["sha"]:
                raise ValueError(f"passage {ref} differs from the one the spec was built on")
        parts, kinds, spans, right = [], [], [], []
        pos = 0
        for s in answer["sentences"]:
            kind = s["kind"]
            if kind == "lead":
                text = s.get("text") or f"{_answers()[s['answer_of']]}."
                text = text[:1].upper() + text[1:]
            elif kind in ("pair", "pair-swapped"):
                a, b = s["parts"]
                first = _sentence(articles, a).rstrip(".")
                second = _sentence(articles, b).rstrip(".")
                second = second[:1].lower() + second[1:] if b.get("lower") else second
                text = f"{first} [{a['cite']}], while {second} [{b['cite']}]."
            elif kind == "merged":
                a, b = s["parts"]
                second = _sentence(articles, b)
                second = second[:1].lower() + second[1:] if b.get("lower") else second
                text = _cited(f"{_sentence(articles, a).rstrip('.')}; {second}", s["cite"])
            else:
                text = _cited(_sentence(articles, s), s["cite"], s.get("style", "inside"))
            parts.append(text)
            kinds.append(kind)
            spans.append((pos, pos + len(text)))
            right.append(s.get("right"))
            pos += len(text) + 1
        cases.append(Case(answer["id"], answer["split"], passages, " ".join(parts), kinds,
                          spans, right))
    return cases


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    split: str
    flagged: bool
    repaired: bool | None  # moved markers: re-pointed to the passage holding the sentence
    score: float | None = None  # support by what it cites (the weakest of its claims)


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    embedded: list[int] = field(default_factory=list)

    def figures(self, split: str | None = None) -> dict[str, Any]:
        rows = [o for o in self.outcomes if split is None or o.split == split]
        scored = [o for o in rows if o.kind in WRONG | RIGHT]
        wrong = [o for o in scored if o.kind in WRONG]
        flagged = [o for o in scored if o.flagged]
        hits = [o for o in flagged if o.kind in WRONG]
        moved = [o for o in rows if o.repaired is not None]
        leads = [o for o in rows if o.kind == "lead"]
        right_scores = sorted(o.score for o in rows if o.kind in RIGHT and o.score is not None)
        off_scores = sorted(o.score for o in rows if o.score is not None
                            and o.kind in ("moved", "absent", "foreign"))
        return {
            "support_right_p5": (round(right_scores[len(right_scores) // 20], 3)
                                 if right_scores else None),
            "support_right_min": round(right_scores[0], 3) if right_scores else None,
            "support_misplaced_max": round(off_scores[-1], 3) if off_scores else None,
            "sentences": len(scored), "wrong": len(wrong), "flagged": len(flagged),
            "precision": round(len(hits) / len(flagged), 3) if flagged else None,
            "recall": round(len(hits) / len(wrong), 3) if wrong else None,
            "repair_accuracy": (round(sum(o.repaired for o in moved) / len(moved), 3)
                                if moved else None),
            "moved": len(moved),
            "leads_flagged": f"{sum(o.flagged for o in leads)}/{len(leads)}",
            "by_kind": {k: f"{sum(o.flagged for o in rows if o.kind == k)}/"
                           f"{sum(o.kind == k for o in rows)} flagged"
                        for k in sorted({o.kind for o in rows})},
        }


def evaluate(cases: list[Case], checker: CitationChecker) -> Report:
    """Runs the check on every answer; each constructed sentence is flagged when a sentence
    of the check that overlaps it was re-pointed or is unsupported."""
    report = Report()
    for case in cases:
        t0 = time.perf_counter()
        checked = checker.check(case.text, case.passages)
        report.latencies_ms.append((time.perf_counter() - t0) * 1000)
        report.embedded.append(checked.embedded)
        original = answer_sentences(case.text)
        assert len(original) == len(checked.sentences)
        for k, (kind, (start, end)) in enumerate(zip(case.kinds, case.spans, strict=True)):
            mine = [s for s, (a, b) in zip(checked.sentences, original, strict=True)
                    if a < end and start < b]
            flagged = any(s.verdict in ("repointed", "unsupported") for s in mine)
            repaired = None
            if kind == "moved":
                right = set(case.right[k] or [])
                repaired = any(s.verdict == "repointed" for s in mine) and all(
                    set(s.markers) <= right for s in mine if s.markers)
            scores = [s.score for s in mine if s.score is not None and s.cited]
            report.outcomes.append(Outcome(kind, case.split, flagged, repaired,
                                           min(scores) if scores else None))
    return report


# -- writing the spec (seeded; run once, the result is stored) -------------------------------

_LEADING = re.compile(r"^(?:But|And|However|Meanwhile|Still|So|Yet|Also|Now),?\s+")
_SWAPS = {"said": "stated", "says": "states", "announced": "unveiled", "company": "firm",
          "companies": "firms", "people": "individuals", "about": "around", "big": "large",
          "bought": "acquired", "started": "began", "help": "assist", "shows": "demonstrates",
          "increase": "rise", "decline": "drop", "major": "significant", "recently": "lately",
          "expected": "anticipated", "plans": "intends", "launched": "introduced",
          "important": "key", "however": "though", "including": "such as", "buy": "purchase",
          "received": "got", "because": "since", "currently": "now", "allows": "lets",
          "users": "customers", "however,": "though,"}
_TRAILING_SAID = re.compile(r",\s+(?:he|she|they|it|[A-Z][\w.’'-]+(?:\s[A-Z][\w.’'-]+){0,2})"
                            r"\s+(?:said|says|added|wrote|told\s+\w+)\.?[”\"]?$")
_PERCENT = re.compile(r"(\d)\s?(?:percent|per cent)\b")
_GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_DIGITS = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")
_PASSAGES_PER_ANSWER = 6


def _chunks(body: str, embeddings: NewsEmbeddings) -> list[tuple[int, int]]:
    from assistant.settings import Settings
    from ingest.chunking import chunk_body, make_splitter

    settings = Settings(_env_file=None)
    splitter = make_splitter(embeddings, settings.chunk_tokens, settings.chunk_overlap)
    return [(c.start, c.end) for c in chunk_body(body, splitter)]


def _paraphrase(text: str, source: str, rng: random.Random) -> tuple[list[list[Any]], str]:
    """Light edits of a sentence that keep what it says, and an optional prefix."""
    edits: list[list[Any]] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    def edit(a: int, b: int, new: str) -> None:
        edits.append([a, b, new])
        taken.append((a, b))

    prefix = ""
    m = _LEADING.match(text)
    if m:
        edit(0, m.end() + 1, text[m.end()].upper())
    elif rng.random() < 0.4 and source:
        first = text.split()[0]
        if first.lower() in _SWAPS:
            pass  # swapped below, in lower case
        elif first in ("The", "A", "An", "It", "This", "In", "On", "For", "Some", "Many"):
            edit(0, 1, text[0].lower())
        prefix = "According to {source}, "
    m = _TRAILING_SAID.search(text)
    if m and m.start() > 40 and free(m.start(), m.end()):
        edit(m.start(), len(text), ".")
    for m in _PERCENT.finditer(text):
        if free(m.start(), m.end()):
            edit(m.start(), m.end(), m.group(1) + "%")
    for m in _GROUPED.finditer(text):
        if rng.random() < 0.5 and free(m.start(), m.end()):
            edit(m.start(), m.end(), m.group().replace(",", ""))
    words = [m for m in re.finditer(r"[A-Za-z]+,?", text) if m.group().lower() in _SWAPS]
    for m in rng.sample(words, min(2, len(words))):
        if free(m.start(), m.end()):
            new = _SWAPS[m.group().lower()]
            upper = m.group()[0].isupper() and not (m.start() == 0 and prefix)
            edit(m.start(), m.end(), new[:1].upper() + new[1:] if upper else new)
    return edits, prefix


def _numbers(text: str) -> set[float]:
    return {float(m.group().replace(",", "")) for m in _DIGITS.finditer(text)
            if m.group().replace(",", "").replace(".", "", 1).isdigit()}


def _number_edit(sentence: str, passage_text: str, rng: random.Random) -> list[Any] | None:
    """One number of the sentence changed to a value the passage does not hold."""
    held = _numbers(passage_text)
    options = [m for m in _DIGITS.finditer(sentence) if m.group().replace(",", "")
               .replace(".", "").isdigit()]
    rng.shuffle(options)
    for m in options:
        raw = m.group()
        value = float(raw.replace(",", ""))
        if 1900 <= value <= 2100 and "." not in raw:
            candidates = [value + d for d in (-3, -2, 2, 3, 1, -1)]
        else:
            candidates = [value * f for f in (2, 3, 0.5, 1.5, 4)] + [value + d for d in (3, 7)]
        for new in candidates:
            if new <= 0 or any(abs(new - h) <= 0.05 * max(abs(h), 1) for h in held):
                continue
            decimals = len(raw.split(".")[1]) if "." in raw else 0
            if decimals == 0 and new != int(new):
                continue
            text = f"{new:,.{decimals}f}" if "," in raw else f"{new:.{decimals}f}"
            return [m.start(), m.end(), text]
    return None


# Names are found and made without the product's recogniser (assistant.answer.entities), so
# that the set also edits names it misses: a check measured only on the names its own
# recogniser sees would be measured with its own yardstick.
NAME_LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "en_NG", "de_DE", "fr_FR", "es_ES", "it_IT",
                "nl_NL", "pt_BR", "pl_PL", "tr_TR")
_TOKEN = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W_])?")
_POSSESSIVE = re.compile(r"['’]s?$")
_NOT_ANSWERS = frozenset({"yes", "no", "insufficient information.", "consistent", "agree",
                          "true", "false", "disagree", "inconsistent"})
_MONTHS_AND_DAYS = frozenset(
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())


@dataclass(frozen=True)
class _Found:
    """A name in a text: `[start, end)`, and what it is (`person`: a given name and a surname;
    `surname`: the surname of a person the article names in full; `place`: a country or a US
    state; `labelled`: a gold answer or an outlet)."""

    start: int
    end: int
    text: str
    kind: str


class _Names:
    """Finds names by sources independent of the product: people by faker's lists of given
    names (NAME_LOCALES; those the MultiHop articles also write as ordinary lower-case words,
    "will", "mark", dropped) followed by a capitalised word, their surnames alone in the
    same article, faker's countries and US states, and the names people labelled: the
    MultiHop dev questions' gold short answers and the articles' outlets. Replacements are
    faker's invented people and firms, and its places."""

    def __init__(self, articles: dict[str, dict[str, Any]], answers: list[str],
                 rng: random.Random) -> None:
        from faker import Faker

        lower = Counter(w for a in articles.values()
                        for w in re.findall(r"(?<![\w'’-])[a-z]+(?![\w'’-])", a["body"]))
        given: set[str] = set()
        self._fakers = []
        for locale in NAME_LOCALES:
            fake = Faker(locale)
            fake.seed_instance(SEED)
            self._fakers.append(fake)
            given.update(fake.provider("faker.providers.person").first_names)
        self._lower = lower
        self.given = frozenset(n for n in given if self._rare(n) and n.isalpha())
        address = self._fakers[0].provider("faker.providers.address")
        self.places = sorted((p for p in (*address.countries, *address.states)
                              if "(" not in p and (" " in p or self._rare(p))),
                             key=len, reverse=True)
        outlets = {re.split(r"\s+[-|:]\s+|:\s", a["source"] or "")[0].strip()
                   for a in articles.values()}
        labels = {a.strip() for a in answers if a.strip().lower() not in _NOT_ANSWERS}
        self.labelled = sorted((n for n in labels | outlets
                                if len(n) >= 4 and n[0].isupper() and not n.isupper()),
                               key=len, reverse=True)
        self._articles = articles
        self._surnames: dict[str, frozenset[str]] = {}
        self._rng = rng

    def _rare(self, word: str) -> bool:
        """Not an ordinary word: the articles write it in lower case fewer than 3 times
        ("Act" of "Sherman Act", "Hill", "Will" are ordinary words too)."""
        return self._lower[word.lower()] < 3 and word not in _MONTHS_AND_DAYS

    def _people(self, text: str) -> list[_Found]:
        tokens = list(_TOKEN.finditer(text))
        found = []
        for i, first in enumerate(tokens[:-1]):
            if first.group() not in self.given:
                continue
            words = [first]
            for nxt in tokens[i + 1:i + 3]:
                gap = text[words[-1].end():nxt.start()]
                if gap != " " or not nxt.group()[0].isupper() \
                        or not self._rare(_POSSESSIVE.sub("", nxt.group())):
                    break
                words.append(nxt)
                if nxt.group() not in self.given:  # "Sarah Jessica Parker": one more
                    break
            if len(words) >= 2:
                end = words[-1].start() + len(_POSSESSIVE.sub("", words[-1].group()))
                found.append(_Found(first.start(), end, text[first.start():end], "person"))
        return found

    def surnames(self, article_id: str) -> frozenset[str]:
        """The surnames of the people an article names in full."""
        if article_id not in self._surnames:
            body = self._articles[article_id]["body"]
            self._surnames[article_id] = frozenset(
                p.text.split()[-1] for p in self._people(body)
                if len(p.text.split()[-1]) >= 3)
        return self._surnames[article_id]

    def find(self, text: str, article_id: str) -> list[_Found]:
        """The names in `text` (a sentence or passage of article `article_id`), in order,
        none overlapping another."""
        found = self._people(text)
        for kind, labels in (("labelled", self.labelled), ("place", self.places)):
            for label in labels:
                for m in re.finditer(r"(?<![\w'’-])" + re.escape(label) + r"(?![\w-])",
                                     text):
                    found.append(_Found(m.start(), m.end(), label, kind))
        for surname in self.surnames(article_id):
            for m in re.finditer(r"(?<![\w'’-])" + re.escape(surname) + r"(?![\w-])", text):
                found.append(_Found(m.start(), m.end(), surname, "surname"))
        kept: list[_Found] = []
        for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start))):
            if all(f.start >= k.end or f.end <= k.start for k in kept):
                kept.append(f)
        return sorted(kept, key=lambda f: f.start)

    def invented(self, like: _Found, held: str) -> str | None:
        """An invented name of the same kind as `like` (a person, a surname, a place, or for
        another labelled name a firm) none of whose words `held` (lower-cased text) holds."""
        person = like.kind == "person" or (like.kind == "labelled" and len(like.text.split()) > 1
                                           and like.text.split()[0] in self.given)
        for _ in range(50):
            fake = self._rng.choice(self._fakers)
            if like.kind == "place":
                name = self._rng.choice(self.places)
            elif like.kind == "surname":
                name = fake.last_name()
            elif person:
                name = f"{fake.first_name()} {fake.last_name()}"
            else:  # a firm, named as English-language news would name it: "Patel Ltd"
                name = self._rng.choice(self._fakers[:5]).company()
            words = [w.lower() for w in re.split(r"[\s,-]+", name) if len(w) > 2]
            if not re.search(r"\.|\s[-–]\s", name) and words \
                    and not any(w in held for w in words):
                return name
        return None


def _name_edit(sentence: str, passage: Passage, names: _Names,
               rng: random.Random) -> list[Any] | None:
    """One name of the sentence changed to an invented one (faker's) of the same kind that
    the passage never mentions."""
    held = (passage.text + " " + passage.title + " " + passage.source).lower()
    found = names.find(sentence, passage.article_id)
    rng.shuffle(found)
    for name in found:
        new = names.invented(name, held)
        if new is not None:
            return [name.start, name.end, new]
    return None


_SWAP_CLASS = {"person": "person", "surname": "person", "place": "place",
               "labelled": "labelled"}


def _name_swap(sentence: str, passage: Passage, names: _Names,
               rng: random.Random) -> list[Any] | None:
    """One name of the sentence changed to another name its own passage mentions (a mix-up
    the name check cannot see: only the sentence's meaning tells)."""
    mine = [n for n in names.find(sentence, passage.article_id) if n.start > 0]
    rng.shuffle(mine)
    others: dict[str, tuple[int, str]] = {}  # name: where in the passage, its class
    for n in names.find(passage.text, passage.article_id):
        # A name written inside a sentence (after a lower-case word or a comma), not one
        # that opens it.
        if re.search(r"[a-z,] $", passage.text[:n.start]) and n.text not in sentence:
            others.setdefault(n.text, (n.start, _SWAP_CLASS[n.kind]))
    for name in mine:
        # A person for a person (full name or surname), a place for a place, a labelled name
        # for a labelled one.
        choices = [(n, a) for n, (a, kind) in others.items() if kind == _SWAP_CLASS[name.kind]
                   and not set(n.lower().split()) & set(name.text.lower().split())]
        if choices:
            n, a = rng.choice(sorted(choices))
            return [name.start, name.end, {"article": passage.article_id,
                                           "start": passage.start + a,
                                           "end": passage.start + a + len(n)}]
    return None


def _number_swap(sentence: str, passage: Passage, rng: random.Random) -> list[Any] | None:
    """One figure of the sentence changed to another figure of its own passage."""
    mine = _numbers(sentence)
    options = [m for m in _DIGITS.finditer(sentence)
               if not (1900 <= float(m.group().replace(",", "") or 0) <= 2100)]
    rng.shuffle(options)
    pool = [m for m in _DIGITS.finditer(passage.text)
            if float(m.group().replace(",", "")) not in mine and m.group() != "0"]
    for m in options:
        value = float(m.group().replace(",", ""))
        near = [p for p in pool if not (1900 <= float(p.group().replace(",", "")) <= 2100)
                and abs(float(p.group().replace(",", "")) - value) > 0.05 * max(value, 1)]
        if near:
            p = rng.choice(near)
            return [m.start(), m.end(), {"article": passage.article_id,
                                         "start": passage.start + p.start(),
                                         "end": passage.start + p.end()}]
    return None


_CLAUSE_CUT = re.compile(r",\s+(?:which|but|while|and|as|after|with|who|where)\b|;\s+|\s+[—–-]+\s+")


def _clause(text: str) -> list[Any] | None:
    """The sentence cut after its first clause, where that is at least 40% of it."""
    for m in _CLAUSE_CUT.finditer(text):
        if len(text) * 0.4 <= m.start() <= len(text) * 0.8 and len(text[:m.start()]) >= 40:
            return [m.start(), len(text), "."]
    return None


def _similar(a: str, b: str) -> bool:
    """Two sentences saying nearly the same (content words mostly shared)."""
    from assistant.answer.conflicts import content_terms

    ta, tb = content_terms(a), content_terms(b)
    return bool(ta and tb) and len(ta & tb) / min(len(ta), len(tb)) >= 0.6


def write_spec(path: Path = SPEC) -> int:
    """Builds the set from the shared data and writes its references to `path`."""
    from assistant.index.embeddings import get_embeddings
    from assistant.settings import Settings

    rng = random.Random(SEED)
    embeddings = get_embeddings(Settings(_env_file=None))
    articles = load_articles()
    with (MULTIHOP / "queries_dev.jsonl").open(encoding="utf-8") as f:
        questions = [q for q in map(json.loads, f) if q["evidence"]]
    # Name edits draw from their own generator, so the other kinds' draws do not depend on them.
    names = _Names(articles, [q["answer"] for q in questions], random.Random(SEED + 1))
    names_rng = random.Random(SEED + 2)
    chunk_cache: dict[str, list[tuple[int, int]]] = {}

    def chunks_of(article_id: str) -> list[tuple[int, int]]:
        if article_id not in chunk_cache:
            chunk_cache[article_id] = _chunks(articles[article_id]["body"], embeddings)
        return chunk_cache[article_id]

    plan = ["verbatim", "paraphrase", "moved", "number", "name", "clause", "moved",
            "verbatim", "foreign", "number", "name", "paraphrase", "number-swap", "name-swap",
            "merged", "clause", "merged", "absent", "resolved", "absent", "resolved"]
    rng.shuffle(plan)
    turn = 0
    lines = []
    for qn, q in enumerate(questions):
        split = "dev" if qn % 2 == 0 else "held-out"
        spans: list[tuple[str, int, int]] = []  # (article, start, end) of the passages
        picked: list[tuple[str, int, int, int]] = []  # evidence: article, start, end, passage
        for e in q["evidence"]:
            art = articles[e["article_id"]]
            start = art["body"].find(e["fact"])
            start = e["fact_start"] if start < 0 else start
            end = start + len(e["fact"])
            chunks = chunks_of(art["id"])
            best = max(range(len(chunks)), key=lambda i: min(end, chunks[i][1])
                       - max(start, chunks[i][0]))
            key = (art["id"], *chunks[best])
            if key not in spans:
                spans.append(key)
            picked.append((art["id"], start, end, spans.index(key)))
        # Another chunk of an evidence article (not overlapping the one cited): same story.
        for art_id, *_ in picked[:2]:
            chunks = chunks_of(art_id)
            used = [i for i, c in enumerate(chunks) if (art_id, *c) in spans]
            far = [i for i in range(len(chunks)) if all(abs(i - u) >= 2 for u in used)]
            if far and len(spans) < _PASSAGES_PER_ANSWER:
                spans.append((art_id, *chunks[rng.choice(far)]))
        order = list(range(len(spans)))
        rng.shuffle(order)
        spans = [spans[i] for i in order]
        where = {old: new for new, old in enumerate(order)}
        passages = [_passage(articles[a], s, e) for a, s, e in spans]

        def sentences_of(j: int, passages: list[Passage] = passages
                         ) -> list[tuple[str, int, int]]:
            p = passages[j]
            return sentence_split.split(p.text, "en", p.start)

        def holders(article: str, start: int, end: int,
                    spans: list[tuple[str, int, int]] = spans) -> list[int]:
            return [j + 1 for j, (a, s, e) in enumerate(spans)
                    if a == article and s <= start and end <= e]

        def ref(article: str, start: int, end: int, **extra: Any) -> dict[str, Any]:
            text = articles[article]["body"][start:end]
            return {"article": article, "start": start, "end": end, "sha": _fingerprint(text),
                    **extra}

        out: list[dict[str, Any]] = []
        if rng.random() < 0.4:
            out.append({"kind": "lead", "answer_of": q["id"]})
        seen: set[tuple[str, int]] = set()
        for art_id, fstart, fend, pj in picked:
            j = where[pj]
            options = sentences_of(j)
            if not options:
                continue
            # The passage sentence holding the evidence fact.
            text, s, e = max(options, key=lambda x: min(fend, x[2]) - max(fstart, x[1]))
            if (art_id, s) in seen:
                continue
            seen.add((art_id, s))
            kind = plan[turn % len(plan)]
            turn += 1
            cite = holders(art_id, s, e)
            def edited(edit: Callable[[str], Any], art_id: str = art_id,
                       options: list[tuple[str, int, int]] = options,
                       s: int = s) -> dict[str, Any] | None:
                """A sentence of the passage that `edit` can change (the evidence one
                first), cited to its own passage, with the edit; None when none can be."""
                found = sorted((o for o in options if edit(o[0])), key=lambda o: o[1] != s)
                if not found:
                    return None
                text, start, end = found[0]
                return {"cite": holders(art_id, start, end)[:1],
                        **ref(art_id, start, end, edits=[edit(text)])}

            if kind == "number":
                page = passages[j].text
                case = edited(lambda t, page=page: _number_edit(t, page, rng))
                if case is not None:
                    out.append({"kind": "number", **case})
                    continue
                kind = "verbatim"
            if kind == "name":
                passage = passages[j]
                case = edited(lambda t, passage=passage: _name_edit(t, passage, names,
                                                                    names_rng))
                if case is not None:
                    out.append({"kind": "name", **case})
                    continue
                kind = "paraphrase"
            if kind == "name-swap":
                # Any sentence of the passage naming someone, the evidence one first: the
                # independent names are fewer than capitalised words.
                passage = passages[j]
                case = edited(lambda t, passage=passage: _name_swap(t, passage, names,
                                                                    names_rng))
                if case is not None:
                    out.append({"kind": kind, **case})
                    continue
                kind = "clause"
            if kind == "number-swap":
                swap = _number_swap(text, passages[j], rng)
                if swap is None:
                    kind = "clause"
                else:
                    out.append({"kind": kind, "cite": cite[:1], **ref(art_id, s, e,
                                                                     edits=[swap])})
                    continue
            if kind == "resolved":
                # "He said ..." with "he" replaced by the name the sentence before gives.
                found = None
                for k in range(1, len(options)):
                    t2, s2, e2 = options[k]
                    m = re.match(r"(He|She|They|It) ", t2)
                    prev_text, ps, _ = options[k - 1]
                    # He or she: a person; it or they: a labelled name (a firm, a team).
                    wanted = ("labelled",) if m and m.group(1) in ("It", "They") \
                        else ("person", "surname")
                    named = [n for n in names.find(prev_text, art_id) if n.kind in wanted
                             and n.text not in t2 and n.start > 0]
                    if m and named:
                        found = (t2, s2, e2, [0, len(m.group(1)), {
                            "article": art_id, "start": ps + named[-1].start,
                            "end": ps + named[-1].end}])
                        break
                if found is None:
                    kind = "clause"
                else:
                    t2, s2, e2, edit = found
                    out.append({"kind": kind, "cite": holders(art_id, s2, e2)[:1],
                                **ref(art_id, s2, e2, edits=[edit])})
                    continue
            if kind == "merged":
                after = [o for o in options if o[1] > e]
                if not after or len(text) + len(after[0][0]) > 400:
                    kind = "clause"
                else:
                    t2, s2, e2 = after[0]
                    lower = t2.split()[0] in ("The", "A", "An", "It", "This", "In", "That")
                    out.append({"kind": kind, "cite": holders(art_id, s, e2)[:1],
                                "parts": [ref(art_id, s, e), ref(art_id, s2, e2, lower=lower)]})
                    continue
            if kind == "clause":
                edit = _clause(text)
                if edit is None:
                    kind = "paraphrase"
                else:
                    out.append({"kind": kind, "cite": cite[:1], **ref(art_id, s, e,
                                                                     edits=[edit])})
                    continue
            if kind == "moved":
                targets = [k for k in range(len(passages)) if k + 1 not in cite
                           and not any(_similar(text, t) for t, _, _ in sentences_of(k))]
                if not targets:
                    kind = "verbatim"
                else:
                    out.append({"kind": "moved", "cite": [rng.choice(targets) + 1],
                                "right": cite, **ref(art_id, s, e)})
                    continue
            if kind == "absent":
                # A sentence of a chunk of the same article that was not retrieved.
                chunks = chunks_of(art_id)
                shown = [(s0, e0) for a0, s0, e0 in spans if a0 == art_id]
                hidden = [c for c in chunks if all(c[1] <= s0 or c[0] >= e0 for s0, e0 in shown)]
                candidates = [x for c in hidden for x in sentence_split.split(
                    articles[art_id]["body"][c[0]:c[1]], "en", c[0])
                    if not any(_similar(x[0], t) for k in range(len(passages))
                               for t, _, _ in sentences_of(k))]
                if not candidates:
                    kind = "verbatim"
                else:
                    t, s2, e2 = rng.choice(candidates)
                    out.append({"kind": kind, "cite": [j + 1], **ref(art_id, s2, e2)})
                    continue
            if kind == "foreign":
                others = [x for x in questions if x is not q and x["evidence"]]
                ev = rng.choice(rng.choice(others)["evidence"])
                if ev["article_id"] in {a for a, _, _ in spans}:
                    kind = "verbatim"
                else:
                    body = articles[ev["article_id"]]["body"]
                    fs = body.find(ev["fact"])
                    chunk = sentence_split.split(body, "en")
                    own = [x for x in chunk if x[1] <= fs < x[2]] if fs >= 0 else []
                    if not own or any(_similar(own[0][0], t) for k in range(len(passages))
                                      for t, _, _ in sentences_of(k)):
                        kind = "verbatim"
                    else:
                        t, fs2, fe2 = own[0]
                        out.append({"kind": "foreign",
                                    "cite": [rng.randrange(len(passages)) + 1],
                                    **ref(ev["article_id"], fs2, fe2)})
                        continue
            style = "after" if rng.random() < 0.25 else "inside"
            if kind == "paraphrase":
                edits, prefix = _paraphrase(text, passages[j].source, rng)
                if not edits and not prefix:
                    kind = "verbatim"
                else:
                    out.append({"kind": "paraphrase", "cite": cite[:1], "style": style,
                                **ref(art_id, s, e, edits=edits, prefix=prefix)})
                    continue
            out.append({"kind": "verbatim", "cite": cite[:1], "style": style,
                        **ref(art_id, s, e)})
        # Two sources side by side, as the prompt asks for a disagreement: each clause cited.
        firsts = {}
        for art_id, fstart, fend, pj in picked:
            firsts.setdefault(art_id, (fstart, fend, where[pj]))
        if len(firsts) >= 2 and qn % 4 < 2:
            (a1, (s1, e1, j1)), (a2, (s2, e2, j2)) = list(firsts.items())[:2]
            o1 = [o for o in sentences_of(j1) if o[1] <= s1 < o[2] or s1 <= o[1] < e1]
            o2 = [o for o in sentences_of(j2) if o[1] <= s2 < o[2] or s2 <= o[1] < e2]
            if o1 and o2 and not _similar(o1[0][0], o2[0][0]):
                swapped = rng.random() < 0.5
                c1, c2 = holders(a1, o1[0][1], o1[0][2])[0], holders(a2, o2[0][1], o2[0][2])[0]
                first_word = o2[0][0].split()[0]
                lower = first_word in ("The", "A", "An", "It", "This", "In")
                out.append({"kind": "pair-swapped" if swapped else "pair", "parts": [
                    {**ref(a1, o1[0][1], o1[0][2]), "cite": c2 if swapped else c1},
                    {**ref(a2, o2[0][1], o2[0][2]), "cite": c1 if swapped else c2,
                     "lower": lower}]})
        if out:
            lines.append({"id": f"cc-{q['id']}", "question": q["id"], "split": split,
                          "passages": [{"article": a, "start": s, "end": e,
                                        "sha": _fingerprint(articles[a]["body"][s:e])}
                                       for a, s, e in spans],
                          "sentences": out})
    with path.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return sum(len(line["sentences"]) for line in lines)


# -- the command -----------------------------------------------------------------------------


GRID = {"support": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8), "better_by": (0.05, 0.1, 0.2, 0.3, 0.5),
        "cosine_weight": (0.3, 0.5, 0.7, 0.9), "close": (0.5, 0.6, 0.7, 0.8, 0.9),
        "drawn_on": (0.3, 0.4, 0.5, 0.6, 0.8)}


def sweep(cases: list[Case], checker: CitationChecker) -> Iterator[tuple[str, float, dict]]:
    """Each threshold varied alone around the checker's own values: (name, value, figures)."""
    defaults = {name: getattr(checker, name) for name in GRID}
    for name, values in GRID.items():
        for value in values:
            setattr(checker, name, value)  # one checker: its sentence vectors stay cached
            yield name, value, evaluate(cases, checker).figures()
        setattr(checker, name, defaults[name])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.citecheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--write-spec", action="store_true",
                        help="rebuild the spec from the shared data, then measure")
    parser.add_argument("--sweep", action="store_true",
                        help="also vary each threshold on the dev half")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    from assistant.index.embeddings import get_embeddings
    from assistant.settings import Settings

    if args.write_spec:
        print(f"wrote {write_spec(args.spec)} sentences to {args.spec}")
    embeddings = get_embeddings(Settings(_env_file=None))
    cases = build_cases(load_spec(args.spec))
    checker = CitationChecker(embeddings)
    report = evaluate(cases, checker)  # cold: every answer's sentences embedded afresh
    warm = evaluate(cases, checker).latencies_ms  # again: passage sentences cached
    figures = {"all": report.figures(), "dev": report.figures("dev"),
               "held-out": report.figures("held-out"),
               "check_ms_p50": round(statistics.median(report.latencies_ms), 1),
               "check_ms_p95": round(sorted(report.latencies_ms)[
                   int(0.95 * (len(report.latencies_ms) - 1))], 1),
               "texts_embedded_p50": statistics.median(report.embedded),
               "check_ms_warm_p50": round(statistics.median(warm), 1),
               "answers": len(cases)}
    if args.sweep:
        print("dev half, one threshold varied at a time (the others as set):")
        for name, value, f in sweep([c for c in cases if c.split == "dev"], checker):
            print(f"  {name:13} {value:<5} precision {f['precision']}  recall {f['recall']}  "
                  f"repair {f['repair_accuracy']}")
    for name in ("dev", "held-out", "all"):
        f = figures[name]
        print(f"{name:9} sentences {f['sentences']:3}  wrong {f['wrong']:3}  precision "
              f"{f['precision']}  recall {f['recall']}  repair {f['repair_accuracy']} "
              f"({f['moved']} moved)  leads flagged {f['leads_flagged']}")
    f = figures["all"]
    print(f"support of right citations: min {f['support_right_min']}, 5th percentile "
          f"{f['support_right_p5']}; of moved, absent and foreign ones: max "
          f"{f['support_misplaced_max']}")
    print("by kind (all):", ", ".join(f"{k} {v}" for k, v in figures["all"]["by_kind"].items()))
    print(f"check per answer: p50 {figures['check_ms_p50']} ms, p95 {figures['check_ms_p95']} "
          f"ms (cold cache), texts embedded p50 {figures['texts_embedded_p50']}; p50 "
          f"{figures['check_ms_warm_p50']} ms with the passage sentences cached")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Retrieval: a question -> the best passages in the store, as a LangChain retriever.

Hybrid: each chunk's keyword score (BM25, `assistant.index.lexical`, scaled to the best one) plus
DENSE_WEIGHT times its cosine similarity to the question (the packaged embedder, from
Chroma). News questions are also about who reported what and when:
- each outlet the question names that the store holds ("the TechCrunch article on X and The
  Verge report on Y") gets a sub-query of its own, restricted to that outlet and built from
  the words around its mention; the best of each sub-query come first, interleaved, so every
  part of a multi-part question is covered;
- chunks of articles published on a date the question names are boosted;
- filters (published from / to, outlets) mask the keyword scores and restrict the dense query
  to the chunks they let through, so they act inside the search, not on its results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from dateutil import parser as date_parser
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.answer.outlets import named_outlets
from assistant.dates import find_dates
from assistant.index.embeddings import NewsEmbeddings
from assistant.index.lexical import KeywordIndex
from assistant.index.store import NewsStore
from assistant.types import Filters, Passage, split_chunk_id

# Weight of cosine similarity against the keyword score scaled to [0, 1]. The packaged
# MiniLM is a weak judge of long multi-part news questions (and knows no Chinese), so
# keywords lead; meaning breaks ties and catches paraphrases.
DENSE_WEIGHT = 0.3
# An outlet's sub-query keeps this share of the whole question's keyword score.
WHOLE_QUESTION_WEIGHT = 0.3
# Score factor for chunks of articles published on a date the question names.
DATE_BOOST = 1.0
# For "latest" questions, the newest of the candidates gets this much more score, the oldest
# none, the others by their day in between.
RECENCY_BOOST = 0.5


def dates_named(text: str) -> list[str]:
    """Calendar dates with a year written in `text` ("October 7, 2023", "7 October 2023",
    "2023-10-07"), as YYYY-MM-DD."""
    return [d.iso for d in find_dates(text, need_year=True)]


def _article_of(chunk_id: str) -> str:
    parsed = split_chunk_id(chunk_id)
    return parsed[0] if parsed else chunk_id


def _recency(days: set[str]) -> dict[str, float]:
    """Each day's place from the oldest (0) to the newest (1) of these days, by date."""
    dated = sorted(d for d in days if d)
    if len(dated) < 2:
        return dict.fromkeys(dated, 1.0)
    first = date_parser.isoparse(dated[0][:10]).toordinal()
    span = max(date_parser.isoparse(dated[-1][:10]).toordinal() - first, 1)
    return {d: (date_parser.isoparse(d[:10]).toordinal() - first) / span for d in dated}


@dataclass
class _Part:
    """The whole question, or one outlet's sub-query."""

    keyword: dict[str, float]  # chunk id -> keyword score, for the candidates
    top: list[str]  # the best chunks by keyword score (above zero)
    dense: list[str]  # chunk ids from the dense query
    best: float  # the best keyword score inside the filters
    outlet: str | None = None
    words: str = ""  # an outlet's sub-query: the words around its mention


class NewsRetriever(BaseRetriever):
    """Hybrid (keyword + dense) retrieval with per-outlet sub-queries and date boosts."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: NewsStore
    embeddings: NewsEmbeddings
    k: int = 8
    candidates: int = 50
    per_outlet: int = 3

    def retrieve(self, query: str, k: int | None = None, filters: Filters | None = None,
                 recent: bool = False, index: KeywordIndex | None = None
                 ) -> tuple[list[Passage], np.ndarray]:
        """The top passages for `query`, best first, and the query's vector. `filters`
        (published dates, outlets) apply inside both the keyword search and the dense query,
        so k passages come back whenever k chunks match them (but when fewer than k of the
        matches lie within the dense planner's deepest query and few share the question's
        words: `NewsStore._filtered_nearest`). `recent`: newer candidates
        rank higher (a question about the latest news). `index`: the keyword index as the
        caller caught it up for this question (default: caught up now)."""
        k = k or self.k
        vector = self.embeddings.embed([query])[0]
        index = index or self.store.keywords()
        _, held = index.counts()
        if not held:
            return [], vector
        filters = filters if filters is not None and filters.active else None
        # Candidates are ranked by ids, keyword scores and similarities alone; only the k
        # chosen are read in full (text and metadata).
        found = self.store.nearest(vector, self.candidates, total=held, filters=filters,
                                   index=index)
        # Only chunks of the versions readers see (a write in progress is not cited).
        visible = index.visible(found)
        dense = {cid: sim for cid, sim in found.items() if cid in visible}
        parts = self._parts(query, list(dense), index, filters)
        candidates = {cid for part in parts for cid in part.top}
        similarity = dict(dense)
        similarity.update(self.store.similarities(sorted(candidates - dense.keys()), vector))
        known = index.articles(_article_of(cid) for cid in candidates | dense.keys())
        named = set(dates_named(query))
        rankings = [self._rank(part, known, named, similarity, recent) for part in parts]
        whole, subs = rankings[0], rankings[1:]
        order = (self._interleave(subs, whole) if subs else whole)[:k]
        # Scored with the similarity the ranking used (Chroma's distance for dense hits).
        return self.store.read(order, similarity), vector

    def _parts(self, query: str, dense: list[str], index: KeywordIndex,
               filters: Filters | None) -> list[_Part]:
        top = index.search(query, self.candidates, filters)
        keyword = {**top, **index.scores(query, [c for c in dense if c not in top])}
        parts = [_Part(keyword, list(top), dense, max(top.values(), default=0.0))]
        named = named_outlets(query, index.sources())
        outlets_of = index.articles(_article_of(cid) for cid in dense) if named else {}
        for outlet, words in named:
            own_top = index.search(words, self.candidates, filters, outlet=outlet,
                                   also=query, also_weight=WHOLE_QUESTION_WEIGHT)
            # The outlet's share of the dense candidates: a filtered Chroma query per outlet
            # costs more and measured no better.
            own = [cid for cid in dense
                   if outlets_of.get(_article_of(cid), ("", ""))[0] == outlet]
            own_scores = index.scores(words, [c for c in own if c not in own_top], also=query,
                                      also_weight=WHOLE_QUESTION_WEIGHT)
            parts.append(_Part({**own_top, **own_scores}, list(own_top), own,
                               max(own_top.values(), default=0.0), outlet, words))
        return parts

    def newest_day(self, index: KeywordIndex | None = None) -> str:
        """The day of the newest article (YYYY-MM-DD); "" when no article is dated."""
        return (index or self.store.keywords()).newest_day()

    def latest(self, k: int, filters: Filters | None = None,
               index: KeywordIndex | None = None) -> list[Passage]:
        """The opening passage of each of the `k` newest articles that `filters` let through,
        newest first: what a question like "what happened today?" is about."""
        chosen = (index or self.store.keywords()).latest(k, filters)
        return self.store.read(chosen, dict.fromkeys(chosen, 1.0))

    def _rank(self, part: _Part, known: dict[str, tuple[str, str]], named: set[str],
              similarity: dict[str, float], recent: bool) -> list[str]:
        # (outlet, day) of each candidate, looked up once.
        about = {cid: known.get(_article_of(cid), ("", ""))
                 for cid in dict.fromkeys([*part.top, *part.dense]) if cid in similarity}
        if part.outlet is not None:
            about = {cid: found for cid, found in about.items() if found[0] == part.outlet}
        best = part.best or 1.0
        own = set(dates_named(part.words)) if part.outlet else set()
        newer = _recency({day for _, day in about.values()}) if recent else {}
        if own:
            dated, factor = own, DATE_BOOST
        else:
            dated, factor = named, DATE_BOOST if part.outlet is None else DATE_BOOST / 2

        def score(cid: str) -> float:
            day = about[cid][1]
            boost = (1.0 + factor * (day in dated)) * (1.0 + RECENCY_BOOST * newer.get(day, 0.0))
            return float((part.keyword.get(cid, 0.0) / best
                          + DENSE_WEIGHT * similarity[cid]) * boost)

        return sorted(about, key=lambda cid: (-score(cid), cid))

    def _interleave(self, rankings: list[list[str]], rest: list[str]) -> list[str]:
        top: list[str] = []
        for rank in range(self.per_outlet):
            for ranking in rankings:
                if rank < len(ranking) and ranking[rank] not in top:
                    top.append(ranking[rank])
        chosen = set(top)
        return top + [cid for cid in rest if cid not in chosen]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        passages, _ = self.retrieve(query)
        return [Document(page_content=p.text,
                         metadata={k: v for k, v in asdict(p).items() if k != "sentence_vectors"})
                for p in passages]

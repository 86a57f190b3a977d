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

import re
from dataclasses import asdict, dataclass

import numpy as np
from dateutil import parser as date_parser
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.answer.outlets import named_outlets
from assistant.index.embeddings import NewsEmbeddings
from assistant.index.lexical import KeywordView
from assistant.index.store import NewsStore
from assistant.text import MONTH_DATE
from assistant.types import Filters, Passage

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
    """Calendar dates written out in `text` ("October 7, 2023"), as YYYY-MM-DD."""
    found = []
    for match in MONTH_DATE.finditer(text):
        cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", match.group())
        try:
            found.append(date_parser.parse(cleaned).strftime("%Y-%m-%d"))
        except (ValueError, OverflowError):
            continue
    return found


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

    keyword: np.ndarray  # per index row
    dense: list[str]  # chunk ids from the dense query
    day_boost: np.ndarray | float
    outlet: str | None = None


class NewsRetriever(BaseRetriever):
    """Hybrid (keyword + dense) retrieval with per-outlet sub-queries and date boosts."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: NewsStore
    embeddings: NewsEmbeddings
    k: int = 8
    candidates: int = 50
    per_outlet: int = 3

    def retrieve(self, query: str, k: int | None = None, filters: Filters | None = None,
                 recent: bool = False) -> tuple[list[Passage], np.ndarray]:
        """The top passages for `query`, best first, and the query's vector. `filters`
        (published dates, outlets) apply inside both the keyword scoring and the dense query,
        so k passages come back whenever k chunks match them. `recent`: newer candidates
        rank higher (a question about the latest news)."""
        k = k or self.k
        vector = self.embeddings.embed([query])[0]
        view = self.store.keyword_view()
        allowed = view.matching(filters)
        if not view.ids or (allowed is not None and not allowed.any()):
            return [], vector
        among = None if allowed is None else [view.ids[i] for i in np.flatnonzero(allowed)]
        # Candidates are ranked by ids, index rows and similarities alone; only the k chosen
        # are read in full (text and metadata).
        dense = self.store.nearest(vector, self.candidates, total=len(view.ids), among=among)
        parts = self._parts(query, [cid for cid in dense if cid in view.rows], view)
        if allowed is not None:
            for part in parts:
                part.keyword = np.where(allowed, part.keyword, 0.0)
        candidates = {view.ids[i] for part in parts for i in self._top_rows(part, view)}
        similarity = dict(dense)
        similarity.update(self.store.similarities(sorted(candidates - dense.keys()), vector))
        rankings = [self._rank(part, view, similarity, recent) for part in parts]
        whole, subs = rankings[0], rankings[1:]
        order = (self._interleave(subs, whole) if subs else whole)[:k]
        # Scored with the similarity the ranking used (Chroma's distance for dense hits).
        return self.store.read(order, similarity), vector

    def _parts(self, query: str, dense: list[str], view: KeywordView) -> list[_Part]:
        whole = view.scores(query)
        dates = dates_named(query)
        on_dates = view.on_dates(dates) if dates else None
        parts = [_Part(whole, dense, 1.0 + DATE_BOOST * on_dates if on_dates is not None
                       else 1.0)]
        for outlet, words in named_outlets(query, view.source_names):
            own_dates = dates_named(words)
            if own_dates:
                boost = 1.0 + DATE_BOOST * view.on_dates(own_dates)
            elif on_dates is not None:
                boost = 1.0 + DATE_BOOST / 2 * on_dates
            else:
                boost = 1.0
            keyword = np.where(view.of_source(outlet),
                               view.scores(words) + WHOLE_QUESTION_WEIGHT * whole, 0.0)
            # The outlet's share of the dense candidates: a filtered Chroma query per outlet
            # costs more and measured no better.
            own = [cid for cid in dense if view.sources[view.rows[cid]] == outlet]
            parts.append(_Part(keyword, own, boost, outlet))
        return parts

    def _top_rows(self, part: _Part, view: KeywordView) -> np.ndarray:
        n = min(self.candidates, len(view.ids))
        top = np.argpartition(-part.keyword, n - 1)[:n]
        return top[part.keyword[top] > 0]

    def newest_day(self) -> str:
        """The day of the newest article (YYYY-MM-DD); "" when no article is dated."""
        return max((d for d in self.store.keyword_view().by_date if d), default="")

    def latest(self, k: int, filters: Filters | None = None) -> list[Passage]:
        """The opening passage of each of the `k` newest articles that `filters` let through,
        newest first: what a question like "what happened today?" is about."""
        view = self.store.keyword_view()
        allowed = view.matching(filters)
        rows = np.flatnonzero(allowed) if allowed is not None else np.arange(len(view.ids))
        openings = [int(i) for i in rows if view.ids[i].endswith(":00000") and view.dates[i]]
        openings.sort(key=lambda i: (view.dates[i], view.ids[i]), reverse=True)
        chosen = [view.ids[i] for i in openings[:k]]
        return self.store.read(chosen, dict.fromkeys(chosen, 1.0))

    def _rank(self, part: _Part, view: KeywordView, similarity: dict[str, float],
              recent: bool = False) -> list[str]:
        rows = view.rows
        found = {int(i) for i in self._top_rows(part, view)}
        found.update(rows[cid] for cid in part.dense)
        found = {i for i in found if view.ids[i] in similarity}
        if part.outlet is not None:
            found = {i for i in found if view.sources[i] == part.outlet}
        best = float(part.keyword.max()) or 1.0
        boost = part.day_boost
        newer = _recency({view.dates[i] for i in found}) if recent else {}

        def score(row: int) -> float:
            factor = boost[row] if isinstance(boost, np.ndarray) else 1.0
            factor *= 1.0 + RECENCY_BOOST * newer.get(view.dates[row], 0.0)
            return float((part.keyword[row] / best
                          + DENSE_WEIGHT * similarity[view.ids[row]]) * factor)

        return [view.ids[i] for i in sorted(found, key=lambda i: (-score(i), view.ids[i]))]

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

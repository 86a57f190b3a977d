"""The one Python API of newsdesk: ask a question (with history) and get a cited answer.

The HTTP app and the Gradio UI are thin layers over `Assistant`; everything they can do goes
through here. Answering is a LangChain runnable chain:
standalone question -> retrieval -> extractive or LLM answer (streamed).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from functools import cached_property
from typing import Any

from langchain_core.runnables import (
    Runnable,
    RunnableGenerator,
    RunnableLambda,
)

from assistant.answer.answerer import Answerer
from assistant.answer.extractive import ExtractiveAnswerer
from assistant.answer.llm import LLMAnswerer
from assistant.answer.local_model import LocalModel
from assistant.answer.outlets import missing_outlets
from assistant.answer.retrieval import NewsRetriever
from assistant.answer.timeline import TIMELINE_PASSAGES, WIDE_CANDIDATES, resolve, spread
from assistant.answer.timeline_ask import TimelineAsk, timeline_question
from assistant.answer.when import TimeAsk, asks_for_news, dated, narrow, read_time, without_time
from assistant.errors import QuestionError, StoreError
from assistant.follows import OPEN_OWNER, Follow, FollowBook, follow_book
from assistant.gate import WorkGate
from assistant.index.embeddings import get_embeddings
from assistant.index.lexical import KeywordIndex
from assistant.index.store import NewsStore
from assistant.settings import Settings, get_settings
from assistant.text import invalid_unicode
from assistant.types import (
    Answer,
    ArticleRecord,
    ArticleText,
    Filters,
    Message,
    Outlet,
    ReportedBy,
)


class Assistant:
    """Answers questions over the ingested news. Build once per process; thread-safe."""

    def __init__(self, settings: Settings | None = None, store: NewsStore | None = None,
                 local_model: LocalModel | None = None) -> None:
        """`store`: an open store to answer from (default: opened from the settings).
        `local_model`: a `LocalModel` to answer with, which the caller stops (default: with
        `llm_gguf` set, one started here and stopped by `close`)."""
        self.settings = settings or get_settings()
        self.embeddings = get_embeddings(self.settings)
        self.store = store or NewsStore(self.settings, self.embeddings)
        self.retriever = NewsRetriever(store=self.store, embeddings=self.embeddings,
                                       k=self.settings.k)
        self._owned_model = local_model is None and self.settings.llm_gguf is not None
        local = local_model or (_local_model(self.settings) if self._owned_model else None)
        self.answerer: Answerer = (
            LLMAnswerer(self.settings, self.embeddings, local=local)
            if self.settings.llm_enabled or local else ExtractiveAnswerer(
                self.embeddings, threshold=self.settings.refusal_threshold,
                max_sentences=self.settings.answer_sentences))
        # Retrieval and the offline answer run in one of a few slots (`assistant.gate`).
        self.gate = WorkGate(self.settings.answer_slots, self.settings.store_timeout_s)
        self.chain = self._build_chain()

    def close(self) -> None:
        """Stop the local model's server, when this assistant started it."""
        if self._owned_model and isinstance(self.answerer, LLMAnswerer):
            self.answerer.close()

    @property
    def mode(self) -> str:
        """"extractive" (offline) or "llm"."""
        return self.answerer.mode

    def ask(self, question: str, history: Sequence[Message | dict[str, Any]] = (),
            k: int | None = None, filters: Filters | dict[str, Any] | None = None) -> Answer:
        """The full answer at once. `filters`: only articles published from `since` to
        `until`, from these `sources` (see `Filters`)."""
        final = None
        for event in self.stream(question, history, k, filters):
            if isinstance(event, Answer):
                final = event
        assert final is not None  # the chain always ends with an Answer
        return final

    def stream(self, question: str, history: Sequence[Message | dict[str, Any]] = (),
               k: int | None = None,
               filters: Filters | dict[str, Any] | None = None) -> Iterator[str | Answer]:
        """Text deltas as the answer is written, then the complete `Answer`."""
        if filters is not None and not isinstance(filters, Filters):
            try:
                filters = Filters.model_validate(filters)
            except ValueError as exc:
                raise QuestionError(f"bad filters: {exc}") from None
        question = question.strip()
        if not question:
            raise QuestionError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(f"the question is longer than {self.settings.max_question_chars} "
                                "characters")
        messages = [m if isinstance(m, Message) else Message.model_validate(m) for m in history]
        if problem := invalid_unicode(question):
            raise QuestionError(f"the question {problem}")
        for message in messages:
            if problem := invalid_unicode(message.content):
                raise QuestionError(f"a message of the history {problem}")
        inputs = {"question": question, "history": messages, "k": k or self.settings.k,
                  "filters": filters if filters is not None and (filters.active or filters.today)
                  else None}
        yield from self.chain.stream(inputs)

    def health(self) -> dict[str, Any]:
        """`status` "ok", or "degraded" with a `reason` when the store cannot serve or cannot
        take new articles; what is indexed, and the answer mode."""
        found: dict[str, Any] = {"status": "ok", "articles": None, "chunks": None}
        try:
            found["articles"], found["chunks"] = self.store.probe()
            problem = self.store.write_problem()
        except StoreError as exc:
            problem = exc
        if problem is not None:
            found.update(status="degraded", reason=str(problem), cause=problem.cause)
        return {**found, "mode": self.mode, "embedding_model": self.embeddings.name,
                "keyword_index": asdict(self.store.keyword_index().cost)}

    def articles(self, offset: int = 0, limit: int = 50) -> list[ArticleRecord]:
        return self.store.list_articles(offset=offset, limit=limit)

    def article(self, article_id: str) -> ArticleText | None:
        """The article readers see under this id, with its cleaned body; None when there is
        none (never stored, deleted, or a write that has not committed)."""
        found = self.store.article_text(article_id)
        if found is None:
            return None
        record, body = found
        copies = self.store.reported_by([article_id]).get(article_id, [])
        return ArticleText(
            article_id=record.article_id, title=record.title, url=record.url,
            source=record.source, author=record.author, published_at=record.published_at,
            lang=record.lang, body=body, also_reported_by=[ReportedBy.of(r) for r in copies])

    @cached_property
    def follow_book(self) -> FollowBook:
        """The follows of this store (`follows.sqlite` in its data dir)."""
        return follow_book(self.settings.data_dir)

    def follow(self, question: str, filters: Filters | None = None, owner: str = OPEN_OWNER,
               webhook: str | None = None) -> Follow:
        """Follow a story: answer `question` now and keep it, so that articles committed
        later which add to the answer become updates (`assistant.follows.FollowWatcher`)."""
        answer = self.ask(question, filters=filters)
        vector = self.embeddings.embed([question.strip()])[0]
        return self.follow_book.create(owner, question.strip(), filters, webhook, vector,
                                       answer)

    def follows(self, owner: str = OPEN_OWNER) -> list[Follow]:
        """The owner's follows, oldest first, as stored: a follow whose answer predates its
        newest update says so (`answer_stale`); reading it (`read_follow`) asks it again.
        Listing asks nothing, so it costs the same however many follows have news."""
        return self.follow_book.list(owner)

    def read_follow(self, follow_id: str, owner: str = OPEN_OWNER,
                    mark_read: bool = True) -> Follow | None:
        """One of the owner's follows (None for another's), its answer asked again when an
        update has made it stale; `mark_read` clears its unread count (as of the state
        returned)."""
        # An update leaves the follow's answer out of date; it is asked again when read, so
        # the watcher's work per write stays with the update itself.
        for stale_id, question, filters, upto in self.follow_book.stale(owner, follow_id):
            answer = self.ask(question, filters=filters)
            # A refusal now (the store busy, a filter's days gone) keeps the last answer, still
            # stale, to be asked at the next read.
            if not answer.refused:
                self.follow_book.set_answer(stale_id, answer, upto)
        return self.follow_book.get(owner, follow_id, mark_read=mark_read)

    def sources(self) -> list[Outlet]:
        """The outlets of the ingested news, with article counts and date ranges (what
        `filters.sources` takes); most articles first."""
        return self.store.outlets()

    # -- the chain -----------------------------------------------------------------------

    def _build_chain(self) -> Runnable:
        # Two steps, not one per stage: each `RunnablePassthrough.assign` runs its step on a
        # thread pool, which cost ~8 ms a question for no concurrency.
        return RunnableLambda(self._retrieve) | RunnableGenerator(self._answer)

    def _retrieve(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The inputs with the standalone question, what it says about time, and the
        passages retrieved for it."""
        # Outside the slot: in LLM mode a follow-up is rewritten by the model's server.
        query = self.answerer.standalone(inputs["question"], inputs["history"])
        with self.gate.slot():
            return self._retrieved(inputs, query)

    def _retrieved(self, inputs: dict[str, Any], query: str) -> dict[str, Any]:
        filters: Filters | None = inputs["filters"]
        # One look at the commit log per question (one stamp read): every step below uses
        # the index this look caught up (another question may move it on, never back).
        index, stamp = self.store.look()
        ask = self._time_ask(query, filters, index)
        k = inputs["k"]
        narrowed = narrow(filters, ask) if ask is not None else filters
        # "What has happened today?" asks for the news of a day, not for a story.
        timeline = None if asks_for_news(without_time(query, ask) if ask is not None
                                         else query) else timeline_question(query)
        if timeline is not None:
            ask, timeline = self._timeline_days(timeline, ask, filters, index)
            narrowed = narrow(filters, ask) if ask is not None else filters
            # How a story developed: wider, and spread over articles (so over days and
            # outlets); the oldest reports count as much as the newest.
            search = without_time(timeline.search, ask) if ask is not None else timeline.search
            found, vector = self.retriever.retrieve(search, max(k, WIDE_CANDIDATES), narrowed,
                                                    index=index)
            if ask is not None and not found and not ask.strict:
                found, vector = self.retriever.retrieve(timeline.search,
                                                        max(k, WIDE_CANDIDATES), filters,
                                                        index=index)
            return {**inputs, "query": query, "when": ask, "timeline": timeline,
                    "index": index, "stamp": stamp,
                    "retrieved": (spread(found, max(k, TIMELINE_PASSAGES)), vector)}
        search = without_time(query, ask) if ask is not None else query
        if asks_for_news(search):
            # "What happened today?", "Any news?": the newest articles, not a subject.
            retrieved = (self.retriever.latest(k, narrowed, index),
                         self.embeddings.embed([query])[0])
            ask = ask or TimeAsk(recent=True)
        else:
            retrieved = self.retriever.retrieve(search, k, narrowed,
                                                recent=ask is not None and ask.recent,
                                                index=index)
        if ask is not None and not retrieved[0] and not ask.strict:
            # "in 1998" or "before the vote" may be about the events, not the reports: when no
            # article of those days matches, ask the whole news.
            retrieved = self.retriever.retrieve(query, k, filters, recent=ask.recent,
                                                index=index)
        return {**inputs, "query": query, "retrieved": retrieved, "when": ask, "timeline": None,
                "index": index, "stamp": stamp}

    def _timeline_days(self, timeline: TimelineAsk, ask: TimeAsk | None,
                       filters: Filters | None,
                       index: KeywordIndex) -> tuple[TimeAsk | None, TimelineAsk]:
        """The days a timeline covers: those the question's time words name, or from the day
        it names ("since January 20", read against the client's today or the newest
        article's day) on; only articles of those days count, and only entries of them are
        shown."""
        if timeline.since_date is not None and (ask is None or not ask.ranged):
            today = (filters.today if filters is not None else None) or dated(
                self.retriever.newest_day(index))
            since = resolve(timeline.since_date, today) if today else None
            if since is not None:
                ask = TimeAsk(phrase=timeline.since_phrase, since=since,
                              recent=ask.recent if ask else False, strict=True)
        if ask is not None and ask.ranged:
            timeline = replace(timeline, since=ask.since, until=ask.until)
        return ask, timeline

    def _time_ask(self, query: str, filters: Filters | None,
                  index: KeywordIndex) -> TimeAsk | None:
        """What `query` says about time, read against the client's today or the newest
        article's day; an event ("before the vote") placed on the day the news reports it
        most."""
        today = filters.today if filters is not None else None
        if today is None:
            newest = dated(self.retriever.newest_day(index))
            if newest is None:
                return None
            today = newest
        ask = read_time(query, today)
        if ask is None or not ask.event:
            return ask
        passages, _ = self.retriever.retrieve(ask.event, 10, filters, index=index)
        head = ask.event.split()[-1].lower()
        days = Counter(day for p in passages
                       if head in p.text.lower() and (day := dated(p.published_at)))
        if not days:
            return replace(ask, event="", side=None) if ask.recent else None
        # The day most reports of the event have; the earliest of those that tie.
        day = min(days, key=lambda d: (-days[d], d))
        if ask.side == "before":
            return replace(ask, until=day - dt.timedelta(days=1))
        return replace(ask, since=day)

    def _answer(self, inputs: Iterator[dict[str, Any]]) -> Iterator[str | Answer]:
        # A generator step receives its input as a stream of dicts (here the one from
        # `_retrieve`); merge them all.
        state: dict[str, Any] = {}
        for piece in inputs:
            state.update(piece)
        if not self.answerer.made_whole:  # an LLM's text streams as it comes
            yield from self._answer_events(state)
            return
        # Made in a slot, then sent: a slow reader never holds a slot.
        with self.gate.slot():
            events = list(self._answer_events(state))
        yield from events

    def _answer_events(self, state: dict[str, Any]) -> Iterator[str | Answer]:
        passages, vector = state["retrieved"]
        ask: TimeAsk | None = state["when"]
        if ask is not None and ask.strict and not passages:
            newest = self.retriever.newest_day(state["index"])
            text = (f"No ingested article was {ask.describe()} that answers this"
                    + (f"; the newest is from {newest}." if newest else "."))
            yield text
            yield Answer(answer=text, citations=[], refused=True, mode=self.mode)
            return
        filters: Filters | None = state["filters"]
        if filters is not None and filters.active and not passages:
            text = f"No ingested article matches the filters ({filters.describe()})."
            yield text
            yield Answer(answer=text, citations=[], refused=True, mode=self.mode)
            return
        missing = missing_outlets(state["query"], state["index"].sources())
        if missing:
            # The question is about what these outlets reported; no passage can stand in.
            text = (f"The ingested news holds no articles from {_join(missing)}, so it cannot "
                    "say what they reported.")
            yield text
            yield Answer(answer=text, citations=[], refused=True, mode=self.mode)
            return
        if state["timeline"] is not None and passages:
            copies = self.store.reported_by([p.article_id for p in passages], state["stamp"])
            for event in self.answerer.timeline(state["query"], state["timeline"], passages,
                                                vector, copies):
                yield (self._with_other_outlets(event, state["stamp"])
                       if isinstance(event, Answer) else event)
            return
        for event in self.answerer.stream(state["query"], passages, vector):
            if isinstance(event, Answer):
                if ask is not None and (line := as_of(event)):
                    # A question about time is answered with the day its facts are from.
                    yield " " + line
                    event = event.model_copy(update={"answer": f"{event.answer} {line}"})
                yield self._with_other_outlets(event, state["stamp"])
            else:
                yield event

    def _with_other_outlets(self, answer: Answer, stamp: str | None) -> Answer:
        """Each citation with the other outlets that ran its story (near-duplicates stored
        once, `ingest.dedup`), as of the question's look at the store (`stamp`)."""
        if not answer.citations:
            return answer
        copies = self.store.reported_by([c.article_id for c in answer.citations], stamp)
        if not copies:
            return answer
        return answer.model_copy(update={"citations": [
            c.model_copy(update={"also_reported_by": [
                ReportedBy.of(r) for r in copies.get(c.article_id, [])]})
            for c in answer.citations]})


def as_of(answer: Answer) -> str:
    """ "As of 2026-03-03, per The Harbor Times [2]." for the newest dated passage an answer
    cites; "" when it cites none, or gives the versions of a conflict with their days."""
    dated_citations = [c for c in answer.citations if dated(c.published_at)]
    if answer.refused or answer.conflict or not dated_citations:
        return ""
    newest = max(dated_citations, key=lambda c: (c.published_at[:10], -c.n))
    per = f", per {newest.source}" if newest.source else ""
    return f"As of {newest.published_at[:10]}{per} [{newest.n}]."


def _local_model(settings: Settings) -> LocalModel | None:
    """The local model (`NEWSDESK_LLM_GGUF`), loaded now so that a bad file fails at startup
    and the first question does not wait for it."""
    if settings.llm_gguf is None:
        return None
    model = LocalModel.from_settings(settings)
    model.endpoint()
    return model


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

"""Hybrid retrieval: the keyword index mirrors the store, outlets named in a question are all
covered, Chinese text is segmented, fusion ranks what both rankings agree on first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import keyword_hits

from assistant.answer.outlets import missing_outlets, named_outlets
from assistant.answer.retrieval import NewsRetriever, dates_named
from assistant.index.embeddings import NewsEmbeddings
from assistant.index.lexical import tokenize
from assistant.index.store import NewsStore
from assistant.service import Assistant
from assistant.settings import Settings
from ingest.pipeline import Ingestor

ARTICLES = [
    {"id": "ferry", "source": "Harbour Herald", "title": "Ferry timetable doubles",
     "published_at": "2026-03-02",
     "body": "The ferry between Alder Point and Brookside will run every twenty minutes from "
             "Monday. The transit board approved 4.2 million euros for two electric boats."},
    {"id": "bridge", "source": "Valley Courier", "title": "Bridge repairs finished early",
     "published_at": "2026-03-05",
     "body": "Crews finished repairing the Callow river bridge two weeks early, the roads "
             "office said. Traffic returns to both lanes on Friday after fourteen months."},
    {"id": "ferry-2", "source": "Valley Courier", "title": "Ferry riders complain",
     "published_at": "2026-03-06",
     "body": "Ferry riders on the Brookside crossing say boats are still crowded in the "
             "evening. The transit board promised more electric boats by the summer."},
    {"id": "library", "source": "Elmstead Ledger", "title": "Library renovation postponed",
     "published_at": "2026-03-03",
     "body": "The Dunmore library renovation is postponed for another year, the council said, "
             "because the budget went to hiring eleven teachers."},
]


def _write(path: Path, articles: list[dict]) -> Path:
    path.write_text("".join(json.dumps(a) + "\n" for a in articles))
    return path


def test_tokenizer_stems_english_and_segments_chinese() -> None:
    assert tokenize("The boats were running") == ["boat", "run"]
    terms = tokenize("印控克什米尔地区寺庙踩踏事故 RCEP")
    assert "踩踏" in terms and "寺庙" in terms and "rcep" in terms


def test_named_outlets_are_found_with_the_words_around_them() -> None:
    outlets = {"The Verge", "TechCrunch", "The Independent", "The Independent - Sports", "AP"}
    found = dict(named_outlets(
        "Did the TechCrunch article on layoffs and The Verge report on phones agree, "
        "unlike The Independent - Sports?", outlets))
    assert list(found) == ["TechCrunch", "The Verge", "The Independent - Sports"]
    assert "layoffs" in found["TechCrunch"] and "phones" not in found["TechCrunch"]
    assert "phones" in found["The Verge"]
    # Names shorter than three letters are too ambiguous to match ("AP" in "apple").
    assert named_outlets("Apple and AP", outlets) == []


def test_well_known_outlets_the_store_lacks_are_noticed() -> None:
    held = {"The New York Times", "BBC News - Technology", "TechCrunch"}
    assert missing_outlets("Did a Bloomberg report and a New York Times article agree?",
                           held) == ["Bloomberg"]
    # Held under a longer name, or named in lower case in ordinary prose: not missing.
    assert missing_outlets("What did the BBC article and TechCrunch say?", held) == []
    assert missing_outlets("Was the fortune of the founders reported by techcrunch?", held) == []
    # A company that shares an outlet's name is not a source.
    assert missing_outlets("How many Bloomberg terminals were sold in 2023?", held) == []


def test_keyword_index_follows_every_change_of_the_store(ingestor: Ingestor,
                                                         tmp_path: Path) -> None:
    store = ingestor.store
    feed = _write(tmp_path / "news.jsonl", ARTICLES)
    assert ingestor.ingest([feed]).ok
    assert keyword_hits(store, "astrolabe", 5) == []
    hits = keyword_hits(store, "bridge lanes", 5)
    assert hits and store.get_chunks([hits[0]])[0][2]["external_id"] == "bridge"

    # An update replaces the old words; the index drops the old chunk ids.
    changed = [dict(a, body="A gold astrolabe was stolen from the museum.")
               if a["id"] == "bridge" else a for a in ARTICLES]
    assert ingestor.ingest([_write(feed, changed)]).counts["updated"] == 1
    assert all(store.get_chunks([cid])[0][2]["external_id"] != "bridge"
               for cid in keyword_hits(store, "lanes fourteen months", 5))
    assert store.get_chunks([keyword_hits(store, "astrolabe", 1)[0]])

    # A second store object on the same Chroma (another worker) sees the change too.
    other = NewsStore(ingestor.settings, ingestor.embeddings, client=store.client)
    keyword_hits(other, "ferry", 1)
    aid = store.list_articles()[0].article_id
    store.delete_article(aid)
    keyword_hits(other, "ferry", 1)
    assert sorted(other.keywords().chunk_ids()) == sorted(store.all_chunk_ids())
    assert all(not cid.startswith(aid) for cid in other.keywords().chunk_ids())


def test_question_naming_two_outlets_gets_passages_from_both(
        ingestor: Ingestor, embeddings: NewsEmbeddings, tmp_path: Path) -> None:
    assert ingestor.ingest([_write(tmp_path / "news.jsonl", ARTICLES)]).ok
    retriever = NewsRetriever(store=ingestor.store, embeddings=embeddings, k=2)
    passages, _ = retriever.retrieve(
        "Did the Harbour Herald article on the ferry timetable and the Valley Courier report "
        "on riders both mention electric boats?")
    assert {p.external_id for p in passages} == {"ferry", "ferry-2"}
    # Without outlet names the plain hybrid ranking still finds the keyword-only match.
    passages, _ = retriever.retrieve("Dunmore renovation")
    assert passages[0].external_id == "library"
    assert 0.0 < passages[0].score <= 1.0


def test_dates_written_in_a_question_are_read() -> None:
    assert dates_named("published on October 7, 2023, and on December 19th, 2023") == [
        "2023-10-07", "2023-12-19"]
    assert dates_named("in 2023 or on Monday") == []


def test_articles_from_a_named_date_come_first(ingestor: Ingestor, embeddings: NewsEmbeddings,
                                               tmp_path: Path) -> None:
    same = "The transit board approved more electric boats for the Brookside ferry."
    feed = [{"id": f"day-{day}", "source": "Harbour Herald", "title": "Ferry update",
             "published_at": f"2026-03-0{day}", "body": same + f" Update number {day}."}
            for day in (2, 5, 8)]
    assert ingestor.ingest([_write(tmp_path / "news.jsonl", feed)]).ok
    retriever = NewsRetriever(store=ingestor.store, embeddings=embeddings, k=3)
    for day in (2, 5, 8):
        passages, _ = retriever.retrieve(
            f"What did the ferry report published on March {day}, 2026 say about boats?")
        assert passages[0].external_id == f"day-{day}"


def test_fetched_chunks_are_reused_and_never_stale(ingestor: Ingestor,
                                                    embeddings: NewsEmbeddings,
                                                    tmp_path: Path) -> None:
    store = ingestor.store
    feed = _write(tmp_path / "news.jsonl", ARTICLES)
    assert ingestor.ingest([feed]).ok
    # Few dense candidates, so keyword-only candidates must be fetched from Chroma.
    retriever = NewsRetriever(store=store, embeddings=embeddings, k=4, candidates=1)
    question = "What did the transit board approve for the ferry boats?"
    fetched: list[int] = []
    get = store.chunks.get

    def counting_get(*args, **kwargs):  # the real Chroma call, counted
        if kwargs.get("ids") is not None:
            fetched.append(len(kwargs["ids"]))
        return get(*args, **kwargs)

    store.chunks.get = counting_get  # type: ignore[method-assign]
    first, _ = retriever.retrieve(question)
    assert fetched and len(first) >= 2
    fetched.clear()
    again, _ = retriever.retrieve(question)
    assert again == first and not fetched  # same passages and scores, nothing fetched

    # A new headline (same body) shows at once: the new version's chunks have new ids.
    retitled = [dict(a, title="Ferry timetable doubles, board says") if a["id"] == "ferry"
                else a for a in ARTICLES]
    assert ingestor.ingest([_write(feed, retitled)]).counts["updated"] == 1
    after, _ = retriever.retrieve(question)
    titles = {p.title for p in after if p.external_id == "ferry"}
    assert titles == {"Ferry timetable doubles, board says"}


def test_a_question_looks_at_the_commit_log_once(news_store: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Every step of an answer (time words, retrieval, outlets, other outlets' copies) sees
    # the store as of one look: the stamp is read once per question, whatever it asks.
    assistant = Assistant(news_store)
    looks = []
    real = assistant.store.generation
    monkeypatch.setattr(assistant.store, "generation", lambda: looks.append(1) or real())
    for question in ("How many people were injured?", "What happened last week?",
                     "What did the Harbor Times report about the port?"):
        looks.clear()
        assistant.ask(question)
        assert len(looks) == 1, question


def test_a_look_that_cannot_catch_up_gives_no_stamp(news_store: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # What a question remembers per look (the other outlets' copies) is keyed by the stamp
    # its look caught up to; a look whose index could not catch up (its disk failed) has
    # none, so nothing is served from memory that the store may have changed since.
    assistant = Assistant(news_store)
    index, stamp = assistant.store.look()
    assert stamp is not None and stamp == assistant.store.generation()

    def fails(store: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(index, "follow", fails)
    assert assistant.store.look() == (index, None)
    assert not assistant.ask("How large is Japan's debt compared with its GDP?").refused

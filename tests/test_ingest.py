"""Ingest: reading every format, metadata, cleaning, identity, idempotence, updates, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.index.store import NewsStore
from assistant.types import make_article_id
from ingest.metadata import detect_lang, to_article
from ingest.pipeline import Ingestor
from ingest.readers import read_file

BODY = (
    "The river ferry between Alder Point and Brookside will run every twenty minutes from "
    "next Monday, the transit board said on Tuesday. The board approved a budget of 4.2 "
    "million euros for two new electric boats.\n\nRiders had complained about crowding "
    "on the evening crossings for months."
)


def _stored_chunks(store: NewsStore, article_id: str) -> list[tuple[str, str, dict]]:
    return store.chunks_of(article_id)


def test_seed_article_metadata_and_clean_body(seed_path: Path) -> None:
    article = to_article(read_file(seed_path, 2_000_000).articles[0])
    assert article.url == "https://www.toutiao.com/article/7500067747854959156"
    assert article.title.startswith("Recently, the situation of the US-Japan trade negotiation")
    assert len(article.title) <= 101
    assert "Original source" not in article.body
    assert "Disclaimer" not in article.body
    assert article.body.startswith("Recently, the situation of the US-Japan trade negotiation")
    assert article.body.endswith("These questions are worth our continued attention.")
    assert "Akira Akazawa" in article.body
    assert article.lang == "en"



# Our own sentences, one per language; Traditional Chinese is Chinese ("zh-Hant" -> "zh").
_BY_LANGUAGE = {
    "en": "The harbour board approved a new ferry timetable after months of complaints.",
    "zh": "市议会周二投票决定延长图书馆的开放时间，新时间表将于下月起实行。",
    "fr": "Le conseil municipal a voté mardi la prolongation des horaires de la bibliothèque.",
    "de": "Der Stadtrat hat am Dienstag beschlossen, die Bibliothek länger zu öffnen.",
    "es": "El ayuntamiento aprobó el martes ampliar el horario de la biblioteca municipal.",
    "ja": "市議会は火曜日、図書館の開館時間を延長することを決めた。",
}


@pytest.mark.parametrize("lang", sorted(_BY_LANGUAGE))
def test_language_of_a_body(lang: str) -> None:
    assert detect_lang(_BY_LANGUAGE[lang]) == lang


def test_language_of_traditional_chinese_is_chinese() -> None:
    assert detect_lang("市議會週二投票決定延長圖書館的開放時間，新時間表將於下月起實行。") == "zh"


def test_language_ignores_characters_the_detector_refuses() -> None:
    """CLD2 rejects a text holding a control character, a lone surrogate or a noncharacter:
    the language is still read from the rest."""
    text = "\x00\x07\x85\ud800\ufdd0\uffff " + _BY_LANGUAGE["en"]
    assert detect_lang(text) == "en"


def test_language_unknown_is_empty() -> None:
    assert detect_lang("") == "" and detect_lang("12 345 678") == ""

def test_headline_first_line_becomes_title(tmp_path: Path) -> None:
    path = tmp_path / "ferry.txt"
    path.write_text("Ferry service doubles on the river\n\n" + BODY + "\n\nOriginal source: "
                    "https://news.test/ferry?utm_source=x\n\nDisclaimer: reposted with consent.")
    article = to_article(read_file(path, 10_000).articles[0])
    assert article.title == "Ferry service doubles on the river"
    assert article.url == "https://news.test/ferry"
    assert article.body == BODY
    assert article.source == "news.test"


def test_json_jsonl_markdown_and_html_are_read(tmp_path: Path) -> None:
    record = {"title": "Ferry", "content": BODY, "url": "https://news.test/a",
              "date": "March 3, 2026", "author": "A. Writer", "source": "River Times", "lang": "en"}
    (tmp_path / "one.json").write_text(json.dumps(record))
    (tmp_path / "many.jsonl").write_text(
        json.dumps({**record, "url": "https://news.test/b"}) + "\n\n"
        + json.dumps({**record, "url": "https://news.test/c", "published_at": "2026-03-04"}) + "\n"
    )
    (tmp_path / "note.md").write_text("# Ferry doubles\n\n" + BODY)
    (tmp_path / "page.html").write_text(
        "<html><head><title>Ferry doubles | River Times</title>"
        '<meta property="article:published_time" content="2026-03-05">'
        '<link rel="canonical" href="https://news.test/d"></head><body>'
        "<nav><a href='/'>Home</a> <a href='/sport'>Sport</a></nav>"
        f"<article><h1>Ferry doubles</h1><p>{BODY.replace(chr(10), ' ')}</p></article>"
        "<footer>Copyright 2026 River Times</footer></body></html>"
    )
    articles = {}
    for path in sorted(tmp_path.iterdir()):
        for raw in read_file(path, 100_000).articles:
            articles[raw.location] = to_article(raw)
    one = articles[str(tmp_path / "one.json")]
    assert (one.title, one.url, one.published_at, one.author, one.source) == (
        "Ferry", "https://news.test/a", "2026-03-03", "A. Writer", "River Times")
    assert articles[f"{tmp_path / 'many.jsonl'}:3"].published_at == "2026-03-04"
    assert articles[str(tmp_path / "note.md")].title == "Ferry doubles"
    page = articles[str(tmp_path / "page.html")]
    assert page.url == "https://news.test/d"
    assert page.published_at == "2026-03-05"
    assert "twenty minutes" in page.body
    assert "Sport" not in page.body and "Copyright" not in page.body


def test_chunks_fit_the_model_and_offsets_point_into_the_body(
    ingestor: Ingestor, seed_path: Path
) -> None:
    report = ingestor.ingest([seed_path])
    article = to_article(read_file(seed_path, 2_000_000).articles[0])
    rows = _stored_chunks(ingestor.store, article.article_id)
    assert report.counts["added"] == 1 and len(rows) == report.chunks_written > 3
    limit = ingestor.embeddings.max_tokens
    for _, text, meta in rows:
        assert article.body[meta["start"]:meta["end"]] == text
        assert ingestor.embeddings.count_tokens(text) <= limit
        assert meta["title"] == article.title and meta["url"] == article.url
        assert meta["article_id"] == article.article_id and meta["lang"] == "en"


def test_reingesting_unchanged_article_changes_nothing(ingestor: Ingestor, seed_path: Path) -> None:
    first = ingestor.ingest([seed_path])
    chunks = ingestor.store.count_chunks()
    second = ingestor.ingest([seed_path])
    assert second.counts == {"added": 0, "updated": 0, "unchanged": 1, "duplicate": 0,
                             "failed": 0}
    assert second.chunks_written == 0
    assert ingestor.store.count_chunks() == chunks == first.chunks_written


def test_changing_the_chunk_size_reindexes_unchanged_articles(settings_factory, embeddings,
                                                              seed_path: Path) -> None:
    first = Ingestor(settings_factory(chunk_tokens=200), embeddings=embeddings)
    first.ingest([seed_path])
    before = first.store.count_chunks()
    second = Ingestor(settings_factory(chunk_tokens=100), embeddings=embeddings)
    report = second.ingest([seed_path])
    assert report.counts["updated"] == 1
    after = second.store.count_chunks()
    assert after > before
    article_id = report.articles[0][1]
    assert len(second.store.chunks_of(article_id)) == after  # no chunk of the old size left


def test_updated_article_replaces_all_old_chunks(ingestor: Ingestor, tmp_path: Path) -> None:
    path = tmp_path / "ferry.json"
    long_body = "\n\n".join(f"Paragraph {i}: " + BODY for i in range(6))
    path.write_text(json.dumps({"title": "Ferry", "body": long_body, "url": "https://news.test/f"}))
    ingestor.ingest([path])
    article_id = to_article(read_file(path, 10**6).articles[0]).article_id
    old = {cid for cid, _, _ in _stored_chunks(ingestor.store, article_id)}
    path.write_text(json.dumps({"title": "Ferry", "body": "Service was cancelled after a storm "
                                "damaged the pier at Alder Point.", "url": "https://news.test/f"}))
    report = ingestor.ingest([path])
    assert report.counts["updated"] == 1
    article = to_article(read_file(path, 10**6).articles[0])
    rows = _stored_chunks(ingestor.store, article.article_id)
    assert len(old) > 1 and len(rows) == 1 == ingestor.store.count_chunks()
    assert rows[0][1] == article.body and rows[0][0] not in old
    assert ingestor.store.count_articles() == 1


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "no article text"),
        ("blank.md", b"  \n\t\n", "no article text"),
        ("binary.txt", b"GIF89a\x00\x01\x02", "binary"),
        ("latin1.txt", "caf\u00e9 cr\u00e8me".encode("latin-1"), "not valid UTF-8"),
        ("broken.json", b'{"title": "x", "body": ', "malformed JSON"),
        ("shape.json", b'"just a string"', "expected a JSON object"),
        ("nobody.json", b'{"title": "No text here"}', "no article text"),
        ("report.pdf", b"%PDF-1.4", "unsupported file type"),
        ("page.html", b"<html><head><title>x</title></head><body></body></html>",
         "no article text"),
    ],
)
def test_bad_file_gets_one_clear_error_and_good_files_still_ingest(
    ingestor: Ingestor, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / name).write_bytes(content)
    (folder / "good.txt").write_text("Ferry service doubles\n\n" + BODY)
    report = ingestor.ingest([folder])
    assert report.counts["added"] == 1 and report.counts["failed"] == 1
    [error] = report.errors
    assert error.location == str(folder / name)
    assert reason in error.reason
    assert ingestor.store.count_articles() == 1


def test_a_file_without_text_fails_and_short_passages_still_ingest(ingestor: Ingestor,
                                                                     tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    # Zero-width spaces, a bidi control and an ideographic space: nothing after cleaning.
    (folder / "invisible.txt").write_text("\u200b\u200b\n\u202e\n\u3000\n")
    (folder / "title-only.md").write_text("# Ferry resumes\n")
    # A snippet of one sentence (as RGB's passages are) is an article: files have no minimum.
    (folder / "snippet.txt").write_text("The Alder Point ferry resumed service on Monday.")
    (folder / "good.txt").write_text("Ferry service doubles\n\n" + BODY)
    report = ingestor.ingest([folder])
    assert report.counts["added"] == 2 and report.counts["failed"] == 3
    reasons = {Path(e.location).name: e.reason for e in report.errors}
    assert reasons == {"empty.txt": "no article text (the file is empty)",
                       "invisible.txt": "no article text (nothing is left after cleaning)",
                       "title-only.md": "no article text (nothing is left after cleaning)"}
    assert ingestor.store.count_articles() == 2


def test_oversized_file_is_rejected(settings_factory, embeddings, tmp_path: Path) -> None:
    ingestor = Ingestor(settings_factory(max_article_bytes=200), embeddings=embeddings)
    path = tmp_path / "big.txt"
    path.write_text("Big story\n\n" + BODY)
    report = ingestor.ingest([path])
    assert report.counts["failed"] == 1
    assert "over the limit" in report.errors[0].reason and ingestor.store.count_chunks() == 0


def test_article_limit_applies_to_each_record_of_a_jsonl_file(settings_factory, embeddings,
                                                               tmp_path: Path) -> None:
    # Three copies of one story, each its own article here: near-duplicate collapse is off.
    ingestor = Ingestor(settings_factory(max_article_bytes=400, dedup=False),
                        embeddings=embeddings)
    path = tmp_path / "wire.jsonl"
    records = [{"title": f"Ferry {i}", "body": BODY[:300] + f" Crossing {i}."} for i in range(3)]
    records.append({"title": "Too long", "body": BODY * 3})
    path.write_text("\n".join(json.dumps(r) for r in records))
    assert path.stat().st_size > 400
    report = ingestor.ingest([path])
    assert report.counts["added"] == 3 and report.counts["failed"] == 1
    assert report.errors[0].location == f"{path}:4" and "over the limit" in report.errors[0].reason


def test_one_bad_record_in_a_jsonl_file_spares_the_others(ingestor: Ingestor,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "wire.jsonl"
    good = {"title": "Ferry", "body": BODY}
    path.write_text("\n".join([
        json.dumps({**good, "url": "https://news.test/1"}),
        '{"title": "cut off',
        json.dumps({"title": "empty", "body": "   "}),
        json.dumps({**good, "url": "https://news.test/2"}),
    ]))
    report = ingestor.ingest([path])
    # The same story at a second URL is stored once, as another outlet of the first.
    assert report.counts["added"] == 1 and report.counts["duplicate"] == 1
    assert report.counts["failed"] == 2
    assert sorted(e.location for e in report.errors) == [f"{path}:2", f"{path}:3"]


def test_missing_path_is_reported(ingestor: Ingestor, tmp_path: Path) -> None:
    report = ingestor.ingest([tmp_path / "nope"])
    assert report.counts["failed"] == 1 and "no such file" in report.errors[0].reason


def test_article_without_url_is_identified_by_its_text(ingestor: Ingestor, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Ferry service doubles\n\n" + BODY)
    (tmp_path / "b.md").write_text("# Ferry service doubles\n\n" + BODY + "\n")
    report = ingestor.ingest([tmp_path])
    assert report.counts == {"added": 1, "updated": 0, "unchanged": 1, "duplicate": 0,
                             "failed": 0}


def test_publisher_id_identifies_an_article_and_comes_back_with_passages(
        ingestor: Ingestor, tmp_path: Path) -> None:
    first = {"id": "cms-481", "title": "Ferry service doubles", "body": BODY,
             "url": "https://example.org/ferry"}
    (tmp_path / "a.jsonl").write_text(json.dumps(first) + "\n")
    assert ingestor.ingest([tmp_path]).counts["added"] == 1
    # Same publisher id under a new URL: an update of the same article, not a second one.
    moved = dict(first, url="https://example.org/news/ferry")
    (tmp_path / "a.jsonl").write_text(json.dumps(moved) + "\n")
    assert ingestor.ingest([tmp_path]).counts["updated"] == 1
    records = ingestor.store.list_articles()
    assert [r.external_id for r in records] == ["cms-481"]
    assert records[0].article_id == make_article_id("cms-481")
    vector = ingestor.embeddings.embed(["ferry budget"])[0]
    hits = ingestor.store.nearest(vector, 3)
    assert {p.external_id for p in ingestor.store.read(list(hits), hits)} == {"cms-481"}


_WIRE = (
    "The new flood barrier along the river Wend in Tarrow was finished on Monday, the county "
    "council said. The barrier cost {cost} million pounds and protects about 3,000 homes "
    "that flooded twice in the last decade. Work began two years ago, after the winter "
    "floods, and the contractor said the last gate was fitted a week ahead of schedule. "
    "Residents gathered on the embankment on Monday evening to watch the gates tested."
)


def test_a_copy_that_changes_a_number_is_kept_as_another_version(
        ingestor: Ingestor) -> None:
    """A wire copy with the same facts is a duplicate; one that changes a number is another
    version of the story, indexed so that the answer can show both."""
    from assistant.service import Assistant
    from assistant.types import RawArticle

    def run(outlet: str, day: str, cost: str, lead: str = "") -> RawArticle:
        return RawArticle(location=f"{outlet}.txt", body=lead + _WIRE.format(cost=cost),
                          title="Tarrow flood barrier finished", source=outlet,
                          published_at=day, url=f"https://{outlet.lower()}.test/barrier")

    report = ingestor.ingest_raw([
        run("Tarrow Post", "2026-03-02", "48"),
        run("Wend Herald", "2026-03-03", "48", "TARROW (Wire) - "),
        run("Valley Mail", "2026-03-04", "61", "TARROW - "),
    ])
    assert report.counts["added"] == 2 and report.counts["duplicate"] == 1
    answer = Assistant(ingestor.settings, store=ingestor.store).ask(
        "How much did the Tarrow flood barrier cost?")
    shown = {v.value: {c.source for c in answer.citations if c.n in v.citations}
             for v in answer.conflict}
    assert shown == {"61": {"Valley Mail"}, "48": {"Tarrow Post"}}


def test_another_writers_articles_reach_the_duplicate_index_through_the_log(
        ingestor: Ingestor, tmp_path: Path) -> None:
    """Two writers of one store (two servers on a Chroma server): each learns the other's
    articles from the commit log, reading only their signatures, not every stored one."""
    other = Ingestor(ingestor.settings, store=NewsStore(ingestor.settings, ingestor.embeddings,
                                                        client=ingestor.store.client),
                     embeddings=ingestor.embeddings)
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"title": "Ferry", "url": "https://news.test/1", "body": BODY}))
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"title": "Council", "url": "https://news.test/0",
                                "body": "The council met on Monday about the harbour. " * 20}))
    assert other.ingest([seed]).counts["added"] == 1  # `other` has read the signatures once
    assert ingestor.ingest([first]).counts["added"] == 1
    asked: list[object] = []
    signatures = other.store.signatures

    def spy(article_ids: object = None) -> list[tuple[str, str]]:
        asked.append(article_ids)
        return signatures(article_ids)  # type: ignore[arg-type]

    other.store.signatures = spy  # type: ignore[method-assign]
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps({"title": "Ferry", "url": "https://other.test/9", "body": BODY}))
    assert other.ingest([copy]).counts["duplicate"] == 1
    # Only the articles written since its last look (its own seed and the other's story).
    assert asked and all(ids is not None and len(ids) <= 2 for ids in asked)

"""The article reader: `GET /articles/{id}` gives the cleaned body the citations' offsets point
into, and the chat's `[n]` links open it with exactly the cited passage marked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import KATO_STATEMENT, make_settings
from fastapi.testclient import TestClient

from assistant.reader import MARK_ID, parse_read_href, read_href, reader_html
from assistant.service import Assistant
from assistant.types import ArticleText, Citation
from ingest.pipeline import Ingestor
from ui import format_answer, history_from_chat, read_passage
from wiring import create_app

QUESTIONS = ["What did Japan's finance minister say about US Treasury bonds?",
             "What wage increase are the striking Carrow signal staff seeking?"]


@pytest.fixture(scope="module")
def client(news_assistant: Assistant) -> TestClient:
    return TestClient(create_app(news_assistant))


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_body_is_the_cleaned_article_at_the_same_offsets(client: TestClient,
                                                              news_assistant: Assistant,
                                                              seed_body: str) -> None:
    seed = news_assistant.ask("What did Japan's finance minister say?").citations[0]
    got = client.get(f"/articles/{seed.article_id}")
    assert got.status_code == 200
    body = got.json()["body"]
    # Every character where ingest put it; only whitespace between chunks may differ.
    assert len(body) == len(seed_body.rstrip())
    assert _squash(body) == _squash(seed_body)
    assert body[seed.start:seed.end] == seed.passage


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_citation_points_into_its_article_body(client: TestClient,
                                                     news_assistant: Assistant,
                                                     question: str) -> None:
    answer = news_assistant.ask(question)
    assert answer.citations
    for cited in answer.citations:
        article = client.get(f"/articles/{cited.article_id}").json()
        assert article["body"][cited.start:cited.end] == cited.passage
        assert article["title"] == cited.title and article["source"] == cited.source


def test_unknown_and_malformed_ids(client: TestClient) -> None:
    assert client.get("/articles/no-such-article").status_code == 404
    assert client.get("/articles/" + "x" * 201).status_code == 422


def test_a_deleted_article_is_gone_from_the_reader(tmp_path: Path, embeddings) -> None:
    settings = make_settings(tmp_path / "store")
    article = tmp_path / "ferry.json"
    article.write_text('{"title": "Night ferry returns to the island route", '
                       '"body": "The night ferry to Orrin Island resumed sailings on Tuesday '
                       'after a two-month refit. The operator said fares stay unchanged.", '
                       '"source": "Island Courier", "published_at": "2026-02-03"}')
    ingestor = Ingestor(settings, embeddings=embeddings)
    assert ingestor.ingest([article]).ok
    ingestor.close()
    assistant = Assistant(settings)
    try:
        cited = assistant.ask("When did the night ferry resume sailings?").citations[0]
        shown = read_passage(assistant, read_href(cited))
        assert f'<mark id="{MARK_ID}">{cited.passage}</mark>' in shown
        assistant.close()
        ingestor = Ingestor(settings, embeddings=embeddings)
        assert ingestor.delete(cited.article_id)
        ingestor.close()
        assistant = Assistant(settings)
        assert assistant.article(cited.article_id) is None
        assert "no longer in the news" in read_passage(assistant, read_href(cited))
    finally:
        assistant.close()


def _article(**fields: str) -> ArticleText:
    values = {"article_id": "a1", "title": "Title", "url": "", "source": "", "author": "",
              "published_at": "", "lang": "en", "body": "One. Two three. Four."}
    return ArticleText(**{**values, **fields})


def test_the_reader_marks_exactly_the_passage_and_keeps_text_inert() -> None:
    article = _article(title="Fair <script>alert(1)</script>", url="javascript:alert(2)",
                       body="Stalls opened at nine. <img src=x onerror=alert(3)> Rain came.")
    start = article.body.index("<img")
    shown = reader_html(article, start, start + len("<img src=x onerror=alert(3)>"))
    assert "<script>" not in shown and "<img" not in shown and "javascript:" not in shown
    assert re.search(rf'<mark id="{MARK_ID}">&lt;img src=x onerror=alert\(3\)&gt;</mark>',
                     shown)
    assert "unknown outlet" in shown  # no outlet given: never a folder name
    # Offsets that do not fit the body (an article replaced since the answer) mark nothing.
    assert "<mark" not in reader_html(article, 5, 500)
    assert "<mark" not in reader_html(article, 7, 7)


def test_read_links_round_trip() -> None:
    cited = Citation(n=2, article_id="ab/c d", title="t", url="", source="", published_at="",
                     passage="p", start=10, end=42, score=0.5)
    assert parse_read_href(read_href(cited)) == ("ab/c d", 10, 42)
    assert parse_read_href("https://example.com/#read/x") is None


def test_chat_markers_link_to_the_reader_and_leave_the_history(
        news_assistant: Assistant) -> None:
    answer = news_assistant.ask(QUESTIONS[0])
    shown = format_answer(answer.answer, answer)
    for cited in answer.citations:
        assert f"[\\[{cited.n}\\]]({read_href(cited)})" in shown
    assert KATO_STATEMENT.split(" ")[0] in shown
    # The chat sends the reply back as history: the links are gone, the markers stay.
    history = history_from_chat([{"role": "user", "content": QUESTIONS[0]},
                                 {"role": "assistant", "content": shown}])
    assert history[1].content == answer.answer

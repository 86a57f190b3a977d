"""The plain-text layout of .txt and .md articles: a headline, metadata lines, the body; and an
outlet that comes from the article, never from the folder it lies in."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.types import Article, RawArticle
from ingest.metadata import to_article
from ingest.pipeline import Ingestor
from ingest.readers import read_file

HEADLINE = "Harbour wall at Kestle Bay to be rebuilt before the winter storms"
BODY = (
    "The crumbling harbour wall at Kestle Bay will be rebuilt before November, the port "
    "board said on Wednesday, after a survey found cracks along 140 metres of it.\n\n"
    "Work starts in June and will cost 3.8 million pounds, shared between the board and "
    "the regional council."
)
FIRST_WORDS = "The crumbling harbour wall"


def _article(path: Path, text: str) -> Article:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return to_article(read_file(path, 100_000).articles[0])


def test_an_outlet_line_under_the_headline_is_the_outlet_and_not_body(tmp_path: Path) -> None:
    article = _article(tmp_path / "samples" / "wall.txt",
                       f"{HEADLINE}\nThe Dunmarrow Herald\n\n{BODY}")
    assert article.source == "The Dunmarrow Herald"
    assert article.title == HEADLINE
    assert article.body.startswith(FIRST_WORDS) and "Dunmarrow" not in article.body


def test_an_outlet_line_with_a_date_line_below_it(tmp_path: Path) -> None:
    article = _article(tmp_path / "a" / "wall.txt",
                       f"{HEADLINE}\n\nThe Dunmarrow Herald\nTuesday, 3 March 2026\n\n{BODY}")
    assert (article.source, article.published_at) == ("The Dunmarrow Herald", "2026-03-03")
    assert article.body.startswith(FIRST_WORDS)


@pytest.mark.parametrize("header", [
    ["Source: Kestle Bay Post", "Date: March 3, 2026", "URL: https://kestle-post.test/wall",
     "By Mara Quill"],
    ["By Mara Quill", "url: https://kestle-post.test/wall", "OUTLET: Kestle Bay Post", "",
     "Published: 2026-03-03"],
    ["https://kestle-post.test/wall", "March 3, 2026", "Author: Mara Quill",
     "Publisher: Kestle Bay Post"],
], ids=["labelled", "other-order-and-case", "bare-url-and-date"])
def test_labelled_metadata_lines_in_any_order(tmp_path: Path, header: list[str]) -> None:
    article = _article(tmp_path / "articles" / "wall.txt",
                       "\n".join([HEADLINE, *header, "", BODY]))
    assert article.source == "Kestle Bay Post"
    assert article.published_at == "2026-03-03"
    assert article.url == "https://kestle-post.test/wall"
    assert article.author == "Mara Quill"
    assert article.title == HEADLINE
    assert article.body.startswith(FIRST_WORDS)
    assert "Kestle Bay Post" not in article.body and "Quill" not in article.body


def test_a_url_line_gives_the_outlet_its_host_when_none_is_named(tmp_path: Path) -> None:
    article = _article(tmp_path / "articles" / "wall.txt",
                       f"{HEADLINE}\nURL: https://www.kestle-post.test/wall\n\n{BODY}")
    assert article.source == "kestle-post.test"


def test_a_markdown_article_in_the_layout(tmp_path: Path) -> None:
    article = _article(tmp_path / "notes" / "wall.md", (
        f"# {HEADLINE}\n\n**Source:** Kestle Bay Post\n*By Mara Quill*\n"
        f"Published: 3 March 2026\n\n{BODY}\n\n## What comes next\n\nA second survey."))
    assert (article.title, article.source, article.author, article.published_at) == (
        HEADLINE, "Kestle Bay Post", "Mara Quill", "2026-03-03")
    assert article.body.startswith(FIRST_WORDS) and "## What comes next" in article.body


def test_a_markdown_byline_names_author_outlet_and_date(tmp_path: Path) -> None:
    article = _article(tmp_path / "notes" / "wall.md",
                       f"# {HEADLINE}\n\n*By Mara Quill, Kestle Bay Post, March 3, 2026*\n\n{BODY}")
    assert (article.author, article.source, article.published_at) == (
        "Mara Quill", "Kestle Bay Post", "2026-03-03")


def test_a_byline_without_a_date_names_authors_only(tmp_path: Path) -> None:
    article = _article(tmp_path / "a" / "wall.txt",
                       f"{HEADLINE}\nBy Mara Quill, Tom Penrose and Ada Vell\n\n{BODY}")
    assert (article.author, article.source) == ("Mara Quill, Tom Penrose and Ada Vell", "")
    assert article.body.startswith(FIRST_WORDS)


def test_an_italic_outlet_line_in_markdown(tmp_path: Path) -> None:
    article = _article(tmp_path / "notes" / "wall.md",
                       f"# {HEADLINE}\n\n*The Dunmarrow Herald*\n\n{BODY}")
    assert article.source == "The Dunmarrow Herald" and article.body.startswith(FIRST_WORDS)


def test_a_short_line_that_is_all_the_text_stays_the_body(tmp_path: Path) -> None:
    article = _article(tmp_path / "a" / "echo.txt", f"{HEADLINE}\nThe Kestle Echo\n")
    assert (article.body, article.source) == ("The Kestle Echo", "")


def test_a_file_without_an_outlet_has_none_whatever_its_folder(tmp_path: Path) -> None:
    article = _article(tmp_path / "articles" / "wall.txt", f"{HEADLINE}\n\n{BODY}")
    assert article.source == ""
    headless = _article(tmp_path / "samples" / "lead.txt", BODY)
    assert headless.source == "" and headless.body == BODY


@pytest.mark.parametrize("opening", [
    "The crumbling harbour wall at Kestle Bay will be rebuilt.",  # a sentence
    "By noon on Wednesday, the port board had voted.",  # "By" opening a sentence
    "PORT OF KESTLE",  # a dateline in capitals
    "Date: to be set by the council",  # a label whose value is no date
    "Source: the port board said on Wednesday that the survey was alarming.",  # a sentence
    "Board Backs Rebuild",  # a title-cased line that goes on as a paragraph
])
def test_a_body_that_opens_like_metadata_keeps_its_first_line(tmp_path: Path,
                                                              opening: str) -> None:
    text = f"{HEADLINE}\n{opening}\n{BODY}" if opening == "Board Backs Rebuild" else \
        f"{HEADLINE}\n{opening}\n\n{BODY}"
    article = _article(tmp_path / "articles" / "wall.txt", text)
    assert article.body.startswith(opening)
    assert article.source == ""


def test_a_title_cased_line_after_the_body_starts_is_not_an_outlet(tmp_path: Path) -> None:
    article = _article(tmp_path / "a" / "wall.txt", f"{HEADLINE}\n\n{BODY}\n\nThe Kestle Echo")
    assert article.source == "" and article.body.endswith("The Kestle Echo")


def test_reingesting_after_adding_a_source_line_updates_the_outlet_everywhere(
        ingestor: Ingestor, tmp_path: Path) -> None:
    path = tmp_path / "articles" / "wall.txt"
    path.parent.mkdir()
    path.write_text(f"{HEADLINE}\n\n{BODY}")
    first = ingestor.ingest([path])
    assert first.counts["added"] == 1
    [(_, article_id, _)] = first.articles
    assert [r.source for r in ingestor.store.list_articles()] == [""]
    assert ingestor.store.outlets() == []

    path.write_text(f"{HEADLINE}\nSource: Kestle Bay Post\n\n{BODY}")
    second = ingestor.ingest([path])
    assert second.counts["updated"] == 1
    assert second.articles[0][1] == article_id  # the same article, not a second one
    assert [r.source for r in ingestor.store.list_articles()] == ["Kestle Bay Post"]
    chunks = ingestor.store.chunks_of(article_id)
    assert chunks and {meta["source"] for _, _, meta in chunks} == {"Kestle Bay Post"}
    assert [o.source for o in ingestor.store.outlets()] == ["Kestle Bay Post"]


def test_reingesting_an_article_stored_with_a_folder_outlet_clears_it(
        ingestor: Ingestor, tmp_path: Path) -> None:
    path = tmp_path / "articles" / "wall.txt"
    path.parent.mkdir()
    path.write_text(f"{HEADLINE}\n\n{BODY}")
    # As ingest stored it before: the outlet taken from the folder's name.
    before = RawArticle(location=str(path), body=BODY, title=HEADLINE, has_title=True,
                        source="articles")
    assert ingestor.ingest_raw([before]).counts["added"] == 1
    assert [o.source for o in ingestor.store.outlets()] == ["articles"]

    report = ingestor.ingest([path])
    assert report.counts["updated"] == 1
    assert [r.source for r in ingestor.store.list_articles()] == [""]
    assert ingestor.store.outlets() == []


def test_an_upload_is_recorded_under_its_own_name_with_no_folder_outlet(
        ingestor: Ingestor, tmp_path: Path) -> None:
    upload = tmp_path / "gradio" / ("3f9a" * 16) / "wall.txt"  # a temp dir named by a hash
    upload.parent.mkdir(parents=True)
    upload.write_text(f"{HEADLINE}\n\n{BODY}")
    assert to_article(read_file(upload, 100_000).articles[0]).source == ""
    empty = upload.parent / "empty.txt"
    empty.write_text("")
    report = ingestor.ingest([upload, empty], names={upload: "wall.txt", str(empty): "empty.txt"})
    assert [loc for loc, _, _ in report.articles] == ["wall.txt"]
    assert [e.location for e in report.errors] == ["empty.txt"]
    [record] = ingestor.store.list_articles()
    assert (record.path, record.source) == ("wall.txt", "")


def test_a_named_folder_names_the_files_inside_it(ingestor: Ingestor, tmp_path: Path) -> None:
    folder = tmp_path / ("0b" * 32)
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "wall.txt").write_text(f"{HEADLINE}\n\n{BODY}")
    report = ingestor.ingest([folder], names={folder: "drop"})
    assert [loc for loc, _, _ in report.articles] == ["drop/inner/wall.txt"]
    assert [r.source for r in ingestor.store.list_articles()] == [""]

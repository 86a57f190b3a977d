"""Re-ingesting an edited one-article file (.txt, .md, .html) replaces its stored article,
although an article without a URL is identified by its text and the edit gives it a new id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import StoreError
from assistant.index.store import NewsStore
from assistant.service import Assistant
from assistant.types import RawArticle
from ingest.pipeline import Ingestor

HEADLINE = "Kestle Bay ferry to run all winter"
LEAD = ("The Kestle Bay ferry will keep running through the winter for the first time, the "
        "harbour board said on Thursday, after the council agreed to pay for a second crew. ")
NAMED = "The new boat will be called the Grey Heron, after a vote by pupils at the harbour school. "
RENAMED = ("The new boat will be called the Silver Kittiwake, after a vote by pupils at the "
           "harbour school. ")
REST = ("Crossings will leave the north quay every forty minutes from seven in the morning, "
        "and the last boat will return at nine in the evening. Fares stay as they are, and "
        "season tickets bought for the summer will be honoured until the end of March.")
# Another story altogether: the file's text after a large edit.
REWRITE = ("The winter timetable for the Kestle Bay ferry has been withdrawn. The harbour board "
           "said on Friday that storms had damaged the slipway at the north quay and that "
           "engineers could not say when it would be safe. Islanders will be carried by the "
           "mainland lifeboat in an emergency, and a supply barge will call twice a week. The "
           "board apologised to families who had planned their travel around the new boat.")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _story(sentence: str = NAMED) -> str:
    return f"{HEADLINE}\n\n{LEAD}{sentence}{REST}\n"


def _at(store: NewsStore, path: Path | str) -> dict[str, str]:
    """Status of every record stored under a file's path, by article id."""
    return {rec.article_id: status for rec, status in store.records_at(str(path))}


def _only_article(ingestor: Ingestor) -> str:
    [record] = ingestor.store.list_articles()
    return record.article_id


def test_editing_a_sentence_replaces_the_article_and_its_chunks(
        ingestor: Ingestor, tmp_path: Path) -> None:
    path = _write(tmp_path / "ferry.txt", _story())
    assert ingestor.ingest([path]).counts["added"] == 1
    old = _only_article(ingestor)

    _write(path, _story(RENAMED))
    report = ingestor.ingest([path])
    assert report.counts == {"added": 0, "updated": 1, "unchanged": 0, "duplicate": 0,
                             "failed": 0}
    [(_, new, _)] = report.articles
    assert new != old  # identified by its text: the edit made another id
    assert _at(ingestor.store, path) == {new: "committed"}
    assert _only_article(ingestor) == new
    assert ingestor.store.article_text(old) is None and ingestor.store.chunks_of(old) == []
    found = ingestor.store.article_text(new)
    assert found is not None and "Silver Kittiwake" in found[1] and "Grey Heron" not in found[1]
    answer = Assistant(ingestor.settings, store=ingestor.store).ask(
        "What will the new Kestle Bay ferry boat be called?")
    quoted = " ".join(c.passage for c in answer.citations)
    assert "Silver Kittiwake" in quoted and "Grey Heron" not in quoted
    assert {c.article_id for c in answer.citations} == {new}
    assert ingestor.ingest([path]).counts["unchanged"] == 1


def test_an_outlet_line_once_read_as_body_text_is_the_outlet_after_reingest(
        ingestor: Ingestor, tmp_path: Path) -> None:
    path = _write(tmp_path / "articles" / "ferry.txt",
                  f"{HEADLINE}\nThe Dunmarrow Herald\n\n{LEAD}{NAMED}{REST}\n")
    # As ingest stored the file before the outlet-line rule: the line was body text.
    before = RawArticle(location=str(path), title=HEADLINE, has_title=True,
                        body=f"The Dunmarrow Herald\n\n{LEAD}{NAMED}{REST}")
    assert ingestor.ingest_raw([before]).counts["added"] == 1
    old = _only_article(ingestor)
    assert ingestor.store.outlets() == []

    report = ingestor.ingest([path])
    assert report.counts["updated"] == 1 and report.counts["duplicate"] == 0
    [record] = ingestor.store.list_articles()
    assert record.article_id != old and record.source == "The Dunmarrow Herald"
    assert [o.source for o in ingestor.store.outlets()] == ["The Dunmarrow Herald"]
    found = ingestor.store.article_text(record.article_id)
    assert found is not None and found[1].startswith(LEAD.strip()[:40])
    assert set(_at(ingestor.store, path)) == {record.article_id}


def test_wire_copies_in_two_files_are_still_one_article(
        ingestor: Ingestor, tmp_path: Path) -> None:
    first = _write(tmp_path / "herald.txt", _story())
    copy = _write(tmp_path / "post.txt",
                  f"{HEADLINE}\n\nKESTLE BAY (Wire) - {LEAD}{NAMED}{REST}\n")
    report = ingestor.ingest([first, copy])
    assert (report.counts["added"], report.counts["duplicate"]) == (1, 1)
    original = _only_article(ingestor)
    [reported] = ingestor.store.reported_by([original])[original]
    assert reported.path == str(copy)
    again = ingestor.ingest([first, copy])
    assert again.counts["unchanged"] == 2 and _only_article(ingestor) == original


def test_editing_the_original_keeps_its_copies_reported_by_the_new_version(
        ingestor: Ingestor, tmp_path: Path) -> None:
    first = _write(tmp_path / "herald.txt", _story())
    copy = _write(tmp_path / "post.txt",
                  f"{HEADLINE}\n\nKESTLE BAY (Wire) - {LEAD}{NAMED}{REST}\n")
    ingestor.ingest([first, copy])
    _write(first, _story(RENAMED))
    report = ingestor.ingest([first])
    assert report.counts["updated"] == 1
    new = _only_article(ingestor)
    assert [r.path for r in ingestor.store.reported_by([new])[new]] == [str(copy)]
    # The copy's file itself is unchanged, and still a copy.
    assert ingestor.ingest([copy]).counts["unchanged"] == 1


def test_a_large_edit_replaces_the_article_too(ingestor: Ingestor, tmp_path: Path) -> None:
    path = _write(tmp_path / "ferry.md", f"# {HEADLINE}\n\n{LEAD}{NAMED}{REST}\n")
    ingestor.ingest([path])
    old = _only_article(ingestor)

    _write(path, f"# Kestle Bay ferry timetable withdrawn\n\n{REWRITE}\n")
    report = ingestor.ingest([path])
    assert report.counts["updated"] == 1 and report.counts["added"] == 0
    [record] = ingestor.store.list_articles()
    assert record.article_id != old and record.title == "Kestle Bay ferry timetable withdrawn"
    assert ingestor.store.chunks_of(old) == []
    assert ingestor.store.count_articles() == 1


def test_an_html_page_saved_again_replaces_the_old_copy(
        ingestor: Ingestor, tmp_path: Path) -> None:
    def page(text: str) -> str:
        paragraphs = "".join(f"<p>{s.strip()}.</p>" for s in text.split(". ") if s.strip())
        return (f"<html><head><title>{HEADLINE}</title></head><body><article>"
                f"<h1>{HEADLINE}</h1>{paragraphs}</article></body></html>")

    path = _write(tmp_path / "ferry.html", page(LEAD + NAMED + REST))
    assert ingestor.ingest([path]).counts["added"] == 1
    _write(path, page(LEAD + RENAMED + REST))
    assert ingestor.ingest([path]).counts["updated"] == 1
    new = _only_article(ingestor)
    found = ingestor.store.article_text(new)
    assert found is not None and "Silver Kittiwake" in found[1]


def test_json_and_jsonl_files_keep_every_article_they_held(
        ingestor: Ingestor, tmp_path: Path) -> None:
    """A .json or .jsonl file holds many articles: an edited record is another article, and
    the articles read from the file before are not earlier versions of it."""
    lines, single = tmp_path / "feed.jsonl", tmp_path / "one.json"
    ferry = {"title": HEADLINE, "body": LEAD + NAMED + REST}
    other = {"title": "Kestle Bay ferry timetable withdrawn", "body": REWRITE}
    _write(lines, json.dumps(ferry) + "\n" + json.dumps(other) + "\n")
    council = ("The council of Kestle Bay approved its budget for next year on Tuesday, "
               "with more money for road repairs and the library, and less for festivals. "
               "Council tax will rise by two per cent, less than in any of the last five "
               "years, and the leisure centre will open on Sundays again from April.")
    _write(single, json.dumps({"title": "Budget", "body": council}))
    assert ingestor.ingest([lines, single]).counts["added"] == 3
    first = {r.article_id for r in ingestor.store.list_articles()}

    # Line 1 becomes another story; the one-object file is edited.
    edited = {"title": HEADLINE, "body": "Update: " + REWRITE.replace("Friday", "Saturday")}
    _write(lines, json.dumps(edited) + "\n" + json.dumps(other) + "\n")
    _write(single, json.dumps({"title": "Budget",
                               "body": council.replace("Tuesday", "Monday evening")}))
    report = ingestor.ingest([lines, single])
    assert report.counts["unchanged"] == 1 and report.counts["updated"] == 0
    kept = {r.article_id for r in ingestor.store.list_articles(limit=10)}
    assert first <= kept  # nothing read from the files before was deleted
    assert len(kept) == 3 + report.counts["added"]


def test_a_store_that_recorded_the_edit_as_a_duplicate_is_mended(
        ingestor: Ingestor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before this rule, the edited file was recorded as a near-duplicate of its own old
    version, which stayed the one cited: the next ingest of the file puts that right."""
    # The store as ingest left it before the rule (which `ingest_raw` now applies too).
    monkeypatch.setattr("ingest.pipeline._one_article_file", lambda location: False)
    path = _write(tmp_path / "ferry.txt", _story(RENAMED))
    old = RawArticle(location=str(path), title=HEADLINE, has_title=True,
                     body=LEAD + NAMED + REST)
    edited = RawArticle(location=str(path), title=HEADLINE, has_title=True,
                        body=LEAD + RENAMED + REST)
    assert ingestor.ingest_raw([old]).counts["added"] == 1
    assert ingestor.ingest_raw([edited]).counts["duplicate"] == 1
    assert sorted(_at(ingestor.store, path).values()) == ["committed", "duplicate"]
    monkeypatch.undo()

    report = ingestor.ingest([path])
    assert report.counts["updated"] == 1
    new = _only_article(ingestor)
    assert _at(ingestor.store, path) == {new: "committed"}
    found = ingestor.store.article_text(new)
    assert found is not None and "Silver Kittiwake" in found[1]


def test_an_upload_of_an_edited_file_replaces_the_one_uploaded_before(
        ingestor: Ingestor, tmp_path: Path) -> None:
    """The chat records an upload under its own name, whatever temporary path it came in."""
    first = _write(tmp_path / "upload-1" / "ferry.txt", _story())
    second = _write(tmp_path / "upload-2" / "ferry.txt", _story(RENAMED))
    ingestor.ingest([first], names={first: "ferry.txt"})
    report = ingestor.ingest([second], names={second: "ferry.txt"})
    assert report.counts["updated"] == 1
    new = _only_article(ingestor)
    assert _at(ingestor.store, "ferry.txt") == {new: "committed"}


def test_a_crash_between_writing_and_deleting_leaves_both_until_the_next_run(
        ingestor: Ingestor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "ferry.txt", _story())
    ingestor.ingest([path])
    old = _only_article(ingestor)
    _write(path, _story(RENAMED))

    def fail(article_id: str) -> None:
        raise StoreError("the Chroma store failed: simulated crash", "unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(ingestor.store, "delete_article", fail)
        with pytest.raises(StoreError, match="simulated"):
            ingestor.ingest([path])
    both = _at(ingestor.store, path)
    assert len(both) == 2 and set(both.values()) == {"committed"} and old in both

    report = ingestor.ingest([path])  # the new version is stored: only the deletion is left
    assert report.counts["updated"] == 1 and report.chunks_written == 0
    new = _only_article(ingestor)
    assert new != old and _at(ingestor.store, path) == {new: "committed"}


def test_a_copy_of_text_the_edit_removed_is_judged_again_when_its_file_comes(
        ingestor: Ingestor, tmp_path: Path) -> None:
    """A large edit leaves the old version's copies copies of nothing: they go with it (no
    record points at a deleted article), and their files are indexed on their own next time."""
    first = _write(tmp_path / "herald.txt", _story())
    copy = _write(tmp_path / "post.txt",
                  f"{HEADLINE}\n\nKESTLE BAY (Wire) - {LEAD}{NAMED}{REST}\n")
    ingestor.ingest([first, copy])
    _write(first, f"Kestle Bay ferry timetable withdrawn\n\n{REWRITE}\n")
    assert ingestor.ingest([first]).counts["updated"] == 1
    new = _only_article(ingestor)
    assert ingestor.store.reported_by([new]) == {} and _at(ingestor.store, copy) == {}
    assert ingestor.ingest([copy]).counts["added"] == 1
    assert ingestor.store.count_articles() == 2


def test_a_file_edited_into_another_files_text_gives_up_its_old_version(
        ingestor: Ingestor, tmp_path: Path) -> None:
    """Two files with one text are one article (the first one read): the edited file's old
    version goes all the same, once that article is stored."""
    edited = _write(tmp_path / "b-ferry.txt", _story())
    ingestor.ingest([edited])
    old = _only_article(ingestor)
    notice = f"Kestle Bay ferry timetable withdrawn\n\n{REWRITE}\n"
    _write(edited, notice)
    other = _write(tmp_path / "a-notice.txt", notice)
    report = ingestor.ingest([tmp_path])
    assert sorted((loc, status) for loc, _, status in report.articles) == [
        (str(other), "added"), (str(edited), "updated")]
    new = _only_article(ingestor)
    assert new != old and _at(ingestor.store, edited) == {}
    assert _at(ingestor.store, other) == {new: "committed"}


def test_an_edit_sent_by_the_cli_to_a_running_server_replaces_the_article_too(
        ingestor: Ingestor, tmp_path: Path) -> None:
    """`newsdesk-ingest` into a server that owns the store sends what it read (the server's
    local route calls `ingest_raw`), not the file."""
    from ingest.readers import read_file

    path = _write(tmp_path / "ferry.txt", _story())
    sent = read_file(path, 2_000_000).articles
    assert ingestor.ingest_raw(sent).counts["added"] == 1
    old = _only_article(ingestor)
    _write(path, _story(RENAMED))
    report = ingestor.ingest_raw(read_file(path, 2_000_000).articles)
    assert report.counts["updated"] == 1 and report.counts["added"] == 0
    new = _only_article(ingestor)
    assert new != old and ingestor.store.article_text(old) is None
    # Records of a many-article file sent the same way are never taken for earlier versions.
    lines = tmp_path / "wire.jsonl"
    lines.write_text(json.dumps({"title": "Slipway damaged", "body": REWRITE}) + "\n")
    assert ingestor.ingest_raw(read_file(lines, 2_000_000).articles).counts["added"] == 1
    assert len(ingestor.store.list_articles()) == 2

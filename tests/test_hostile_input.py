"""A folder of broken and hostile files mixed with good ones: nothing crashes, every good
article is stored, every bad file gets one clear error."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ingest.cleaning import normalise
from ingest.metadata import to_article
from ingest.pipeline import Ingestor
from ingest.readers import from_record, read_file

GOOD_BODY = ("The Alder Point ferry now crosses every twenty minutes, the transit board said. "
             "Two electric boats joined the fleet in March.")


def _good(folder: Path) -> dict[str, str]:
    """Good articles in every format; returns file name -> a phrase of its body."""
    (folder / "good.txt").write_text("Ferry service doubles\n\n" + GOOD_BODY)
    (folder / "good.md").write_text("# Library reopens\n\nThe Brookside library reopened on "
                                    "Monday after a two-year renovation costing 3 million.")
    (folder / "good.json").write_text(json.dumps(
        {"title": "Market hall", "body": "The market hall in Kettle Lane will open on Sundays.",
         "url": "https://news.test/market"}))
    (folder / "good.html").write_text(
        "<html><head><title>Bakery award</title></head><body><article><h1>Bakery award</h1>"
        "<p>The Mill Street bakery won the regional bread prize for its rye loaf, judges "
        "announced on Friday evening at the county fair.</p></article></body></html>")
    return {"good.txt": "twenty minutes", "good.md": "two-year renovation",
            "good.json": "Kettle Lane", "good.html": "rye loaf"}


def _bad(folder: Path) -> dict[str, str]:
    """Bad files; returns file name -> words its error must contain."""
    bad: dict[str, str] = {}

    def put(name: str, data: bytes, reason: str) -> None:
        (folder / name).write_bytes(data)
        bad[name] = reason

    put("empty.txt", b"", "empty")
    put("whitespace.md", b" \n\n\t  \r\n", "empty")
    put("nul.txt", b"Headline\n\nSome text\x00with a NUL byte", "binary")
    put("latin1.txt", "Caf\xe9 au lait".encode("latin-1"), "UTF-8")
    put("truncated.json", b'{"title": "Cut", "body": "The text stops he', "malformed JSON")
    put("wrong-shape.json", b'[1, 2, 3]', "expected a JSON object")
    put("number.json", b"42", "expected a JSON object")
    put("huge-line.txt", b"x" * 3_000_000, "over the limit")
    (folder / "long-line.txt").write_text("Long line\n\n" + "The harbour wall was rebuilt. "
                                          * 4_000)  # 120 KB on one line: allowed
    put("no-body.html", b"<html><head><title>Nothing</title></head></html>", "no article text")
    nested = b"<div>" * 20000 + b"deep text" + b"</div>" * 20000
    put("nested.html", b"<html><body>" + nested + b"</body></html>", "")
    put("report.docx", b"PK\x03\x04 not really", "unsupported file type")
    put("one-bad-in-list.json", json.dumps([
        {"title": "Tram", "body": "The tram line to Brookside opens in July.",
         "url": "https://news.test/tram"},
        {"title": "No body here"},
    ]).encode(), "no article text")
    os.mkfifo(folder / "pipe.txt")  # reading it would block forever
    bad["pipe.txt"] = "not a regular file"
    os.symlink(folder / "gone.txt", folder / "dangling.txt")
    bad["dangling.txt"] = "cannot read file"
    return bad


def test_broken_files_never_stop_the_good_ones(ingestor: Ingestor, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    good = _good(folder)
    bad = _bad(folder)
    # One bad record among good ones in a JSONL file.
    (folder / "mixed.jsonl").write_text("\n".join([
        json.dumps({"title": "Pool", "body": "The town pool opens in May with a new slide.",
                    "url": "https://news.test/pool"}),
        "{not json",
        json.dumps({"title": "Park", "text": "The park gains forty new oak trees this autumn.",
                    "url": "https://news.test/park"}),
    ]))
    # A symlink loop and an unreadable file (root can read anything: then it is just good).
    (folder / "loop").mkdir()
    os.symlink(folder / "loop", folder / "loop" / "again")
    locked = folder / "locked.txt"
    locked.write_text("Locked story\n\nThe council sealed the old quarry on Tuesday.")
    locked.chmod(0)
    can_read_locked = os.access(locked, os.R_OK)

    report = ingestor.ingest([folder])

    errors = {Path(re.sub(r"(:\d+|\[\d+\])$", "", e.location)).name: e for e in report.errors}
    for name, reason in bad.items():
        if name == "nested.html":
            continue  # either parsed (lxml copes) or one clear error; never a crash
        assert name in errors, f"{name} should have failed"
        assert reason in errors[name].reason, errors[name]
    assert "mixed.jsonl" in errors and errors["mixed.jsonl"].location.endswith(":2")
    assert any("symlink loop" in e.reason for e in report.errors)
    if not can_read_locked:
        assert "locked.txt" in errors and "cannot read" in errors["locked.txt"].reason
    # one error per bad file (the loop is reported once)
    assert len([e for e in report.errors if "loop" in e.reason]) == 1
    assert len(report.errors) == len({e.location for e in report.errors})

    assert errors["one-bad-in-list.json"].location.endswith("one-bad-in-list.json[1]")
    # A long single-line article under the size limit is fine.
    stored = " ".join(text for text in ingestor.store.chunks.get()["documents"])
    assert "tram line to Brookside" in stored
    for name, phrase in good.items():
        assert phrase in stored, f"{name} was not stored"
    assert "new slide" in stored and "oak trees" in stored
    assert report.counts["failed"] == len(report.errors)
    # Nothing half-written: every article record is committed with all its chunks.
    for record in ingestor.store.list_articles(limit=1000):
        assert len(ingestor.store.chunks_of(record.article_id)) == record.n_chunks


@pytest.mark.slow
def test_cli_exit_code_is_1_when_any_file_failed(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "drop"
    folder.mkdir()
    _good(folder)
    (folder / "broken.json").write_text("{")
    result = subprocess.run([sys.executable, "-m", "ingest", str(folder), "--data-dir",
                             str(tmp_path / "store"), "--quiet"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert result.stderr.count("failed:") == 1 and "broken.json" in result.stderr


def _store_text(ingestor: Ingestor) -> str:
    return " ".join(ingestor.store.chunks.get()["documents"])


def _errors_by_location(report) -> dict[str, str]:
    return {e.location: e.reason for e in report.errors}


POOL = {"title": "Pool", "body": "The town pool opens in May with a new slide.",
        "url": "https://news.test/pool"}


def test_lone_surrogate_fails_only_its_record(ingestor: Ingestor, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    # An emoji outside the BMP is a valid surrogate pair in JSON: \ud83c\udfca.
    lines = [json.dumps({**POOL, "title": "Pool \U0001f3ca"})]
    fields = ("body", "title", "url", "author", "source")
    for field in fields:
        record = {"title": "Park", "body": "The park gains forty new oak trees this autumn.",
                  "url": f"https://news.test/{field}", "author": "Jo", "source": "Ledger"}
        record[field] += "\udfff"  # json.dumps writes it as the escape \udfff
        lines.append(json.dumps(record))
    (folder / "feed.jsonl").write_text("\n".join(lines))
    (folder / "one.json").write_text(json.dumps({**POOL, "title": "Bad \udfff title",
                                                 "url": "https://news.test/one"}))
    (folder / "good.txt").write_text("Ferry service doubles\n\n" + GOOD_BODY)

    report = ingestor.ingest([folder])

    errors = _errors_by_location(report)
    for lineno, field in enumerate(fields, start=2):
        reason = errors[f"{folder / 'feed.jsonl'}:{lineno}"]
        assert f"'{field}'" in reason and "surrogate" in reason and "\\udfff" in reason
    assert "surrogate" in errors[str(folder / "one.json")]
    assert report.counts == {"added": 2, "updated": 0, "unchanged": 0, "duplicate": 0,
                             "failed": 6}
    assert "new slide" in _store_text(ingestor) and "twenty minutes" in _store_text(ingestor)
    assert "Pool \U0001f3ca" in {r.title for r in ingestor.store.list_articles(limit=10)}


def test_non_utf8_file_name_is_ingested_under_an_escaped_name(ingestor: Ingestor,
                                                               tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.txt")  # a Latin-1 file name: a lone surrogate in Python
    (folder / name).write_text("Cafe opens\n\nThe corner cafe opens on Monday with a new menu.")
    (folder / "good.txt").write_text("Ferry service doubles\n\n" + GOOD_BODY)

    report = ingestor.ingest([folder])

    assert report.ok, report.errors
    assert report.counts["added"] == 2
    paths = {r.path for r in ingestor.store.list_articles(limit=10)}
    assert str(folder / "caf\\xe9.txt") in paths


def test_deeply_nested_json_fails_only_its_file(ingestor: Ingestor, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    deep = "[" * 100_000 + "]" * 100_000  # 200 KB
    (folder / "deep.json").write_text(deep)
    (folder / "deep.jsonl").write_text(json.dumps(POOL) + "\n" + deep)
    (folder / "good.txt").write_text("Ferry service doubles\n\n" + GOOD_BODY)

    report = ingestor.ingest([folder])

    errors = _errors_by_location(report)
    assert "nested too deeply" in errors[str(folder / "deep.json")]
    assert "nested too deeply" in errors[f"{folder / 'deep.jsonl'}:2"]
    assert report.counts == {"added": 2, "updated": 0, "unchanged": 0, "duplicate": 0,
                             "failed": 2}


def test_invalid_dates_and_wrong_field_types_fail_their_record(tmp_path: Path) -> None:
    body = "The park gains forty new oak trees this autumn."
    bad = [  # (record, field named in the error, the value as the error shows it)
        ({"date": "2026-02-30"}, "date", "'2026-02-30'"),
        ({"published_at": "soon " * 200}, "published_at", "'soon soon"),
        ({"url": 123}, "url", "123"),
        ({"title": ["Park", "news"]}, "title", "['Park', 'news']"),
        ({"author": True}, "author", "True"),
        ({"source": {"name": "Ledger"}}, "source", "{'name': 'Ledger'}"),
    ]
    good = [{"date": "2026-02-28"}, {"date": 20260301}, {"id": 12345}, {"url": None}]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(json.dumps({"title": "Park", "body": body, **fields})
                              for fields in [*good, *(fields for fields, _, _ in bad)]))

    result = read_file(path, 100_000)

    assert len(result.articles) == len(good)
    errors = {e.location: e.reason for e in result.errors}
    assert len(errors) == len(bad)
    for lineno, (_, field, shown) in enumerate(bad, start=len(good) + 1):
        reason = errors[f"{path}:{lineno}"]
        assert f"'{field}'" in reason and shown in reason and "not ingested" in reason
        assert len(reason) < 200, reason


def test_symlinks_out_of_the_given_folder_are_skipped(ingestor: Ingestor,
                                                       tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    secret = outside / "secret.txt"
    secret.write_text("Vault memo\n\nThe vault code is 4711, the memo says.")
    (outside / "dir" / "more.txt").write_text("Other memo\n\nThe other vault opens at dawn.")
    folder = tmp_path / "drop"
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "ferry.txt").write_text("Ferry service doubles\n\n" + GOOD_BODY)
    os.symlink(secret, folder / "passwd.txt")
    os.symlink(outside / "dir", folder / "elsewhere")
    os.symlink(folder / "real" / "ferry.txt", folder / "alias.txt")  # inside: still read
    os.symlink(folder / "real", folder / "also-real")  # inside, walked before real/

    report = ingestor.ingest([folder])

    errors = _errors_by_location(report)
    assert set(errors) == {str(folder / "passwd.txt"), str(folder / "elsewhere")}
    assert all("outside" in reason for reason in errors.values())
    assert "vault" not in _store_text(ingestor) and "twenty minutes" in _store_text(ingestor)
    # Named on the command line, a symlink is the user's choice.
    assert ingestor.ingest([folder / "passwd.txt"]).counts["added"] == 1
    assert "vault code" in _store_text(ingestor)


def test_cli_reports_bad_records_one_line_each_and_prints_the_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], embeddings) -> None:
    from ingest import cli

    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "feed.jsonl").write_text("\n".join([
        json.dumps(POOL),
        json.dumps({"title": "Park", "body": "The park gains oaks \udfff."}),
        json.dumps({"title": "Park", "body": "The park gains oaks.", "date": "2026-02-30"}),
    ]))
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "good.txt").write_text("Ferry service doubles\n\n" + GOOD_BODY)
    os.symlink("/etc/passwd", folder / "passwd.txt")

    code = cli.main([str(folder), "--data-dir", str(tmp_path / "store"), "--quiet"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 4, err
    for where in ("feed.jsonl:2", "feed.jsonl:3", "deep.json", "passwd.txt"):
        assert any(f"{folder / where}: " in line for line in failed), (where, err)
    assert "│     2 │       0 │         0 │      4 │" in out


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_bidi_controls_are_removed_from_titles_and_text() -> None:
    raw = from_record("record", {
        "title": "Harbour \u202eexe.txt\u202c festival", "author": "\u2067Jo Brand\u2069",
        "source": "\u202aThe Ledger\u202c",
        "body": "The \u2066festival\u2069 drew \u200f12,000\u200e visitors\u061c on Saturday.",
    })
    article = to_article(raw)
    assert article.title == "Harbour exe.txt festival"
    assert article.body == "The festival drew 12,000 visitors on Saturday."
    assert (article.author, article.source) == ("Jo Brand", "The Ledger")
    assert not set(BIDI) & set(normalise("".join(f"a{c}b" for c in BIDI)))


def test_zero_width_space_between_words_becomes_a_space() -> None:
    assert normalise("Ostrava\u200bshipyard closes") == "Ostrava shipyard closes"
    assert normalise("\u200bOstrava\u200b, the\u200b shipyard\u200b") == "Ostrava, the shipyard"
    assert normalise("line\u2028break") == "line\nbreak"


def test_zero_width_joiners_are_kept_in_emoji_and_indic_and_arabic_scripts() -> None:
    kept = ["👨\u200d👩\u200d👧 family", "👍🏽\u200d", "क्\u200dष", "می\u200cخواهم", "ل\u200d"]
    for text in kept:
        assert normalise(text) == text
    assert normalise("Ostrava\u200dshipyard\u200c") == "Ostravashipyard"

"""A folder of broken and hostile files mixed with good ones: nothing crashes, every good
article is stored, every bad file gets one clear error."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ingest.pipeline import Ingestor

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
    ]).encode(), "missing article text")
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

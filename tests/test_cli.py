"""`newsdesk-ingest` as a user runs it: exit codes, error lines, summary table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_"))}
    return subprocess.run([sys.executable, "-m", "ingest", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_ingests_reports_and_sets_exit_codes(tmp_path: Path, seed_path: Path) -> None:
    store = tmp_path / "store"
    ok = _run(seed_path, "--data-dir", store, "--quiet", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "added" in ok.stdout and "│     1 │" in ok.stdout

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.json").write_text('{"title": ')
    (bad / "good.md").write_text("# Ferry doubles\n\nThe ferry now runs every twenty minutes.")
    again = _run(seed_path, bad, "--data-dir", store, "--quiet", cwd=tmp_path)
    assert again.returncode == 1
    assert f"{bad / 'broken.json'}: malformed JSON" in again.stderr.replace("\n", "")
    # one added (good.md), one unchanged (seed), one failed
    assert "│     1 │       0 │         1 │      1 │" in again.stdout


def test_cli_usage_error_exits_2(tmp_path: Path) -> None:
    result = _run(cwd=tmp_path)
    assert result.returncode == 2 and "usage: newsdesk-ingest" in result.stderr


def test_a_server_opening_a_store_the_cli_wrote_reads_no_archive(tmp_path: Path,
                                                                 seed_path: Path) -> None:
    """The CLI that wrote the store brings the keyword index up to date in proportion to its
    write, so the server that opens the store next neither rebuilds it nor re-reads what
    was written."""
    from conftest import SAMPLES, make_settings

    from assistant.service import Assistant

    store = tmp_path / "store"
    for paths in ([seed_path], [SAMPLES]):
        done = _run(*paths, "--data-dir", store, "--quiet", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assistant = Assistant(make_settings(store))
    try:
        health = assistant.health()
        assert health["articles"] == 8
        cost = health["keyword_index"]
        assert cost["rebuilds"] == 0 and cost["chunks_read"] == 0, cost
        assert assistant.ask("What wage increase are the striking Carrow signal staff "
                             "seeking?").citations
    finally:
        assistant.close()
        assistant.store.close()

"""The benchmark suite runs (`python -m bench --quick`) and writes every figure it promises;
the follow benchmark (`python -m bench.follows`), in small, times real writes.

Timings are never checked here: speed goals live in the benchmark's own report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import follows as follows_bench
from tests.conftest import ROOT

REQUIRED = (
    "encoder_ceiling_chunks_per_s", "ingest_chunks_per_s", "ingest_vs_ceiling",
    "langchain_plain_chunks_per_s", "ingest_vs_langchain", "reingest_unchanged_s",
    "reingest_speedup", "retrieve_p50_ms", "retrieve_p95_ms", "answer_p50_ms", "answer_p95_ms",
    "http_answers_per_s", "http_p95_ms", "peak_rss_mb", "startup_s", "scale",
)


@pytest.mark.slow
@pytest.mark.server
def test_quick_benchmark_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--http-seconds", "2", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())

    for key in REQUIRED:
        assert results.get(key) is not None, key
    for key in REQUIRED:
        if key != "scale":
            assert isinstance(results[key], int | float) and results[key] >= 0, key
    assert results["quick"] is True and results["commit"]
    main = results["corpora"][results["main_corpus"]]
    # The plain LangChain path splits the same text with the same settings: same chunks.
    assert main["chunks_match"] and main["newsdesk_chunks"] == main["langchain_plain_chunks"]
    assert main["chunks"] > 0
    for corpus in results["corpora"].values():
        assert corpus["questions"] >= 12 and corpus["rounds"] == 2  # 6 questions, twice
        assert corpus["answer_p95_ms"] >= corpus["answer_p50_ms"]
    assert set(results["corpora"]) == {"multihop", "rgb_zh"}
    scale = results["scale"]
    assert scale["chunks"] >= 2000 and scale["retrieve_p50_ms"] > 0
    # Retrieval over the scale store found passages: its latency was measured over real hits.
    assert scale["passages_per_question"] > 0
    assert scale["retrieve_p95_ms"] >= scale["retrieve_p50_ms"]
    assert results["http"]["answers"] > 0 and not results["http"]["errors"]
    assert set(results["goals"]) >= {"ingest_vs_ceiling", "ingest_vs_langchain", "startup_s"}
    assert "| ingest / ceiling" in run.stdout  # the printed table


@pytest.mark.slow
def test_follows_benchmark_times_real_writes_against_every_follow(tmp_path: Path) -> None:
    """`python -m bench.follows` in small: every timed write stored chunks and its check
    compared them with every follow (or, in the copy without follows, with none)."""
    result = follows_bench.measure(base=3, n_follows=20, writes=3, workdir=tmp_path,
                                   log=lambda _: None)
    assert result["follows"] == 20 and result["writes"] == 3
    assert result["base_chunks"] > 0
    for row in result["per_write"]:
        assert row["follows"]["chunks"] > 0 and row["follows"]["follows"] == 20
        assert row["none"]["chunks_written"] > 0 and row["none"]["follows"] == 0
        assert row["follows"]["chunks"] == row["follows"]["chunks_written"]
        assert row["follows"]["match_ms"] > 0 and row["none"]["check_ms"] > 0
    for key in ("extra_ms", "extra_match_ms"):
        assert result[key]["p95_ms"] >= result[key]["p50_ms"], key
    assert result["ratio"] > 0
    assert "extra with the follows" in follows_bench.table(result)


def test_the_archive_check_tells_lost_answers_from_ones_the_store_never_gives() -> None:
    from bench.archive import Asked, answer_checks

    quiet = Asked(uncited=["q9"])
    # A question the store never cites is reported, not failed; one the writes took away is.
    assert answer_checks([quiet], Asked(uncited=["q9", "q9"]), 40) == []
    (lost,) = answer_checks([quiet], Asked(uncited=["q9", "q3"]), 40)
    assert lost.startswith("under ingest: 1 answer(s)") and "'q3'" in lost
    # A store that cites almost nothing with no writes is not serving: the run fails.
    (empty,) = answer_checks([Asked(uncited=[f"q{i}" for i in range(10)])], Asked(), 40)
    assert empty.startswith("no writes: 10 of 40 questions")


def test_the_archive_s_distinct_questions_are_different_headlines() -> None:
    from bench.archive import headline_questions

    found = headline_questions(200)
    assert len(found) == 200 == len(set(found)) and all(q.strip() for q in found)
    assert headline_questions(200) == found  # the same questions in every run
    assert headline_questions(10) == found[:10]

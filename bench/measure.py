"""Ingest speed and answer latency on a real corpus: `python -m bench.measure`.

Ingests the articles into a fresh temporary store with the product's own ingest, then asks
the questions through the product's own `Assistant` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from assistant.service import Assistant
from assistant.settings import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.measure", description=__doc__)
    parser.add_argument("--articles", type=Path, default=SHARED / "multihop" / "articles.jsonl")
    parser.add_argument("--questions", type=Path,
                        default=SHARED / "multihop" / "queries_dev.jsonl")
    parser.add_argument("--limit", type=int, default=100, help="questions to ask")
    args = parser.parse_args(argv)

    from ingest.pipeline import Ingestor

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), openai_api_key=None, openai_base_url=None,
                            chroma_host=None)
        started = time.perf_counter()
        ingestor = Ingestor(settings)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        report = ingestor.ingest([args.articles])
        ingest_s = time.perf_counter() - started
        if report.errors:
            raise SystemExit(f"ingest failed: {report.errors[:3]}")
        started = time.perf_counter()
        again = ingestor.ingest([args.articles])
        reingest_s = time.perf_counter() - started

        assistant = Assistant(settings, store=ingestor.store)
        questions = [json.loads(x)["question"] for x in args.questions.read_text().splitlines()
                     if x.strip()][: args.limit]
        assistant.ask(questions[0])  # warm-up
        latencies = []
        for q in questions:
            t = time.perf_counter()
            assistant.ask(q)
            latencies.append((time.perf_counter() - t) * 1000)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    figures = {
        "corpus": str(args.articles.name),
        "articles": report.counts["added"],
        "chunks": report.chunks_written,
        "model_load_s": round(load_s, 1),
        "ingest_s": round(ingest_s, 1),
        "ingest_chunks_per_s": round(report.chunks_written / ingest_s, 1),
        "reingest_unchanged_s": round(reingest_s, 2),
        "reingest_unchanged_counts": again.counts,
        "questions": len(latencies),
        "answer_p50_ms": round(statistics.median(latencies), 1),
        "answer_p95_ms": round(percentile(latencies, 0.95), 1),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "commit": commit,
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

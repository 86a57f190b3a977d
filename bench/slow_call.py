"""A store call that runs past its bound while the store still answers: `python -m bench.slow_call`.

    python -m bench.slow_call [--chunks 1000000] [--bound 1.0] [--questions 8] [--settle 8]

On the cached scale store of `bench.archive` (built when missing), in-process, with the
store's time bound set to `--bound` seconds: a few unfiltered questions warm the vector index,
then questions filtered to one day are asked by a Chroma `where` (the planner pinned to it),
which at 1,000,000 chunks takes seconds, past the bound, each followed at once by an
unfiltered question (while the slow call still runs) and a pause (`--settle`). At least one
must be a `StoreTimeoutError` (else the figures measure nothing), and then the store must
still be on the same client (a
reopened core would load the whole HNSW index a second time while the slow call still holds
the first), answer the next unfiltered question, and hold about the memory it held before.
Prints what it saw as JSON; fails when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from assistant.errors import StoreTimeoutError
from assistant.index.embeddings import get_embeddings
from assistant.index.store import NewsStore
from assistant.types import Filters
from bench import scale
from bench.archive import build_store, memory_mb, scale_dir
from bench.filtered import questions
from bench.run import offline_settings

ROOT = Path(__file__).resolve().parents[1]
# A day of the MultiHop copies with tens of thousands of chunks at 1,000,000.
DAY = Filters(since="2023-10-10", until="2023-10-10")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--bound", type=float, default=1.0, help="the store's time bound, s")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--settle", type=float, default=8.0,
                        help="seconds between slow questions (a `where` there takes 2.5-4.4 s)")
    args = parser.parse_args(argv)
    embeddings = get_embeddings(offline_settings(ROOT / ".newsdesk-cache" / "unused"))
    build_store(embeddings, args.chunks)
    settings = offline_settings(scale_dir(args.chunks), collection=scale.COLLECTION)
    store = NewsStore(settings, embeddings)
    try:
        total = store.keywords().counts()[1]
        vectors = embeddings.embed(questions(args.questions + 3))
        for vector in vectors[:3]:
            store.nearest(vector, 50, total=total)
        client = store.client
        before = memory_mb(os.getpid())
        store.settings = store.settings.model_copy(update={"store_timeout_s": args.bound})
        store.post_filter_depth, store.exact_filter_max = 0, 0  # a `where`
        timed_out, next_ms = 0, []
        for vector in vectors[3:]:
            try:
                store.nearest(vector, 50, total=total, filters=DAY)
            except StoreTimeoutError:
                timed_out += 1
            # The next question, while the slow call still runs on its worker thread.
            started = time.perf_counter()
            found = store.nearest(vector, 50, total=total)
            next_ms.append(round((time.perf_counter() - started) * 1000, 1))
            if len(found) != 50:
                raise SystemExit(f"an unfiltered question after the slow one got {len(found)}")
            time.sleep(args.settle)  # one slow call at a time, as a rare question comes
        after = memory_mb(os.getpid())
        result = {"chunks": total, "bound_s": args.bound, "asked": len(vectors) - 3,
                  "timed_out": timed_out, "client_kept": store.client is client,
                  "broken": store._broken, "next_unfiltered_ms": next_ms,
                  "memory_before": before, "memory_after": after}
        print(json.dumps(result, indent=1))
        if args.out is not None:
            args.out.write_text(json.dumps(result, indent=1) + "\n")
        if timed_out == 0:
            raise SystemExit("no call ran past the bound: raise --chunks or lower --bound")
        if not result["client_kept"] or store._broken:
            raise SystemExit("the store was reopened after a slow call")
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())

"""What Chroma alone holds in memory for a scale store: `python -m bench.chroma_floor`.

    python -m bench.chroma_floor [--chunks 1000000] [--queries 20]

Opens the cached scale store of `bench.archive` (built when missing) with a bare
`chromadb.PersistentClient`, in a fresh process with nothing of newsdesk loaded, and prints
its resident memory (VmRSS, and its anonymous and file parts, MiB) after opening, after one
query (which loads the collection's HNSW index and id maps) and after `--queries` more: the
floor under the server's RSS at that size, which no change to newsdesk can lower. Fails when
a query returns fewer than 50 ids (an empty index would measure nothing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from assistant.index.embeddings import get_embeddings
from bench import scale
from bench.archive import build_store, scale_dir
from bench.run import offline_settings

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, re, sys
from pathlib import Path
import chromadb, numpy as np

def rss():
    text = Path("/proc/self/status").read_text()
    return {key: int(re.search(key + r":\\s+(\\d+)", text).group(1)) // 1024
            for key in ("VmRSS", "RssAnon", "RssFile")}

path, name, queries = sys.argv[1], sys.argv[2], int(sys.argv[3])
found = {"before": rss()}
collection = chromadb.PersistentClient(path).get_collection(name)
found["opened"] = rss()
rng = np.random.default_rng(0)
for i in range(queries + 1):
    got = collection.query(query_embeddings=[rng.standard_normal(384).tolist()],
                           n_results=50, include=["distances"])
    if len(got["ids"][0]) != 50:
        raise SystemExit(f"a query returned {len(got['ids'][0])} ids")
    if i == 0:
        found["after_one_query"] = rss()
found[f"after_{queries + 1}_queries"] = rss()
print(json.dumps(found))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args(argv)
    embeddings = get_embeddings(offline_settings(ROOT / ".newsdesk-cache" / "unused"))
    info = build_store(embeddings, args.chunks)
    run = subprocess.run([sys.executable, "-c", _PROBE, str(scale_dir(args.chunks)),
                          f"{scale.COLLECTION}_chunks", str(args.queries)],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(run.stdout + run.stderr)
        return 1
    found = json.loads(run.stdout.strip().splitlines()[-1])
    found = {"chunks": info["chunks"], "mib": found}
    print(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What language detection costs a process: `python -m bench.language`.

    python -m bench.language [--against py3langid]

Runs `ingest.metadata.detect_lang` (CLD2) over MultiHop-RAG's 609 bodies and 400 RGB Chinese
passages in a fresh process and prints the resident memory it added (MiB), the time per
body and the languages it named. With `--against py3langid` (installed by hand: it is no
longer a dependency) the same for py3langid's `classify`, and the bodies the two disagree on.
Fails when a corpus is missing or over 1% of the bodies get no language.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys

from bench.corpora import CORPORA

_PROBE = """
import json, re, sys, time
from pathlib import Path

def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))

texts = json.loads(Path(sys.argv[2]).read_text())
# What ingest.metadata imports besides the detector: in every newsdesk process already.
import courlan, dateutil.parser, numpy, regex
import assistant.dates, assistant.types, ingest.cleaning
before = rss()
if sys.argv[1] == "py3langid":
    import py3langid
    detect = lambda text: py3langid.classify(text[:2000])[0]
else:
    from ingest.metadata import detect_lang as detect
started = time.perf_counter()
found = [detect(text) for text in texts]
print(json.dumps({"ms_per_body": (time.perf_counter() - started) * 1000 / len(texts),
                  "rss_mib": (rss() - before) / 1024, "langs": found}))
"""


def bodies() -> list[str]:
    """The bodies measured: every MultiHop article, then the first 400 RGB zh passages."""
    texts = []
    for name, limit in (("multihop", None), ("rgb_zh", 400)):
        path = CORPORA[name].articles
        if not path.exists():
            raise SystemExit(f"{path} is missing (see ../shared/data/README.md)")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        texts += [r["body"] for r in rows[:limit]]
    return texts


def measure(detector: str, path: str) -> dict:
    run = subprocess.run([sys.executable, "-c", _PROBE, detector, path],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"{detector}: {run.stderr.strip()[-500:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", choices=["py3langid"], default=None)
    args = parser.parse_args(argv)
    texts = bodies()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bodies.json"
        path.write_text(json.dumps(texts))
        results = {"cld2": measure("cld2", str(path))}
        if args.against:
            results[args.against] = measure(args.against, str(path))
    for name, found in results.items():
        counts = collections.Counter(found["langs"]).most_common(6)
        print(f"{name}: +{found['rss_mib']:.1f} MiB resident, {found['ms_per_body']:.2f} ms per "
              f"body, {len(texts)} bodies: {counts}")
    if args.against:
        pairs = collections.Counter(
            (a, b) for a, b in zip(results["cld2"]["langs"], results[args.against]["langs"],
                                   strict=True) if a != b)
        print(f"disagreements (cld2, {args.against}): {dict(pairs)}")
    # A body of digits and dates alone has no language; most news bodies have one.
    unnamed = sum(1 for lang in results["cld2"]["langs"] if not lang)
    print(f"bodies with no language named: {unnamed}")
    if unnamed > len(texts) // 100:
        print("FAILED: more than 1% of the bodies got no language")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

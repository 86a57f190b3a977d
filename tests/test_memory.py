"""Memory a long-running server gives back: glibc's malloc arenas are capped at two, and
ONNX Runtime returns what an article's batch of chunks took."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, sys, tempfile, threading
from assistant.malloc import limit_arenas
if sys.argv[1] == "limit":
    assert limit_arenas(2)
libc = ctypes.CDLL("libc.so.6")
start = threading.Barrier(12)
def work():
    start.wait()
    kept = [bytearray(200) for _ in range(20000)]
    start.wait()  # every thread holds its memory at once
threads = [threading.Thread(target=work) for _ in range(12)]
[t.start() for t in threads]; [t.join() for t in threads]
with tempfile.NamedTemporaryFile("r", suffix=".xml") as out:
    libc.fopen.restype = ctypes.c_void_p
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream)); libc.fclose(ctypes.c_void_p(stream))
    print(out.read().count("<heap nr="))
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_threads_share_two_arenas_once_limited() -> None:
    assert _arenas("limit") <= 2
    assert _arenas("default") > 2  # the probe does make threads take arenas of their own


ENCODE = r"""
from assistant.settings import Settings
from assistant.index.embeddings import get_embeddings
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
embeddings = get_embeddings(Settings(_env_file=None))
assert embeddings.onnx
embeddings.embed(["warm up"])
before = rss()
text = " ".join(["The harbour council voted to build a tidal barrier on the estuary."] * 30)
for _ in range(3):  # an ingest's batches: 16 chunks of the model's full length
    embeddings.embed_with_spans([text] * 16, [[(0, 50), (50, 100)]] * 16)
print(rss() - before)
"""


@pytest.mark.slow
def test_an_articles_batch_of_chunks_leaves_no_memory_held() -> None:
    done = subprocess.run([sys.executable, "-c", ENCODE], capture_output=True, text=True,
                          timeout=300, check=True)
    # Held by ONNX Runtime's arena until the fix: ~350 MB for good after such a batch.
    assert int(done.stdout.strip().splitlines()[-1]) < 120


TRIM = r"""
from assistant.malloc import give_back
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
blocks = [bytearray(600) for _ in range(300_000)]  # glibc's heap (past pymalloc's 512 bytes)
kept = blocks[::200]  # a few stay, so the heap's top cannot shrink by itself
del blocks
held = rss()
give_back()
print(held - rss())
"""


def test_the_server_gives_freed_heap_memory_back() -> None:
    done = subprocess.run([sys.executable, "-c", TRIM], capture_output=True, text=True,
                          timeout=120, check=True)
    assert int(done.stdout.strip().splitlines()[-1]) > 100  # of ~180 MB freed

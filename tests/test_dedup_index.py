"""The near-duplicate index: datasketch's MinHash computed without datasketch, and numpy LSH
bands that find what datasketch's MinHashLSH finds, in a small fraction of its memory."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from ingest import dedup
from ingest.dedup import NUM_PERM, THRESHOLD, DuplicateIndex, lsh_bands, minhash, signature

WORDS = ("river council budget ferry harbour tide storm vote school museum rail signal wage "
         "strike bridge engineer flood lantern pier court judge hospital nurse airline pilot "
         "runway festival orchestra treasurer mayor clinic vaccine trial verdict appeal").split()


def _stories(n: int, seed: int = 3) -> dict[str, str]:
    """`n` made-up bodies, and copies of some of them with a share of their words changed
    (from 5% to 80%), so similarities fall on both sides of the threshold."""
    rng = np.random.default_rng(seed)
    bodies: dict[str, str] = {}
    for i in range(n):
        words = list(rng.choice(WORDS, size=120))
        bodies[f"s{i}"] = " ".join(words)
        if i % 3 == 0:
            share = [0.05, 0.2, 0.4, 0.6, 0.8][i % 5]
            changed = [w if rng.random() > share else str(rng.integers(10**6)) for w in words]
            bodies[f"s{i}-copy"] = " ".join(changed)
    return bodies


def _datasketch(values: np.ndarray) -> MinHash:
    return MinHash(num_perm=NUM_PERM, seed=1, hashvalues=values, scheme="affine32")


@pytest.mark.parametrize("size", [1, 2, 37, 500, 5000])
def test_minhash_is_datasketch_minhash_bit_for_bit(size: int) -> None:
    """Signatures already stored (made by datasketch) and new ones compare as equals."""
    rng = np.random.default_rng(size)
    items = {bytes(rng.integers(0, 256, size=int(rng.integers(1, 40)), dtype=np.uint8))
             for _ in range(size)}
    reference = MinHash(num_perm=NUM_PERM, seed=1)  # datasketch's default scheme
    reference.update_batch(list(items))
    assert reference.scheme == "affine32"
    assert np.array_equal(minhash(items), reference.hashvalues)


def test_signature_and_similarity_are_datasketch_s() -> None:
    bodies = _stories(30)
    reference = {}
    for key, body in bodies.items():
        ref = MinHash(num_perm=NUM_PERM, seed=1)
        ref.update_batch(list(dedup.shingles(body)))
        reference[key] = ref
        assert np.array_equal(signature(body).values, ref.hashvalues)
    found, copy = signature(bodies["s0"]), signature(bodies["s0-copy"])
    assert found.similarity(copy) == reference["s0"].jaccard(reference["s0-copy"]) < 1.0


@pytest.mark.parametrize("threshold", [THRESHOLD, 0.5, 0.8])
def test_lsh_bands_are_datasketch_s(threshold: float) -> None:
    bands = MinHashLSH(threshold=max(threshold - 0.15, 0.1), num_perm=NUM_PERM)
    assert lsh_bands(threshold) == (bands.b, bands.r)


def test_ingest_and_the_server_import_no_scipy() -> None:
    """datasketch and bm25s import scipy (~40 MiB per process) at their package import:
    neither is imported by the server's modules or ingest's."""
    code = ("import sys, ui, ingest.pipeline, ingest.watch, ingest.web; "
            "from ingest.dedup import DuplicateIndex, signature; DuplicateIndex(); "
            "signature('word ' * 60); "
            "bad = sorted(m for m in ('scipy', 'datasketch', 'bm25s') if m in sys.modules); "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]


def test_the_index_finds_what_datasketch_lsh_finds() -> None:
    signatures = {key: signature(body) for key, body in _stories(300).items()}
    index = DuplicateIndex()
    reference = MinHashLSH(threshold=max(THRESHOLD - 0.15, 0.1), num_perm=NUM_PERM)
    for key, found in signatures.items():
        assert found is not None
        index.add(key, found)
        reference.insert(key, _datasketch(found.values))
    matched = 0
    for key, found in signatures.items():
        assert found is not None
        expected = [(other, _datasketch(found.values).jaccard(
                        _datasketch(signatures[other].values)))
                    for other in reference.query(_datasketch(found.values)) if other != key]
        expected = [(k, s) for k, s in expected if s >= THRESHOLD
                    and found.words <= dedup.LONGER * signatures[k].words]
        got = index.find(found, exclude=key)
        if expected:
            matched += 1
            assert got is not None and got[1] == max(s for _, s in expected)
        else:
            assert got is None
    assert matched >= 50  # the copies are found (the test measured something)


def test_removed_and_replaced_signatures_through_merges() -> None:
    bodies = _stories(2 * dedup._MERGE_EVERY // 3 + 50)
    index = DuplicateIndex()
    index.load((key, dedup.pack(signature(body))) for key, body in list(bodies.items())[:100])
    for key, body in bodies.items():  # past `_MERGE_EVERY` adds: sorted at least once more
        index.add(key, signature(body))
    assert len(index) == len(bodies)
    copy = signature(bodies["s0-copy"])
    assert index.find(copy, exclude="s0-copy")[0] == "s0"
    index.remove("s0")
    assert index.find(copy, exclude="s0-copy") is None
    index.add("s0", signature(bodies["s0"]))  # back, as a recent (unsorted) row
    assert index.find(copy, exclude="s0-copy")[0] == "s0"
    index.add("s0", signature(bodies["s3"]))  # replaced by another text
    assert index.find(copy, exclude="s0-copy") is None
    assert len(index) == len(bodies)


def test_the_index_holds_a_few_arrays_not_a_dict_entry_per_band() -> None:
    rng = np.random.default_rng(0)
    index = DuplicateIndex()
    n = 20_000
    values = rng.integers(0, 2**32 - 1, size=(n, NUM_PERM), dtype=np.uint64).astype("<u4")
    index.load((f"a{i}", f"300:{dedup.base64.b64encode(v.tobytes()).decode()}")
               for i, v in enumerate(values))
    assert len(index) == n
    arrays = (index._values, index._words, index._sorted_keys, index._sorted_rows)
    # The signatures, plus one key and one row number per band per article.
    assert sum(a.nbytes for a in arrays) <= n * (NUM_PERM * 4 + 8 + index._bands * 16)
    assert index._sorted_keys.shape == (index._bands, n)
    found = dedup.unpack(f"300:{dedup.base64.b64encode(values[17].tobytes()).decode()}")
    assert index.find(found) == ("a17", 1.0)

"""A large store for the scale figures, built from real chunk vectors without re-encoding.

Encoding 200,000 chunks would take hours on two cores, so the store is made of copies of the
benchmark stores' own chunks: each copy gets a distinct id and article id and its vector a
little Gaussian noise (renormalised; about 0.98 cosine to the original), so the index holds
as many distinct points as chunks. Built once and cached under `.newsdesk-cache/`.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import numpy as np

from assistant.index.embeddings import NewsEmbeddings
from assistant.index.store import NewsStore
from assistant.settings import Settings

COLLECTION = "bench_scale"
NOISE = 0.01  # per dimension, before renormalising


def source_rows(stores: list[NewsStore]) -> tuple[list[str], list[str], list[dict[str, Any]],
                                                  np.ndarray]:
    """Every chunk (id, text, metadata, vector) of the given stores."""
    ids: list[str] = []
    docs: list[str] = []
    metas: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    for store in stores:
        got = store.chunks.get(include=["documents", "metadatas", "embeddings"])
        ids += got["ids"]
        docs += [d or "" for d in got["documents"]]
        metas += [dict(m or {}) for m in got["metadatas"]]
        vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
    return ids, docs, metas, np.concatenate(vectors) if vectors else np.zeros((0, 0))


def build(settings: Settings, embeddings: NewsEmbeddings, stores: list[NewsStore],
          target: int, seed: int = 0) -> dict[str, Any]:
    """Fill `settings`' store with at least `target` chunks (whole copies of the sources), or
    reuse it when a complete build of the same size is there. Returns what it did."""
    marker = settings.data_dir / "bench-scale.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("target") == target and info.get("model") == embeddings.name:
            return {**info, "cached": True}
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    started = time.perf_counter()
    ids, docs, metas, vectors = source_rows(stores)
    if not ids:
        raise SystemExit("the scale store needs at least one stored chunk to copy")
    store = NewsStore(settings, embeddings)
    rng = np.random.default_rng(seed)
    batch = store.client.get_max_batch_size()
    copies = -(-target // len(ids))
    for copy in range(copies):
        noisy = vectors + rng.normal(0.0, NOISE, vectors.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        copy_ids = [f"{cid}#copy{copy}" for cid in ids]
        copy_metas = [{**m, "article_id": f"{m.get('article_id', '')}#copy{copy}"}
                      for m in metas]
        for s in range(0, len(ids), batch):
            store.chunks.add(ids=copy_ids[s:s + batch], documents=docs[s:s + batch],
                             metadatas=copy_metas[s:s + batch], embeddings=noisy[s:s + batch])
    info = {"target": target, "chunks": store.count_chunks(), "copies": copies,
            "source_chunks": len(ids), "model": embeddings.name,
            "build_s": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info))
    return {**info, "cached": False}

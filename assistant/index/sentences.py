"""A chunk's sentences, and the sentence vectors stored with it.

Chunks are split into sentences the same way at ingest, where each sentence gets a vector
pooled from the token states of the chunk's own model call, and at question time, where the
extractive answerer scores them; a stored vector is found again by its sentence's offset.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import sentencex

# Names what `split` and `pack` store. Part of every article's index key: change it with
# either of them and the next ingest re-indexes, so no store keeps vectors under offsets the
# answerer no longer splits at.
FORMAT = "sentence-vectors-1"
MIN_SENTENCE_CHARS = 20
MAX_SENTENCE_CHARS = 600
_CJK_LANGS = ("zh", "ja", "ko")


def split(text: str, lang: str, start: int = 0) -> list[tuple[str, int, int]]:
    """(sentence, start, end) for each sentence of `text` an answer may quote, with offsets
    shifted by `start` (a chunk's offset in its article body)."""
    sentences = []
    # CJK sentences carry far more per character than Latin ones.
    min_chars = 6 if lang in _CJK_LANGS else MIN_SENTENCE_CHARS
    for line_start, line in _lines(text):
        for span in sentencex.get_sentence_boundaries(lang or "en", line):
            raw = span["text"]
            stripped = raw.strip()
            # Questions in an article ("Will Japan sell its bonds?") never answer one.
            if not min_chars <= len(stripped) <= MAX_SENTENCE_CHARS or stripped.endswith(
                ("?", "？")
            ):
                continue
            offset = line_start + span["start_index"] + (len(raw) - len(raw.lstrip()))
            if text[offset:offset + len(stripped)] != stripped:  # never seen; be safe
                offset = text.find(stripped, line_start)
                if offset < 0:
                    continue
            sentences.append((stripped, start + offset, start + offset + len(stripped)))
    return sentences


def _lines(text: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            out.append((pos, line))
        pos += len(line) + 1
    return out


def pack(starts: Sequence[int], vectors: np.ndarray) -> str:
    """Sentence vectors as one metadata string: the sentences' start offsets, then the
    vectors as int8 (each scaled by its largest component), base64-encoded. Rows of NaN
    (no vector) are left out."""
    keep = [i for i in range(len(starts)) if not np.isnan(vectors[i]).any()]
    if not keep:
        return ""
    rows = vectors[keep]
    scale = np.maximum(np.abs(rows).max(axis=1, keepdims=True), 1e-12)
    quantized = np.round(rows / scale * 127).astype(np.int8)
    head = ",".join(str(starts[i]) for i in keep)
    return f"{head};{base64.b64encode(quantized.tobytes()).decode('ascii')}"


def unpack(packed: str) -> dict[int, np.ndarray]:
    """Unit vectors by sentence start offset, from `pack`'s string (empty if none or
    malformed: the answerer then embeds the sentences itself)."""
    if not packed:
        return {}
    try:
        head, body = packed.split(";", 1)
        starts = [int(s) for s in head.split(",")]
        rows = np.frombuffer(base64.b64decode(body), dtype=np.int8).astype(np.float32)
        rows = rows.reshape(len(starts), -1)
    except ValueError:
        return {}
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return dict(zip(starts, rows, strict=True))

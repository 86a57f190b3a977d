"""Sentence splitting shared by ingest and the answerer, and the packed sentence vectors."""

from __future__ import annotations

import numpy as np

from assistant.index import sentences


def test_split_gives_offsets_in_the_article_body() -> None:
    body = "Intro line that is long enough.\nThe vote was 7 to 2. Was it close? Short.\n"
    found = sentences.split(body[32:], "en", start=32)
    assert [text for text, _, _ in found] == ["The vote was 7 to 2."]  # no question, no stub
    for text, start, end in found:
        assert body[start:end] == text


def test_packed_vectors_round_trip_by_start_offset() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(3, 384)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    rows[1] = np.nan  # a sentence without a vector is left out
    found = sentences.unpack(sentences.pack([10, 55, 90], rows))
    assert sorted(found) == [10, 90]
    for start, row in ((10, rows[0]), (90, rows[2])):
        assert float(found[start] @ row) > 0.999  # int8 costs almost nothing
        assert abs(float(np.linalg.norm(found[start])) - 1.0) < 1e-5


def test_missing_or_damaged_vectors_unpack_to_nothing() -> None:
    assert sentences.unpack("") == {}
    assert sentences.unpack("10,20;not base64!") == {}
    assert sentences.unpack("10,20;AAAA") == {}  # 3 bytes for 2 sentences
    assert sentences.pack([1], np.full((1, 4), np.nan, dtype=np.float32)) == ""

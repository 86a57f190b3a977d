"""Property tests (Hypothesis) for cleaning and chunking: offsets are exact, chunks fit the
model, cleaning is stable, ingest is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.index.embeddings import NewsEmbeddings
from ingest.chunking import chunk_body, embedding_text, make_splitter
from ingest.cleaning import clean_body, normalise
from ingest.pipeline import Ingestor

WORDS = st.sampled_from(
    "the council voted on budget ferry 4.2 million euros Dr. U.S. Jan. 5 said, "
    "— “quoted” 日本 经济 café naïve Ärzte 100% [1] <b> & e.g. ... ! ? ; : 12,000".split()
)
# The fixtures used below are read-only or made fresh per example, so sharing them is safe.
FIXTURES_OK = [HealthCheck.function_scoped_fixture]
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\t", "\u00a0", ". ", "\r\n"])


@st.composite
def article_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=400))
    return "".join(word + sep for word, sep in parts)


@pytest.fixture(scope="module")
def splitter(embeddings: NewsEmbeddings):
    return make_splitter(embeddings, chunk_tokens=64, overlap_tokens=8)


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES_OK)
@given(text=article_texts())
def test_chunk_offsets_are_exact_and_chunks_fit_the_model(text: str, splitter,
                                                          embeddings: NewsEmbeddings) -> None:
    body, _ = clean_body(text)
    chunks = chunk_body(body, splitter)
    if body.strip():
        assert chunks
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert body[chunk.start:chunk.end] == chunk.text
        assert embeddings.count_tokens(chunk.text) <= 64
        assert embeddings.count_tokens(embedding_text("A headline " * 40, chunk, embeddings)) \
            <= embeddings.max_tokens
    # Chunks cover the body in order.
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=500))
def test_cleaning_is_stable_and_never_grows(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert len(once) <= len(text)
    body, _ = clean_body(text)
    assert clean_body(body)[0] == body


@settings(max_examples=8, deadline=None, suppress_health_check=FIXTURES_OK)
@given(bodies=st.lists(article_texts(), min_size=1, max_size=3))
def test_ingest_is_idempotent(bodies: list[str], tmp_path_factory: pytest.TempPathFactory,
                              embeddings: NewsEmbeddings) -> None:
    folder = tmp_path_factory.mktemp("prop")
    lines = [json.dumps({"title": f"Story {i}", "body": body, "url": f"https://news.test/{i}"})
             for i, body in enumerate(bodies)]
    (folder / "in.jsonl").write_text("\n".join(lines))
    ingestor = Ingestor(make_settings(Path(folder) / "store"), embeddings=embeddings)
    ingestor.ingest([folder / "in.jsonl"])
    ids = sorted(ingestor.store.chunks.get(include=[])["ids"])
    again = ingestor.ingest([folder / "in.jsonl"])
    assert again.chunks_written == 0 and again.counts["added"] == again.counts["updated"] == 0
    assert sorted(ingestor.store.chunks.get(include=[])["ids"]) == ids

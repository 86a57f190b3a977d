"""The own story of the timeline tests (`tests/data/timeline_story.jsonl`), ingested into a
store of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import make_settings

from assistant.index.embeddings import NewsEmbeddings
from assistant.settings import Settings
from assistant.types import make_article_id
from ingest.pipeline import Ingestor

ARTICLES = [json.loads(line) for line in
            (Path(__file__).parent / "data" / "timeline_story.jsonl").read_text().splitlines()]
QUESTION = "How has the Kestrel Bay desalination plant story developed?"


def article(external_id: str) -> str:
    """The store's id of the story's article with this `id`."""
    return make_article_id(external_id=external_id)


def ingest_story(data_dir: Path, embeddings: NewsEmbeddings, **settings: Any) -> Settings:
    """Settings of a store under `data_dir` holding the story and the two unrelated articles
    (the wire copy recorded as a near-duplicate of the lawsuit article)."""
    stored = make_settings(data_dir, **settings)
    report = Ingestor(stored, embeddings=embeddings).ingest_records(ARTICLES, origin="story")
    assert report.ok, report.errors
    assert report.counts["duplicate"] == 1, "the wire copy is stored once, as another outlet"
    return stored

"""The benchmark corpora and questions, prepared once per run outside every timed section.

Both ingest paths read the same prepared JSONL file: the articles with newsdesk's cleaned body
and title (cleaning is idempotent, so newsdesk's own ingest of the prepared file stores exactly
the chunks it stores for the original file), so that the plain LangChain path, which does no
cleaning, splits the very same text and stores the same number of chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from assistant.index.embeddings import NewsEmbeddings
from evals.data import SHARED_DATA
from ingest.chunking import chunk_body, embedding_text, make_splitter
from ingest.metadata import to_article
from ingest.readers import read_file


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus of the benchmark: its articles, its questions and how to read them."""

    name: str
    articles: Path
    questions: Path
    question_field: str = "question"


CORPORA = {
    "multihop": CorpusSpec("multihop", SHARED_DATA / "multihop" / "articles.jsonl",
                           SHARED_DATA / "multihop" / "queries_dev.jsonl"),
    "rgb_zh": CorpusSpec("rgb_zh", SHARED_DATA / "rgb" / "zh" / "corpus.jsonl",
                         SHARED_DATA / "rgb" / "zh" / "questions.jsonl"),
}


@dataclass
class PreparedCorpus:
    """A corpus slice ready to benchmark: the file both paths ingest and what newsdesk embeds."""

    spec: CorpusSpec
    path: Path  # prepared JSONL, one cleaned article per line
    articles: int
    texts: list[str] = field(repr=False)  # exactly what newsdesk embeds, one per chunk
    questions: list[str] = field(repr=False)
    chunk_size: int = 0
    chunk_overlap: int = 0

    @property
    def chunks(self) -> int:
        return len(self.texts)


def prepare(spec: CorpusSpec, workdir: Path, embeddings: NewsEmbeddings, chunk_tokens: int,
            chunk_overlap: int, max_articles: int | None = None,
            max_questions: int | None = None, max_article_bytes: int = 2_000_000,
            ) -> PreparedCorpus:
    """Read `spec`'s first `max_articles` articles with newsdesk's reader, write them cleaned
    to `workdir/<name>.jsonl` and list the texts newsdesk will embed for their chunks."""
    result = read_file(spec.articles, max_article_bytes)
    if result.errors:
        raise SystemExit(f"{spec.articles}: {result.errors[0].location}: "
                         f"{result.errors[0].reason}")
    raws = result.articles[:max_articles] if max_articles else result.articles
    splitter = make_splitter(embeddings, chunk_tokens, chunk_overlap)
    texts: list[str] = []
    seen: set[str] = set()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{spec.name}.jsonl"
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for raw in raws:
            article = to_article(raw)
            if article.article_id in seen:  # newsdesk keeps the first of two equal articles
                continue
            seen.add(article.article_id)
            chunks = chunk_body(article.body, splitter)
            embedded = [embedding_text(article.title, c, embeddings) for c in chunks]
            texts.extend(embedded)
            # The title as newsdesk embeds it (clipped to its header budget), so the plain path,
            # which puts the title above each chunk too, encodes the same tokens.
            header = embedded[0].split("\n", 1)[0].strip() if article.title and embedded else ""
            record = {"title": header, "body": article.body, "url": article.url,
                      "published_at": article.published_at, "source": article.source,
                      "author": article.author}
            # Only what the original gave: newsdesk still detects the language itself.
            if raw.lang:
                record["lang"] = raw.lang
            if getattr(raw, "external_id", ""):
                record["id"] = raw.external_id
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    questions = [
        str(json.loads(line)[spec.question_field])
        for line in spec.questions.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return PreparedCorpus(
        spec=spec, path=path, articles=written, texts=texts,
        questions=questions[:max_questions] if max_questions else questions,
        chunk_size=splitter._chunk_size, chunk_overlap=splitter._chunk_overlap,
    )


def question_rounds(questions: list[str], minimum: int) -> list[list[str]]:
    """The questions as rounds of the whole list, repeated until at least `minimum` in all."""
    if not questions:
        return []
    rounds = max(1, -(-minimum // len(questions)))
    return [list(questions) for _ in range(rounds)]

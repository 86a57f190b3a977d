"""Chunking: split a cleaned body into passages sized in the embedding model's tokens."""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.index.embeddings import NewsEmbeddings
from assistant.types import Chunk

# Paragraphs first, then lines, then sentence ends (Latin and CJK), then clauses, then words.
SEPARATORS = ["\n\n", "\n", ". ", "。", "! ", "? ", "！", "？", "; ", "；", ", ", "，", " ", ""]
HEADER_CHARS = 160


def make_splitter(embeddings: NewsEmbeddings, chunk_tokens: int,
                  overlap_tokens: int) -> RecursiveCharacterTextSplitter:
    """A LangChain splitter measuring length in `embeddings`' tokens."""
    # Leave room for the headline header that is embedded with each chunk.
    size = min(chunk_tokens, embeddings.max_tokens - header_budget(embeddings))
    return RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=min(overlap_tokens, size // 2),
        length_function=embeddings.count_tokens,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
        add_start_index=True,
    )


def header_budget(embeddings: NewsEmbeddings) -> int:
    """Tokens reserved for the title line prepended to every chunk before embedding."""
    return min(56, embeddings.max_tokens // 4)


def chunk_body(body: str, splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    """Chunks of `body` with their exact character offsets (`body[start:end] == text`)."""
    chunks: list[Chunk] = []
    cursor = 0
    for doc in splitter.create_documents([body]):
        text = doc.page_content
        start = doc.metadata.get("start_index", -1)
        if start < 0 or body[start:start + len(text)] != text:
            start = body.find(text, cursor)
            if start < 0:
                start = body.find(text)
        if start < 0:  # the splitter never rewrites text, so this would be a library bug
            raise ValueError("chunk text not found in article body")
        chunks.append(Chunk(index=len(chunks), text=text, start=start, end=start + len(text)))
        cursor = start + 1
    return chunks


def embedding_text(title: str, chunk: Chunk, embeddings: NewsEmbeddings) -> str:
    """What gets embedded for a chunk: its headline (clipped) and then the chunk itself."""
    header = title[:HEADER_CHARS]
    while header and embeddings.count_tokens(header) > header_budget(embeddings):
        header = header[: int(len(header) * 0.8)]
    return f"{header}\n{chunk.text}" if header else chunk.text

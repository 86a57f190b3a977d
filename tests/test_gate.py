"""A few questions at work at once: the rest wait their turn, and a wait that runs out goes
ahead rather than stall."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from assistant.gate import WorkGate
from assistant.service import Assistant
from assistant.settings import Settings

QUESTIONS = ["Who is Japan's finance minister?", "What did the finance minister say?",
             "What happened to the yen?", "Who chairs the union branch?"]


def test_a_gate_lets_through_no_more_than_its_slots() -> None:
    gate, lock, inside, most = WorkGate(2, wait_s=30), threading.Lock(), [0], [0]
    start = threading.Barrier(6)

    def work() -> None:
        start.wait()
        with gate.slot():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 2 and gate.waits_run_out == 0 and gate.holders == 0


def test_a_wait_that_runs_out_goes_ahead() -> None:
    gate, done = WorkGate(1, wait_s=0.2), threading.Event()

    def late() -> None:
        with gate.slot():
            done.set()

    with gate.slot():  # a holder that never lets go in time (a stalled store)
        thread = threading.Thread(target=late)
        thread.start()
        assert done.wait(5)
    thread.join(5)
    assert gate.waits_run_out == 1 and gate.most_holders == 2 and gate.holders == 0


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError):
        WorkGate(0, wait_s=1)


def test_the_default_slots_follow_the_cores_this_process_may_use() -> None:
    """Inside a container or under `taskset`, `os.cpu_count()` sees the whole host: the
    default slots (and threads) count the cores the process may actually use."""
    code = ("from assistant.settings import Settings; s = Settings(_env_file=None); "
            "print(s.answer_slots, s.onnx_threads, s.llm_threads)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "LOKY_"))}
    one = str(min(os.sched_getaffinity(0)))  # a core this process may run on
    shown = subprocess.run(["taskset", "-c", one, sys.executable, "-c", code], check=True,
                           capture_output=True, text=True, env=env).stdout.split()
    assert shown == ["2", "1", "1"]


def _most_at_once(assistant: Assistant) -> int:
    """Ask 8 questions from 8 threads; the most retrievals and answers at work at once, as
    seen from inside them (each made slow enough to overlap when nothing holds them back)."""
    lock, inside, most = threading.Lock(), [0], [0]

    def counted(call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            try:
                time.sleep(0.05)
                return call(*args, **kwargs)
            finally:
                with lock:
                    inside[0] -= 1
        return wrapper

    plain = Assistant(assistant.settings, store=assistant.store)
    expected = {q: plain.ask(q).answer for q in QUESTIONS}
    # The retriever is a pydantic model (LangChain's): set on the instance past validation.
    object.__setattr__(assistant.retriever, "retrieve", counted(assistant.retriever.retrieve))
    object.__setattr__(assistant.answerer, "answer", counted(assistant.answerer.answer))
    got: dict[int, str] = {}
    start = threading.Barrier(8)

    def ask(i: int) -> None:
        start.wait()
        got[i] = assistant.ask(QUESTIONS[i % len(QUESTIONS)]).answer

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert got == {i: expected[QUESTIONS[i % len(QUESTIONS)]] for i in range(8)}
    return most[0]


def test_questions_beyond_the_slots_wait_their_turn(news_assistant: Assistant,
                                                    news_store: Settings) -> None:
    gated = Assistant(news_store.model_copy(update={"answer_slots": 2}),
                      store=news_assistant.store)
    assert _most_at_once(gated) == 2
    # Without the gate's limit the same load overlaps more (what makes the check above mean
    # something).
    open_ = Assistant(news_store.model_copy(update={"answer_slots": 8}),
                      store=news_assistant.store)
    assert _most_at_once(open_) > 2


def test_a_sentence_vector_does_not_depend_on_the_sentences_beside_it(
        news_assistant: Assistant) -> None:
    # The int8 copy scales each call's activations as a whole: batched, a sentence's vector
    # moved with its neighbours (cosine ~0.99), and answers with what had been asked before.
    embeddings = news_assistant.embeddings
    assert embeddings.quantized_sentences  # the int8 copy is what is checked here
    sentence = "The yen fell to its lowest level against the dollar in three decades."
    neighbours = ["Short one.", "Analysts said the central bank would step in if the currency "
                  "kept sliding, and exporters welcomed the weaker yen, which lifts the value of "
                  "their overseas earnings when they are converted back home."]
    alone = embeddings.embed_sentences([sentence])[0]
    for other in neighbours:
        assert (embeddings.embed_sentences([sentence, other])[0] == alone).all()
        assert (embeddings.embed_sentences([other, sentence])[1] == alone).all()

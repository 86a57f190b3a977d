"""Retrieval and answer latency through the public API (`Assistant`), in milliseconds."""

from __future__ import annotations

import time
from typing import Any

from assistant.service import Assistant
from assistant.settings import Settings


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) by the nearest-rank rule; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values_ms, 0.50), 1),
            "p95_ms": round(percentile(values_ms, 0.95), 1)}


def measure(settings: Settings, rounds: list[list[str]], warmup: int = 3,
            answers: bool = True) -> dict[str, Any]:
    """Time `retriever.retrieve` (and, with `answers`, `ask`) on every question of every round.

    Each round gets a freshly built `Assistant` (the model is shared by the process), so a
    question asked again in a later round finds no sentence vectors cached from the earlier
    one: repeating the questions does not make answers faster than new questions would be.
    """
    retrieve_ms: list[float] = []
    answer_ms: list[float] = []
    store_ms: list[float] = []
    refused = 0
    for questions in rounds:
        assistant = Assistant(settings)
        for question in questions[:warmup]:  # first calls pay for lazy set-up in the libraries
            assistant.retriever.retrieve(question, settings.k)
        for question in questions:
            started = time.perf_counter()
            passages, vector = assistant.retriever.retrieve(question, settings.k)
            retrieve_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            hits = assistant.store.nearest(vector, settings.k)
            assistant.store.read(list(hits), hits)
            store_ms.append((time.perf_counter() - started) * 1000)
            if answers:
                started = time.perf_counter()
                answer = assistant.ask(question)
                answer_ms.append((time.perf_counter() - started) * 1000)
                refused += bool(answer.refused)
    retrieve, answer, store = summary(retrieve_ms), summary(answer_ms), summary(store_ms)
    return {
        "questions": len(retrieve_ms),
        "distinct_questions": len({q for r in rounds for q in r}),
        "rounds": len(rounds),
        "retrieve_p50_ms": retrieve["p50_ms"],
        "retrieve_p95_ms": retrieve["p95_ms"],
        "store_query_p50_ms": store["p50_ms"],
        "store_query_p95_ms": store["p95_ms"],
        "answer_p50_ms": answer["p50_ms"],
        "answer_p95_ms": answer["p95_ms"],
        "refused": refused,
    }

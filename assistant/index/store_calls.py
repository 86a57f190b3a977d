"""Store calls with a time bound: a stalled store becomes an error, never a hung request.

Chroma's embedded store runs in its Rust core and cannot be interrupted, so a call that
stalls (a file system that stopped answering, a lock never released) is left to finish on a
daemon worker thread, and its caller gets `StoreTimeoutError` after the bound. Daemon
threads never keep the process from exiting. Calls made from inside a bounded call run
directly (one bound per outermost call).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from assistant.errors import StoreTimeoutError

T = TypeVar("T")

_inside = threading.local()
_idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()


class _Worker:
    """A daemon thread that runs one call at a time, then offers itself again."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="newsdesk-store-call", daemon=True).start()

    def _run(self) -> None:
        _inside.active = True
        while True:
            self.jobs.get()()
            _idle.put(self)


def bounded(call: Callable[[], T], timeout_s: float, what: str = "store call") -> T:
    """`call()`, or `StoreTimeoutError` when it takes longer than `timeout_s` seconds."""
    if getattr(_inside, "active", False):
        return call()
    try:
        worker = _idle.get_nowait()
    except queue.Empty:
        worker = _Worker()
    done = threading.Event()
    outcome: list[object] = []

    def job() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))
        finally:
            done.set()

    worker.jobs.put(job)
    if not done.wait(timeout_s):
        raise StoreTimeoutError(
            f"the store did not answer within {timeout_s:g} s ({what}); it may be stalled "
            "(a full or unresponsive disk, a stopped Chroma server). Check /health.")
    ok, value = outcome[0]  # type: ignore[misc]
    if ok:
        return value  # type: ignore[return-value]
    raise value  # type: ignore[misc]

"""At most a few questions at work at once.

On a machine of few cores, questions beyond a few in flight add no throughput: they contend for
the cores (each model call runs on several threads) and for the interpreter lock, and every one
of them gets slower. Measured on 2 cores with 8 clients: 3 at work at a time answered 8-15% more
questions per second than 8 at once while the machine was busy, and no more when it was idle
(docs/benchmarks.md). The others wait for a slot (not strictly in order of arrival: a
semaphore's waiters are not queued), which also shortens the median wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class WorkGate:
    """`slots` holders at a time; a caller that waits longer than `wait_s` goes ahead anyway
    (a slot held by a stalled store must not stall every question behind it)."""

    def __init__(self, slots: int, wait_s: float) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.holders = 0  # at work now, through a slot or past a wait that ran out
        self.most_holders = 0  # the most at work at once (tests, diagnostics)
        self.waits_run_out = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block (or go ahead without one after `wait_s`)."""
        got = self._free.acquire(timeout=self.wait_s)
        with self._lock:
            self.holders += 1
            self.most_holders = max(self.most_holders, self.holders)
            if not got:
                self.waits_run_out += 1
        if not got:
            log.warning("no answer slot came free within %g s; answering without one",
                        self.wait_s)
        try:
            yield
        finally:
            with self._lock:
                self.holders -= 1
            if got:
                self._free.release()

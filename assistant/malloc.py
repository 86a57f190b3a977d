"""Memory the long-running server gives back to the system (glibc only).

glibc gives threads that allocate at once arenas of their own (up to 8 per core), and memory
freed in an arena stays with it. The server runs dozens of threads (request workers, the
store's bounded calls, the watchers), so its resident memory grew with arenas holding freed
space: at 1,000,000 chunks it held about 280 MB more after the archive benchmark's load than
with two arenas (docs/benchmarks.md). And glibc keeps freed heap memory unless asked: a
write's transient work (the first write reads every article record for the near-duplicate
index: 60,900 records kept ~130 MB at 1,000,000 chunks) is given back after it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Any

_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas at `count` for the rest of the process; True when it did.
    An operator's `MALLOC_ARENA_MAX` stands, and elsewhere than glibc nothing changes."""
    libc = _glibc()
    if os.environ.get("MALLOC_ARENA_MAX") or libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count))


def give_back() -> bool:
    """Return the heap's free memory to the system (glibc's `malloc_trim`); True when some
    was returned."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


@functools.cache
def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - musl and others have neither
    except (OSError, AttributeError):
        return None
    return libc

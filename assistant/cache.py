"""One small thread-safe LRU map, for the rows, vectors and sentence splits kept in memory."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Keeps the `size` most recently used entries; safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The entry for `key` (now the most recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The entries found for `keys` (each now recently used)."""
        with self._lock:
            found = {k: self._data[k] for k in keys if k in self._data}
            for key in found:
                self._data.move_to_end(key)
        return found

    def put_many(self, items: Mapping[K, V]) -> None:
        """Store entries, dropping the least recently used beyond `size`."""
        with self._lock:
            self._data.update(items)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

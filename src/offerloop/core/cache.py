"""A small thread-safe LRU cache of versioned values: the one in-process cache for configs, catalogs,
policies and the like, which are loaded by ``(id, version)`` and superseded by their next version.

* An entry is looked up by ``(id, version)``; a lookup with any other version misses.
* One version per id is kept: putting a new version of an id replaces the old one, which nothing will ask
  for again (the unbounded dicts this replaces kept every version a process ever saw).
* At most ``max_size`` ids are kept; putting one more evicts the least recently used (a hit counts as a use).
* Every method takes one lock, so threads (the server's request threads, the pipeline's workers) may share
  a cache. ``get_or_load`` calls ``load`` outside the lock: two threads missing at once may both load, and
  the last to finish wins; values must therefore be safe to build twice (they are pure reads).

``None`` is a value like any other: ``get_or_load`` caches it, and ``get`` takes a ``default`` to tell a
cached ``None`` from a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast, overload

__all__ = ["VersionedCache"]

V = TypeVar("V")
D = TypeVar("D")

_MISSING = object()


class VersionedCache(Generic[V]):
    """Thread-safe LRU of ``(id, version) -> value``, one version per id, at most ``max_size`` ids."""

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size!r}")
        self.max_size = max_size
        self._entries: OrderedDict[Hashable, tuple[Hashable, V]] = OrderedDict()
        self._lock = threading.Lock()

    @overload
    def get(self, id: Hashable, version: Hashable) -> V | None: ...

    @overload
    def get(self, id: Hashable, version: Hashable, default: D) -> V | D: ...

    def get(self, id: Hashable, version: Hashable, default: object = None) -> object:
        """The value cached for ``(id, version)`` (now the most recently used), else ``default``."""
        with self._lock:
            entry = self._entries.get(id)
            if entry is None or entry[0] != version:
                return default
            self._entries.move_to_end(id)
            return entry[1]

    def put(self, id: Hashable, version: Hashable, value: V) -> None:
        """Cache ``value`` as ``(id, version)``, replacing any other version of ``id``; evict past ``max_size``."""
        with self._lock:
            self._entries[id] = (version, value)
            self._entries.move_to_end(id)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def get_or_load(self, id: Hashable, version: Hashable, load: Callable[[], V]) -> V:
        """The cached value of ``(id, version)``, or ``load()``'s result, cached (``load`` runs unlocked)."""
        cached = self.get(id, version, _MISSING)
        if cached is not _MISSING:
            return cast(V, cached)  # not the sentinel, so a V
        value = load()
        self.put(id, version, value)
        return value

    def discard(self, id: Hashable) -> None:
        """Forget every version of ``id`` (no error when it is not cached)."""
        with self._lock:
            self._entries.pop(id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def ids(self) -> list[Hashable]:
        """The cached ids, least recently used first."""
        with self._lock:
            return list(self._entries)

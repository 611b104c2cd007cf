"""The in-process caches: small thread-safe LRUs, bounded however many workspaces, keys or databases a
process sees (the unbounded module-level dicts they replace kept every entry a process ever made).

``VersionedCache`` holds configs, catalogs, policies and the like, which are loaded by ``(id, version)`` and
superseded by their next version:

* An entry is looked up by ``(id, version)``; a lookup with any other version misses.
* One version per id is kept: putting a new version of an id replaces the old one, which nothing will ask
  for again.
* At most ``max_size`` ids are kept; putting one more evicts the least recently used (a hit counts as a use).
* ``get_or_load`` calls ``load`` outside the lock: two threads missing at once may both load, and the last to
  finish wins; values must therefore be safe to build twice (they are pure reads).

``LruCache`` is the same bound over plain keys, for what has no version (API-key lookups, a database's
secret, a workspace's partition count).

Every method takes one lock, so threads (the server's request threads, the pipeline's workers) may share a
cache. ``None`` is a value like any other: ``get`` takes a ``default`` to tell a cached ``None`` from a miss.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast, overload

__all__ = ["LruCache", "VersionedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

_MISSING = object()


class LruCache(Generic[K, V]):
    """Thread-safe LRU of ``key -> value``, at most ``max_size`` keys."""

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size!r}")
        self.max_size = max_size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: object = None) -> object:
        """The value cached for ``key`` (now the most recently used), else ``default``."""
        return self.get_if(key, None, default)

    @overload
    def get_if(self, key: K, accept: Callable[[V], bool] | None) -> V | None: ...

    @overload
    def get_if(self, key: K, accept: Callable[[V], bool] | None, default: D) -> V | D: ...

    def get_if(self, key: K, accept: Callable[[V], bool] | None, default: object = None) -> object:
        """The value cached for ``key`` if ``accept(value)`` holds (it is then the most recently used), else
        ``default`` (a refused value keeps its place: a miss is not a use)."""
        with self._lock:
            value = self._entries.get(key, _MISSING)
            if value is _MISSING or (accept is not None and not accept(cast(V, value))):
                return default
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Cache ``value`` as ``key`` (now the most recently used); evict the least recently used past the bound."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget ``key`` (no error when it is not cached)."""
        with self._lock:
            self._entries.pop(key, None)

    def discard_where(self, condition: Callable[[K, V], bool]) -> int:
        """Forget every entry for which ``condition(key, value)`` holds; returns how many (one pass, locked)."""
        with self._lock:
            doomed = [key for key, value in self._entries.items() if condition(key, value)]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[K]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)


class VersionedCache(Generic[V]):
    """Thread-safe LRU of ``(id, version) -> value``, one version per id, at most ``max_size`` ids."""

    def __init__(self, max_size: int) -> None:
        self._lru: LruCache[Hashable, tuple[Hashable, V]] = LruCache(max_size)
        self.max_size = max_size

    @overload
    def get(self, id: Hashable, version: Hashable) -> V | None: ...

    @overload
    def get(self, id: Hashable, version: Hashable, default: D) -> V | D: ...

    def get(self, id: Hashable, version: Hashable, default: object = None) -> object:
        """The value cached for ``(id, version)`` (now the most recently used), else ``default``."""
        entry = self._lru.get_if(id, lambda entry: entry[0] == version)
        return default if entry is None else entry[1]

    def put(self, id: Hashable, version: Hashable, value: V) -> None:
        """Cache ``value`` as ``(id, version)``, replacing any other version of ``id``; evict past ``max_size``."""
        self._lru.put(id, (version, value))

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
        self._lru.discard(id)

    def clear(self) -> None:
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    def ids(self) -> list[Hashable]:
        """The cached ids, least recently used first."""
        return self._lru.keys()

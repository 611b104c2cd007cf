"""offerloop.core.cache: VersionedCache (lookups by (id, version)) and LruCache; LRU eviction, the bound, threads."""

from __future__ import annotations

import random
import threading

import pytest

from offerloop.core.cache import LruCache, VersionedCache


def test_a_hit_needs_the_same_id_and_version() -> None:
    cache: VersionedCache[str] = VersionedCache(4)
    cache.put("ws1", 3, "config v3")
    assert cache.get("ws1", 3) == "config v3"
    assert cache.get("ws1", 2) is None
    assert cache.get("ws2", 3) is None
    assert cache.get("ws1", 4, "miss") == "miss"


def test_a_new_version_replaces_the_old_one() -> None:
    cache: VersionedCache[str] = VersionedCache(4)
    cache.put("ws1", 1, "v1")
    cache.put("ws1", 2, "v2")
    assert len(cache) == 1
    assert cache.get("ws1", 1) is None
    assert cache.get("ws1", 2) == "v2"


def test_the_least_recently_used_id_is_evicted_first() -> None:
    cache: VersionedCache[int] = VersionedCache(3)
    for i, name in enumerate("abc"):
        cache.put(name, 1, i)
    assert cache.get("a", 1) == 0  # a hit makes "a" the most recently used
    cache.put("b", 2, 10)  # so does a put, even of a new version
    cache.put("d", 1, 3)  # one too many: "c" is the least recently used
    assert cache.ids() == ["a", "b", "d"]
    assert cache.get("c", 1) is None
    cache.put("e", 1, 4)
    assert cache.ids() == ["b", "d", "e"]
    assert len(cache) == 3


def test_a_miss_does_not_refresh_an_entry() -> None:
    cache: VersionedCache[int] = VersionedCache(2)
    cache.put("a", 1, 0)
    cache.put("b", 1, 1)
    assert cache.get("a", 2) is None  # "a" at another version: a miss, "a" stays least recently used
    cache.put("c", 1, 2)
    assert cache.ids() == ["b", "c"]


def test_get_or_load_caches_what_it_loads_including_none() -> None:
    cache: VersionedCache[str | None] = VersionedCache(2)
    calls: list[str] = []

    def load(value: str | None) -> str | None:
        calls.append(str(value))
        return value

    assert cache.get_or_load("ws1", 1, lambda: load(None)) is None
    assert cache.get_or_load("ws1", 1, lambda: load("never")) is None
    assert cache.get_or_load("ws1", 2, lambda: load("v2")) == "v2"
    assert calls == ["None", "v2"]


def test_discard_and_clear() -> None:
    cache: VersionedCache[int] = VersionedCache(3)
    cache.put("a", 1, 1)
    cache.put("b", 1, 2)
    cache.discard("a")
    cache.discard("missing")
    assert cache.ids() == ["b"]
    cache.clear()
    assert len(cache) == 0


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size must be >= 1, got 0"):
        VersionedCache(0)


def _counted(loads: list[int], worker: int, value: str) -> str:
    loads[worker] += 1
    return value


def test_concurrent_gets_and_puts_stay_consistent_and_bounded() -> None:
    cache: VersionedCache[str] = VersionedCache(16)
    threads = 8
    start = threading.Barrier(threads)
    errors: list[str] = []
    loads = [0] * threads

    def work(worker: int) -> None:
        rng = random.Random(worker)
        start.wait()
        for _ in range(3000):
            key, version = f"id{rng.randrange(40)}", rng.randrange(3)
            expected = f"{key}@{version}"
            op = rng.random()
            if op < 0.4:
                cache.put(key, version, expected)
            elif op < 0.8:
                got = cache.get(key, version)
                if got not in (None, expected):
                    errors.append(f"get({key}, {version}) gave {got}")
            else:
                got = cache.get_or_load(key, version, lambda value=expected: _counted(loads, worker, value))
                if got != expected:
                    errors.append(f"get_or_load({key}, {version}) gave {got}")
            if len(cache) > 16:
                errors.append(f"size {len(cache)}")

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    assert len(cache) == 16
    assert sum(loads) > 0
    for key in cache.ids():
        versions = [v for v in range(3) if cache.get(key, v) == f"{key}@{v}"]
        assert len(versions) == 1  # exactly one version per id survives


# LruCache: the same bound over plain keys.


def test_lru_cache_evicts_the_least_recently_used_key() -> None:
    cache: LruCache[str, int | None] = LruCache(2)
    cache.put("a", None)
    cache.put("b", 2)
    assert cache.get("a", -1) is None  # a cached None is a hit (and a use of "a")
    assert cache.get("missing", -1) == -1
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"]
    cache.put("a", 10)  # a put of a cached key replaces it, no eviction
    assert cache.keys() == ["c", "a"]
    assert (cache.get("a"), len(cache)) == (10, 2)


def test_lru_cache_get_if_refuses_without_refreshing() -> None:
    cache: LruCache[str, tuple[float, str]] = LruCache(2)
    cache.put("a", (1.0, "old"))
    cache.put("b", (9.0, "fresh"))
    assert cache.get_if("a", lambda entry: entry[0] > 5.0) is None  # refused: "a" stays least recently used
    assert cache.get_if("b", lambda entry: entry[0] > 5.0, "miss") == (9.0, "fresh")
    cache.put("c", (9.0, "new"))
    assert cache.keys() == ["b", "c"]


def test_lru_cache_discard_where_forgets_the_matching_entries() -> None:
    cache: LruCache[str, str] = LruCache(8)
    for key, owner in [("h1", "k1"), ("h2", "k2"), ("h3", "k1"), ("h4", "k3")]:
        cache.put(key, owner)
    assert cache.discard_where(lambda _key, owner: owner == "k1") == 2
    assert cache.keys() == ["h2", "h4"]
    assert cache.discard_where(lambda _key, owner: owner == "k1") == 0
    cache.discard("h2")
    cache.discard("h2")
    assert cache.keys() == ["h4"]
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_size must be >= 1, got 0"):
        LruCache(0)


def test_many_more_keys_than_the_bound_stay_within_it() -> None:
    cache: LruCache[int, int] = LruCache(1000)
    for key in range(200_000):
        cache.put(key, key)
    assert len(cache) == 1000
    assert cache.keys() == list(range(199_000, 200_000))

"""The in-process caches keep the ProfileCache contract (tests/cache_contract.py); NullCache keeps none."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tests.cache_contract import PROFILE, CacheContract, key
from tests.helpers import FakeClock, run_threads
from wink_middleware._engine.cache import (
    MemoryCache,
    NullCache,
    ProfileCache,
    ThreadSafeMemoryCache,
)


class TestMemoryCache(CacheContract):
    def make_cache(self, maxsize: int, timer: Callable[[], float]) -> ProfileCache:
        return MemoryCache(maxsize, timer)


class TestThreadSafeMemoryCache(CacheContract):
    def make_cache(self, maxsize: int, timer: Callable[[], float]) -> ProfileCache:
        return ThreadSafeMemoryCache(maxsize, timer)

    def test_threads_sharing_it_keep_it_bounded_and_consistent(self) -> None:
        clock = FakeClock()
        cache = ThreadSafeMemoryCache(50, clock.monotonic)
        counter = iter(range(10**9))
        lock = threading.Lock()

        def churn() -> int:
            with lock:
                base = next(counter) * 1000
            for n in range(base, base + 500):
                cache.set_positive(key(n), PROFILE, 1e9, 1e9)
                cache.set_negative(key(-n - 1), "rejected", 1e9)
                cache.get(key(n - 1))
                cache.delete(key(n - 2))
            return len(cache)

        results = run_threads(8, churn)
        assert all(isinstance(r, int) for r in results), results
        assert len(cache) <= 50 + 5


def test_a_null_cache_remembers_nothing() -> None:
    cache = NullCache()
    cache.set_positive(key(1), PROFILE, 1e9, 1e9)
    cache.set_negative(key(2), "rejected", 1e9)
    assert cache.get(key(1)) is None
    assert cache.get(key(2)) is None
    assert len(cache) == 0
    assert cache.maxsize == 0


def test_a_null_cache_deletes_an_absent_key_without_error() -> None:
    NullCache().delete(key(1))


def test_every_cache_is_a_profile_cache() -> None:
    clock = FakeClock()
    caches: list[ProfileCache] = [
        MemoryCache(1, clock.monotonic),
        ThreadSafeMemoryCache(1, clock.monotonic),
        NullCache(),
    ]
    assert len(caches) == 3

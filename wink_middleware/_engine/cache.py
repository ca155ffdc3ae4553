"""The verification cache: expiry-bounded TLRU of positive and negative answers, keyed by token digest.

The engine talks to a cache only through :class:`ProfileCache` (get / set positive / set negative /
delete), so a shared tier (e.g. Redis) can sit behind the in-process one without the engine changing.
Times are deadlines on the cache's monotonic clock; wall-clock expiry is converted once, by the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from cachetools import TLRUCache

from wink_middleware._profile import WinkProfile

__all__ = [
    "MemoryCache",
    "Negative",
    "NullCache",
    "Positive",
    "ProfileCache",
    "ThreadSafeMemoryCache",
]


class Positive:
    """A verified profile. Served until ``fresh_until``; kept for stale-if-error until ``usable_until``."""

    __slots__ = ("fresh_until", "profile", "usable_until")

    def __init__(self, profile: WinkProfile, fresh_until: float, usable_until: float) -> None:
        self.profile = profile
        self.fresh_until = fresh_until
        self.usable_until = usable_until


class Negative:
    """A definitive rejection, remembered until ``usable_until``."""

    __slots__ = ("description", "usable_until")

    def __init__(self, description: str, usable_until: float) -> None:
        self.description = description
        self.usable_until = usable_until


Entry = Positive | Negative


class ProfileCache(Protocol):
    """What the engine needs of a cache. Keys are token digests, never raw tokens."""

    def get(self, key: bytes) -> Entry | None:
        """The live entry for ``key`` (never one past its ``usable_until``), or ``None``."""

    def set_positive(
        self, key: bytes, profile: WinkProfile, fresh_until: float, usable_until: float
    ) -> None:
        """Remember a verified profile."""

    def set_negative(self, key: bytes, description: str, usable_until: float) -> None:
        """Remember a definitive rejection."""

    def set_revoked(self, key: bytes, description: str, usable_until: float) -> None:
        """Refuse ``key`` until ``usable_until``: kept with the verified users, never evicted by junk."""

    def delete(self, key: bytes) -> None:
        """Forget ``key`` (no error if absent)."""

    def drop_positives(self) -> None:
        """Forget every verified profile, keeping rejections and revocations."""

    def __len__(self) -> int:
        """How many entries are held (expired ones may still count until evicted)."""


def _time_to_use(_key: bytes, entry: Entry, _now: float) -> float:
    return entry.usable_until


class MemoryCache:
    """In-process cache on ``cachetools.TLRUCache``: at most ``maxsize`` entries, LRU evicted first.

    Rejections live in a store of their own, a tenth of ``maxsize``: a flood of junk tokens evicts
    other junk, never a verified user. Every read checks the entry's deadline against ``timer``.
    For one thread (an event loop); use :class:`ThreadSafeMemoryCache` where threads share it.
    """

    def __init__(self, maxsize: int, timer: Callable[[], float]) -> None:
        self._data: TLRUCache[bytes, Entry] = TLRUCache(maxsize, _time_to_use, timer=timer)
        self._rejected: TLRUCache[bytes, Entry] = TLRUCache(
            max(1, maxsize // 10), _time_to_use, timer=timer
        )
        self.maxsize = maxsize

    def get(self, key: bytes) -> Entry | None:
        # TLRUCache.get() is `key in self` then `self[key]`: two lookups and two timer reads. One
        # `self[key]` does the same checks (LRU touch, expiry) and is ~0.9 µs cheaper per hit.
        try:
            return self._data[key]
        except KeyError:
            pass
        try:
            return self._rejected[key]
        except KeyError:
            return None

    def set_positive(
        self, key: bytes, profile: WinkProfile, fresh_until: float, usable_until: float
    ) -> None:
        self._rejected.pop(key, None)
        self._data[key] = Positive(profile, fresh_until, usable_until)

    def set_negative(self, key: bytes, description: str, usable_until: float) -> None:
        # A stale positive kept for stale-if-error must not shadow the newer rejection.
        self._data.pop(key, None)
        self._rejected[key] = Negative(description, usable_until)

    def set_revoked(self, key: bytes, description: str, usable_until: float) -> None:
        self._rejected.pop(key, None)
        self._data[key] = Negative(description, usable_until)

    def delete(self, key: bytes) -> None:
        self._data.pop(key, None)
        self._rejected.pop(key, None)

    def drop_positives(self) -> None:
        for key in [k for k, entry in self._data.items() if type(entry) is Positive]:
            self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data) + len(self._rejected)


class ThreadSafeMemoryCache(MemoryCache):
    """:class:`MemoryCache` guarded by a lock, for a cache that threads share (the sync verifier).

    Even a hit writes (TLRUCache moves the key to the LRU end), so every access takes the lock.
    """

    def __init__(self, maxsize: int, timer: Callable[[], float]) -> None:
        super().__init__(maxsize, timer)
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Entry | None:
        # MemoryCache.get inlined under the lock: a hit saves a call frame on every request.
        with self._lock:
            try:
                return self._data[key]
            except KeyError:
                pass
            try:
                return self._rejected[key]
            except KeyError:
                return None

    def set_positive(
        self, key: bytes, profile: WinkProfile, fresh_until: float, usable_until: float
    ) -> None:
        with self._lock:
            super().set_positive(key, profile, fresh_until, usable_until)

    def set_negative(self, key: bytes, description: str, usable_until: float) -> None:
        with self._lock:
            super().set_negative(key, description, usable_until)

    def set_revoked(self, key: bytes, description: str, usable_until: float) -> None:
        with self._lock:
            super().set_revoked(key, description, usable_until)

    def delete(self, key: bytes) -> None:
        with self._lock:
            super().delete(key)

    def drop_positives(self) -> None:
        with self._lock:
            super().drop_positives()

    def __len__(self) -> int:
        with self._lock:
            return super().__len__()


class NullCache:
    """The cache used when ``cache_size=0``: remembers nothing."""

    maxsize = 0

    def get(self, key: bytes) -> Entry | None:
        return None

    def set_positive(
        self, key: bytes, profile: WinkProfile, fresh_until: float, usable_until: float
    ) -> None:
        return None

    def set_negative(self, key: bytes, description: str, usable_until: float) -> None:
        return None

    def set_revoked(self, key: bytes, description: str, usable_until: float) -> None:
        return None

    def delete(self, key: bytes) -> None:
        return None

    def drop_positives(self) -> None:
        return None

    def __len__(self) -> int:
        return 0

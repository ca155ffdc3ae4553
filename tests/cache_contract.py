"""The contract every :class:`ProfileCache` keeps, as a mixin its implementations' tests run.

In the style of cachetools' ``CacheTestMixin``: a test class for one implementation inherits
:class:`CacheContract` and says how to build one (``make_cache(maxsize, timer)``) and how big the
rejection store of a cache of that size is (``rejection_capacity``). Only the protocol is used
(``get``, ``set_positive``, ``set_negative``, ``set_revoked``, ``delete``, ``drop_positives``,
``len``), so another implementation (a shared tier) can run the same
suite. Time is a :class:`FakeClock`'s monotonic clock, the timer the engine gives its cache.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import FakeClock, profile_json
from wink_middleware import WinkProfile
from wink_middleware._engine.cache import Negative, Positive, ProfileCache

__all__ = ["CacheContract"]

PROFILE = WinkProfile.from_wink(profile_json())
OTHER = WinkProfile.from_wink(profile_json(winkTag=";bob", winkToken="bob"))


def key(n: int | str) -> bytes:
    """A 32-byte key, like the digests the engine uses."""
    return str(n).encode().ljust(32, b"\0")


class CacheContract:
    """Tests every ProfileCache implementation runs. Subclasses define :meth:`make_cache`."""

    def make_cache(self, maxsize: int, timer: Callable[[], float]) -> ProfileCache:
        raise NotImplementedError

    def rejection_capacity(self, maxsize: int) -> int:
        """How many rejections a cache of ``maxsize`` holds (at least one)."""
        return max(1, maxsize // 10)

    def cache(self, maxsize: int = 100) -> tuple[ProfileCache, FakeClock]:
        clock = FakeClock()
        return self.make_cache(maxsize, clock.monotonic), clock

    def put(self, cache: ProfileCache, clock: FakeClock, k: bytes, life: float = 60) -> None:
        now = clock.monotonic()
        cache.set_positive(k, PROFILE, now + life, now + life)

    # -- get / set / delete / len ------------------------------------------------------------

    def test_an_empty_cache_has_nothing(self) -> None:
        cache, _ = self.cache()
        assert cache.get(key(1)) is None
        assert len(cache) == 0

    def test_a_positive_entry_is_got_back_with_its_deadlines(self) -> None:
        cache, clock = self.cache()
        now = clock.monotonic()
        cache.set_positive(key(1), PROFILE, now + 10, now + 20)
        entry = cache.get(key(1))
        assert isinstance(entry, Positive)
        assert entry.profile == PROFILE
        assert (entry.fresh_until, entry.usable_until) == (now + 10, now + 20)
        assert cache.get(key(2)) is None
        assert len(cache) == 1

    def test_a_negative_entry_is_got_back_with_its_description(self) -> None:
        cache, clock = self.cache()
        cache.set_negative(key(1), "the access token was revoked", clock.monotonic() + 30)
        entry = cache.get(key(1))
        assert isinstance(entry, Negative)
        assert entry.description == "the access token was revoked"
        assert entry.usable_until == clock.monotonic() + 30
        assert len(cache) == 1

    def test_setting_a_key_again_replaces_its_entry(self) -> None:
        cache, clock = self.cache()
        now = clock.monotonic()
        cache.set_positive(key(1), PROFILE, now + 10, now + 10)
        cache.set_positive(key(1), OTHER, now + 20, now + 20)
        entry = cache.get(key(1))
        assert isinstance(entry, Positive)
        assert entry.profile == OTHER
        assert len(cache) == 1

    def test_set_negative_replaces_a_positive(self) -> None:
        cache, clock = self.cache()
        now = clock.monotonic()
        cache.set_positive(key(1), PROFILE, now + 10, now + 600)
        cache.set_negative(key(1), "rejected", now + 30)
        assert isinstance(cache.get(key(1)), Negative)
        assert len(cache) == 1
        clock.advance(31)
        assert cache.get(key(1)) is None, "the positive is gone, not shadowed"

    def test_set_positive_replaces_a_negative(self) -> None:
        cache, clock = self.cache()
        now = clock.monotonic()
        cache.set_negative(key(1), "rejected", now + 600)
        cache.set_positive(key(1), PROFILE, now + 10, now + 10)
        assert isinstance(cache.get(key(1)), Positive)
        assert len(cache) == 1
        clock.advance(11)
        assert cache.get(key(1)) is None, "the rejection is gone, not shadowed"

    def test_delete_forgets_a_positive_or_a_negative_and_ignores_an_absent_key(self) -> None:
        cache, clock = self.cache()
        self.put(cache, clock, key(1))
        cache.set_negative(key(2), "rejected", clock.monotonic() + 30)
        cache.delete(key(1))
        cache.delete(key(2))
        cache.delete(key(3))
        assert cache.get(key(1)) is None
        assert cache.get(key(2)) is None
        assert len(cache) == 0

    # -- expiry ------------------------------------------------------------------------------

    def test_a_positive_entry_expires_at_usable_until_by_the_timer(self) -> None:
        cache, clock = self.cache()
        now = clock.monotonic()
        cache.set_positive(key(1), PROFILE, now + 10, now + 20)
        clock.advance(19.9)
        assert cache.get(key(1)) is not None, "kept past fresh_until, until usable_until"
        clock.advance(0.1)
        assert cache.get(key(1)) is None

    def test_a_negative_entry_expires_at_usable_until_by_the_timer(self) -> None:
        cache, clock = self.cache()
        cache.set_negative(key(1), "rejected", clock.monotonic() + 30)
        clock.advance(29.9)
        assert cache.get(key(1)) is not None
        clock.advance(0.1)
        assert cache.get(key(1)) is None

    def test_an_entry_set_already_expired_is_never_served(self) -> None:
        cache, clock = self.cache()
        now = clock.monotonic()
        cache.set_positive(key(1), PROFILE, now, now)
        cache.set_negative(key(2), "rejected", now - 1)
        assert cache.get(key(1)) is None
        assert cache.get(key(2)) is None

    # -- bounds and eviction -----------------------------------------------------------------

    def test_positives_are_bounded_by_maxsize(self) -> None:
        cache, clock = self.cache(maxsize=10)
        for n in range(25):
            self.put(cache, clock, key(n))
        assert len(cache) == 10
        assert sum(cache.get(key(n)) is not None for n in range(25)) == 10

    def test_the_least_recently_used_positive_is_evicted_first(self) -> None:
        # A FIFO cache fails this: key 0 is the oldest, but it was read last.
        cache, clock = self.cache(maxsize=3)
        for n in range(3):
            self.put(cache, clock, key(n))
        assert cache.get(key(0)) is not None
        self.put(cache, clock, key(3))
        assert cache.get(key(1)) is None, "1 was the least recently used"
        assert cache.get(key(0)) is not None, "a read makes an entry recently used"
        assert cache.get(key(2)) is not None
        assert cache.get(key(3)) is not None

    def test_replacing_a_positive_makes_it_recently_used(self) -> None:
        cache, clock = self.cache(maxsize=3)
        for n in range(3):
            self.put(cache, clock, key(n))
        self.put(cache, clock, key(0))
        self.put(cache, clock, key(3))
        assert cache.get(key(1)) is None
        assert cache.get(key(0)) is not None

    def test_rejections_never_evict_positives(self) -> None:
        cache, clock = self.cache(maxsize=20)
        for n in range(20):
            self.put(cache, clock, key(f"user-{n}"))
        for n in range(1000):
            cache.set_negative(key(f"junk-{n}"), "rejected", clock.monotonic() + 30)
        assert all(cache.get(key(f"user-{n}")) is not None for n in range(20))
        capacity = self.rejection_capacity(20)
        assert len(cache) == 20 + capacity
        assert all(cache.get(key(f"junk-{n}")) is not None for n in range(1000 - capacity, 1000))
        assert cache.get(key("junk-0")) is None

    # -- revocations and dropping shared answers ---------------------------------------------

    def test_a_revocation_replaces_a_positive_and_is_refused_until_its_deadline(self) -> None:
        cache, clock = self.cache()
        self.put(cache, clock, key(1))
        cache.set_revoked(key(1), "the access token was revoked", clock.monotonic() + 30)
        entry = cache.get(key(1))
        assert isinstance(entry, Negative) and entry.description == "the access token was revoked"
        clock.advance(31)
        assert cache.get(key(1)) is None

    def test_junk_rejections_never_evict_a_revocation(self) -> None:
        cache, clock = self.cache(maxsize=20)
        cache.set_revoked(key("revoked"), "the access token was revoked", clock.monotonic() + 60)
        for n in range(self.rejection_capacity(20) * 5):
            cache.set_negative(key(f"junk-{n}"), "no", clock.monotonic() + 60)
        assert isinstance(cache.get(key("revoked")), Negative)

    def test_drop_positives_keeps_rejections_and_revocations(self) -> None:
        cache, clock = self.cache()
        self.put(cache, clock, key(1))
        cache.set_negative(key(2), "no", clock.monotonic() + 60)
        cache.set_revoked(key(3), "the access token was revoked", clock.monotonic() + 60)
        cache.drop_positives()
        assert cache.get(key(1)) is None
        assert isinstance(cache.get(key(2)), Negative)
        assert isinstance(cache.get(key(3)), Negative)

"""What the async and sync shared tiers (Redis) share: every rule, no I/O.

The twins ``async_tier`` and ``sync_tier`` only move bytes to and from Redis and wait; this module
holds the keys and names, the envelopes, the breaker that skips a sick Redis, the counters, and what
a pub/sub message does to this process's cache. The fleet's single-flight (read, lease, wait, fill,
release, announce) is part of the engine's cold-verification flow (``_engine/flow.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wink_middleware._config import WinkConfig
from wink_middleware._engine.cache import Negative
from wink_middleware._engine.core import ColdToken, VerifierCore
from wink_middleware._engine.flow import SharedTierDown
from wink_middleware._engine.resilience import CircuitBreaker
from wink_middleware._events import (
    CACHE_EVENTS,
    INTEGRITY_FAILURE,
    INVALIDATION,
    REDIS_OP,
    WinkEvent,
)
from wink_middleware._exceptions import WinkConfigError
from wink_middleware._logging import logger
from wink_middleware._shared.entry import SharedEntry

if TYPE_CHECKING:
    from wink_middleware._shared.envelope import SharedKeys

__all__ = [
    "POLL_INTERVAL",
    "SHUTDOWN_BOUND",
    "SharedTierBase",
    "SharedTierDown",
    "import_redis",
]


#: A lease follower re-reads the shared entry this often, in case a wake-up message is lost.
POLL_INTERVAL = 0.05
#: How often the invalidation listener pings Redis, and how long without an answer means it is gone.
PING_INTERVAL = 1.0
PING_GRACE = 3.0
#: How long ``aclose()`` / ``close()`` wait for the listener to stop after asking it to; what
#: outlives this is logged as a warning and left behind (a daemon thread, a cancelled task).
SHUTDOWN_BOUND = 5.0

_EXTRA = 'the shared tier needs the redis extra: pip install "wink-middleware[redis]"'


def import_redis() -> Any:
    """The ``redis`` package, or a :class:`WinkConfigError` naming the extra to install."""
    try:
        import cryptography  # noqa: F401
        import redis
    except ImportError as exc:
        raise WinkConfigError(f"{_EXTRA} ({exc.name} is missing)") from None
    return redis


class SharedTierBase:
    """The rules of the shared tier for one verifier: keys, envelopes, breaker, messages."""

    def __init__(self, config: WinkConfig, core: VerifierCore) -> None:
        from wink_middleware._shared.envelope import SharedKeys, lock_ttl

        self.config = config
        self.core = core
        self.keys: SharedKeys = SharedKeys.from_secrets(
            config.client_id, config.client_secret, config.redis_secret, config.redis_prefix
        )
        self.lock_ttl = lock_ttl(config.timeout, config.retries)
        self.timeout = config.redis_timeout
        self.stats = core.stats
        self._count = core.stats.add
        self.breaker = CircuitBreaker(
            config.breaker_threshold,
            config.breaker_cooldown,
            core.stats,
            core.clock,
            name="the shared tier (Redis)",
            counters="shared_",
            on_change=core.breaker_observer("redis"),
        )
        #: "off" until the listener first runs, then "up" once Redis confirmed the subscription,
        #: "down" after a failure (to connect, or of a subscription that was up).
        self.listener = "off"
        #: Whether Redis has answered once (a command, or the listener's subscription).
        self.answered = False
        core.share(self.keys.lookup_digest, config.local_ttl)

    # -- health ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"up"`` once Redis has answered, while the tier's breaker is closed and its listener
        not lost; ``"down"`` otherwise (before Redis ever answered too: a wrong URL reads
        ``down`` from the start)."""
        if self.answered and self.listener != "down" and self.breaker.state == "closed":
            return "up"
        return "down"

    def reached(self) -> None:
        """Redis answered a command."""
        self.answered = True
        self.breaker.success()

    def failed(self, op: str, exc: BaseException, started: float) -> None:
        """Count and log a Redis command that failed or timed out."""
        self._count("shared_errors")
        self.breaker.failure()
        logger.debug("shared tier: Redis %s failed (%s)", op, type(exc).__name__)
        self.done(op, started, "timeout" if isinstance(exc, TimeoutError) else "error")

    def done(self, op: str, started: float, outcome: str) -> None:
        """Tell the observers of one Redis command."""
        emit = self.core.emit
        if emit is not None:
            duration = self.core.clock.monotonic() - started
            emit(WinkEvent(REDIS_OP, outcome=outcome, tier=op, duration_s=duration))

    def looked_up(self, entry: SharedEntry | None, *, error: bool = False) -> SharedEntry | None:
        """Count and tell what a read of the fleet's entry found; return it."""
        if self.core.emit is not None:
            if error:
                outcome = "error"
            elif entry is None:
                outcome = "miss"
            else:
                outcome = {"pos": "hit", "neg": "negative_hit"}.get(entry.kind, "revoked")
            self.core.emit(CACHE_EVENTS[("shared", outcome)])
        return entry

    # -- entries -----------------------------------------------------------------------------

    def seal(self, miss: ColdToken, entry: SharedEntry) -> tuple[str, bytes, int] | None:
        """Key, envelope and ``PX`` of an entry to write, or ``None`` when its time is over."""
        from wink_middleware._shared.envelope import ttl_ms

        px = ttl_ms(entry.usable_until, self.core.clock.time())
        if px is None:
            return None
        key = self.keys.entry_key(miss.key)
        return key, self.keys.seal(miss.raw, key, entry), px

    def open(self, miss: ColdToken, value: bytes) -> SharedEntry | None:
        """The entry in ``value``, or ``None`` (counted, logged) when it fails to open."""
        from wink_middleware._shared.envelope import IntegrityError

        try:
            return self.keys.open(miss.raw, self.keys.entry_key(miss.key), value)
        except IntegrityError:
            self._count("integrity_failures")
            self.core.event(INTEGRITY_FAILURE)
            logger.warning(
                "shared tier: an entry for token %s failed its integrity check: ignored and deleted",
                miss.fp,
            )
            return None

    # -- messages ----------------------------------------------------------------------------

    def invalidation(self, kind: str, d: bytes) -> bytes:
        """The message announcing ``invalidate`` (``inv``) or ``revoke`` (``rev``) of digest ``d``."""
        from wink_middleware._shared.envelope import encode_message

        return encode_message("rev" if kind == "revoke" else "inv", d)

    def received(self, data: Any) -> tuple[str, bytes] | None:
        """Apply a pub/sub message to this process's cache; return a fill/fail wake-up to deliver.

        Messages are hints: a forged one can at worst evict an entry here, never admit a token.
        """
        from wink_middleware._shared.envelope import decode_message

        decoded = decode_message(data)
        if decoded is None:
            return None
        kind, d = decoded
        if kind in ("fill", "fail"):
            return kind, d
        self._count("invalidations_received")
        self.core.event(INVALIDATION, "invalidate" if kind == "inv" else "revoke", "remote")
        cache = self.core.cache
        if kind == "inv" or not isinstance(cache.get(d), Negative):
            # A revocation reaches this process as "forget what you hold": the next request
            # reads the shared revoked entry. A refusal held here stays.
            cache.delete(d)
        return None

    def listener_up(self, reconnect: bool) -> None:
        """The subscription is confirmed: messages published from now on reach this process."""
        self.listener = "up"
        # Redis answered: the tier is back, even before a request needs it.
        self.reached()
        if reconnect:
            # What it missed was forgotten when it was lost (listener_lost); what this process
            # verified meanwhile came from Wink itself, and stays.
            logger.info("shared tier: invalidation listener reconnected")
        else:
            logger.debug("shared tier: invalidation listener subscribed")

    def listener_lost(self, exc: BaseException) -> None:
        """A subscription failed. One that was up may have missed messages: forget shared answers.
        One that never was up had nothing to miss: the local answers stay, and the first failure
        is one warning (then the listener retries quietly)."""
        if self.listener == "up":
            logger.warning(
                "shared tier: invalidation listener lost (%s): dropping cached profiles",
                type(exc).__name__,
            )
            self.core.cache.drop_positives()
        elif self.listener == "off":
            logger.warning(
                "shared tier: cannot subscribe to Redis (%s): invalidations from other processes "
                "do not reach this one until it can (retrying); requests are served as without "
                "the tier meanwhile",
                type(exc).__name__,
            )
        self.listener = "down"

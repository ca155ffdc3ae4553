"""The verification engine's decisions, free of I/O: shared unchanged by the async and sync verifiers.

A verification is: cache lookup -> (on a miss) local pre-check -> one call to Wink per cold token,
retried on transient failures inside one deadline and guarded by a circuit breaker -> cache the answer.
:class:`VerifierCore` makes every decision; the twins only move bytes, sleep and coordinate waiters.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time as _time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from wink_middleware._cache import (
    MemoryCache,
    Negative,
    NullCache,
    ProfileCache,
    ThreadSafeMemoryCache,
)
from wink_middleware._client import translate
from wink_middleware._config import WinkConfig
from wink_middleware._exceptions import (
    AuthenticationFailed,
    InvalidRequest,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkUnavailable,
)
from wink_middleware._profile import WinkProfile
from wink_middleware._protocol import (
    claim_exp,
    classify_response,
    fingerprint,
    is_b64token,
    precheck,
    request_body,
    unverified_claims,
)

__all__ = [
    "Clock",
    "Miss",
    "SystemClock",
    "VerifierBase",
    "VerifierCore",
    "VerifierStats",
    "digest",
]

logger = logging.getLogger("wink_middleware")

# Backoff between attempts: base * 2**n, jittered to 50-150%, capped.
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 2.0
# An attempt shorter than this is not worth starting.
_MIN_ATTEMPT = 0.05


class Clock(Protocol):
    """Where the engine reads time: wall clock for expiry, monotonic for deadlines and cache."""

    def time(self) -> float:
        """Seconds since the epoch (wall clock)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""


class SystemClock:
    """The real clocks."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


@dataclass
class VerifierStats:
    """Counters of what a verifier did. Read them, don't write them."""

    hits: int = 0
    negative_hits: int = 0
    misses: int = 0
    coalesced: int = 0
    wink_calls: int = 0
    wink_failures: dict[str, int] = field(
        default_factory=lambda: {"rejected": 0, "unavailable": 0, "bad_response": 0}
    )
    local_rejections: int = 0
    stale_served: int = 0
    breaker_opened: int = 0
    breaker_short_circuits: int = 0
    overloaded: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A plain copy, e.g. for a metrics endpoint."""
        return asdict(self)


def digest(token: str) -> str:
    """The cache key of a token: its sha256, hex. The raw token is never kept."""
    return hashlib.sha256(token.encode()).hexdigest()


class Miss:
    """One cold verification: the token, its digest and unverified claims, while Wink is asked."""

    __slots__ = ("claims", "fp", "key", "token")

    def __init__(self, token: str, key: str, claims: dict[str, Any] | None) -> None:
        self.token = token
        self.key = key
        self.claims = claims
        self.fp = fingerprint(key)


class CircuitBreaker:
    """Stops calling Wink after ``threshold`` consecutive transient failures, for ``cooldown`` seconds.

    When the cool-down ends, one probe call is let through: an answer closes the breaker, a transient
    failure opens it again. A probe whose outcome never comes back (its call was lost) is replaced by
    another after one more cool-down. Thread-safe.
    """

    def __init__(self, threshold: int, cooldown: float, stats: VerifierStats, clock: Clock) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        if self._open_until is None:
            return "closed"
        if self._probing or self._clock.monotonic() >= self._open_until:
            return "half-open"
        return "open"

    def check(self) -> None:
        """Raise :class:`WinkUnavailable` if Wink must not be called now."""
        if self._open_until is None:
            return
        with self._lock:
            if self._open_until is None:
                return
            now = self._clock.monotonic()
            remaining = self._open_until - now
            if remaining <= 0:
                # Re-armed, so that a probe which never reports back costs one cool-down, not
                # an open breaker for good.
                self._open_until = now + self._cooldown
                self._probing = True
                logger.info("circuit breaker half-open: probing Wink")
                return
            self._stats.breaker_short_circuits += 1
            retry_after = 1 if self._probing else max(1, math.ceil(remaining))
        raise WinkUnavailable("Wink is unavailable (circuit breaker open)", retry_after=retry_after)

    def success(self) -> None:
        """Wink answered (yes, no or nonsense): close the breaker."""
        if self._failures or self._open_until is not None:
            with self._lock:
                if self._open_until is not None:
                    logger.info("circuit breaker closed: Wink answered again")
                self._failures = 0
                self._open_until = None
                self._probing = False

    def failure(self) -> None:
        """Wink could not be asked: count it, open the breaker at the threshold or on a failed probe."""
        with self._lock:
            self._failures += 1
            if self._probing or (self._open_until is None and self._failures >= self._threshold):
                self._open_until = self._clock.monotonic() + self._cooldown
                self._probing = False
                self._stats.breaker_opened += 1
                logger.warning(
                    "circuit breaker open after %d consecutive failures: not calling Wink for %.1fs",
                    self._failures,
                    self._cooldown,
                )


class RetryPlan:
    """The attempts of one call to Wink: each at most ``timeout``, all inside one deadline."""

    __slots__ = ("_attempt", "_clock", "_config", "deadline")

    def __init__(self, config: WinkConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._attempt = 0
        self.deadline = clock.monotonic() + config.timeout * (config.retries + 1)

    def attempt_timeout(self) -> float:
        """How long the next attempt may take."""
        return max(0.0, min(self._config.timeout, self.deadline - self._clock.monotonic()))

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when no attempt is left."""
        self._attempt += 1
        if self._attempt > self._config.retries:
            return None
        delay: float = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (self._attempt - 1))
        delay *= random.uniform(0.5, 1.5)
        if self.deadline - self._clock.monotonic() - delay < _MIN_ATTEMPT:
            return None
        return delay


class VerifierCore:
    """Every decision of verification, shared by :class:`AsyncWinkVerifier` and :class:`WinkVerifier`."""

    def __init__(
        self,
        config: WinkConfig,
        *,
        clock: Clock | None = None,
        cache: ProfileCache | None = None,
        threads: bool = True,
    ) -> None:
        """``threads``: whether threads share this core (the sync twin); an event loop's does not."""
        self.config = config
        self.clock: Clock = SystemClock() if clock is None else clock
        if cache is None:
            if not config.cache_size:
                cache = NullCache()
            elif threads:
                cache = ThreadSafeMemoryCache(config.cache_size, self.clock.monotonic)
            else:
                cache = MemoryCache(config.cache_size, self.clock.monotonic)
        self.cache = cache
        # Bound once: the hit path reads them on every request.
        self._cache_get = cache.get
        self._monotonic = self.clock.monotonic
        self.stats = VerifierStats()
        self.breaker = CircuitBreaker(
            config.breaker_threshold, config.breaker_cooldown, self.stats, self.clock
        )
        self.url = config.verify_url

    # -- the hot path ------------------------------------------------------------------------

    def lookup(self, token: str) -> WinkProfile | Miss:
        """A cached profile, a cached rejection (raised), a local rejection (raised), or a :class:`Miss`.

        ``token`` must be non-empty and within ``max_token_length``; its b64token syntax is
        checked here on a miss (:class:`InvalidRequest`), before anything is remembered about it.
        """
        # surrogatepass: a lone surrogate (no WSGI server should send one) fails the syntax check on
        # the miss instead of raising here.
        return self.lookup_bytes(token.encode("utf-8", "surrogatepass"))

    def lookup_bytes(self, raw: bytes) -> WinkProfile | Miss:
        """:meth:`lookup` for a token still in bytes (an ASGI header value): a hit never decodes it."""
        key = hashlib.sha256(raw).hexdigest()
        entry = self._cache_get(key)
        if entry is not None:
            if type(entry) is Negative:
                self.stats.negative_hits += 1
                raise TokenRejected(entry.description)
            # The cache served the entry before its usable_until: without a stale-if-error grace
            # that is also its fresh_until, and the clock need not be read again.
            if (
                entry.fresh_until == entry.usable_until  # type: ignore[union-attr]
                or self._monotonic() < entry.fresh_until  # type: ignore[union-attr]
            ):
                self.stats.hits += 1
                return entry.profile  # type: ignore[union-attr]
        # Only well-formed tokens are ever cached, so a hit proves the syntax: the adapters leave
        # this check to the miss (TokenExtractor.bearer) rather than run it on every request.
        # Any byte >= 0x80 decodes to a character the check refuses.
        token = raw.decode("latin-1")
        if not is_b64token(token):
            raise InvalidRequest("the bearer token is malformed")
        claims = unverified_claims(token)
        if self.config.precheck:
            rejection = precheck(
                claims, self.config.client_id, self.clock.time(), self.config.leeway
            )
            if rejection is not None:
                self.stats.local_rejections += 1
                logger.info(
                    "token %s rejected locally: %s", fingerprint(key), rejection.description
                )
                self._remember_rejection(key, rejection)
                raise rejection
        return Miss(token, key, claims)

    # -- asking Wink -------------------------------------------------------------------------

    def check_token(self, token: object) -> str:
        """Validate a token given to ``verify()`` directly (the middlewares validate their own)."""
        if not isinstance(token, str) or not token:
            raise InvalidRequest("the bearer token is empty")
        if len(token) > self.config.max_token_length:
            raise InvalidRequest("the bearer token is too long")
        if not is_b64token(token):
            raise InvalidRequest("the bearer token is malformed")
        return token

    def admit(self, pending: int) -> None:
        """Refuse a new cold token while ``max_pending`` others are being verified with Wink.

        Only Wink can tell a random well-formed token from a real one, so a flood of them costs a
        call each; this bounds how many wait at once instead of queueing them without limit.
        """
        if pending >= self.config.max_pending:
            self.stats.overloaded += 1
            raise WinkUnavailable("too many tokens are being verified at once", retry_after=1)

    def request_body(self, miss: Miss) -> bytes:
        """The Verify Client body for this token."""
        return request_body(self.config.client_id, self.config.client_secret, miss.token)

    def retry_plan(self) -> RetryPlan:
        """The attempts and deadline of one call to Wink."""
        return RetryPlan(self.config, self.clock)

    def before_attempt(self, miss: Miss) -> None:
        """Count the call, or raise :class:`WinkUnavailable` if the circuit breaker is open."""
        self.breaker.check()
        self.stats.wink_calls += 1
        logger.debug("asking Wink about token %s", miss.fp)

    def judge(self, miss: Miss, status: int, headers: Any, body: bytes | None) -> WinkProfile:
        """Classify Wink's answer (raising for anything but a usable profile) and count it."""
        try:
            profile = classify_response(status, headers, body, miss.fp)
        except WinkUnavailable:
            self._transient()
            raise
        except TokenRejected:
            self.stats.wink_failures["rejected"] += 1
            self.breaker.success()
            raise
        except WinkBadResponse as exc:
            self.stats.wink_failures["bad_response"] += 1
            # Not an outage: Wink is up. It also settles a half-open breaker's probe.
            self.breaker.success()
            logger.error("bad answer from Wink for token %s: %s", miss.fp, exc.description)
            raise
        self.breaker.success()
        return profile

    def io_failed(self, miss: Miss, exc: Exception) -> WinkUnavailable:
        """Translate, count and log an I/O error: return it if transient (worth a retry), else raise."""
        error = translate(exc)
        if isinstance(error, WinkUnavailable):
            self._transient()
            logger.warning("Wink call for token %s failed: %s", miss.fp, error.description)
            return error
        self.stats.wink_failures["bad_response"] += 1
        self.breaker.success()
        logger.error("bad answer from Wink for token %s: %s", miss.fp, error.description)
        raise error from exc

    def _transient(self) -> None:
        self.stats.wink_failures["unavailable"] += 1
        self.breaker.failure()

    # -- remembering the answer --------------------------------------------------------------

    def succeeded(self, miss: Miss, profile: WinkProfile) -> WinkProfile:
        """Cache a verified profile no longer than its token lives, and return it."""
        config = self.config
        now = self.clock.time()
        expiries = [
            t
            for t in (
                None if profile.expiry_time is None else profile.expiry_time.timestamp(),
                claim_exp(miss.claims),
            )
            if t is not None
        ]
        lives_for = min(expiries) - config.leeway - now if expiries else math.inf
        fresh_for = min(lives_for, config.cache_ttl)
        if fresh_for > 0:
            mono = self.clock.monotonic()
            usable_for = min(lives_for, config.cache_ttl + config.stale_if_error)
            self.cache.set_positive(miss.key, profile, mono + fresh_for, mono + usable_for)
        else:
            logger.info("token %s verified but expires within the leeway: not cached", miss.fp)
        return profile

    def failed(self, miss: Miss, error: AuthenticationFailed) -> WinkProfile:
        """After the last attempt failed: remember a rejection, serve a stale profile, or raise."""
        if isinstance(error, TokenRejected):
            self._remember_rejection(miss.key, error)
        elif isinstance(error, WinkUnavailable) and self.config.stale_if_error > 0:
            entry = self.cache.get(miss.key)
            if entry is not None and type(entry) is not Negative:
                self.stats.stale_served += 1
                logger.warning("Wink unavailable: serving the cached profile of token %s", miss.fp)
                return entry.profile  # type: ignore[union-attr]
        raise error

    def _remember_rejection(self, key: str, rejection: TokenRejected) -> None:
        if self.config.negative_ttl > 0:
            self.cache.set_negative(
                key, rejection.description, self.clock.monotonic() + self.config.negative_ttl
            )

    def invalidate(self, token: str) -> None:
        """Forget what is cached for ``token``."""
        self.cache.delete(digest(token))


class VerifierBase:
    """What the async and sync verifiers share: their config, core, counters and cache.

    A subclass sets ``_threads``: whether threads share it (then its cache takes a lock).
    """

    _threads = True

    def __init__(
        self, config: WinkConfig, *, clock: Clock | None = None, cache: ProfileCache | None = None
    ) -> None:
        if not isinstance(config, WinkConfig):
            raise WinkConfigError(f"{type(self).__name__} needs a WinkConfig")
        self.config = config
        self._core = VerifierCore(config, clock=clock, cache=cache, threads=self._threads)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self.config.client_id!r}, "
            f"base_url={self.config.base_url!r})"
        )

    @property
    def stats(self) -> VerifierStats:
        """Counters: cache hits, misses, coalesced waits, Wink calls and failures, ..."""
        return self._core.stats

    @property
    def cache(self) -> ProfileCache:
        """The cache this verifier reads and fills."""
        return self._core.cache

    @property
    def breaker_state(self) -> str:
        """The circuit breaker's state: ``"closed"``, ``"open"`` or ``"half-open"``."""
        return self._core.breaker.state

    def invalidate(self, token: str) -> None:
        """Forget the cached answer for ``token`` (e.g. on logout)."""
        self._core.invalidate(token)

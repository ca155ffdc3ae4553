"""The verification engine's decisions, free of I/O: shared unchanged by the async and sync verifiers.

A verification is: cache lookup -> (on a miss) local pre-check -> one call to Wink per cold token,
retried on transient failures inside one deadline and guarded by a circuit breaker -> cache the answer.
:class:`VerifierCore` makes every decision; the twins only move bytes, sleep and coordinate waiters.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from wink_middleware._clock import Clock, SystemClock
from wink_middleware._config import WinkConfig
from wink_middleware._engine.cache import (
    MemoryCache,
    Negative,
    NullCache,
    Positive,
    ProfileCache,
    ThreadSafeMemoryCache,
)
from wink_middleware._engine.protocol import (
    claim_exp,
    classify_response,
    fingerprint,
    precheck,
    request_body,
    unverified_claims,
)
from wink_middleware._engine.resilience import CircuitBreaker, RetryPlan
from wink_middleware._engine.session_protocol import (
    classify_session_response,
    session_body,
    session_headers,
)
from wink_middleware._events import (
    BREAKER,
    CACHE,
    CACHE_EVENTS,
    INVALIDATION,
    SESSION,
    STALE_SERVED,
    WINK_CALL,
    ObserverSet,
    WinkEvent,
)
from wink_middleware._exceptions import (
    AuthenticationFailed,
    InvalidRequest,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkCredentialsRejected,
    WinkError,
    WinkUnavailable,
)
from wink_middleware._logging import fields, logger
from wink_middleware._profile import WinkProfile
from wink_middleware._session import WinkSession, session_fingerprint
from wink_middleware._session_urls import UrlError, check_url
from wink_middleware._shared.entry import SharedEntry
from wink_middleware._token_rule import check_token

if TYPE_CHECKING:
    from wink_middleware._engine.jwks import PreFilter
    from wink_middleware._shared.tier import SharedTierBase
from wink_middleware._engine.stats import VerifierStats

__all__ = [
    "ColdToken",
    "Exchange",
    "Miss",
    "SessionCall",
    "VerifierBase",
    "VerifierCore",
    "VerifyCall",
    "cache_key",
]

#: The refusal of a revoked token (``revoke()``).
REVOKED = "the access token was revoked"

_LOCAL_HIT = CACHE_EVENTS[("local", "hit")]
_LOCAL_NEGATIVE_HIT = CACHE_EVENTS[("local", "negative_hit")]
_LOCAL_REVOKED = CACHE_EVENTS[("local", "revoked")]
_LOCAL_MISS = CACHE_EVENTS[("local", "miss")]
# Refused credentials are logged at ERROR at most this often (seconds) per verifier.
_CREDENTIALS_LOG_INTERVAL = 60.0


def _error_type(cause: BaseException | None) -> str | None:
    """A failed call's ``error.type``: timeout, connect, or the exception's class name."""
    if cause is None:
        return None
    name = type(cause).__name__
    if "Timeout" in name:
        return "timeout"
    if "Connect" in name:
        return "connect"
    return name


def cache_key(raw: bytes) -> bytes:
    """The in-process cache key of a token: its sha256. The raw token is never kept."""
    return hashlib.sha256(raw).digest()


class ColdToken:
    """A token the cache could not answer for, checked and ready to verify with Wink: the token
    (bytes and text), its cache key, its unverified claims and ``fp``, its loggable fingerprint.

    What ``lookup()`` returns on a miss; hand it to the verifier's ``resolve()``. ``Miss`` is its
    former name, kept as an alias.
    """

    __slots__ = ("claims", "fp", "key", "raw", "token")

    def __init__(
        self, raw: bytes, key: bytes, claims: dict[str, Any] | None, fp: str | None = None
    ) -> None:
        self.raw = raw
        self.token = raw.decode("ascii")  # a checked b64token is ASCII
        self.key = key
        self.claims = claims
        self.fp = fingerprint(raw) if fp is None else fp


#: The former name of :class:`ColdToken`.
Miss = ColdToken


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
        self.key: Callable[[bytes], bytes] = cache_key
        self._sha256 = hashlib.sha256
        self._plain_key = True
        #: With the shared tier: how long this process keeps a shared answer (section 11).
        self.local_ttl: float | None = None
        # Bound once: the hit path reads them on every request.
        self._cache_get = cache.get
        self._monotonic = self.clock.monotonic
        self.stats = VerifierStats()
        self._count = self.stats.add
        self._count_hit = self.stats.counter("hits")
        self.observers = observers = ObserverSet(config.observers)
        observers.bind(config)
        #: Hands an event to the observers; ``None`` without any, so that nothing is built then.
        self.emit: Callable[[WinkEvent], None] | None = observers.emit if observers else None
        # The hot path's cache events, only when some observer wants them.
        self._emit_cache = observers.emitter(CACHE)
        self.breaker = CircuitBreaker(
            config.breaker_threshold,
            config.breaker_cooldown,
            self.stats,
            self.clock,
            on_change=self.breaker_observer("wink"),
        )
        self.url = config.verify_url
        self.session_url = config.session_url
        self._session_headers = session_headers(config.client_id, config.client_secret)
        self._credentials_logged_at: float | None = None
        #: The signature pre-filter (``jwks_url``), or ``None`` when it is off.
        self.prefilter: PreFilter | None = None
        if config.jwks_url is not None:
            from wink_middleware._engine.jwks import PreFilter

            self.prefilter = PreFilter(
                issuer=config.issuer,
                ttl=config.jwks_ttl,
                cooldown=config.jwks_cooldown,
                clock=self.clock,
                stats=self.stats,
                remember=self._remember_rejection,
                emit=self.emit,
            )

    # -- the hot path ------------------------------------------------------------------------

    def lookup(self, raw: bytes) -> WinkProfile | ColdToken:
        """A cached profile, a cached rejection (raised), a local rejection (raised), or a :class:`ColdToken`.

        The token rule (:func:`check_token`) is applied on a miss, before anything is remembered
        about the token: only checked tokens are ever cached, so a hit has proved it already.
        """
        # Without the shared tier the key is sha256: called directly, it saves a call frame.
        key = self._sha256(raw).digest() if self._plain_key else self.key(raw)
        entry = self._cache_get(key)
        if entry is not None:
            if type(entry) is Negative:
                self._count("negative_hits")
                if self._emit_cache is not None:
                    revoked = entry.description == REVOKED
                    self._emit_cache(_LOCAL_REVOKED if revoked else _LOCAL_NEGATIVE_HIT)
                raise TokenRejected(entry.description)
            # The cache served the entry before its usable_until: without a stale-if-error grace
            # that is also its fresh_until, and the clock need not be read again.
            if (
                entry.fresh_until == entry.usable_until  # type: ignore[union-attr]
                or self._monotonic() < entry.fresh_until  # type: ignore[union-attr]
            ):
                self._count_hit()
                if self._emit_cache is not None:
                    self._emit_cache(_LOCAL_HIT)
                return entry.profile  # type: ignore[union-attr]
        check_token(raw, self.config.max_token_length)
        if self._emit_cache is not None:
            self._emit_cache(_LOCAL_MISS)
        # Without the shared tier the key is the sha256 the fingerprint shows: not hashed again.
        fp = fingerprint(raw, key if self._plain_key else None)
        claims = unverified_claims(raw)
        if self.config.precheck:
            rejection = precheck(
                claims, self.config.client_id, self.clock.time(), self.config.leeway
            )
            if rejection is not None:
                self._count("local_rejections")
                logger.info(
                    "token %s rejected locally: %s",
                    fp,
                    rejection.description,
                    extra=fields(fp, "rejected"),
                )
                self._remember_rejection(key, rejection)
                raise rejection
        return ColdToken(raw, key, claims, fp)

    def cached(self, key: bytes) -> WinkProfile | None:
        """What the cache holds for ``key`` now: a fresh profile, ``None``, or a rejection (raised).

        A twin asks before it starts a call: a call that ended between a request's :meth:`lookup`
        and its ``resolve()`` has already filled the cache, and Wink need not be asked again.
        """
        entry = self._cache_get(key)
        if entry is None:
            return None
        if type(entry) is Negative:
            raise TokenRejected(entry.description)
        if entry.fresh_until == entry.usable_until or self._monotonic() < entry.fresh_until:  # type: ignore[union-attr]
            return entry.profile  # type: ignore[union-attr]
        return None

    # -- asking Wink -------------------------------------------------------------------------

    def admit(self, pending: int) -> None:
        """Refuse a new cold token while ``max_pending`` others are being verified with Wink.

        Only Wink can tell a random well-formed token from a real one, so a flood of them costs a
        call each; this bounds how many wait at once instead of queueing them without limit.
        """
        if pending >= self.config.max_pending:
            self._count("overloaded")
            raise WinkUnavailable("too many tokens are being verified at once", retry_after=1)

    def request_body(self, miss: ColdToken) -> bytes:
        """The Verify Client body for this token."""
        return request_body(self.config.client_id, self.config.client_secret, miss.token)

    def retry_plan(self) -> RetryPlan:
        """The attempts and deadline of one call to Wink."""
        return RetryPlan(self.config, self.clock)

    def before_attempt(self, miss: ColdToken) -> float:
        """Count the call and return when it starts, or raise :class:`WinkUnavailable` if the
        circuit breaker is open."""
        self.breaker.check()
        self._count("wink_calls")
        logger.debug("asking Wink about token %s", miss.fp, extra=fields(miss.fp, None))
        return self.clock.monotonic()

    def judge(
        self, miss: ColdToken, status: int, headers: Any, body: bytes | None, started: float
    ) -> WinkProfile:
        """Classify Wink's answer (raising for anything but a usable profile) and count it.

        ``started`` is when the attempt began, on the clock's monotonic time.
        """
        try:
            profile = classify_response(status, headers, body, miss.fp)
        except WinkUnavailable:
            self._transient()
            self._called(started, "unavailable", status, f"http_{status}")
            raise
        except TokenRejected:
            self.stats.failure("rejected")
            self.breaker.success()
            self._called(started, "rejected", status, None)
            raise
        except WinkBadResponse as exc:
            self.stats.failure("bad_response")
            # Not an outage: Wink is up. It also settles a half-open breaker's probe.
            self.breaker.success()
            self._called(started, "bad_response", status, "bad_response")
            logger.error(
                "bad answer from Wink for token %s: %s",
                miss.fp,
                exc.description,
                extra=fields(miss.fp, "bad_response"),
            )
            raise
        self.breaker.success()
        self._called(started, "valid", status, None)
        return profile

    def io_failed(self, miss: ColdToken, error: WinkError, started: float) -> WinkUnavailable:
        """Count and log an I/O failure the twin translated: return it if transient, else raise it."""
        kind = _error_type(error.__cause__)
        if isinstance(error, WinkUnavailable):
            self._transient()
            self._called(started, "unavailable", None, kind)
            logger.warning(
                "Wink call for token %s failed: %s",
                miss.fp,
                error.description,
                extra=fields(miss.fp, "unavailable"),
            )
            return error
        self.stats.failure("bad_response")
        self.breaker.success()
        self._called(started, "bad_response", None, kind)
        logger.error(
            "bad answer from Wink for token %s: %s",
            miss.fp,
            error,
            extra=fields(miss.fp, "bad_response"),
        )
        raise error

    def _called(
        self, started: float, outcome: str, status: int | None, error_type: str | None
    ) -> None:
        if self.emit is not None:
            self.emit(
                WinkEvent(
                    WINK_CALL,
                    outcome=outcome,
                    duration_s=self.clock.monotonic() - started,
                    status_code=status,
                    error_type=error_type,
                )
            )

    def breaker_observer(self, breaker: str) -> Callable[[str], None] | None:
        """The ``on_change`` of a breaker (``wink`` or ``redis``) that tells the observers."""
        emit = self.emit
        if emit is None:
            return None
        return lambda state: emit(WinkEvent(BREAKER, outcome=state, tier=breaker))

    def event(self, name: str, outcome: str | None = None, tier: str | None = None) -> None:
        """Tell the observers, if any, of something that happened off the hot path."""
        if self.emit is not None:
            self.emit(WinkEvent(name, outcome=outcome, tier=tier))

    def _transient(self) -> None:
        self.stats.failure("unavailable")
        self.breaker.failure()

    # -- sessions (Wink v2.0 sign-in) ------------------------------------------------------

    def session_call(self, return_url: str, cancel_url: str) -> SessionCall:
        """The exchange of one ``create_session``: its URLs checked by the route's rule."""
        try:
            check_url(return_url, "return_url")
            check_url(cancel_url, "cancel_url")
        except UrlError as exc:
            raise InvalidRequest(str(exc)) from None
        return SessionCall(self, return_url, cancel_url)

    def session_failed(self, error: AuthenticationFailed) -> None:
        """After the last attempt of a ``create_session`` failed: tell the observers."""
        if isinstance(error, WinkCredentialsRejected):
            outcome = "rejected"
        elif isinstance(error, WinkUnavailable):
            outcome = "unavailable"
        else:
            outcome = "bad_response"
        self.event(SESSION, outcome)

    def _credentials_refused(self, error: WinkCredentialsRejected) -> None:
        """Log refused credentials at ERROR, at most once a minute: every sign-in fails until fixed."""
        now = self.clock.monotonic()
        last = self._credentials_logged_at
        if last is not None and now - last < _CREDENTIALS_LOG_INTERVAL:
            return
        self._credentials_logged_at = now
        logger.error(
            "Wink refused client %r at %s: %s. Check the client id and secret, and that they "
            "belong to this Wink environment (stage credentials against production get 401)",
            self.config.client_id,
            self.config.base_url,
            error.description,
            extra=fields(None, "credentials_rejected"),
        )

    # -- remembering the answer --------------------------------------------------------------

    def lifetimes(self, miss: ColdToken, profile: WinkProfile) -> tuple[float, float]:
        """How long, from now, a verified profile is fresh and usable (stale-if-error) in seconds.

        Fresh for ``min(expiry - leeway, cache_ttl)`` where expiry is the profile's, else the JWT's
        ``exp``; usable up to ``stale_if_error`` longer, never past expiry. Not positive: do not cache.
        """
        config = self.config
        expiries = [
            t
            for t in (
                None if profile.expiry_time is None else profile.expiry_time.timestamp(),
                claim_exp(miss.claims),
            )
            if t is not None
        ]
        lives_for = min(expiries) - config.leeway - self.clock.time() if expiries else math.inf
        fresh_for = min(lives_for, config.cache_ttl)
        return fresh_for, min(lives_for, config.cache_ttl + config.stale_if_error)

    def succeeded(self, miss: ColdToken, profile: WinkProfile) -> WinkProfile:
        """Cache a verified profile no longer than its token lives, and return it."""
        fresh_for, usable_for = self.lifetimes(miss, profile)
        if fresh_for > 0:
            mono = self.clock.monotonic()
            if self.local_ttl is not None:
                # A shared answer is kept here at most local_ttl: bounds staleness if an
                # invalidation message is lost.
                fresh_for = min(fresh_for, self.local_ttl)
            self.cache.set_positive(miss.key, profile, mono + fresh_for, mono + usable_for)
        else:
            logger.info(
                "token %s verified but expires within the leeway: not cached",
                miss.fp,
                extra=fields(miss.fp, "authenticated"),
            )
        return profile

    # -- the shared tier's decisions ------------------------------------------------------

    def share(self, key: Callable[[bytes], bytes], local_ttl: float) -> None:
        """Turn the shared tier on: cache keys become its digests, shared answers live local_ttl."""
        self.key = key
        self._plain_key = False
        self.local_ttl = local_ttl

    def shared_positive(self, miss: ColdToken, profile: WinkProfile) -> SharedEntry | None:
        """The fleet's entry for a verified profile, or ``None`` when it is not worth caching."""
        fresh_for, usable_for = self.lifetimes(miss, profile)
        if fresh_for <= 0:
            return None
        now = self.clock.time()
        return SharedEntry("pos", profile, "", now + fresh_for, now + usable_for)

    def shared_rejection(self, error: TokenRejected) -> SharedEntry | None:
        """The fleet's entry for a rejection, when rejections are shared (``share_negative``)."""
        if not self.config.share_negative or self.config.negative_ttl <= 0:
            return None
        until = self.clock.time() + self.config.negative_ttl
        return SharedEntry("neg", None, error.description, until, until)

    def revocation(self, miss_key: bytes, claims: dict[str, Any] | None) -> SharedEntry:
        """The entry refusing a token until it expires: cached expiry, else JWT exp, else cache_ttl."""
        now = self.clock.time()
        until: float | None = None
        entry = self.cache.get(miss_key)
        if type(entry) is Positive and entry.profile.expiry_time is not None:
            until = entry.profile.expiry_time.timestamp()
        if until is None:
            until = claim_exp(claims)
        if until is None or not math.isfinite(until) or until <= now:
            until = now + self.config.cache_ttl
        return SharedEntry("revoked", None, REVOKED, until, until)

    def from_shared(self, miss: ColdToken, entry: SharedEntry) -> WinkProfile | None:
        """Take the fleet's answer into this process: a profile, a raised refusal, or ``None``
        when it is no longer fresh (then the token is verified again)."""
        now = self.clock.time()
        if entry.usable_until <= now:
            return None
        if entry.kind == "pos":
            if entry.fresh_until <= now:
                return None
            self.install(miss.key, entry)
            self._count("shared_hits")
            return entry.profile
        self.install(miss.key, entry)
        self._count("shared_hits")
        raise TokenRejected(entry.description)

    def install(self, key: bytes, entry: SharedEntry) -> None:
        """Put a shared entry in this process's cache, on its monotonic clock."""
        now = self.clock.time()
        mono = self.clock.monotonic()
        usable = mono + (entry.usable_until - now)
        if entry.kind == "pos":
            assert entry.profile is not None
            fresh_for = entry.fresh_until - now
            if self.local_ttl is not None:
                fresh_for = min(fresh_for, self.local_ttl)
            self.cache.set_positive(key, entry.profile, mono + fresh_for, usable)
        elif entry.kind == "revoked":
            self.cache.set_revoked(key, entry.description, usable)
        else:
            self.cache.set_negative(key, entry.description, usable)

    def failed(self, miss: ColdToken, error: AuthenticationFailed) -> WinkProfile:
        """After the last attempt failed: remember a rejection, serve a stale profile, or raise."""
        if isinstance(error, TokenRejected):
            self._remember_rejection(miss.key, error)
        elif isinstance(error, WinkUnavailable) and self.config.stale_if_error > 0:
            entry = self.cache.get(miss.key)
            if entry is not None and type(entry) is not Negative:
                self._count("stale_served")
                self.event(STALE_SERVED)
                logger.warning(
                    "Wink unavailable: serving the cached profile of token %s",
                    miss.fp,
                    extra=fields(miss.fp, "stale_served"),
                )
                return entry.profile  # type: ignore[union-attr]
        raise error

    def _remember_rejection(self, key: bytes, rejection: TokenRejected) -> None:
        if self.config.negative_ttl > 0:
            self.cache.set_negative(
                key, rejection.description, self.clock.monotonic() + self.config.negative_ttl
            )


class Exchange(Protocol):
    """One conversation with Wink that the twins drive: POST ``body`` to ``url`` with ``headers``
    (``None``: the Verify Client headers), retried on transient failures inside one deadline.

    ``begin()`` starts an attempt (raising when the breaker is open) and returns its start time;
    ``judge()`` classifies an answer; ``io_failed()`` returns a transient I/O failure or raises.
    """

    url: str
    body: bytes
    headers: dict[str, str] | None

    def begin(self) -> float:
        """Start an attempt."""

    def judge(self, status: int, headers: Any, body: bytes | None, started: float) -> Any:
        """The result of an answer, or raise."""

    def io_failed(self, error: WinkError, started: float) -> WinkUnavailable:
        """A translated I/O failure: return it when transient, else raise it."""


class VerifyCall:
    """The Verify Client call for one cold token (an :class:`Exchange`)."""

    __slots__ = ("body", "core", "headers", "miss", "url")

    def __init__(self, core: VerifierCore, miss: ColdToken) -> None:
        self.core = core
        self.url = core.url
        self.body = core.request_body(miss)
        self.headers: dict[str, str] | None = None
        self.miss = miss

    def begin(self) -> float:
        return self.core.before_attempt(self.miss)

    def judge(self, status: int, headers: Any, body: bytes | None, started: float) -> WinkProfile:
        return self.core.judge(self.miss, status, headers, body, started)

    def io_failed(self, error: WinkError, started: float) -> WinkUnavailable:
        return self.core.io_failed(self.miss, error, started)


class SessionCall:
    """The session request of one ``create_session`` (an :class:`Exchange`): the same breaker,
    retries and deadline as Verify Client (one host: one breaker), Basic credentials, never cached."""

    __slots__ = ("body", "cancel_url", "core", "headers", "return_url", "url")

    def __init__(self, core: VerifierCore, return_url: str, cancel_url: str) -> None:
        self.core = core
        self.url = core.session_url
        self.body = session_body(return_url, cancel_url)
        self.headers: dict[str, str] | None = core._session_headers
        self.return_url = return_url
        self.cancel_url = cancel_url

    def begin(self) -> float:
        core = self.core
        core.breaker.check()
        core._count("session_calls")
        logger.debug("asking Wink for a session", extra=fields(None, None))
        return core.clock.monotonic()

    def judge(self, status: int, headers: Any, body: bytes | None, started: float) -> WinkSession:
        core = self.core
        try:
            session_id = classify_session_response(status, headers, body)
        except WinkUnavailable:
            core._transient()
            logger.warning(
                "Wink is unavailable for sessions: status %d",
                status,
                extra=fields(None, "unavailable"),
            )
            raise
        except WinkCredentialsRejected as exc:
            core.breaker.success()
            core._credentials_refused(exc)
            raise
        except WinkBadResponse as exc:
            core.breaker.success()
            logger.error(
                "bad session answer from Wink: %s",
                exc.description,
                extra=fields(None, "bad_response"),
            )
            raise
        core.breaker.success()
        core._count("sessions_created")
        fp = session_fingerprint(session_id)
        logger.info("Wink session %s created", fp, extra=fields(fp, "created"))
        core.event(SESSION, "created")
        return WinkSession(session_id, self.return_url, self.cancel_url)

    def io_failed(self, error: WinkError, started: float) -> WinkUnavailable:
        core = self.core
        if isinstance(error, WinkUnavailable):
            core._transient()
            logger.warning(
                "Wink session call failed: %s", error.description, extra=fields(None, "unavailable")
            )
            return error
        core.breaker.success()
        logger.error("bad session answer from Wink: %s", error, extra=fields(None, "bad_response"))
        raise error


def token_bytes(token: object) -> bytes:
    """A token given to ``verify()`` as text, in the bytes the engine works on."""
    if not isinstance(token, str):
        raise InvalidRequest("the bearer token must be a string")
    # surrogatepass: a lone surrogate fails the token rule with its message instead of raising here.
    return token.encode("utf-8", "surrogatepass")


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
        self._tier: SharedTierBase | None = None
        if type(self).lookup is VerifierBase.lookup:
            # A cache hit skips one call frame; a subclass's own lookup() is kept.
            self.lookup = self._core.lookup  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self.config.client_id!r}, "
            f"base_url={self.config.base_url!r})"
        )

    def lookup(self, raw: bytes) -> WinkProfile | ColdToken:
        """The first step of verification, answered without I/O: a cached profile or a :class:`ColdToken`.

        Raises an :class:`AuthenticationFailed` for a cached or local rejection and for a token that
        breaks the token rule. Hand a :class:`ColdToken` to ``resolve()``; ``verify()`` does both.
        """
        return self._core.lookup(raw)

    @property
    def emit(self) -> Callable[[WinkEvent], None] | None:
        """Hands an event to this verifier's observers; ``None`` when it has none."""
        return self._core.emit

    def emitter(self, name: str) -> Callable[[WinkEvent], None] | None:
        """How to emit events named ``name`` (e.g. ``"request"``); ``None`` when no observer wants
        them. The middlewares bind it once and test for ``None``, so a request pays nothing for
        events nobody listens to."""
        return self._core.observers.emitter(name)

    @property
    def clock(self) -> Clock:
        """The clock this verifier reads (the session route's rate limit reads it too)."""
        return self._core.clock

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

    def health(self) -> dict[str, str]:
        """For readiness probes: the state of Wink's breaker, the shared tier and its listener.

        ``{"wink": "closed|open|half-open", "shared": "off|up|down", "listener": "off|up|down",
        "jwks": "off|unknown|up|down"}``; ``listener`` is ``"up"`` once Redis confirmed the
        invalidation subscription; ``jwks`` is the signature pre-filter's key set (``"unknown"``:
        not fetched yet; ``"down"``: the last fetch failed, and the pre-filter is skipped).
        """
        tier = self._tier
        prefilter = self._core.prefilter
        return {
            "wink": self.breaker_state,
            "shared": "off" if tier is None else tier.state,
            "listener": "off" if tier is None else tier.listener,
            "jwks": "off" if prefilter is None else prefilter.state,
        }

    def _target(self, token: str) -> ColdToken:
        """The token an ``invalidate()`` or ``revoke()`` names, checked by the token rule."""
        raw = check_token(token_bytes(token), self.config.max_token_length)
        return ColdToken(raw, self._core.key(raw), unverified_claims(raw))

    def _forget_here(self, token: str) -> ColdToken:
        """``invalidate()`` in this process; the twin then tells the fleet."""
        miss = self._target(token)
        self._core.cache.delete(miss.key)
        self._core.event(INVALIDATION, "invalidate", "local")
        return miss

    def _revoke_here(self, token: str) -> tuple[ColdToken, SharedEntry]:
        """``revoke()`` in this process; the twin then writes the entry and tells the fleet."""
        miss = self._target(token)
        entry = self._core.revocation(miss.key, miss.claims)
        self._core.install(miss.key, entry)
        self._core.event(INVALIDATION, "revoke", "local")
        return miss, entry

    def _local_only(self, what: str, miss: ColdToken) -> bool:
        logger.warning(
            "%s of token %s reached this process only: the shared tier is unreachable",
            what,
            miss.fp,
            extra=fields(miss.fp, what),
        )
        return False

"""WinkVerifier: token -> WinkProfile, for threads. Decisions live in ``_engine``; this does I/O.

The sync twin of :class:`~wink_middleware.AsyncWinkVerifier`: the same :class:`VerifierCore` makes
every decision; this module only sends the request, sleeps between attempts and lets threads that
want the same cold token wait for one call instead of each making their own.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, assert_never

from wink_middleware._clock import Clock
from wink_middleware._config import WinkConfig
from wink_middleware._engine.cache import ProfileCache
from wink_middleware._engine.client import Client, make_sync_client, sync_attempt
from wink_middleware._engine.core import ColdToken, VerifierBase, token_bytes
from wink_middleware._engine.flow import (
    AcquireLease,
    Announce,
    AwaitLease,
    FillShared,
    Post,
    ReadShared,
    ReleaseLease,
    Sleep,
    Step,
    cold_verification,
    run,
    wink_exchange,
)
from wink_middleware._events import SINGLEFLIGHT
from wink_middleware._exceptions import AuthenticationFailed, WinkUnavailable
from wink_middleware._profile import WinkProfile
from wink_middleware._session import WinkSession

if TYPE_CHECKING:
    from wink_middleware._engine.jwks_fetch import SyncKeyFetcher
    from wink_middleware._shared.sync_tier import SyncSharedTier

__all__ = ["WinkVerifier"]

# How much longer than the leader's own deadline a waiting thread gives it before giving up.
_WAIT_GRACE = 1.0


class _Flight:
    """One call to Wink in progress, and its outcome once ``done`` is set."""

    __slots__ = ("done", "error", "profile")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.profile: WinkProfile | None = None
        self.error: BaseException | None = None


class WinkVerifier(VerifierBase):
    """Verifies Wink access tokens with an expiry-bounded cache and one call to Wink per cold token.

    Safe to share between threads: concurrent verifications of one uncached token make a single
    call to Wink, and every thread gets its answer. ``client`` is an ``Client`` you own (it
    is not closed by :meth:`close`); without it, the verifier makes a pooled client on first use
    and closes it in :meth:`close`. ``clock`` and ``cache`` are injectable for tests. ``redis`` is a
    ``redis.Redis`` you own for the shared tier; ``redis_url`` in the config builds one instead.
    """

    def __init__(
        self,
        config: WinkConfig,
        *,
        client: Client | None = None,
        clock: Clock | None = None,
        cache: ProfileCache | None = None,
        redis: Any = None,
    ) -> None:
        super().__init__(config, clock=clock, cache=cache)
        self._shared: SyncSharedTier | None = None
        if redis is not None or config.redis_url is not None:
            from wink_middleware._shared.sync_tier import SyncSharedTier

            self._tier = self._shared = SyncSharedTier(config, self._core, redis)
        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()
        self._inflight: dict[bytes, _Flight] = {}
        self._sessions_pending = 0
        # Backoff between attempts: the clock's own sleep if it has one (a fake clock moves instead).
        self._sleep: Callable[[float], object] = getattr(self._core.clock, "sleep", time.sleep)
        self._monotonic = self._core.clock.monotonic
        self._inflight_lock = threading.Lock()
        # The leader finishes within its retry plan's deadline (after waiting on the fleet's lease,
        # with the shared tier); a waiter gives it that and a grace.
        self._wait_timeout = config.timeout * (config.retries + 1) + _WAIT_GRACE
        if self._shared is not None:
            self._wait_timeout += self._shared.lock_ttl
        self._jwks: SyncKeyFetcher | None = None
        if self._core.prefilter is not None:
            from wink_middleware._engine.jwks_fetch import SyncKeyFetcher

            self._jwks = SyncKeyFetcher(
                self._core.prefilter, config.jwks_url or "", config.timeout, self._get_client
            )

    def verify(self, token: str) -> WinkProfile:
        """Return the profile of a valid token, or raise an :class:`AuthenticationFailed` subclass."""
        found = self.lookup(token_bytes(token))
        if type(found) is ColdToken:
            return self.resolve(found)
        return found  # type: ignore[return-value]

    def resolve(self, miss: ColdToken) -> WinkProfile:
        """The second step of verification: ask Wink about a :class:`ColdToken` from :meth:`lookup`.

        One shared call per token however many threads ask at once. With ``jwks_url``, a token the
        realm's keys did not sign is refused first, without a call to Wink.
        """
        if self._jwks is not None:
            self._jwks.screen(miss)
        with self._inflight_lock:
            flight = self._inflight.get(miss.key)
            leading = flight is None
            if flight is None:
                # Another thread's call may have ended since this one's lookup: its answer is
                # cached, and asking again would be a second call for one token.
                try:
                    found = self._core.cached(miss.key)
                except AuthenticationFailed:
                    self.stats.add("coalesced")
                    raise
                if found is not None:
                    self.stats.add("coalesced")
                    return found
                self._core.admit(len(self._inflight) + self._sessions_pending)
                flight = self._inflight[miss.key] = _Flight()
                self.stats.add("misses")
                self._core.event(SINGLEFLIGHT, "leader", "process")
            else:
                self.stats.add("coalesced")
                self._core.event(SINGLEFLIGHT, "follower", "process")
        if leading:
            return self._lead(miss, flight)
        return self._follow(flight)

    def _lead(self, miss: ColdToken, flight: _Flight) -> WinkProfile:
        try:
            profile = self._drive(miss)
        except BaseException as error:
            flight.error = error
            raise
        else:
            flight.profile = profile
            return profile
        finally:
            with self._inflight_lock:
                self._inflight.pop(miss.key, None)
            flight.done.set()

    def _drive(self, miss: ColdToken) -> WinkProfile:
        """Drive the cold verification's flow (:mod:`~wink_middleware._engine.flow`, its rules)
        with blocking I/O."""
        tier = self._shared
        if tier is not None:
            tier.ensure_listener()
        flow = cold_verification(self._core, miss, fleet=tier is not None)
        return run(flow, lambda step: self._take(step, miss))

    def _take(self, step: Step, miss: ColdToken | None) -> Any:
        """Carry out one step of a flow (``miss``: the cold token of a verification's flow)."""
        match step:
            case Post():
                client = self._get_client()
                return sync_attempt(
                    client, step.url, step.body, step.headers, step.timeout, self._monotonic
                )
            case Sleep():
                self._sleep(step.seconds)
                return None
        tier = self._shared
        assert tier is not None and miss is not None, "a fleet step outside a fleet verification"
        match step:
            case ReadShared():
                return tier.get(miss)
            case AcquireLease():
                return tier.acquire(miss)
            case AwaitLease():
                return tier.wait(miss)
            case FillShared():
                return tier.fill(miss, step.entry)
            case ReleaseLease():
                return tier.release(miss, step.lease)
            case Announce():
                return tier.announce(miss, step.outcome)
        assert_never(step)

    def invalidate(self, token: str) -> bool:
        """Forget the answer for ``token`` here and, with the shared tier, in every process.

        The next request with it asks Wink again (e.g. after the user changed their profile).
        ``True`` when it reached the fleet, ``False`` when it applied to this process only.
        """
        miss = self._forget_here(token)
        tier = self._shared
        if tier is None:
            return False
        if tier.delete(miss) and tier.publish("invalidate", miss):
            return True
        return self._local_only("invalidate", miss)

    def revoke(self, token: str) -> bool:
        """Refuse ``token`` from now until it expires, here and, with the shared tier, everywhere.

        The logout call: Wink has no revocation, so a forgotten token would verify again. A revoked
        token gets 401 ``invalid_token``. ``True`` when it reached the fleet, ``False`` when it
        applied to this process only.
        """
        miss, entry = self._revoke_here(token)
        tier = self._shared
        if tier is None:
            return False
        if tier.put(miss, entry) and tier.publish("revoke", miss):
            return True
        return self._local_only("revoke", miss)

    def _follow(self, flight: _Flight) -> WinkProfile:
        if not flight.done.wait(self._wait_timeout):
            raise WinkUnavailable("Wink did not answer in time")
        if flight.profile is not None:
            return flight.profile
        error = flight.error
        if isinstance(error, AuthenticationFailed):
            # Each thread raises its own copy: one exception object raised in several threads at
            # once would have its traceback rewritten under each of them.
            raise copy.copy(error) from error.__cause__
        raise WinkUnavailable("the shared call to Wink failed") from error

    def create_session(self, return_url: str, cancel_url: str) -> WinkSession:
        """Ask Wink for a single-use sign-in session (Wink v2.0's ``sessionId``).

        ``return_url`` / ``cancel_url``: where Wink sends the user after signing in or cancelling
        (absolute ``https://``, or ``http://`` on a loopback host). The same client, timeout,
        deadline, retries and circuit breaker as verification; never cached. Raises
        :class:`WinkCredentialsRejected` (Wink refused the client id or secret),
        :class:`WinkUnavailable`, :class:`WinkBadResponse`, or :class:`InvalidRequest` for a bad URL.
        """
        core = self._core
        call = core.session_call(return_url, cancel_url)
        try:
            with self._inflight_lock:
                core.admit(len(self._inflight) + self._sessions_pending)
                self._sessions_pending += 1
            try:
                session: WinkSession = run(
                    wink_exchange(core, call), lambda step: self._take(step, None)
                )
            finally:
                with self._inflight_lock:
                    self._sessions_pending -= 1
        except AuthenticationFailed as error:
            core.session_failed(error)
            raise
        return session

    def _get_client(self) -> Client:
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    client = self._client = make_sync_client(self.config)
        return client

    def close(self) -> None:
        """Close the HTTP client this verifier made (a later verification makes a new one), and
        stop the shared tier's listener (and close the Redis client it made)."""
        if self._shared is not None:
            self._shared.close()
        if not self._owns_client:
            return
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> WinkVerifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

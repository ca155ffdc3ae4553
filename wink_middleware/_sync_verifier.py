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

import httpx

from wink_middleware._cache import ProfileCache
from wink_middleware._client import make_sync_client, sync_post, translate
from wink_middleware._clock import Clock
from wink_middleware._config import WinkConfig
from wink_middleware._engine import Miss, VerifierBase, token_bytes
from wink_middleware._exceptions import AuthenticationFailed, WinkUnavailable
from wink_middleware._profile import WinkProfile

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
    call to Wink, and every thread gets its answer. ``client`` is an ``httpx.Client`` you own (it
    is not closed by :meth:`close`); without it, the verifier makes a pooled client on first use
    and closes it in :meth:`close`. ``clock`` and ``cache`` are injectable for tests and for a
    shared cache tier.
    """

    def __init__(
        self,
        config: WinkConfig,
        *,
        client: httpx.Client | None = None,
        clock: Clock | None = None,
        cache: ProfileCache | None = None,
    ) -> None:
        super().__init__(config, clock=clock, cache=cache)
        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()
        self._inflight: dict[bytes, _Flight] = {}
        # Backoff between attempts: the clock's own sleep if it has one (a fake clock moves instead).
        self._sleep: Callable[[float], object] = getattr(self._core.clock, "sleep", time.sleep)
        self._inflight_lock = threading.Lock()
        # The leader finishes within its retry plan's deadline; a waiter gives it that and a grace.
        self._wait_timeout = config.timeout * (config.retries + 1) + _WAIT_GRACE

    def verify(self, token: str) -> WinkProfile:
        """Return the profile of a valid token, or raise an :class:`AuthenticationFailed` subclass."""
        found = self.lookup(token_bytes(token))
        if type(found) is Miss:
            return self.resolve(found)
        return found  # type: ignore[return-value]

    def resolve(self, miss: Miss) -> WinkProfile:
        """The second step of verification: ask Wink about a :class:`Miss` from :meth:`lookup`.

        One shared call per token however many threads ask at once.
        """
        with self._inflight_lock:
            flight = self._inflight.get(miss.key)
            leading = flight is None
            if flight is None:
                self._core.admit(len(self._inflight))
                flight = self._inflight[miss.key] = _Flight()
                self.stats.add("misses")
            else:
                self.stats.add("coalesced")
        if leading:
            return self._lead(miss, flight)
        return self._follow(flight)

    def _lead(self, miss: Miss, flight: _Flight) -> WinkProfile:
        try:
            try:
                profile = self._call(miss)
            except AuthenticationFailed as error:
                profile = self._core.failed(miss, error)
            else:
                profile = self._core.succeeded(miss, profile)
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

    def _call(self, miss: Miss) -> WinkProfile:
        core = self._core
        plan = core.retry_plan()
        body = core.request_body(miss)
        monotonic = core.clock.monotonic
        while True:
            core.before_attempt(miss)
            attempt = plan.attempt_timeout()
            client = self._get_client()
            try:
                status, headers, content = sync_post(
                    client,
                    core.url,
                    body,
                    timeout=attempt,
                    deadline=monotonic() + attempt,
                    clock=monotonic,
                )
            except (httpx.HTTPError, httpx.StreamError, OSError, TimeoutError, RuntimeError) as exc:
                # A bare RuntimeError is only ours to map when close() in another thread closed
                # the client under this call.
                if type(exc) is RuntimeError and not client.is_closed:
                    raise
                error = core.io_failed(miss, translate(exc))
            else:
                try:
                    return core.judge(miss, status, headers, content)
                except WinkUnavailable as exc:
                    error = exc
            delay = plan.next_delay()
            if delay is None:
                raise error
            self._sleep(delay)

    def _get_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    client = self._client = make_sync_client(self.config)
        return client

    def close(self) -> None:
        """Close the HTTP client this verifier made (a later verification makes a new one)."""
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

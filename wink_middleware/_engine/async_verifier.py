"""AsyncWinkVerifier: token -> WinkProfile, for asyncio. Decisions live in the core and the flow;
this does their I/O."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any, assert_never

from wink_middleware._clock import Clock
from wink_middleware._config import WinkConfig
from wink_middleware._engine.cache import ProfileCache
from wink_middleware._engine.client import AsyncClient, async_attempt, make_async_client
from wink_middleware._engine.core import ColdToken, VerifierBase, token_bytes
from wink_middleware._engine.flow import (
    AcquireLease,
    Announce,
    AwaitLease,
    FillShared,
    Flow,
    Post,
    ReadShared,
    ReleaseLease,
    Sleep,
    Step,
    cold_verification,
    wink_exchange,
)
from wink_middleware._events import SINGLEFLIGHT
from wink_middleware._exceptions import AuthenticationFailed
from wink_middleware._profile import WinkProfile
from wink_middleware._session import WinkSession

if TYPE_CHECKING:
    from wink_middleware._engine.jwks_fetch import AsyncKeyFetcher
    from wink_middleware._shared.async_tier import AsyncSharedTier

__all__ = ["AsyncWinkVerifier"]


class AsyncWinkVerifier(VerifierBase):
    """Verifies Wink access tokens with an expiry-bounded cache and one call to Wink per cold token.

    ``client`` is an ``AsyncClient`` you own (it is not closed by :meth:`aclose`); without it,
    the verifier makes a pooled client on first use and closes it in :meth:`aclose`.
    ``clock`` and ``cache`` are injectable for tests. ``redis`` is a ``redis.asyncio`` client you own
    (IAM, mTLS, Sentinel or Cluster setups) for the shared tier; ``redis_url`` in the config builds
    one instead.
    """

    # One event loop drives an async verifier: its cache needs no lock.
    _threads = False

    def __init__(
        self,
        config: WinkConfig,
        *,
        client: AsyncClient | None = None,
        clock: Clock | None = None,
        cache: ProfileCache | None = None,
        redis: Any = None,
    ) -> None:
        super().__init__(config, clock=clock, cache=cache)
        self._shared: AsyncSharedTier | None = None
        if redis is not None or config.redis_url is not None:
            from wink_middleware._shared.async_tier import AsyncSharedTier

            self._tier = self._shared = AsyncSharedTier(config, self._core, redis)
        self._client = client
        self._owns_client = client is None
        self._inflight: dict[bytes, asyncio.Task[WinkProfile]] = {}
        self._sessions_pending = 0
        self._jwks: AsyncKeyFetcher | None = None
        if self._core.prefilter is not None:
            from wink_middleware._engine.jwks_fetch import AsyncKeyFetcher

            self._jwks = AsyncKeyFetcher(
                self._core.prefilter, config.jwks_url or "", config.timeout, self._get_client
            )

    async def verify(self, token: str) -> WinkProfile:
        """Return the profile of a valid token, or raise an :class:`AuthenticationFailed` subclass."""
        found = self.lookup(token_bytes(token))
        if type(found) is ColdToken:
            return await self.resolve(found)
        return found  # type: ignore[return-value]

    async def resolve(self, miss: ColdToken) -> WinkProfile:
        """The second step of verification: ask Wink about a :class:`ColdToken` from :meth:`lookup`.

        One shared call per token however many ask at once; a waiter that is cancelled does not
        cancel the call the others wait for. With ``jwks_url``, a token the realm's keys did not
        sign is refused first, without a call to Wink.
        """
        if self._jwks is not None:
            await self._jwks.screen(miss)
        task = self._inflight.get(miss.key)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            # A call that ended since this miss was looked up has cached its answer: use it.
            try:
                found = self._core.cached(miss.key)
            except AuthenticationFailed:
                self.stats.add("coalesced")
                raise
            if found is not None:
                self.stats.add("coalesced")
                return found
            self._core.admit(len(self._inflight) + self._sessions_pending)
            self.stats.add("misses")
            self._core.event(SINGLEFLIGHT, "leader", "process")
            task = asyncio.get_running_loop().create_task(self._fetch(miss))
            self._inflight[miss.key] = task
            task.add_done_callback(_retrieve_exception)
        else:
            self.stats.add("coalesced")
            self._core.event(SINGLEFLIGHT, "follower", "process")
        return await asyncio.shield(task)

    async def _fetch(self, miss: ColdToken) -> WinkProfile:
        """Drive the cold verification's flow (:mod:`~wink_middleware._engine.flow`, its rules)
        with asyncio I/O."""
        tier = self._shared
        if tier is not None:
            tier.ensure_listener()
        try:
            profile: WinkProfile = await self._drive(
                cold_verification(self._core, miss, fleet=tier is not None), miss
            )
        finally:
            self._inflight.pop(miss.key, None)
        return profile

    async def _drive(self, flow: Flow, miss: ColdToken | None) -> Any:
        """Drive ``flow`` with asyncio I/O, as :func:`~wink_middleware._engine.flow.run` does with
        blocking I/O: each step awaited, its result or exception sent back; closed however it ends.
        """
        result: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    step = flow.send(result) if error is None else flow.throw(error)
                except StopIteration as done:
                    return done.value
                try:
                    result, error = await self._take(step, miss), None
                except Exception as exc:
                    result, error = None, exc
        finally:
            flow.close()

    async def _take(self, step: Step, miss: ColdToken | None) -> Any:
        """Carry out one step of a flow (``miss``: the cold token of a verification's flow)."""
        match step:
            case Post():
                client = self._get_client()
                return await async_attempt(client, step.url, step.body, step.headers, step.timeout)
            case Sleep():
                await asyncio.sleep(step.seconds)
                return None
        tier = self._shared
        assert tier is not None and miss is not None, "a fleet step outside a fleet verification"
        match step:
            case ReadShared():
                return await tier.get(miss)
            case AcquireLease():
                return await tier.acquire(miss)
            case AwaitLease():
                return await tier.wait(miss)
            case FillShared():
                return await tier.fill(miss, step.entry)
            case ReleaseLease():
                return await tier.release(miss, step.lease)
            case Announce():
                return await tier.announce(miss, step.outcome)
        assert_never(step)

    async def invalidate(self, token: str) -> bool:
        """Forget the answer for ``token`` here and, with the shared tier, in every process.

        The next request with it asks Wink again (e.g. after the user changed their profile).
        ``True`` when it reached the fleet, ``False`` when it applied to this process only.
        """
        miss = self._forget_here(token)
        tier = self._shared
        if tier is None:
            return False
        if await tier.delete(miss) and await tier.publish("invalidate", miss):
            return True
        return self._local_only("invalidate", miss)

    async def revoke(self, token: str) -> bool:
        """Refuse ``token`` from now until it expires, here and, with the shared tier, everywhere.

        The logout call: Wink has no revocation, so a forgotten token would verify again. A revoked
        token gets 401 ``invalid_token``. ``True`` when it reached the fleet, ``False`` when it
        applied to this process only.
        """
        miss, entry = self._revoke_here(token)
        tier = self._shared
        if tier is None:
            return False
        if await tier.put(miss, entry) and await tier.publish("revoke", miss):
            return True
        return self._local_only("revoke", miss)

    async def create_session(self, return_url: str, cancel_url: str) -> WinkSession:
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
            core.admit(len(self._inflight) + self._sessions_pending)
            self._sessions_pending += 1
            try:
                session: WinkSession = await self._drive(wink_exchange(core, call), None)
            finally:
                self._sessions_pending -= 1
        except AuthenticationFailed as error:
            core.session_failed(error)
            raise
        return session

    def _get_client(self) -> AsyncClient:
        if self._client is None:
            self._client = make_async_client(self.config)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this verifier made (a later verification makes a new one), and
        stop the shared tier's listener (and close the Redis client it made)."""
        if self._shared is not None:
            await self._shared.aclose()
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()
        elif client is not None:
            self._client = client

    async def __aenter__(self) -> AsyncWinkVerifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _retrieve_exception(task: asyncio.Task[WinkProfile]) -> None:
    # The call's outcome is delivered to its waiters; if every waiter was cancelled, nobody reads
    # the exception, and asyncio would log "Task exception was never retrieved".
    if not task.cancelled():
        task.exception()

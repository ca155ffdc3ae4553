"""AsyncWinkVerifier: token -> WinkProfile, for asyncio. Decisions live in ``_engine``; this does I/O."""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx

from wink_middleware._cache import ProfileCache
from wink_middleware._client import async_post, make_async_client, translate
from wink_middleware._clock import Clock
from wink_middleware._config import WinkConfig
from wink_middleware._engine import Miss, VerifierBase, token_bytes
from wink_middleware._exceptions import AuthenticationFailed, WinkUnavailable
from wink_middleware._profile import WinkProfile

__all__ = ["AsyncWinkVerifier"]


class AsyncWinkVerifier(VerifierBase):
    """Verifies Wink access tokens with an expiry-bounded cache and one call to Wink per cold token.

    ``client`` is an ``httpx.AsyncClient`` you own (it is not closed by :meth:`aclose`); without it,
    the verifier makes a pooled client on first use and closes it in :meth:`aclose`.
    ``clock`` and ``cache`` are injectable for tests and for a shared cache tier.
    """

    # One event loop drives an async verifier: its cache needs no lock.
    _threads = False

    def __init__(
        self,
        config: WinkConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        cache: ProfileCache | None = None,
    ) -> None:
        super().__init__(config, clock=clock, cache=cache)
        self._client = client
        self._owns_client = client is None
        self._inflight: dict[bytes, asyncio.Task[WinkProfile]] = {}

    async def verify(self, token: str) -> WinkProfile:
        """Return the profile of a valid token, or raise an :class:`AuthenticationFailed` subclass."""
        found = self.lookup(token_bytes(token))
        if type(found) is Miss:
            return await self.resolve(found)
        return found  # type: ignore[return-value]

    async def resolve(self, miss: Miss) -> WinkProfile:
        """The second step of verification: ask Wink about a :class:`Miss` from :meth:`lookup`.

        One shared call per token however many ask at once; a waiter that is cancelled does not
        cancel the call the others wait for.
        """
        task = self._inflight.get(miss.key)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            self._core.admit(len(self._inflight))
            self.stats.add("misses")
            task = asyncio.get_running_loop().create_task(self._fetch(miss))
            self._inflight[miss.key] = task
            task.add_done_callback(_retrieve_exception)
        else:
            self.stats.add("coalesced")
        return await asyncio.shield(task)

    async def _fetch(self, miss: Miss) -> WinkProfile:
        try:
            try:
                profile = await self._call(miss)
            except AuthenticationFailed as error:
                return self._core.failed(miss, error)
            return self._core.succeeded(miss, profile)
        finally:
            self._inflight.pop(miss.key, None)

    async def _call(self, miss: Miss) -> WinkProfile:
        core = self._core
        plan = core.retry_plan()
        body = core.request_body(miss)
        client = self._get_client()
        while True:
            core.before_attempt(miss)
            try:
                async with asyncio.timeout(plan.attempt_timeout()):
                    status, headers, content = await async_post(client, core.url, body)
            except (httpx.HTTPError, httpx.StreamError, OSError, TimeoutError) as exc:
                error = core.io_failed(miss, translate(exc))
            else:
                try:
                    return core.judge(miss, status, headers, content)
                except WinkUnavailable as exc:
                    error = exc
            delay = plan.next_delay()
            if delay is None:
                raise error
            await asyncio.sleep(delay)

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_async_client(self.config)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this verifier made (a later verification makes a new one)."""
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

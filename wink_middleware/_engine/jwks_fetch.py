"""The signature pre-filter's I/O: one key fetcher per twin, driving :class:`PreFilter`.

Each fetches the realm's key set with the verifier's client (timeout, 64 KiB cap, no redirects; no
retries, never counted in Wink's breaker or deadline), one fetch at a time however many requests
want it: in asyncio a shared task, in threads a lock (made again in a forked child, where another
thread of the parent may have held it).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable

from wink_middleware._engine.client import AsyncClient, Client, async_get, is_timeout, sync_get
from wink_middleware._engine.core import ColdToken
from wink_middleware._engine.jwks import PreFilter, screening

__all__ = ["AsyncKeyFetcher", "SyncKeyFetcher"]


def _failure(exc: BaseException, timeout: float) -> str:
    if is_timeout(exc):
        return f"the key set did not arrive within {timeout:g} s"
    return f"the key set could not be fetched ({type(exc).__name__})"


class AsyncKeyFetcher:
    """Screens a miss before it reaches Wink; fetches the keys in one task when they are needed."""

    def __init__(
        self,
        prefilter: PreFilter,
        url: str,
        timeout: float,
        client: Callable[[], AsyncClient],
    ) -> None:
        self._filter = prefilter
        self._url = url
        self._timeout = timeout
        self._client = client
        self._task: asyncio.Task[None] | None = None

    async def screen(self, miss: ColdToken) -> None:
        """Raise :class:`TokenRejected` when the realm's keys refuse the token; else return."""
        prefilter = self._filter
        screened = screening(miss.raw)
        task = self._task
        loop = asyncio.get_running_loop()
        if task is not None and (task.done() or task.get_loop() is not loop):
            task = None
        if task is None and prefilter.needs_fetch(screened.kid):
            task = self._task = loop.create_task(self._fetch(prefilter.begin_fetch()))
        if task is not None:
            # A cancelled waiter leaves the fetch running for the others.
            await asyncio.shield(task)
        prefilter.check(screened, miss.claims, miss.key, miss.fp)

    async def _fetch(self, started: float) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                status, body = await async_get(self._client(), self._url)
        # Whatever goes wrong with the key set turns the pre-filter off, never fails a request.
        except Exception as exc:
            self._filter.fetch_failed(_failure(exc, self._timeout), started)
        else:
            self._filter.fetched(status, body, started)


class SyncKeyFetcher:
    """:class:`AsyncKeyFetcher`'s twin for threads: one thread fetches, the others wait for it."""

    def __init__(
        self,
        prefilter: PreFilter,
        url: str,
        timeout: float,
        client: Callable[[], Client],
    ) -> None:
        self._filter = prefilter
        self._url = url
        self._timeout = timeout
        self._client = client
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._fetching = False

    def screen(self, miss: ColdToken) -> None:
        """Raise :class:`TokenRejected` when the realm's keys refuse the token; else return."""
        prefilter = self._filter
        screened = screening(miss.raw)
        if self._fetching or prefilter.needs_fetch(screened.kid):
            lock = self._lock_here()
            # A fetch ends within its timeout; a waiter that cannot get the lock by then goes on
            # without waiting longer (at worst Verify Client decides).
            if lock.acquire(timeout=self._timeout + 1.0):
                try:
                    if prefilter.needs_fetch(screened.kid):
                        self._fetch()
                finally:
                    lock.release()
        prefilter.check(screened, miss.claims, miss.key, miss.fp)

    def _lock_here(self) -> threading.Lock:
        if os.getpid() != self._pid:
            # A forked child: a thread of the parent may have held the lock, and is not here.
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._fetching = False
        return self._lock

    def _fetch(self) -> None:
        started = self._filter.begin_fetch()
        self._fetching = True
        try:
            status, body = sync_get(self._client(), self._url, timeout=self._timeout)
        except Exception as exc:
            self._filter.fetch_failed(_failure(exc, self._timeout), started)
        else:
            self._filter.fetched(status, body, started)
        finally:
            self._fetching = False

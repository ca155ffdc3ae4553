"""AsyncSharedTier: the shared tier's I/O on ``redis.asyncio``, for :class:`AsyncWinkVerifier`.

Every rule lives in :mod:`wink_middleware._shared.tier` and :mod:`wink_middleware._shared.envelope`;
this module sends the commands, bounds each by ``redis_timeout``, waits for wake-ups and runs the
invalidation listener task. Redis is an optimisation, never a gate: every failure here is logged,
counted and answered as "the tier had nothing", so the verifier carries on as without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wink_middleware._config import WinkConfig
from wink_middleware._engine.core import ColdToken, VerifierCore
from wink_middleware._logging import logger
from wink_middleware._shared.entry import SharedEntry
from wink_middleware._shared.tier import (
    PING_GRACE,
    PING_INTERVAL,
    POLL_INTERVAL,
    SHUTDOWN_BOUND,
    SharedTierBase,
    SharedTierDown,
    import_redis,
)

__all__ = ["AsyncSharedTier"]

T = TypeVar("T")


class AsyncSharedTier(SharedTierBase):
    """The shared tier of one :class:`AsyncWinkVerifier`. ``client`` is a ``redis.asyncio`` client
    the caller owns, or ``None`` to build one from ``redis_url`` on first use."""

    def __init__(self, config: WinkConfig, core: VerifierCore, client: Any = None) -> None:
        self._redis = import_redis()
        super().__init__(config, core)
        self._client = client
        self._owns_client = client is None
        self._release: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._wakeups: dict[bytes, tuple[asyncio.Event, list[str]]] = {}
        #: Closing steps that outlived their bound, kept referenced until they finish.
        self._stragglers: set[asyncio.Future[Any]] = set()

    def _get_client(self) -> Any:
        if self._client is None:
            config = self.config
            options = {
                "socket_timeout": config.redis_timeout,
                "socket_connect_timeout": config.redis_timeout,
            }
            if config.redis_cluster:
                self._client = self._redis.asyncio.RedisCluster.from_url(
                    config.redis_url, **options
                )
            else:
                self._client = self._redis.asyncio.Redis.from_url(config.redis_url, **options)
        return self._client

    async def _run(self, op: str, command: Callable[[Any], Awaitable[T]]) -> T:
        """Run one Redis command through the breaker, within ``redis_timeout``."""
        if self.breaker.allow() is not None:
            self.stats.add("shared_breaker_short_circuits")
            raise SharedTierDown
        started = self.core.clock.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                result = await command(self._get_client())
        except (self._redis.RedisError, OSError, TimeoutError) as exc:
            self.failed(op, exc, started)
            raise SharedTierDown from exc
        self.reached()
        self.done(op, started, "ok")
        return result

    # -- entries -----------------------------------------------------------------------------

    async def get(self, miss: ColdToken) -> SharedEntry | None:
        """The fleet's entry for the token, or ``None`` (absent, unreadable, Redis down)."""
        key = self.keys.entry_key(miss.key)
        try:
            value = await self._run("get", lambda r: r.get(key))
        except SharedTierDown:
            return self.looked_up(None, error=True)
        if value is None:
            return self.looked_up(None)
        entry = self.open(miss, value)
        if entry is None:
            with contextlib.suppress(SharedTierDown):
                await self._run("delete", lambda r: r.delete(key))
        return self.looked_up(entry)

    async def fill(self, miss: ColdToken, entry: SharedEntry) -> SharedEntry | None:
        """Write ``entry`` unless one is there (``NX``); return what was there instead, if any.

        ``NX`` keeps a revocation written meanwhile: the caller then takes that one.
        """
        sealed = self.seal(miss, entry)
        if sealed is None:
            return None
        key, value, px = sealed
        try:
            written = await self._run("set", lambda r: r.set(key, value, nx=True, px=px))
        except SharedTierDown:
            return None
        if written:
            return None
        return await self.get(miss)

    async def put(self, miss: ColdToken, entry: SharedEntry) -> bool:
        """Write ``entry`` over whatever is there (a revocation); whether Redis took it."""
        sealed = self.seal(miss, entry)
        if sealed is None:
            return False
        key, value, px = sealed
        try:
            await self._run("set", lambda r: r.set(key, value, px=px))
        except SharedTierDown:
            return False
        return True

    async def delete(self, miss: ColdToken) -> bool:
        """Forget the fleet's entry for the token; whether Redis took it."""
        key = self.keys.entry_key(miss.key)
        try:
            await self._run("delete", lambda r: r.delete(key))
        except SharedTierDown:
            return False
        return True

    # -- fleet single-flight -----------------------------------------------------------------

    async def acquire(self, miss: ColdToken) -> str | None:
        """Try to take the token's lease: its value if this process won, ``None`` if another holds
        it. Raises :class:`SharedTierDown` when Redis cannot say (the caller asks Wink itself)."""
        from wink_middleware._shared.envelope import lease_value

        value = lease_value()
        key = self.keys.lease_key(miss.key)
        px = int(self.lock_ttl * 1000)
        won = await self._run("lease", lambda r: r.set(key, value, nx=True, px=px))
        return value if won else None

    async def release(self, miss: ColdToken, lease: str) -> None:
        """Give the lease back, if it is still ours (compare-and-delete)."""
        from wink_middleware._shared.envelope import RELEASE_SCRIPT

        key = self.keys.lease_key(miss.key)
        with contextlib.suppress(SharedTierDown):
            await self._run("release", lambda r: r.eval(RELEASE_SCRIPT, 1, key, lease))

    async def announce(self, miss: ColdToken, kind: str) -> None:
        """Wake the processes waiting on this token's lease: ``fill`` or ``fail``."""
        from wink_middleware._shared.envelope import encode_message

        message = encode_message("fill" if kind == "fill" else "fail", miss.key)
        with contextlib.suppress(SharedTierDown):
            await self._run("publish", lambda r: r.publish(self.keys.fill_channel, message))

    async def wait(self, miss: ColdToken) -> SharedEntry | None:
        """Wait for the lease holder's answer: the entry it wrote, or ``None`` (it failed, the
        lease ended without an entry, or ``lock_ttl`` passed): then ask Wink."""
        self.ensure_listener()
        event = asyncio.Event()
        kinds: list[str] = []
        self._wakeups[miss.key] = (event, kinds)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lock_ttl
        lease_key = self.keys.lease_key(miss.key)
        try:
            while (left := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(POLL_INTERVAL, left)):
                        await event.wait()
                entry = await self.get(miss)
                if entry is not None or "fail" in kinds:
                    return entry
                try:
                    if not await self._run("lease", lambda r: r.exists(lease_key)):
                        # The holder is gone: done (its entry may have landed since our read)
                        # or dead.
                        return await self.get(miss)
                except SharedTierDown:
                    return None
            return None
        finally:
            self._wakeups.pop(miss.key, None)

    # -- invalidation messages ---------------------------------------------------------------

    async def publish(self, kind: str, miss: ColdToken) -> bool:
        """Tell every process to forget (``invalidate``) or refuse (``revoke``) the token."""
        message = self.invalidation(kind, miss.key)
        try:
            await self._run("publish", lambda r: r.publish(self.keys.channel, message))
        except SharedTierDown:
            return False
        self.stats.add("invalidations_sent")
        return True

    def ensure_listener(self) -> None:
        """Start the invalidation listener task on first use (and again if it ended)."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        backoff = 0.1
        reconnect = False
        attempt = 0
        while True:
            pubsub: Any = None
            attempt += 1
            try:
                async with asyncio.timeout(self.timeout * 4):
                    pubsub = await self._pubsub(attempt)
                    await pubsub.subscribe(self.keys.channel, self.keys.fill_channel)
                    confirmed = 0
                    while confirmed < 2:
                        message = await pubsub.get_message(timeout=self.timeout)
                        if message is not None and message["type"] == "subscribe":
                            confirmed += 1
                self.listener_up(reconnect)
                reconnect = True
                backoff = 0.1
                await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: drop shared answers, reconnect
                if _cancelling():
                    # Our cancel() reached us as another error (redis-py turns a cancelled read
                    # into a ConnectionError or TimeoutError): stop, do not reconnect.
                    raise asyncio.CancelledError from exc
                self.listener_lost(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                if pubsub is not None:
                    await self._bounded(pubsub.aclose(), "closing the listener's pub/sub")

    async def _bounded(self, step: Awaitable[Any], what: str) -> None:
        """Await ``step`` for at most ``redis_timeout``, in a task of its own: redis-py shields a
        pub/sub's teardown from cancellation, so a timeout around it would not bound it. What
        outlives the bound is logged and left to finish; its errors are dropped (debug log)."""
        task = asyncio.ensure_future(step)
        task.add_done_callback(_drop_outcome)
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        if not done:
            self._stragglers.add(task)
            task.add_done_callback(self._stragglers.discard)
            logger.debug("shared tier: %s took over %.2f s: left to finish", what, self.timeout)

    async def _pubsub(self, attempt: int) -> Any:
        """A pub/sub on the client. On a cluster, pinned to one node, the next one at each attempt:
        a cluster broadcasts ``PUBLISH`` to every node, so any live node (a replica too) serves."""
        client = self._get_client()
        if not isinstance(client, self._redis.asyncio.RedisCluster):
            return client.pubsub()
        await client.initialize()  # its pubsub needs the slot map; a no-op once loaded
        nodes = client.get_nodes()
        return client.pubsub(node=nodes[attempt % len(nodes)])

    async def _pump(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        last_seen = last_ping = loop.time()
        while True:
            message = await pubsub.get_message(timeout=PING_INTERVAL / 2)
            now = loop.time()
            if message is not None:
                last_seen = now
                if message["type"] == "message":
                    wakeup = self.received(message["data"])
                    if wakeup is not None:
                        self._wake(*wakeup)
            if now - last_seen > PING_GRACE:
                raise TimeoutError("Redis stopped answering the listener's pings")
            if now - last_ping >= PING_INTERVAL:
                last_ping = now
                await pubsub.ping()

    def _wake(self, kind: str, d: bytes) -> None:
        waiting = self._wakeups.get(d)
        if waiting is not None:
            waiting[1].append(kind)
            waiting[0].set()

    async def aclose(self) -> None:
        """Stop the listener and close the client this tier made, each within ``SHUTDOWN_BOUND``.

        A listener that outlives the bound is logged as a warning with its stack and left
        cancelled; a cancellation of the caller is never swallowed.
        """
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.add_done_callback(_drop_outcome)
            listener.cancel()
            done, _ = await asyncio.wait({listener}, timeout=SHUTDOWN_BOUND)
            if not done:
                logger.warning(
                    "shared tier: the invalidation listener did not stop within %.1f s of "
                    "cancel(); left behind:\n%s",
                    SHUTDOWN_BOUND,
                    _stack_of(listener),
                )
        self.listener = "off"
        client = self._client
        if client is not None and self._owns_client:
            self._client = None
            task = asyncio.ensure_future(client.aclose())
            task.add_done_callback(_drop_outcome)
            done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_BOUND)
            if not done:
                self._stragglers.add(task)
                task.add_done_callback(self._stragglers.discard)
                logger.warning(
                    "shared tier: closing the Redis client took over %.1f s: left to finish",
                    SHUTDOWN_BOUND,
                )


def _cancelling() -> bool:
    """Whether a cancel() of the current task is pending (it may have surfaced as another error)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _drop_outcome(task: asyncio.Future[Any]) -> None:
    """Retrieve a background step's outcome, so asyncio reports no "exception never retrieved"."""
    if not task.cancelled() and task.exception() is not None:
        logger.debug("shared tier: a closing step failed (%s)", type(task.exception()).__name__)


def _stack_of(task: asyncio.Task[Any]) -> str:
    buffer = io.StringIO()
    task.print_stack(file=buffer)
    return buffer.getvalue()

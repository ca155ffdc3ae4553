"""SyncSharedTier: the shared tier's I/O on ``redis.Redis``, for :class:`WinkVerifier` (threads).

The sync twin of :mod:`wink_middleware._shared.async_tier`: the same rules (in ``_shared_tier`` and
``_shared_protocol``), with the listener in a daemon thread started lazily, and again in a process
forked after it started (gunicorn ``--preload``). Redis commands are bounded by the client's socket
timeouts (``redis_timeout`` on a client built from ``redis_url``; set them on a client you pass).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
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

__all__ = ["SyncSharedTier"]

T = TypeVar("T")


class SyncSharedTier(SharedTierBase):
    """The shared tier of one :class:`WinkVerifier`. ``client`` is a ``redis.Redis`` the caller
    owns, or ``None`` to build one from ``redis_url`` on first use. Thread-safe."""

    def __init__(self, config: WinkConfig, core: VerifierCore, client: Any = None) -> None:
        self._redis = import_redis()
        super().__init__(config, core)
        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._listener_pid = 0
        self._stop = threading.Event()
        self._wakeups: dict[bytes, tuple[threading.Event, list[str]]] = {}
        self._wakeups_lock = threading.Lock()

    def _get_client(self) -> Any:
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    config = self.config
                    options = {
                        "socket_timeout": config.redis_timeout,
                        "socket_connect_timeout": config.redis_timeout,
                    }
                    factory = (
                        self._redis.RedisCluster if config.redis_cluster else self._redis.Redis
                    )
                    client = self._client = factory.from_url(config.redis_url, **options)
        return client

    def _run(self, op: str, command: Callable[[Any], T]) -> T:
        """Run one Redis command through the breaker (the client's socket timeouts bound it)."""
        if self.breaker.allow() is not None:
            self.stats.add("shared_breaker_short_circuits")
            raise SharedTierDown
        started = self.core.clock.monotonic()
        try:
            result = command(self._get_client())
        except (self._redis.RedisError, OSError, TimeoutError) as exc:
            self.failed(op, exc, started)
            raise SharedTierDown from exc
        self.reached()
        self.done(op, started, "ok")
        return result

    # -- entries -----------------------------------------------------------------------------

    def get(self, miss: ColdToken) -> SharedEntry | None:
        """The fleet's entry for the token, or ``None`` (absent, unreadable, Redis down)."""
        key = self.keys.entry_key(miss.key)
        try:
            value = self._run("get", lambda r: r.get(key))
        except SharedTierDown:
            return self.looked_up(None, error=True)
        if value is None:
            return self.looked_up(None)
        entry = self.open(miss, value)
        if entry is None:
            with contextlib.suppress(SharedTierDown):
                self._run("delete", lambda r: r.delete(key))
        return self.looked_up(entry)

    def fill(self, miss: ColdToken, entry: SharedEntry) -> SharedEntry | None:
        """Write ``entry`` unless one is there (``NX``); return what was there instead, if any."""
        sealed = self.seal(miss, entry)
        if sealed is None:
            return None
        key, value, px = sealed
        try:
            written = self._run("set", lambda r: r.set(key, value, nx=True, px=px))
        except SharedTierDown:
            return None
        if written:
            return None
        return self.get(miss)

    def put(self, miss: ColdToken, entry: SharedEntry) -> bool:
        """Write ``entry`` over whatever is there (a revocation); whether Redis took it."""
        sealed = self.seal(miss, entry)
        if sealed is None:
            return False
        key, value, px = sealed
        try:
            self._run("set", lambda r: r.set(key, value, px=px))
        except SharedTierDown:
            return False
        return True

    def delete(self, miss: ColdToken) -> bool:
        """Forget the fleet's entry for the token; whether Redis took it."""
        key = self.keys.entry_key(miss.key)
        try:
            self._run("delete", lambda r: r.delete(key))
        except SharedTierDown:
            return False
        return True

    # -- fleet single-flight -----------------------------------------------------------------

    def acquire(self, miss: ColdToken) -> str | None:
        """The lease's value if this process won it, ``None`` if another holds it; raises
        :class:`SharedTierDown` when Redis cannot say."""
        from wink_middleware._shared.envelope import lease_value

        value = lease_value()
        key = self.keys.lease_key(miss.key)
        px = int(self.lock_ttl * 1000)
        won = self._run("lease", lambda r: r.set(key, value, nx=True, px=px))
        return value if won else None

    def release(self, miss: ColdToken, lease: str) -> None:
        """Give the lease back, if it is still ours (compare-and-delete)."""
        from wink_middleware._shared.envelope import RELEASE_SCRIPT

        key = self.keys.lease_key(miss.key)
        with contextlib.suppress(SharedTierDown):
            self._run("release", lambda r: r.eval(RELEASE_SCRIPT, 1, key, lease))

    def announce(self, miss: ColdToken, kind: str) -> None:
        """Wake the processes waiting on this token's lease: ``fill`` or ``fail``."""
        from wink_middleware._shared.envelope import encode_message

        message = encode_message("fill" if kind == "fill" else "fail", miss.key)
        with contextlib.suppress(SharedTierDown):
            self._run("publish", lambda r: r.publish(self.keys.fill_channel, message))

    def wait(self, miss: ColdToken) -> SharedEntry | None:
        """Wait for the lease holder's answer: the entry it wrote, or ``None`` (then ask Wink)."""
        self.ensure_listener()
        event = threading.Event()
        kinds: list[str] = []
        with self._wakeups_lock:
            self._wakeups[miss.key] = (event, kinds)
        deadline = time.monotonic() + self.lock_ttl
        lease_key = self.keys.lease_key(miss.key)
        try:
            while (left := deadline - time.monotonic()) > 0:
                event.wait(min(POLL_INTERVAL, left))
                entry = self.get(miss)
                if entry is not None or "fail" in kinds:
                    return entry
                try:
                    if not self._run("lease", lambda r: r.exists(lease_key)):
                        # The holder is gone: done (its entry may have landed since our read)
                        # or dead.
                        return self.get(miss)
                except SharedTierDown:
                    return None
            return None
        finally:
            with self._wakeups_lock:
                self._wakeups.pop(miss.key, None)

    # -- invalidation messages ---------------------------------------------------------------

    def publish(self, kind: str, miss: ColdToken) -> bool:
        """Tell every process to forget (``invalidate``) or refuse (``revoke``) the token."""
        message = self.invalidation(kind, miss.key)
        try:
            self._run("publish", lambda r: r.publish(self.keys.channel, message))
        except SharedTierDown:
            return False
        self.stats.add("invalidations_sent")
        return True

    def ensure_listener(self) -> None:
        """Start the listener thread on first use, and again in a forked child or after a stop."""
        thread = self._listener
        if thread is not None and thread.is_alive() and self._listener_pid == os.getpid():
            return
        with self._client_lock:
            thread = self._listener
            if thread is not None and thread.is_alive() and self._listener_pid == os.getpid():
                return
            self._stop.clear()
            self._listener_pid = os.getpid()
            self._listener = threading.Thread(
                target=self._listen, name="wink-shared-tier-listener", daemon=True
            )
            self._listener.start()

    def _listen(self) -> None:
        backoff = 0.1
        reconnect = False
        attempt = 0
        while not self._stop.is_set():
            pubsub = None
            attempt += 1
            try:
                pubsub = self._pubsub(attempt)
                pubsub.subscribe(self.keys.channel, self.keys.fill_channel)
                confirmed = 0
                deadline = time.monotonic() + self.timeout * 4
                while confirmed < 2:
                    if time.monotonic() > deadline:
                        raise TimeoutError("Redis did not confirm the subscription")
                    message = pubsub.get_message(timeout=self.timeout)
                    if message is not None and message["type"] == "subscribe":
                        confirmed += 1
                self.listener_up(reconnect)
                reconnect = True
                backoff = 0.1
                self._pump(pubsub)
            except Exception as exc:  # any failure: drop shared answers, reconnect
                if self._stop.is_set():
                    break
                self.listener_lost(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
        self.listener = "off"

    def _pubsub(self, attempt: int) -> Any:
        """A pub/sub on the client. On a cluster, pinned to one node, the next one at each attempt:
        a cluster broadcasts ``PUBLISH`` to every node, so any live node (a replica too) serves."""
        client = self._get_client()
        if not isinstance(client, self._redis.RedisCluster):
            return client.pubsub()
        nodes = client.get_nodes()
        return client.pubsub(node=nodes[attempt % len(nodes)])

    def _pump(self, pubsub: Any) -> None:
        last_seen = last_ping = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=PING_INTERVAL / 2)
            now = time.monotonic()
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
                pubsub.ping()

    def _wake(self, kind: str, d: bytes) -> None:
        with self._wakeups_lock:
            waiting = self._wakeups.get(d)
        if waiting is not None:
            waiting[1].append(kind)
            waiting[0].set()

    def close(self) -> None:
        """Stop the listener thread and close the client this tier made."""
        self._stop.set()
        thread, self._listener = self._listener, None
        if thread is not None and thread.is_alive() and self._listener_pid == os.getpid():
            thread.join(timeout=SHUTDOWN_BOUND)
            if thread.is_alive():
                frame = sys._current_frames().get(thread.ident or -1)
                logger.warning(
                    "shared tier: the invalidation listener thread did not stop within %.1f s; "
                    "left behind (a daemon thread):\n%s",
                    SHUTDOWN_BOUND,
                    "".join(traceback.format_stack(frame)) if frame is not None else "",
                )
        self.listener = "off"
        client = self._client
        if client is not None and self._owns_client:
            self._client = None
            with contextlib.suppress(Exception):
                client.close()

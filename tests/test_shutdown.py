"""Shutdown is bounded and honest: ``aclose()`` / ``close()`` cancel (or stop) the shared tier's
listener, wait for it with a bound, log what outlives it, and never swallow the caller's own
cancellation.

The Redis clients here are fakes that misbehave the way redis-py can: a pub/sub teardown that
ignores ``cancel()`` (redis-py shields it), a cancelled read that surfaces as a
``ConnectionError``. The listener starts on a verification's first miss, as in production.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
import redis

from tests.helpers import closed
from wink_middleware import AsyncWinkVerifier, WinkVerifier
from wink_middleware.testing import WinkEmulator

pytestmark = pytest.mark.anyio

SHUTDOWN_BOUND = 5.0  # the bound the package documents for aclose() / close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Uncancellable(asyncio.Future[None]):
    """A future that ignores cancel(), as redis-py's shielded pub/sub teardown does."""

    def cancel(self, msg: Any = None) -> bool:
        return False


class FakeAsyncRedis:
    """Enough of ``redis.asyncio.Redis`` for the shared tier: an empty store that grants every
    lease. ``pubsub()`` returns ``make_pubsub(self)``."""

    def __init__(self, make_pubsub: Any) -> None:
        self.make_pubsub = make_pubsub
        self.pubsubs = 0

    async def get(self, key: str) -> None:
        return None

    async def set(self, key: str, value: bytes, **options: Any) -> bool:
        return True

    async def eval(self, *args: Any) -> int:
        return 1

    async def publish(self, channel: str, message: bytes) -> int:
        return 0

    async def exists(self, key: str) -> int:
        return 0

    async def delete(self, key: str) -> int:
        return 0

    def pubsub(self) -> Any:
        self.pubsubs += 1
        return self.make_pubsub(self)


class StuckPubSub:
    """A subscription that never confirms and whose wait ignores cancel()."""

    def __init__(self, client: FakeAsyncRedis) -> None:
        self.stuck = _Uncancellable()
        client.stuck = self.stuck  # type: ignore[attr-defined]

    async def subscribe(self, *channels: str) -> None:
        await self.stuck

    async def aclose(self) -> None:
        return None


class ConvertingPubSub:
    """Subscribes, then turns the cancellation of its read into a ``ConnectionError``."""

    def __init__(self, client: FakeAsyncRedis) -> None:
        self.confirmed = 0

    async def subscribe(self, *channels: str) -> None:
        return None

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        if self.confirmed < 2:
            self.confirmed += 1
            return {"type": "subscribe", "data": self.confirmed}
        try:
            await asyncio.sleep(timeout)
        except asyncio.CancelledError:
            raise redis.ConnectionError("read cancelled") from None
        return None

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def verified_once(emulator: WinkEmulator, client: FakeAsyncRedis) -> AsyncWinkVerifier:
    worker = emulator.async_verifier(redis=client, retries=0)
    await worker.verify(emulator.issue_token())  # a miss: starts the listener
    await asyncio.sleep(0.05)
    return worker


async def test_aclose_returns_within_its_bound_when_the_listener_ignores_cancel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = WinkEmulator(client_id="shutdown-client", client_secret="shutdown-secret")
    client = FakeAsyncRedis(StuckPubSub)
    worker = await verified_once(emulator, client)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="wink_middleware"):
        await closed(worker)
    took = time.monotonic() - started
    assert SHUTDOWN_BOUND - 0.5 < took < SHUTDOWN_BOUND + 2
    [record] = [r for r in caplog.records if "did not stop within" in r.getMessage()]
    assert "left behind" in record.getMessage()
    assert "subscribe" in record.getMessage()  # the stack of what outlived the bound
    assert worker.health()["listener"] == "off"
    # Let the stuck step finish: the cancel asked for at aclose() then ends the task.
    stuck: asyncio.Future[None] = client.stuck  # type: ignore[attr-defined]
    stuck.set_result(None)
    await asyncio.sleep(0.05)
    assert [t for t in asyncio.all_tasks() if "_listen" in repr(t)] == []


async def test_aclose_never_swallows_the_callers_cancellation() -> None:
    emulator = WinkEmulator(client_id="shutdown-client", client_secret="shutdown-secret")
    client = FakeAsyncRedis(StuckPubSub)
    worker = await verified_once(emulator, client)
    closing = asyncio.create_task(worker.aclose())
    await asyncio.sleep(0.1)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(1):  # far less than the bound: the cancel went through
            await closing
    assert closing.cancelled()
    client.stuck.set_result(None)  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)


async def test_a_cancel_that_redis_turns_into_a_connection_error_stops_the_listener() -> None:
    # The 3.11 hang: the listener caught the error its cancel() became, slept and reconnected
    # while "cancelling", so aclose() never returned and sockets piled up.
    emulator = WinkEmulator(client_id="shutdown-client", client_secret="shutdown-secret")
    client = FakeAsyncRedis(ConvertingPubSub)
    worker = await verified_once(emulator, client)
    assert worker.health()["listener"] == "up"
    started = time.monotonic()
    await closed(worker)
    assert time.monotonic() - started < 1.0
    connections = client.pubsubs
    await asyncio.sleep(0.5)  # a reconnecting listener would have opened more by now
    assert client.pubsubs == connections == 1
    assert [t for t in asyncio.all_tasks() if "_listen" in repr(t)] == []


class FakeSyncRedis:
    """Enough of ``redis.Redis`` for the sync tier; its pub/sub blocks until ``release`` is set,
    whatever the tier asks."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def get(self, key: str) -> None:
        return None

    def set(self, key: str, value: bytes, **options: Any) -> bool:
        return True

    def eval(self, *args: Any) -> int:
        return 1

    def publish(self, channel: str, message: bytes) -> int:
        return 0

    def exists(self, key: str) -> int:
        return 0

    def delete(self, key: str) -> int:
        return 0

    def pubsub(self) -> Any:
        return self

    def subscribe(self, *channels: str) -> None:
        self.release.wait()

    def get_message(self, timeout: float) -> None:
        return None

    def close(self) -> None:
        return None


def test_close_returns_within_its_bound_when_the_listener_thread_is_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = WinkEmulator(client_id="shutdown-client", client_secret="shutdown-secret")
    client = FakeSyncRedis()
    worker: WinkVerifier = emulator.verifier(redis=client, retries=0)
    worker.verify(emulator.issue_token())
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="wink_middleware"):
        worker.close()
    took = time.monotonic() - started
    client.release.set()
    assert SHUTDOWN_BOUND - 0.5 < took < SHUTDOWN_BOUND + 2
    [record] = [r for r in caplog.records if "did not stop within" in r.getMessage()]
    assert "subscribe" in record.getMessage()  # the stack of the stuck thread

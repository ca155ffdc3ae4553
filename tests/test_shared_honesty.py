"""The shared tier tells the truth about Redis, and a Redis that never answered costs nothing:
``health()`` reads ``shared: down`` until Redis has answered once, a listener that never connected
warns once and keeps the local answers, and a dead Redis makes no more Wink calls than no tier."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.helpers import closed
from wink_middleware import AsyncWinkVerifier, WinkVerifier
from wink_middleware.testing import WinkEmulator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

NOBODY = "redis://127.0.0.1:1/0"  # refused: no Redis listens there


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator() -> WinkEmulator:
    return WinkEmulator(client_id="honest-client", client_secret="honest-secret")


async def verify_for(worker: AsyncWinkVerifier, tokens: list[str], seconds: float) -> None:
    """Ask for every token again and again for ``seconds`` (the listener fails and retries
    meanwhile, with its backoff of 0.1, 0.2, 0.4, 0.8 s...)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for token in tokens:
            await worker.verify(token)
        await asyncio.sleep(0.05)


async def test_health_reads_shared_down_until_redis_has_answered_once(
    emulator: WinkEmulator, redis_url: str
) -> None:
    worker = emulator.async_verifier(redis_url=redis_url, retries=0)
    try:
        assert worker.health() == {"wink": "closed", "shared": "down", "listener": "off"}
        await worker.verify(emulator.issue_token())
        assert worker.health()["shared"] == "up"
    finally:
        await closed(worker)


async def test_health_reads_shared_down_with_a_redis_that_never_answered(
    emulator: WinkEmulator,
) -> None:
    worker = emulator.async_verifier(redis_url=NOBODY, retries=0)
    try:
        await verify_for(worker, [emulator.issue_token()], 0.5)
        assert worker.health() == {"wink": "closed", "shared": "down", "listener": "down"}
    finally:
        await closed(worker)


def test_the_sync_twin_reads_shared_down_until_redis_has_answered_once(
    emulator: WinkEmulator, redis_url: str
) -> None:
    worker: WinkVerifier = emulator.verifier(redis_url=redis_url, retries=0)
    try:
        assert worker.health()["shared"] == "down"
        worker.verify(emulator.issue_token())
        assert worker.health()["shared"] == "up"
    finally:
        worker.close()


async def test_a_listener_that_never_connected_warns_once_at_the_first_failure(
    emulator: WinkEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    worker = emulator.async_verifier(redis_url=NOBODY, retries=0)
    try:
        with caplog.at_level(logging.DEBUG, logger="wink_middleware"):
            await verify_for(worker, [emulator.issue_token()], 1.6)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        subscribe = [r for r in warnings if "cannot subscribe to Redis" in r.getMessage()]
        assert len(subscribe) == 1, [r.getMessage() for r in warnings]
        assert "dropping cached profiles" not in caplog.text
    finally:
        await closed(worker)


async def test_a_listener_that_never_connected_keeps_the_local_answers(
    emulator: WinkEmulator,
) -> None:
    worker = emulator.async_verifier(redis_url=NOBODY, retries=0)
    try:
        tokens = [emulator.issue_token() for _ in range(4)]
        await verify_for(worker, tokens, 1.6)  # several failed connections meanwhile
        assert emulator.calls == len(tokens)
        assert worker.stats.hits > 0
    finally:
        await closed(worker)


async def test_a_dead_redis_makes_no_more_wink_calls_than_no_tier(
    emulator: WinkEmulator,
) -> None:
    tokens = [emulator.issue_token() for _ in range(8)]
    without = emulator.async_verifier(retries=0)
    try:
        await verify_for(without, tokens, 1.6)
    finally:
        await closed(without)
    calls_without_the_tier = emulator.calls
    dead = emulator.async_verifier(redis_url=NOBODY, retries=0)
    try:
        await verify_for(dead, tokens, 1.6)
    finally:
        await closed(dead)
    assert calls_without_the_tier == len(tokens)
    assert emulator.calls - calls_without_the_tier == calls_without_the_tier


def test_the_sync_twin_with_a_dead_redis_makes_no_more_wink_calls_than_no_tier(
    emulator: WinkEmulator,
) -> None:
    tokens = [emulator.issue_token() for _ in range(8)]
    dead: WinkVerifier = emulator.verifier(redis_url=NOBODY, retries=0)
    try:
        deadline = time.monotonic() + 1.6
        while time.monotonic() < deadline:
            for token in tokens:
                dead.verify(token)
            time.sleep(0.05)
    finally:
        dead.close()
    assert emulator.calls == len(tokens)

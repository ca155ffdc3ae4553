"""Shared test helpers: config, JWT-shaped tokens, Wink profile bodies, threads. The one helper module.

The fake clock is the shipped :class:`wink_middleware.testing.FakeClock`; the fake Wink is
``tests/stub.py``. Test modules import from these two, never from each other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from wink_middleware import AsyncWinkVerifier, WinkConfig
from wink_middleware.testing import FakeClock, WinkEmulator

if TYPE_CHECKING:
    import pytest

__all__ = [
    "BASE_URL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "NOW",
    "VERIFY_URL",
    "FakeClock",
    "closed",
    "config",
    "iso",
    "make_token",
    "open_when_all_wait",
    "profile_json",
    "run_threads",
]

CLIENT_ID = "test-client"
CLIENT_SECRET = "s3cr3t-never-printed"
BASE_URL = "https://wink.test"
VERIFY_URL = f"{BASE_URL}/api/ConfidentialClient/verify-client"
NOW = 1_800_000_000.0  # a fixed wall-clock instant (2027-01-15)


def config(**options: Any) -> WinkConfig:
    """The tests' config: our client, the stub's URL, retries off unless asked."""
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": BASE_URL,
        "retries": 0,
    }
    values.update(options)
    return WinkConfig(**values)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_token(
    *,
    exp: float | None = None,
    ttl: float = 300.0,
    now: float = NOW,
    azp: str | None = CLIENT_ID,
    sub: str = "4b15e1bc-d098-4555-bd12-4e904775a413",
    padding: int = 0,
    **claims: Any,
) -> str:
    """A JWT-shaped token (unsigned: the middleware never trusts its claims)."""
    payload: dict[str, Any] = {"iat": int(now), "sub": sub, **claims}
    payload["exp"] = exp if exp is not None else int(now + ttl)
    if azp is not None:
        payload["azp"] = azp
    if padding:
        payload["pad"] = "x" * padding
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(payload)}.c2lnbmF0dXJl"


def iso(epoch: float) -> str:
    """``epoch`` as Wink writes an ``expiryTime``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def profile_json(**overrides: Any) -> dict[str, Any]:
    """Wink's Verify Client answer, as in its docs."""
    data: dict[str, Any] = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "contactNo": "(875) 945-3854",
        "email": "ada@example.com",
        "winkTag": ";ada",
        "winkToken": "4b15e1bc-d098-4555-bd12-4e904775a413",
        "dateOfBirth": "**/**/1983",
        "expiryTime": iso(NOW + 300),
    }
    data.update(overrides)
    return data


def run_threads(count: int, target: Callable[[], Any]) -> list[Any]:
    """Start ``count`` threads together on ``target()``; return each one's result or exception."""
    barrier = threading.Barrier(count)

    def run() -> Any:
        barrier.wait()
        try:
            return target()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))


class _Counted(Protocol):
    @property
    def stats(self) -> Any: ...


def open_when_all_wait(wink: _Counted, followers: int, gate: threading.Event) -> None:
    """Open ``gate`` once ``followers`` threads are waiting on the leader's call to Wink."""
    deadline = time.monotonic() + 10
    while wink.stats.coalesced < followers and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()


async def closed(worker: AsyncWinkVerifier, bound: float = 10.0) -> None:
    """``aclose()``, bounded from outside too: ``aclose()`` has its own bound, so a teardown that
    still hangs fails here with every task's stack instead of hanging the run."""
    try:
        async with asyncio.timeout(bound):
            await worker.aclose()
    except TimeoutError:
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
        raise


@contextmanager
def cli_emulator(
    monkeypatch: pytest.MonkeyPatch, client_id: str, client_secret: str
) -> Iterator[WinkEmulator]:
    """A real emulator server, and the WINK_* environment pointing the console script at it."""
    emulator = WinkEmulator(client_id=client_id, client_secret=client_secret)
    with emulator.serve() as base_url:
        monkeypatch.setenv("WINK_BASE_URL", base_url)
        monkeypatch.setenv("WINK_CLIENT_ID", client_id)
        monkeypatch.setenv("WINK_CLIENT_SECRET", client_secret)
        monkeypatch.setenv("WINK_RETRIES", "0")
        yield emulator


def one_line(text: str) -> str:
    """The only line of a console script's output, which must hold no traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]

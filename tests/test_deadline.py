"""No request waits on Wink past its deadline, whatever Wink does: hang, trickle, slow headers.

Each test runs a misbehaving TCP server on 127.0.0.1 and a real httpx client against it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import pytest

from tests.helpers import FakeClock, config, make_token
from wink_middleware import AsyncWinkVerifier, WinkUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUT = 0.3


@asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[str]:
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with suppress(ConnectionError, asyncio.CancelledError):
            await handler(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in writers:
            writer.close()
        server.close()


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    await asyncio.sleep(60)


async def slow_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(TIMEOUT / 4)


async def trickle_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    )
    await writer.drain()
    for _ in range(5000):
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(TIMEOUT / 4)


async def reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"winkToken": "ab')
    await writer.drain()
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    import socket
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@pytest.mark.parametrize(
    "handler", [hang, slow_headers, trickle_body], ids=["hang", "slow-headers", "trickle"]
)
@pytest.mark.parametrize("retries", [0, 2])
async def test_a_misbehaving_wink_never_holds_a_request_past_the_deadline(
    handler: Handler, retries: int
) -> None:
    async with tcp_server(handler) as base_url:
        wink = AsyncWinkVerifier(config(base_url=base_url, timeout=TIMEOUT, retries=retries))
        started = time.monotonic()
        with pytest.raises(WinkUnavailable):
            await wink.verify(make_token())
        elapsed = time.monotonic() - started
        await wink.aclose()
    deadline = TIMEOUT * (retries + 1)
    assert elapsed < deadline + 0.5, f"waited {elapsed:.2f}s for a {deadline:.2f}s deadline"


async def test_a_connection_reset_mid_body_is_unavailable() -> None:
    async with tcp_server(reset_mid_body) as base_url:
        wink = AsyncWinkVerifier(config(base_url=base_url), clock=FakeClock())
        with pytest.raises(WinkUnavailable):
            await wink.verify(make_token())
        await wink.aclose()


async def test_connection_refused_is_unavailable() -> None:
    async with tcp_server(hang) as base_url:
        pass  # the server is closed: its port now refuses connections
    wink = AsyncWinkVerifier(config(base_url=base_url), clock=FakeClock())
    with pytest.raises(WinkUnavailable, match="could not be reached"):
        await wink.verify(make_token())
    await wink.aclose()

"""Wink's answer body is capped as received: an encoded body is never decoded.

We ask Wink for ``Accept-Encoding: identity``. A gzip answer sent anyway could decode to far more
than the 64 KiB cap (a few KB of gzip is tens of MB of JSON), and decoding it before counting
took a worker from 36 to 715 MB. Both twins, over a real socket.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import tracemalloc
from collections.abc import Callable

import httpx
import pytest

from tests.helpers import config, make_token, profile_json
from tests.raw_tcp import raw_server
from wink_middleware import AsyncWinkVerifier, WinkBadResponse, WinkConfig, WinkVerifier

pytestmark = pytest.mark.slow

# 32 MB of JSON-ish padding: about 32 KB once gzipped, under the cap as sent.
BOMB = gzip.compress(b'{"winkToken": "' + b"0" * (32 * 1024 * 1024) + b'"}')
# Far below the decoded size: only the bytes as received (at most the cap) may be held.
PEAK_ALLOWED = 4 * 1024 * 1024


def encoded_answer(body: bytes, encoding: str) -> Callable[[socket.socket, threading.Event], None]:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + body
        )

    return handler


def config_for(url: str) -> WinkConfig:
    return config(base_url=url, retries=0)


def peak_of(run: Callable[[], object]) -> tuple[object, int]:
    tracemalloc.start()
    try:
        try:
            result: object = run()
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_from_wink_is_a_502_and_never_decoded_by_the_sync_verifier() -> None:
    assert len(BOMB) < 64 * 1024
    with raw_server(encoded_answer(BOMB, "gzip")) as wink:
        verifier = WinkVerifier(config_for(wink.url))
        try:
            error, peak = peak_of(lambda: verifier.verify(make_token()))
        finally:
            verifier.close()
    assert isinstance(error, WinkBadResponse)
    assert error.status_code == 502
    assert "content-encoded" in str(error)
    assert peak < PEAK_ALLOWED


def test_a_gzip_bomb_from_wink_is_a_502_and_never_decoded_by_the_async_verifier() -> None:
    async def verify(url: str) -> object:
        verifier = AsyncWinkVerifier(config_for(url))
        try:
            return await verifier.verify(make_token())
        finally:
            await verifier.aclose()

    with raw_server(encoded_answer(BOMB, "gzip")) as wink:
        error, peak = peak_of(lambda: asyncio.run(verify(wink.url)))
    assert isinstance(error, WinkBadResponse)
    assert "content-encoded" in str(error)
    assert peak < PEAK_ALLOWED


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-unknown"])
def test_any_content_encoding_on_a_2xx_is_a_bad_response(encoding: str) -> None:
    # Even a small, valid profile: we asked for identity, and an encoded body is not read.
    body = httpx.Response(200, json=profile_json()).content
    with raw_server(encoded_answer(body, encoding)) as wink:
        verifier = WinkVerifier(config_for(wink.url))
        try:
            with pytest.raises(WinkBadResponse, match="content-encoded"):
                verifier.verify(make_token())
        finally:
            verifier.close()


def test_an_identity_encoded_answer_is_read_as_usual() -> None:
    body = httpx.Response(200, json=profile_json()).content
    with raw_server(encoded_answer(body, "identity")) as wink:
        verifier = WinkVerifier(config_for(wink.url))
        try:
            assert verifier.verify(make_token()).email == "ada@example.com"
        finally:
            verifier.close()

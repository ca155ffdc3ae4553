"""AsyncWinkVerifier's own I/O: the call to Wink, its deadline, single-flight in asyncio, lifecycle.

The decisions it shares with the sync twin (pre-check, classification, cache rules, stale-if-error,
the breaker, retry counts) are tested once, on the core, in ``test_engine.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    VERIFY_URL,
    FakeClock,
    config,
    make_token,
    profile_json,
)
from tests.stub import WinkStub, verifier
from wink_middleware import (
    AsyncWinkVerifier,
    AuthenticationFailed,
    Miss,
    TokenRejected,
    WinkBadResponse,
    WinkProfile,
    WinkUnavailable,
    __version__,
)

pytestmark = pytest.mark.anyio

TOKEN = make_token()


# -- calling Wink -------------------------------------------------------------------------------


async def test_verify_returns_the_profile_from_wink() -> None:
    stub = WinkStub()
    profile = await verifier(stub).verify(TOKEN)
    assert isinstance(profile, WinkProfile)
    assert profile.email == "ada@example.com"


async def test_request_is_a_json_post_with_pascal_case_credentials() -> None:
    stub = WinkStub()
    await verifier(stub).verify(TOKEN)
    request = stub.requests[0]
    assert request.method == "POST"
    assert str(request.url) == VERIFY_URL
    assert stub.last_body() == {
        "ClientId": CLIENT_ID,
        "AccessToken": TOKEN,
        "ClientSecret": CLIENT_SECRET,
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert "authorization" not in request.headers


async def test_default_client_sends_our_user_agent() -> None:
    stub = WinkStub()
    wink = AsyncWinkVerifier(config(), clock=FakeClock())
    import respx

    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(VERIFY_URL).mock(side_effect=stub.handler)
        await wink.verify(TOKEN)
        assert route.call_count == 1
    assert stub.requests[0].headers["user-agent"] == f"wink-middleware/{__version__}"
    await wink.aclose()


async def test_body_of_64k_is_read_but_not_more() -> None:
    big = profile_json(pad="x" * (60 * 1024))
    assert (await verifier(WinkStub(httpx.Response(200, json=big))).verify(TOKEN)).extra["pad"]

    streamed = httpx.Response(200, stream=httpx.ByteStream(b"{" + b" " * (64 * 1024 + 10) + b"}"))
    with pytest.raises(WinkBadResponse, match="longer than"):
        await verifier(WinkStub(streamed)).verify(TOKEN)

    # A declared Content-Length over 64 KiB is refused before reading.
    for declared in (
        httpx.Response(200, json=profile_json(pad="x" * 70_000)),
        httpx.Response(200, content=b" " * 10_000_000),
    ):
        with pytest.raises(WinkBadResponse, match="longer than"):
            await verifier(WinkStub(declared)).verify(TOKEN)


async def test_a_hanging_wink_times_out_per_attempt() -> None:
    stub = WinkStub(delay=30)
    wink = verifier(stub, timeout=0.05)
    started = time.monotonic()
    with pytest.raises(WinkUnavailable, match="in time"):
        await wink.verify(TOKEN)
    assert time.monotonic() - started < 5


async def test_no_httpx_or_json_exception_escapes() -> None:
    replies: list[Any] = [
        httpx.HTTPError("generic"),
        httpx.TransportError("t"),
        httpx.UnsupportedProtocol("u"),
        httpx.ProxyError("p"),
        httpx.LocalProtocolError("l"),
        httpx.StreamConsumed(),
        httpx.Response(200, content=b"{bad json"),
        httpx.Response(200, content=b"NaN"),
        httpx.Response(200, content=b'"\\ud800"'),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.DecodingError("gzip"),
        OSError("network down"),
    ]
    for reply in replies:
        with pytest.raises(AuthenticationFailed):
            await verifier(WinkStub(reply)).verify(TOKEN)


# -- the deadline -------------------------------------------------------------------------------


async def test_retries_stay_inside_one_overall_deadline() -> None:
    stub = WinkStub(delay=30)
    # The real clock: on a fake one the deadline never comes and only the jittered backoff ends it.
    wink = AsyncWinkVerifier(config(timeout=0.1, retries=5), client=stub.client())
    started = time.monotonic()
    with pytest.raises(WinkUnavailable):
        await wink.verify(TOKEN)
    elapsed = time.monotonic() - started
    assert elapsed < 0.1 * 6 + 1.0
    assert stub.calls <= 6


# -- single-flight ------------------------------------------------------------------------------


async def test_100_concurrent_verifies_of_a_cold_token_make_one_call() -> None:
    stub = WinkStub(delay=0.05)
    wink = verifier(stub)
    profiles = await asyncio.gather(*(wink.verify(TOKEN) for _ in range(100)))
    assert stub.calls == 1
    assert all(p is profiles[0] for p in profiles)
    assert (wink.stats.misses, wink.stats.coalesced) == (1, 99)


async def test_concurrent_distinct_tokens_make_one_call_each() -> None:
    stub = WinkStub(delay=0.02)
    wink = verifier(stub)
    tokens = [make_token(sub=f"u{i}") for i in range(10)]
    await asyncio.gather(*(wink.verify(t) for t in tokens for _ in range(10)))
    assert stub.calls == 10


async def test_cancelling_one_waiter_does_not_cancel_the_shared_call() -> None:
    stub = WinkStub(delay=0.05)
    wink = verifier(stub)
    first = asyncio.create_task(wink.verify(TOKEN))
    others = [asyncio.create_task(wink.verify(TOKEN)) for _ in range(5)]
    await asyncio.sleep(0.01)
    first.cancel()
    results = await asyncio.gather(*others)
    assert all(p.wink_tag == ";ada" for p in results)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert stub.calls == 1


async def test_call_completes_and_caches_even_if_every_waiter_is_cancelled() -> None:
    stub = WinkStub(delay=0.03)
    wink = verifier(stub)
    task = asyncio.create_task(wink.verify(TOKEN))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.05)
    await wink.verify(TOKEN)
    assert stub.calls == 1


async def test_a_transient_failure_is_shared_with_that_calls_waiters_only() -> None:
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()), delay=0.03)
    wink = verifier(stub)
    results = await asyncio.gather(*(wink.verify(TOKEN) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, WinkUnavailable) for r in results)
    assert stub.calls == 1
    assert (await wink.verify(TOKEN)).wink_tag == ";ada"
    assert stub.calls == 2


async def test_only_one_probe_is_let_through_while_half_open() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()), delay=0.02)
    wink = verifier(stub, clock, breaker_threshold=1, breaker_cooldown=5)
    with pytest.raises(WinkUnavailable):
        await wink.verify(make_token(sub="down"))
    clock.advance(5)
    tokens = [make_token(sub=f"user-{i}") for i in range(5)]
    results = await asyncio.gather(*(wink.verify(t) for t in tokens), return_exceptions=True)
    assert stub.calls == 2
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, WinkUnavailable) for r in results if isinstance(r, BaseException))


# -- lifecycle ----------------------------------------------------------------------------------


async def test_aclose_closes_the_client_it_made_and_a_new_one_is_made_lazily() -> None:
    stub = WinkStub()
    import respx

    async with AsyncWinkVerifier(config(), clock=FakeClock()) as wink:
        with respx.mock() as mock:
            mock.post(VERIFY_URL).mock(side_effect=stub.handler)
            await wink.verify(TOKEN)
            first_client = wink._client
            await wink.aclose()
            assert first_client is not None and first_client.is_closed
            await wink.invalidate(TOKEN)
            await wink.verify(TOKEN)
            assert wink._client is not None and wink._client is not first_client
    assert stub.calls == 2


async def test_aclose_leaves_an_injected_client_open() -> None:
    client = WinkStub().client()
    wink = AsyncWinkVerifier(config(), client=client)
    await wink.aclose()
    assert not client.is_closed
    await client.aclose()


def test_verifier_needs_a_config() -> None:
    from wink_middleware import WinkConfigError

    with pytest.raises(WinkConfigError):
        AsyncWinkVerifier({"client_id": "x"})  # type: ignore[arg-type]


def test_verifier_repr_hides_the_secret() -> None:
    text = repr(verifier(WinkStub()))
    assert CLIENT_SECRET not in text and CLIENT_ID in text


@pytest.mark.parametrize("status", [200, 401], ids=["valid", "rejected"])
async def test_a_miss_resolved_after_another_call_for_its_token_ended_makes_no_second_call(
    status: int,
) -> None:
    stub = WinkStub() if status == 200 else WinkStub(httpx.Response(status))
    wink = verifier(stub)
    miss = wink.lookup(TOKEN.encode())
    assert isinstance(miss, Miss)
    if status == 200:
        assert (await wink.verify(TOKEN)).wink_token == (await wink.resolve(miss)).wink_token
    else:
        with pytest.raises(TokenRejected):
            await wink.verify(TOKEN)
        with pytest.raises(TokenRejected):
            await wink.resolve(miss)
    assert stub.calls == 1
    assert wink.stats.coalesced == 1

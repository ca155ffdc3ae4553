"""AsyncWinkVerifier: pre-check, cache rules, single-flight, classification, retries (DESIGN §7)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import httpx
import pytest

from tests.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    NOW,
    VERIFY_URL,
    FakeClock,
    make_token,
    profile_json,
)
from tests.wink_stub import WinkStub, config, verifier
from wink_middleware import (
    AsyncWinkVerifier,
    AuthenticationFailed,
    InvalidRequest,
    TokenRejected,
    WinkBadResponse,
    WinkProfile,
    WinkUnavailable,
    __version__,
)

pytestmark = pytest.mark.anyio

TOKEN = make_token()


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


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


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_definitive_statuses_reject_the_token(status: int) -> None:
    stub = WinkStub(httpx.Response(status))
    with pytest.raises(TokenRejected) as info:
        await verifier(stub).verify(TOKEN)
    assert info.value.status_code == 401


async def test_403_is_logged_apart_as_a_possible_firewall(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wink_middleware")
    with pytest.raises(TokenRejected):
        await verifier(WinkStub(httpx.Response(403))).verify(TOKEN)
    assert any(
        "firewall" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_mean_wink_unavailable(status: int) -> None:
    stub = WinkStub(httpx.Response(status))
    wink = verifier(stub)
    with pytest.raises(WinkUnavailable) as info:
        await wink.verify(TOKEN)
    assert info.value.status_code == 503
    assert info.value.retry_after >= 1


async def test_retry_after_from_wink_is_passed_on() -> None:
    stub = WinkStub(httpx.Response(429, headers={"Retry-After": "12"}))
    with pytest.raises(WinkUnavailable) as info:
        await verifier(stub).verify(TOKEN)
    assert info.value.retry_after == 12


@pytest.mark.parametrize("status", [204, 301, 302, 405, 409, 418])
async def test_unexpected_statuses_are_a_bad_response(status: int) -> None:
    with pytest.raises(WinkBadResponse):
        await verifier(WinkStub(httpx.Response(status))).verify(TOKEN)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html><body>Gateway</body></html>"),
        httpx.Response(200, content=b'{"firstName": "Ada", "winkTo'),
        httpx.Response(200, json=[profile_json()]),
        httpx.Response(200, json=profile_json(email=42)),
        httpx.Response(200, json=profile_json(winkToken="")),
        httpx.Response(200, content=b""),
        httpx.Response(200, content=b"\xff\xfe\x00"),
        httpx.Response(200, content=b"[" * 100_000),
        httpx.Response(200, json=profile_json(pad="x" * 70_000)),
        httpx.Response(200, content=b" " * 10_000_000),
    ],
    ids=[
        "html",
        "truncated",
        "list",
        "wrong-type",
        "no-wink-token",
        "empty",
        "binary",
        "deep",
        "over-64k",
        "10mb",
    ],
)
async def test_unusable_2xx_bodies_are_a_bad_response(response: httpx.Response) -> None:
    stub = WinkStub(response)
    wink = verifier(stub)
    with pytest.raises(WinkBadResponse) as info:
        await wink.verify(TOKEN)
    assert info.value.status_code == 502
    with pytest.raises(WinkBadResponse):
        await wink.verify(TOKEN)
    assert stub.calls == 2, "a bad response is never cached"


async def test_body_of_64k_is_read_but_not_more() -> None:
    big = profile_json(pad="x" * (60 * 1024))
    assert (await verifier(WinkStub(httpx.Response(200, json=big))).verify(TOKEN)).extra["pad"]

    streamed = httpx.Response(200, stream=httpx.ByteStream(b"{" + b" " * (64 * 1024 + 10) + b"}"))
    with pytest.raises(WinkBadResponse, match="longer than"):
        await verifier(WinkStub(streamed)).verify(TOKEN)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("dropped"),
        httpx.WriteError("broken pipe"),
        httpx.PoolTimeout("busy"),
        OSError("network down"),
    ],
)
async def test_transport_errors_mean_wink_unavailable(error: Exception) -> None:
    with pytest.raises(WinkUnavailable) as info:
        await verifier(WinkStub(error)).verify(TOKEN)
    assert isinstance(info.value.__cause__, type(error))


async def test_decoding_error_is_a_bad_response() -> None:
    with pytest.raises(WinkBadResponse):
        await verifier(WinkStub(httpx.DecodingError("gzip"))).verify(TOKEN)


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
    ]
    for reply in replies:
        with pytest.raises(AuthenticationFailed):
            await verifier(WinkStub(reply)).verify(TOKEN)


# -- retries ------------------------------------------------------------------------------------


async def test_transient_failure_is_retried_once_by_default() -> None:
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()))
    wink = verifier(stub, retries=1)
    assert (await wink.verify(TOKEN)).wink_tag == ";ada"
    assert stub.calls == 2


async def test_retries_stop_after_the_configured_count() -> None:
    stub = WinkStub(httpx.Response(502))
    with pytest.raises(WinkUnavailable):
        await verifier(stub, retries=2).verify(TOKEN)
    assert stub.calls == 3


@pytest.mark.parametrize("reply", [httpx.Response(401), httpx.Response(200, text="<html>")])
async def test_definitive_answers_are_not_retried(reply: httpx.Response) -> None:
    stub = WinkStub(reply)
    with pytest.raises(AuthenticationFailed):
        await verifier(stub, retries=3).verify(TOKEN)
    assert stub.calls == 1


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


# -- pre-check ----------------------------------------------------------------------------------


async def test_precheck_rejects_an_expired_jwt_without_calling_wink() -> None:
    stub = WinkStub()
    wink = verifier(stub)
    with pytest.raises(TokenRejected, match="expired"):
        await wink.verify(make_token(exp=NOW - 10))
    assert stub.calls == 0
    assert wink.stats.local_rejections == 1


async def test_precheck_counts_a_token_expiring_within_leeway_as_expired() -> None:
    stub = WinkStub()
    with pytest.raises(TokenRejected, match="expired"):
        await verifier(stub, leeway=5).verify(make_token(exp=NOW + 5))
    assert stub.calls == 0


async def test_precheck_rejects_a_token_issued_to_another_client() -> None:
    stub = WinkStub()
    with pytest.raises(TokenRejected, match="another client"):
        await verifier(stub).verify(make_token(azp="someone-else"))
    assert stub.calls == 0


async def test_precheck_never_accepts_on_unverified_claims() -> None:
    stub = WinkStub(httpx.Response(401))
    with pytest.raises(TokenRejected):
        await verifier(stub).verify(make_token(exp=NOW + 3600))
    assert stub.calls == 1


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token",
        "a.b.c",
        "a.e30.c.d",
        "e30.W10.x",
        "a.eyJleHAiOiAiYSJ9.c",
        "a..c",
        "x.bnVsbA.y",
    ],
)
async def test_precheck_does_not_judge_tokens_it_cannot_decode(token: str) -> None:
    stub = WinkStub()
    await verifier(stub).verify(token)
    assert stub.calls == 1


async def test_precheck_off_sends_everything_to_wink() -> None:
    stub = WinkStub(httpx.Response(401))
    with pytest.raises(TokenRejected):
        await verifier(stub, precheck=False).verify(make_token(exp=NOW - 10))
    assert stub.calls == 1


async def test_local_rejections_are_negative_cached() -> None:
    wink = verifier(WinkStub())
    token = make_token(azp="other")
    for _ in range(2):
        with pytest.raises(TokenRejected):
            await wink.verify(token)
    assert wink.stats.local_rejections == 1
    assert wink.stats.negative_hits == 1


# -- verify() input -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "a b", "tok\n", "é", "=abc", "x" * 4097])
async def test_verify_refuses_ill_formed_tokens_locally(token: str) -> None:
    stub = WinkStub()
    with pytest.raises(InvalidRequest):
        await verifier(stub).verify(token)
    assert stub.calls == 0


@pytest.mark.parametrize(
    "token", ["a b", "tok\n", "é", "=abc", "abc=def", make_token(azp="x") + "!"]
)
async def test_lookup_refuses_a_malformed_token_on_a_miss_before_anything_else(
    token: str,
) -> None:
    # The middleware leaves the syntax check to the miss: a hit proves it, since only checked
    # tokens are cached. So a malformed token must never be pre-checked, cached or sent to Wink.
    stub = WinkStub()
    wink = verifier(stub)
    for _ in range(2):
        with pytest.raises(InvalidRequest, match="malformed"):
            wink.lookup(token.encode("utf-8"))
    assert stub.calls == 0
    assert len(wink.cache) == 0
    assert wink.stats.local_rejections == wink.stats.negative_hits == wink.stats.misses == 0


# -- cache --------------------------------------------------------------------------------------


async def test_second_verify_is_a_cache_hit() -> None:
    stub = WinkStub()
    wink = verifier(stub)
    first = await wink.verify(TOKEN)
    assert await wink.verify(TOKEN) is first
    assert stub.calls == 1
    assert (wink.stats.misses, wink.stats.hits, wink.stats.wink_calls) == (1, 1, 1)


async def test_cache_is_keyed_by_sha256_never_the_raw_token() -> None:
    wink = verifier(WinkStub())
    await wink.verify(TOKEN)
    cache: Any = wink.cache
    keys = list(cache._data.keys())
    assert keys == [hashlib.sha256(TOKEN.encode()).digest()]


async def test_positive_entry_ends_at_expiry_minus_leeway() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 60))))
    wink = verifier(stub, clock, leeway=5)
    token = make_token(ttl=3600)
    await wink.verify(token)
    clock.advance(54.9)
    await wink.verify(token)
    assert stub.calls == 1
    clock.advance(0.1)
    with pytest.raises(TokenRejected):  # past expiry - leeway the pre-check is not fooled either
        await wink.verify(make_token(ttl=60))
    await wink.verify(token)
    assert stub.calls == 2


async def test_positive_entry_ends_after_cache_ttl_for_long_lived_tokens() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 3600))))
    wink = verifier(stub, clock, cache_ttl=300)
    token = make_token(ttl=3600)
    await wink.verify(token)
    clock.advance(299)
    await wink.verify(token)
    assert stub.calls == 1
    clock.advance(1)
    await wink.verify(token)
    assert stub.calls == 2


async def test_jwt_exp_bounds_the_entry_when_wink_sends_no_expiry() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(200, json=profile_json(expiryTime=None)))
    wink = verifier(stub, clock, leeway=5)
    token = make_token(ttl=100)
    await wink.verify(token)
    clock.advance(94)
    await wink.verify(token)
    assert stub.calls == 1
    clock.advance(1)
    with pytest.raises(TokenRejected, match="expired"):
        await wink.verify(token)


async def test_earlier_of_profile_expiry_and_jwt_exp_bounds_the_entry() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 3600))))
    wink = verifier(stub, clock, leeway=0, precheck=False)
    token = make_token(ttl=50)
    await wink.verify(token)
    clock.advance(50)
    await wink.verify(token)
    assert stub.calls == 2


async def test_cache_ttl_bounds_an_opaque_token_without_expiry() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(200, json=profile_json(expiryTime=None)))
    wink = verifier(stub, clock, cache_ttl=10)
    await wink.verify("opaque")
    clock.advance(9.9)
    await wink.verify("opaque")
    assert stub.calls == 1
    clock.advance(0.1)
    await wink.verify("opaque")
    assert stub.calls == 2


async def test_profile_already_past_expiry_is_returned_but_not_cached() -> None:
    stub = WinkStub(httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 2))))
    wink = verifier(stub, leeway=5, precheck=False)
    token = make_token(ttl=3600)
    assert (await wink.verify(token)).wink_tag == ";ada"
    await wink.verify(token)
    assert stub.calls == 2
    assert len(wink.cache) == 0


async def test_rejection_is_remembered_for_negative_ttl() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(401))
    wink = verifier(stub, clock, negative_ttl=30)
    for _ in range(3):
        with pytest.raises(TokenRejected):
            await wink.verify(TOKEN)
    assert stub.calls == 1
    assert wink.stats.negative_hits == 2
    clock.advance(30)
    with pytest.raises(TokenRejected):
        await wink.verify(make_token(ttl=3600))
    assert stub.calls == 2


async def test_negative_ttl_zero_disables_negative_caching() -> None:
    stub = WinkStub(httpx.Response(401))
    wink = verifier(stub, negative_ttl=0)
    for _ in range(2):
        with pytest.raises(TokenRejected):
            await wink.verify(TOKEN)
    assert stub.calls == 2


async def test_transient_failures_are_never_cached() -> None:
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()))
    wink = verifier(stub)
    with pytest.raises(WinkUnavailable):
        await wink.verify(TOKEN)
    assert (await wink.verify(TOKEN)).wink_tag == ";ada"
    assert stub.calls == 2


async def test_cache_holds_at_most_cache_size_entries_lru_first() -> None:
    stub = WinkStub()
    wink = verifier(stub, cache_size=2)
    tokens = [make_token(sub=f"user-{i}") for i in range(3)]
    await wink.verify(tokens[0])
    await wink.verify(tokens[1])
    await wink.verify(tokens[0])  # touch 0: 1 is now least recently used
    await wink.verify(tokens[2])
    assert len(wink.cache) == 2
    await wink.verify(tokens[0])
    assert stub.calls == 3
    await wink.verify(tokens[1])
    assert stub.calls == 4


async def test_cache_size_zero_disables_caching() -> None:
    stub = WinkStub()
    wink = verifier(stub, cache_size=0)
    await wink.verify(TOKEN)
    await wink.verify(TOKEN)
    assert stub.calls == 2
    assert len(wink.cache) == 0


async def test_invalidate_drops_the_entry() -> None:
    stub = WinkStub()
    wink = verifier(stub)
    await wink.verify(TOKEN)
    assert await wink.invalidate(TOKEN) is False  # no shared tier: this process only
    await wink.invalidate("never-seen")
    await wink.verify(TOKEN)
    assert stub.calls == 2


# -- stale-if-error -----------------------------------------------------------------------------


async def test_stale_if_error_serves_a_cached_profile_while_wink_is_down() -> None:
    clock = FakeClock()
    ok = httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 3600)))
    stub = WinkStub(ok, httpx.Response(503))
    wink = verifier(stub, clock, cache_ttl=60, stale_if_error=120)
    token = make_token(ttl=3600)
    await wink.verify(token)
    clock.advance(100)
    assert (await wink.verify(token)).wink_tag == ";ada"
    assert wink.stats.stale_served == 1
    clock.advance(81)  # 181 s: past cache_ttl + stale_if_error
    with pytest.raises(WinkUnavailable):
        await wink.verify(token)


async def test_stale_if_error_never_serves_past_expiry() -> None:
    clock = FakeClock()
    ok = httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 100)))
    stub = WinkStub(ok, httpx.Response(503))
    wink = verifier(stub, clock, cache_ttl=60, stale_if_error=600, leeway=5, precheck=False)
    token = make_token(ttl=3600)
    await wink.verify(token)
    clock.advance(96)
    with pytest.raises(WinkUnavailable):
        await wink.verify(token)


async def test_stale_is_not_served_when_wink_says_no() -> None:
    clock = FakeClock()
    ok = httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 3600)))
    stub = WinkStub(ok, httpx.Response(401))
    wink = verifier(stub, clock, cache_ttl=60, stale_if_error=600)
    token = make_token(ttl=3600)
    await wink.verify(token)
    clock.advance(61)
    with pytest.raises(TokenRejected):
        await wink.verify(token)


async def test_without_stale_if_error_an_outage_is_a_503() -> None:
    clock = FakeClock()
    stub = WinkStub(
        httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 3600))), httpx.Response(503)
    )
    wink = verifier(stub, clock, cache_ttl=60)
    token = make_token(ttl=3600)
    await wink.verify(token)
    clock.advance(61)
    with pytest.raises(WinkUnavailable):
        await wink.verify(token)


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

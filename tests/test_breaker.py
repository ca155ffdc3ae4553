"""Circuit breaker: stop calling Wink after consecutive transient failures, probe after a cool-down."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import FakeClock, make_token, profile_json
from tests.wink_stub import WinkStub, verifier
from wink_middleware import TokenRejected, WinkBadResponse, WinkUnavailable

pytestmark = pytest.mark.anyio


def tokens(n: int) -> list[str]:
    return [make_token(sub=f"user-{i}") for i in range(n)]


async def fail_times(wink: object, n: int) -> None:
    for token in tokens(n):
        with pytest.raises(WinkUnavailable):
            await wink.verify(token)  # type: ignore[attr-defined]


async def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(503))
    wink = verifier(stub, clock, breaker_threshold=5, breaker_cooldown=10)
    await fail_times(wink, 5)
    assert stub.calls == 5
    assert wink.breaker_state == "open"
    with pytest.raises(WinkUnavailable, match="circuit breaker") as info:
        await wink.verify(make_token(sub="another"))
    assert stub.calls == 5, "an open breaker answers without calling Wink"
    assert info.value.retry_after == 10
    assert wink.stats.breaker_opened == 1
    assert wink.stats.breaker_short_circuits == 1


async def test_retry_after_counts_down_the_cool_down() -> None:
    clock = FakeClock()
    wink = verifier(WinkStub(httpx.Response(500)), clock, breaker_threshold=1, breaker_cooldown=10)
    await fail_times(wink, 1)
    clock.advance(6.5)
    with pytest.raises(WinkUnavailable) as info:
        await wink.verify(make_token(sub="x"))
    assert info.value.retry_after == 4


async def test_breaker_counts_only_consecutive_failures() -> None:
    stub = WinkStub(
        *[httpx.Response(503)] * 4,
        httpx.Response(401),
        *[httpx.Response(503)] * 4,
        httpx.Response(200, json=profile_json()),
    )
    wink = verifier(stub, breaker_threshold=5)
    await fail_times(wink, 4)
    with pytest.raises(TokenRejected):
        await wink.verify(make_token(sub="rejected"))
    await fail_times(wink, 4)
    assert wink.breaker_state == "closed"
    await wink.verify(make_token(sub="fine"))
    assert stub.calls == 10


async def test_one_probe_after_the_cool_down_closes_on_success() -> None:
    clock = FakeClock()
    stub = WinkStub(*[httpx.Response(503)] * 3, httpx.Response(200, json=profile_json()))
    wink = verifier(stub, clock, breaker_threshold=3, breaker_cooldown=10)
    await fail_times(wink, 3)
    clock.advance(10)
    assert wink.breaker_state == "half-open"
    await wink.verify(make_token(sub="probe"))
    assert stub.calls == 4
    assert wink.breaker_state == "closed"


async def test_a_failed_probe_opens_the_breaker_again() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(503))
    wink = verifier(stub, clock, breaker_threshold=2, breaker_cooldown=10)
    await fail_times(wink, 2)
    clock.advance(10)
    await fail_times(wink, 1)
    assert stub.calls == 3
    assert wink.breaker_state == "open"
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        await wink.verify(make_token(sub="again"))
    assert stub.calls == 3
    assert wink.stats.breaker_opened == 2


async def test_only_one_probe_is_let_through_while_half_open() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()), delay=0.02)
    wink = verifier(stub, clock, breaker_threshold=1, breaker_cooldown=5)
    await fail_times(wink, 1)
    clock.advance(5)
    import asyncio

    results = await asyncio.gather(*(wink.verify(t) for t in tokens(5)), return_exceptions=True)
    assert stub.calls == 2
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, WinkUnavailable) for r in results if isinstance(r, BaseException))


async def test_stale_profile_is_served_while_the_breaker_is_open() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(200, json=profile_json()), httpx.Response(503))
    wink = verifier(
        stub, clock, breaker_threshold=1, breaker_cooldown=60, cache_ttl=30, stale_if_error=60
    )
    cached = make_token(sub="cached")
    await wink.verify(cached)
    await fail_times(wink, 1)
    clock.advance(31)
    assert (await wink.verify(cached)).wink_tag == ";ada"
    assert stub.calls == 2
    assert wink.stats.stale_served == 1


async def test_a_probe_answered_with_nonsense_closes_the_breaker() -> None:
    clock = FakeClock()
    stub = WinkStub(
        httpx.Response(503),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json=profile_json()),
    )
    wink = verifier(stub, clock, breaker_threshold=1, breaker_cooldown=10)
    await fail_times(wink, 1)
    clock.advance(10)
    with pytest.raises(WinkBadResponse):
        await wink.verify(make_token(sub="probe"))
    assert wink.breaker_state == "closed", "Wink answered: it is up, if confused"
    assert (await wink.verify(make_token(sub="next"))).wink_tag == ";ada"
    assert stub.calls == 3


async def test_a_lost_probe_costs_one_cool_down_not_an_open_breaker_for_good() -> None:
    clock = FakeClock()
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()))
    wink = verifier(stub, clock, breaker_threshold=1, breaker_cooldown=10)
    await fail_times(wink, 1)
    clock.advance(10)
    wink._core.breaker.check()  # a probe is let through, and its call never reports back
    with pytest.raises(WinkUnavailable, match="circuit breaker") as info:
        await wink.verify(make_token(sub="meanwhile"))
    assert info.value.retry_after == 1, "a probe is in flight: try again soon"
    clock.advance(10)
    assert (await wink.verify(make_token(sub="next probe"))).wink_tag == ";ada"
    assert wink.breaker_state == "closed"

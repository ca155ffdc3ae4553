"""WinkVerifier's own I/O: the call to Wink, its deadline, single-flight across threads, lifecycle.

The decisions it shares with the async twin (pre-check, classification, cache rules, stale-if-error,
the breaker, retry counts) are tested once, on the core, in ``test_engine.py``.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from tests.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    VERIFY_URL,
    FakeClock,
    config,
    make_token,
    open_when_all_wait,
    profile_json,
    run_threads,
)
from tests.stub import Trickle, WinkStub, sync_verifier
from wink_middleware import (
    AuthenticationFailed,
    Miss,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkProfile,
    WinkUnavailable,
    WinkVerifier,
    __version__,
)
from wink_middleware._engine import sync_verifier as _sync_verifier

TOKEN = make_token()


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock, which the verifier's backoff sleeps move instead of waiting."""
    return FakeClock()


# -- calling Wink -------------------------------------------------------------------------------


def test_verify_returns_the_profile_from_wink() -> None:
    profile = sync_verifier(WinkStub()).verify(TOKEN)
    assert isinstance(profile, WinkProfile)
    assert profile.email == "ada@example.com"


def test_request_is_a_json_post_with_pascal_case_credentials() -> None:
    stub = WinkStub()
    sync_verifier(stub).verify(TOKEN)
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
    assert request.headers["user-agent"] == f"wink-middleware/{__version__}"
    assert "authorization" not in request.headers


def test_default_client_is_made_lazily_sends_our_user_agent_and_is_closed_by_close() -> None:
    stub = WinkStub()
    wink = WinkVerifier(config(), clock=FakeClock())
    assert wink._client is None
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(VERIFY_URL).mock(side_effect=stub.handler)
        wink.verify(TOKEN)
        assert route.call_count == 1
        first = wink._client
        assert first is not None
        wink.close()
        assert first.is_closed
        wink.invalidate(TOKEN)
        wink.verify(TOKEN)
        assert wink._client is not None
        assert wink._client is not first
        wink.close()
    assert stub.requests[0].headers["user-agent"] == f"wink-middleware/{__version__}"


def test_close_leaves_an_injected_client_open() -> None:
    client = WinkStub().sync_client()
    with WinkVerifier(config(), client=client) as wink:
        wink.verify(TOKEN)
    assert not client.is_closed
    client.close()


def test_close_is_idempotent_and_fine_before_any_call() -> None:
    wink = WinkVerifier(config())
    wink.close()
    wink.close()
    assert wink._client is None


def test_a_client_closed_under_a_call_means_unavailable_not_a_crash() -> None:
    client = WinkStub().sync_client()
    client.close()
    with pytest.raises(WinkUnavailable):
        WinkVerifier(config(), client=client).verify(TOKEN)


def test_a_bug_in_the_transport_is_not_disguised_as_an_outage() -> None:
    with pytest.raises(RuntimeError, match="bug"):
        sync_verifier(WinkStub(RuntimeError("bug"))).verify(TOKEN)


def test_context_manager_closes_the_client_it_made() -> None:
    with respx.mock() as mock:
        mock.post(VERIFY_URL).mock(return_value=httpx.Response(200, json=profile_json()))
        with WinkVerifier(config(), clock=FakeClock()) as wink:
            wink.verify(TOKEN)
            client = wink._client
    assert client is not None
    assert client.is_closed


def test_a_10mb_body_is_not_read_past_64k() -> None:
    clock = FakeClock()
    body = Trickle(clock, step=0.0, chunk=b" " * 1024)
    with pytest.raises(WinkBadResponse, match="longer than"):
        sync_verifier(WinkStub(httpx.Response(200, stream=body)), clock).verify(TOKEN)
    assert body.chunks_sent <= 65
    declared = httpx.Response(200, content=b" " * 10_000_000)  # refused before reading
    unannounced = lambda _: httpx.Response(200, stream=httpx.ByteStream(b" " * 10_000_000))  # noqa: E731
    for reply in (declared, unannounced):
        with pytest.raises(WinkBadResponse, match="longer than"):
            sync_verifier(WinkStub(reply)).verify(TOKEN)


def test_no_httpx_or_json_exception_escapes() -> None:
    replies: list[Any] = [
        httpx.HTTPError("generic"),
        httpx.TransportError("t"),
        httpx.UnsupportedProtocol("u"),
        httpx.ProxyError("p"),
        httpx.LocalProtocolError("l"),
        httpx.Response(200, content=b"{bad json"),
        httpx.Response(200, content=b"NaN"),
        httpx.Response(200, content=b"[" * 100_000),
        httpx.Response(200, content=b'"\\ud800"'),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.DecodingError("gzip"),
        OSError("network down"),
    ]
    for reply in replies:
        with pytest.raises(AuthenticationFailed):
            sync_verifier(WinkStub(reply)).verify(TOKEN)


# -- the deadline -------------------------------------------------------------------------------


def test_each_attempt_gives_httpx_the_per_attempt_timeout() -> None:
    stub = WinkStub()
    sync_verifier(stub, timeout=2.5).verify(TOKEN)
    timeouts = stub.requests[0].extensions["timeout"]
    assert timeouts == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


def test_headers_arriving_after_the_deadline_time_out(clock: FakeClock) -> None:
    def late(request: httpx.Request) -> httpx.Response:
        clock.advance(6)
        return httpx.Response(200, json=profile_json())

    with pytest.raises(WinkUnavailable, match="in time"):
        sync_verifier(WinkStub(late), clock, timeout=5).verify(TOKEN)


def test_a_trickling_body_times_out_at_the_deadline(clock: FakeClock) -> None:
    body = Trickle(clock, step=1.0)
    stub = WinkStub(httpx.Response(200, stream=body))
    with pytest.raises(WinkUnavailable, match="in time"):
        sync_verifier(stub, clock, timeout=5).verify(TOKEN)
    assert body.chunks_sent == 5


def test_retries_stay_inside_one_overall_deadline(clock: FakeClock) -> None:
    started = clock.monotonic()

    def slow(request: httpx.Request) -> httpx.Response:
        clock.advance(0.5)
        raise httpx.ReadTimeout("slow")

    stub = WinkStub(slow)
    with pytest.raises(WinkUnavailable):
        sync_verifier(stub, clock, timeout=1.0, retries=5).verify(TOKEN)
    assert clock.monotonic() - started <= 1.0 * 6
    assert 2 <= stub.calls <= 6


@pytest.mark.slow
def test_a_hanging_wink_on_a_real_socket_times_out() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        host, port = server.getsockname()
        wink = WinkVerifier(config(base_url=f"http://{host}:{port}", timeout=0.1))
        started = time.monotonic()
        with pytest.raises(WinkUnavailable, match="in time"):
            wink.verify(TOKEN)
        assert time.monotonic() - started < 2
        wink.close()


# -- single-flight across threads ---------------------------------------------------------------


def test_32_threads_verifying_one_cold_token_make_exactly_one_call() -> None:
    gate = threading.Event()
    stub = WinkStub(gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=open_when_all_wait, args=(wink, 31, gate))
    opener.start()
    results = run_threads(32, lambda: wink.verify(TOKEN))
    opener.join()
    assert stub.calls == 1
    assert all(isinstance(r, WinkProfile) for r in results)
    assert all(r is results[0] for r in results)
    assert (wink.stats.misses, wink.stats.coalesced, wink.stats.wink_calls) == (1, 31, 1)


def test_a_shared_transient_failure_reaches_every_waiter_and_is_not_cached() -> None:
    gate = threading.Event()
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()), gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=open_when_all_wait, args=(wink, 31, gate))
    opener.start()
    results = run_threads(32, lambda: wink.verify(TOKEN))
    opener.join()
    assert stub.calls == 1
    assert all(isinstance(r, WinkUnavailable) for r in results)
    assert len({id(r) for r in results}) == 32, "each thread raises its own exception object"
    assert wink.verify(TOKEN).wink_tag == ";ada"
    assert stub.calls == 2


def test_a_shared_rejection_reaches_every_waiter_and_is_negative_cached() -> None:
    gate = threading.Event()
    stub = WinkStub(httpx.Response(401), gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=open_when_all_wait, args=(wink, 7, gate))
    opener.start()
    results = run_threads(8, lambda: wink.verify(TOKEN))
    opener.join()
    assert all(isinstance(r, TokenRejected) for r in results)
    with pytest.raises(TokenRejected):
        wink.verify(TOKEN)
    assert stub.calls == 1


def test_concurrent_distinct_tokens_make_one_call_each() -> None:
    stub = WinkStub()
    wink = sync_verifier(stub)
    tokens = [make_token(sub=f"u{i}") for i in range(8)]
    results = run_threads(32, lambda: [wink.verify(t) for t in tokens])
    assert all(isinstance(r, list) for r in results)
    assert stub.calls == 8


def test_a_waiter_gives_up_when_the_shared_call_outlives_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sync_verifier, "_WAIT_GRACE", 0.0)
    gate = threading.Event()
    stub = WinkStub(gate=gate)
    wink = sync_verifier(stub, timeout=0.05)
    leader = threading.Thread(target=wink.verify, args=(TOKEN,))
    leader.start()
    while stub.calls == 0:
        time.sleep(0.001)
    with pytest.raises(WinkUnavailable, match="in time"):
        wink.verify(TOKEN)
    gate.set()
    leader.join()
    assert wink.verify(TOKEN).wink_tag == ";ada"
    assert stub.calls == 1


def test_an_unexpected_error_in_the_leader_reaches_waiters_as_unavailable() -> None:
    gate = threading.Event()
    stub = WinkStub(ZeroDivisionError("bug"), gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=open_when_all_wait, args=(wink, 3, gate))
    opener.start()
    results = run_threads(4, lambda: wink.verify(TOKEN))
    opener.join()
    assert sum(isinstance(r, ZeroDivisionError) for r in results) == 1
    assert sum(isinstance(r, WinkUnavailable) for r in results) == 3


# -- secrets, logs, construction ----------------------------------------------------------------


def test_logs_never_hold_the_token_or_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wink_middleware")
    for reply in [
        httpx.Response(401),
        httpx.Response(403),
        httpx.Response(503),
        httpx.Response(200),
    ]:
        with pytest.raises(AuthenticationFailed) as info:
            sync_verifier(WinkStub(reply)).verify(TOKEN)
        assert TOKEN not in str(info.value)
        assert CLIENT_SECRET not in str(info.value)
    assert caplog.records
    fingerprint = hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    assert any(fingerprint in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert CLIENT_SECRET not in record.getMessage()


def test_verifier_needs_a_config() -> None:
    with pytest.raises(WinkConfigError):
        WinkVerifier({"client_id": "x"})  # type: ignore[arg-type]


def test_verifier_repr_hides_the_secret() -> None:
    text = repr(sync_verifier(WinkStub()))
    assert CLIENT_SECRET not in text
    assert CLIENT_ID in text


def test_stats_count_what_happened() -> None:
    wink = sync_verifier(WinkStub())
    wink.verify(TOKEN)
    wink.verify(TOKEN)
    stats: Iterator[tuple[str, Any]] = iter(wink.stats.as_dict().items())
    assert dict(stats)["wink_calls"] == 1
    assert wink.stats.hits == 1


def test_stats_are_exact_under_threads() -> None:
    # No lost increments when WSGI threads hit the cache at once.
    stub = WinkStub()
    wink = sync_verifier(stub)
    wink.verify(TOKEN)
    per_thread = 20_000

    def hit() -> None:
        for _ in range(per_thread):
            wink.verify(TOKEN)

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wink.stats.hits == 4 * per_thread
    assert wink.stats.as_dict()["hits"] == 4 * per_thread
    assert stub.calls == 1


@pytest.mark.parametrize("status", [200, 401], ids=["valid", "rejected"])
def test_a_miss_resolved_after_another_call_for_its_token_ended_makes_no_second_call(
    status: int,
) -> None:
    # The race under load: a thread's lookup misses, another thread's call for the same token
    # ends (and caches its answer) before the first thread reaches resolve().
    stub = WinkStub() if status == 200 else WinkStub(httpx.Response(status))
    wink = sync_verifier(stub)
    miss = wink.lookup(TOKEN.encode())
    assert isinstance(miss, Miss)
    if status == 200:
        assert wink.verify(TOKEN).wink_token == wink.resolve(miss).wink_token
    else:
        with pytest.raises(TokenRejected):
            wink.verify(TOKEN)
        with pytest.raises(TokenRejected):
            wink.resolve(miss)
    assert stub.calls == 1
    assert wink.stats.coalesced == 1

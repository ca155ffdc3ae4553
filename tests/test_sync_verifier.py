"""WinkVerifier: the sync twin of AsyncWinkVerifier, sharing its decisions (DESIGN §7), across threads."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import respx

from tests.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    NOW,
    VERIFY_URL,
    FakeClock,
    make_token,
    profile_json,
)
from tests.sync_stub import Reply, SyncWinkStub, Trickle, sync_verifier
from tests.wink_stub import config
from wink_middleware import (
    AuthenticationFailed,
    InvalidRequest,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkProfile,
    WinkUnavailable,
    WinkVerifier,
    __version__,
    _sync_verifier,
)

TOKEN = make_token()


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock, which the verifier's backoff sleeps move instead of waiting."""
    return FakeClock()


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def run_threads(count: int, target: Any) -> list[Any]:
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


# -- calling Wink -------------------------------------------------------------------------------


def test_verify_returns_the_profile_from_wink() -> None:
    profile = sync_verifier(SyncWinkStub()).verify(TOKEN)
    assert isinstance(profile, WinkProfile)
    assert profile.email == "ada@example.com"


def test_request_is_a_json_post_with_pascal_case_credentials() -> None:
    stub = SyncWinkStub()
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
    stub = SyncWinkStub()
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
    client = SyncWinkStub().client()
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
    client = SyncWinkStub().client()
    client.close()
    with pytest.raises(WinkUnavailable):
        WinkVerifier(config(), client=client).verify(TOKEN)


def test_a_bug_in_the_transport_is_not_disguised_as_an_outage() -> None:
    with pytest.raises(RuntimeError, match="bug"):
        sync_verifier(SyncWinkStub(RuntimeError("bug"))).verify(TOKEN)


def test_context_manager_closes_the_client_it_made() -> None:
    with respx.mock() as mock:
        mock.post(VERIFY_URL).mock(return_value=httpx.Response(200, json=profile_json()))
        with WinkVerifier(config(), clock=FakeClock()) as wink:
            wink.verify(TOKEN)
            client = wink._client
    assert client is not None
    assert client.is_closed


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_definitive_statuses_reject_the_token(status: int) -> None:
    with pytest.raises(TokenRejected) as info:
        sync_verifier(SyncWinkStub(httpx.Response(status))).verify(TOKEN)
    assert info.value.status_code == 401


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_mean_wink_unavailable(status: int) -> None:
    with pytest.raises(WinkUnavailable) as info:
        sync_verifier(SyncWinkStub(httpx.Response(status))).verify(TOKEN)
    assert info.value.status_code == 503
    assert info.value.retry_after >= 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html><body>Gateway</body></html>"),
        httpx.Response(200, content=b'{"firstName": "Ada", "winkTo'),
        httpx.Response(200, json=[profile_json()]),
        httpx.Response(200, json=profile_json(email=42)),
        httpx.Response(200, json=profile_json(winkToken=None)),
        httpx.Response(200, content=b""),
        httpx.Response(200, content=b"\xff\xfe\x00"),
        httpx.Response(200, content=b" " * 10_000_000),
        lambda _: httpx.Response(200, stream=httpx.ByteStream(b" " * 10_000_000)),
        httpx.Response(204),
        httpx.Response(302, headers={"Location": "https://elsewhere.test/"}),
    ],
    ids=[
        "html",
        "truncated",
        "list",
        "wrong-type",
        "null-wink-token",
        "empty",
        "binary",
        "10mb",
        "10mb-no-length",
        "204",
        "redirect",
    ],
)
def test_unusable_answers_are_a_bad_response_and_never_cached(response: Reply) -> None:
    stub = SyncWinkStub(response)
    wink = sync_verifier(stub)
    with pytest.raises(WinkBadResponse) as info:
        wink.verify(TOKEN)
    assert info.value.status_code == 502
    with pytest.raises(WinkBadResponse):
        wink.verify(TOKEN)
    assert stub.calls == 2


def test_a_10mb_body_is_not_read_past_64k() -> None:
    clock = FakeClock()
    body = Trickle(clock, step=0.0, chunk=b" " * 1024)
    with pytest.raises(WinkBadResponse, match="longer than"):
        sync_verifier(SyncWinkStub(httpx.Response(200, stream=body)), clock).verify(TOKEN)
    assert body.chunks_sent <= 65


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
def test_transport_errors_mean_wink_unavailable(error: Exception) -> None:
    with pytest.raises(WinkUnavailable) as info:
        sync_verifier(SyncWinkStub(error)).verify(TOKEN)
    assert isinstance(info.value.__cause__, type(error))


def test_decoding_error_is_a_bad_response() -> None:
    with pytest.raises(WinkBadResponse):
        sync_verifier(SyncWinkStub(httpx.DecodingError("gzip"))).verify(TOKEN)


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
    ]
    for reply in replies:
        with pytest.raises(AuthenticationFailed):
            sync_verifier(SyncWinkStub(reply)).verify(TOKEN)


# -- the deadline -------------------------------------------------------------------------------


def test_each_attempt_gives_httpx_the_per_attempt_timeout() -> None:
    stub = SyncWinkStub()
    sync_verifier(stub, timeout=2.5).verify(TOKEN)
    timeouts = stub.requests[0].extensions["timeout"]
    assert timeouts == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


def test_headers_arriving_after_the_deadline_time_out(clock: FakeClock) -> None:
    def late(request: httpx.Request) -> httpx.Response:
        clock.advance(6)
        return httpx.Response(200, json=profile_json())

    with pytest.raises(WinkUnavailable, match="in time"):
        sync_verifier(SyncWinkStub(late), clock, timeout=5).verify(TOKEN)


def test_a_trickling_body_times_out_at_the_deadline(clock: FakeClock) -> None:
    body = Trickle(clock, step=1.0)
    stub = SyncWinkStub(httpx.Response(200, stream=body))
    with pytest.raises(WinkUnavailable, match="in time"):
        sync_verifier(stub, clock, timeout=5).verify(TOKEN)
    assert body.chunks_sent == 5


def test_retries_stay_inside_one_overall_deadline(clock: FakeClock) -> None:
    started = clock.monotonic()

    def slow(request: httpx.Request) -> httpx.Response:
        clock.advance(0.5)
        raise httpx.ReadTimeout("slow")

    stub = SyncWinkStub(slow)
    with pytest.raises(WinkUnavailable):
        sync_verifier(stub, clock, timeout=1.0, retries=5).verify(TOKEN)
    assert clock.monotonic() - started <= 1.0 * 6
    assert 2 <= stub.calls <= 6


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


# -- retries ------------------------------------------------------------------------------------


def test_transient_failure_is_retried_once_by_default(clock: FakeClock) -> None:
    stub = SyncWinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()))
    wink = WinkVerifier(config(retries=1), client=stub.client(), clock=clock)
    assert wink.verify(TOKEN).wink_tag == ";ada"
    assert stub.calls == 2


def test_retries_stop_after_the_configured_count(clock: FakeClock) -> None:
    stub = SyncWinkStub(httpx.Response(502))
    with pytest.raises(WinkUnavailable):
        sync_verifier(stub, clock, retries=2).verify(TOKEN)
    assert stub.calls == 3


@pytest.mark.parametrize("reply", [httpx.Response(401), httpx.Response(200, text="<html>")])
def test_definitive_answers_are_not_retried(clock: FakeClock, reply: httpx.Response) -> None:
    stub = SyncWinkStub(reply)
    with pytest.raises(AuthenticationFailed):
        sync_verifier(stub, clock, retries=3).verify(TOKEN)
    assert stub.calls == 1


def test_circuit_breaker_stops_calling_wink_after_repeated_outages(clock: FakeClock) -> None:
    stub = SyncWinkStub(httpx.Response(503))
    wink = sync_verifier(stub, clock, breaker_threshold=2, breaker_cooldown=10)
    for _ in range(2):
        with pytest.raises(WinkUnavailable):
            wink.verify(TOKEN)
    assert wink.breaker_state == "open"
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        wink.verify(TOKEN)
    assert stub.calls == 2
    clock.advance(10)
    stub.replies = [httpx.Response(200, json=profile_json())]
    assert wink.verify(TOKEN).wink_tag == ";ada"
    assert wink.breaker_state == "closed"


# -- pre-check and local checks -----------------------------------------------------------------


def test_precheck_rejects_an_expired_jwt_without_calling_wink() -> None:
    stub = SyncWinkStub()
    wink = sync_verifier(stub)
    with pytest.raises(TokenRejected, match="expired"):
        wink.verify(make_token(exp=NOW - 1))
    assert stub.calls == 0
    assert wink.stats.local_rejections == 1


def test_precheck_rejects_a_token_issued_to_another_client() -> None:
    stub = SyncWinkStub()
    with pytest.raises(TokenRejected, match="another client"):
        sync_verifier(stub).verify(make_token(azp="someone-else"))
    assert stub.calls == 0


@pytest.mark.parametrize("token", ["", "a b", "ü" * 4, "x" * 5000, "abc,def", 42])
def test_verify_refuses_ill_formed_tokens_locally(token: Any) -> None:
    stub = SyncWinkStub()
    with pytest.raises(InvalidRequest):
        sync_verifier(stub).verify(token)
    assert stub.calls == 0


# -- cache --------------------------------------------------------------------------------------


def test_second_verify_is_a_cache_hit() -> None:
    stub = SyncWinkStub()
    wink = sync_verifier(stub)
    assert wink.verify(TOKEN) is wink.verify(TOKEN)
    assert stub.calls == 1
    assert (wink.stats.misses, wink.stats.hits) == (1, 1)


def test_cache_is_keyed_by_sha256_never_the_raw_token() -> None:
    wink = sync_verifier(SyncWinkStub())
    wink.verify(TOKEN)
    key = hashlib.sha256(TOKEN.encode()).digest()
    assert wink.cache.get(key) is not None
    assert wink.cache.get(TOKEN.encode()) is None


def test_positive_entry_ends_at_expiry_minus_leeway() -> None:
    clock = FakeClock()
    stub = SyncWinkStub(httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 60))))
    wink = sync_verifier(stub, clock)
    wink.verify(TOKEN)
    clock.advance(54)
    wink.verify(TOKEN)
    assert stub.calls == 1
    clock.advance(1)
    wink.verify(TOKEN)
    assert stub.calls == 2


def test_rejection_is_remembered_for_negative_ttl() -> None:
    clock = FakeClock()
    stub = SyncWinkStub(httpx.Response(401))
    wink = sync_verifier(stub, clock, negative_ttl=30)
    for _ in range(3):
        with pytest.raises(TokenRejected):
            wink.verify(TOKEN)
    assert stub.calls == 1
    clock.advance(30)
    with pytest.raises(TokenRejected):
        wink.verify(TOKEN)
    assert stub.calls == 2


def test_transient_failures_are_never_cached() -> None:
    stub = SyncWinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()))
    wink = sync_verifier(stub)
    with pytest.raises(WinkUnavailable):
        wink.verify(TOKEN)
    assert wink.verify(TOKEN).wink_tag == ";ada"
    assert stub.calls == 2


def test_invalidate_drops_the_entry() -> None:
    stub = SyncWinkStub()
    wink = sync_verifier(stub)
    wink.verify(TOKEN)
    wink.invalidate(TOKEN)
    wink.verify(TOKEN)
    assert stub.calls == 2


def test_stale_if_error_serves_a_cached_profile_while_wink_is_down() -> None:
    clock = FakeClock()
    stub = SyncWinkStub(
        httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 3600))), httpx.Response(503)
    )
    wink = sync_verifier(stub, clock, cache_ttl=60, stale_if_error=120)
    wink.verify(TOKEN)
    clock.advance(90)
    assert wink.verify(TOKEN).wink_tag == ";ada"
    assert wink.stats.stale_served == 1


# -- single-flight across threads ---------------------------------------------------------------


def _open_when_all_wait(wink: WinkVerifier, followers: int, gate: threading.Event) -> None:
    """Open ``gate`` once ``followers`` threads are waiting on the leader's call."""
    deadline = time.monotonic() + 10
    while wink.stats.coalesced < followers and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()


def test_32_threads_verifying_one_cold_token_make_exactly_one_call() -> None:
    gate = threading.Event()
    stub = SyncWinkStub(gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=_open_when_all_wait, args=(wink, 31, gate))
    opener.start()
    results = run_threads(32, lambda: wink.verify(TOKEN))
    opener.join()
    assert stub.calls == 1
    assert all(isinstance(r, WinkProfile) for r in results)
    assert all(r is results[0] for r in results)
    assert (wink.stats.misses, wink.stats.coalesced, wink.stats.wink_calls) == (1, 31, 1)


def test_a_shared_transient_failure_reaches_every_waiter_and_is_not_cached() -> None:
    gate = threading.Event()
    stub = SyncWinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()), gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=_open_when_all_wait, args=(wink, 31, gate))
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
    stub = SyncWinkStub(httpx.Response(401), gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=_open_when_all_wait, args=(wink, 7, gate))
    opener.start()
    results = run_threads(8, lambda: wink.verify(TOKEN))
    opener.join()
    assert all(isinstance(r, TokenRejected) for r in results)
    with pytest.raises(TokenRejected):
        wink.verify(TOKEN)
    assert stub.calls == 1


def test_concurrent_distinct_tokens_make_one_call_each() -> None:
    stub = SyncWinkStub()
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
    stub = SyncWinkStub(gate=gate)
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
    stub = SyncWinkStub(ZeroDivisionError("bug"), gate=gate)
    wink = sync_verifier(stub)
    opener = threading.Thread(target=_open_when_all_wait, args=(wink, 3, gate))
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
            sync_verifier(SyncWinkStub(reply)).verify(TOKEN)
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
    text = repr(sync_verifier(SyncWinkStub()))
    assert CLIENT_SECRET not in text
    assert CLIENT_ID in text


def test_stats_count_what_happened() -> None:
    wink = sync_verifier(SyncWinkStub())
    wink.verify(TOKEN)
    wink.verify(TOKEN)
    stats: Iterator[tuple[str, Any]] = iter(wink.stats.as_dict().items())
    assert dict(stats)["wink_calls"] == 1
    assert wink.stats.hits == 1

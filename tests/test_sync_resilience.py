"""WinkVerifier (the sync twin) under Wink outages: threads meeting the breaker and stale-if-error,
and the deadline.

The breaker's and stale-if-error's rules are tested once, on the core, in ``test_engine.py``; here,
threads meet them on a fake clock, and the deadline runs against misbehaving TCP servers on
127.0.0.1 and a real ``httpx.Client``, on the real clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpcore
import httpx
import pytest

from tests.helpers import (
    NOW,
    FakeClock,
    config,
    iso,
    make_token,
    open_when_all_wait,
    profile_json,
    run_threads,
)
from tests.raw_tcp import (
    Handler,
    hang,
    raw_server,
    read_request,
    reset_mid_body,
    slow_headers,
    trickle_body,
)
from tests.stub import WinkStub, sync_verifier
from wink_middleware import (
    WinkUnavailable,
    WinkVerifier,
)
from wink_middleware._engine import client as _client

TIMEOUT = 0.2
# Scheduling, thread start-up and the last socket wait: what a real clock adds to a deadline.
SLACK = 0.4


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock, which the verifier's backoff sleeps move instead of waiting."""
    return FakeClock()


def tokens(n: int, prefix: str = "user") -> list[str]:
    return [make_token(sub=f"{prefix}-{i}") for i in range(n)]


def fail_times(wink: WinkVerifier, n: int, prefix: str = "down") -> None:
    for token in tokens(n, prefix):
        with pytest.raises(WinkUnavailable):
            wink.verify(token)


# -- circuit breaker, across threads ---------------------------------------------------------------


def test_only_one_probe_is_let_through_while_half_open_across_threads(clock: FakeClock) -> None:
    gate = threading.Event()
    stub = WinkStub(httpx.Response(503), httpx.Response(200, json=profile_json()))
    wink = sync_verifier(stub, clock, breaker_threshold=1, breaker_cooldown=5)
    fail_times(wink, 1)
    stub.gate = gate
    clock.advance(5)
    pending = iter(tokens(8, "crowd"))
    lock = threading.Lock()

    def verify() -> Any:
        with lock:
            token = next(pending)
        try:
            return wink.verify(token)
        finally:
            if wink.stats.breaker_short_circuits == 7:
                gate.set()

    results = run_threads(8, verify)
    gate.set()
    assert stub.calls == 2
    assert sum(isinstance(r, WinkUnavailable) for r in results) == 7
    assert wink.breaker_state == "closed"


def test_an_open_breaker_answers_a_crowd_of_threads_at_once(clock: FakeClock) -> None:
    stub = WinkStub(httpx.Response(503))
    wink = sync_verifier(stub, clock, breaker_threshold=1, breaker_cooldown=60)
    fail_times(wink, 1)
    results = run_threads(16, lambda: wink.verify(make_token(sub=threading.current_thread().name)))
    assert all(isinstance(r, WinkUnavailable) and r.retry_after == 60 for r in results)
    assert stub.calls == 1
    assert wink.stats.breaker_short_circuits == 16


# -- stale-if-error, across threads -----------------------------------------------------------------------------

# The token lives an hour; the entry is fresh 60 s and usable 120 s more if Wink is down.
LONG_LIVED = profile_json(expiryTime=iso(NOW + 3600))


def test_threads_waiting_on_a_failed_call_all_get_the_stale_profile(clock: FakeClock) -> None:
    gate = threading.Event()
    stub = WinkStub(httpx.Response(200, json=LONG_LIVED), httpx.Response(503))
    wink = sync_verifier(stub, clock, cache_ttl=60, stale_if_error=120)
    token = make_token(ttl=3600)
    wink.verify(token)
    clock.advance(90)
    stub.gate = gate
    opener = threading.Thread(target=open_when_all_wait, args=(wink, 7, gate))
    opener.start()
    results = run_threads(8, lambda: wink.verify(token))
    opener.join()
    assert all(getattr(r, "wink_tag", None) == ";ada" for r in results), results
    assert stub.calls == 2


# -- the deadline, on real sockets -----------------------------------------------------------------

MISBEHAVIOURS: list[Any] = [
    pytest.param(hang, id="hang"),
    pytest.param(slow_headers(TIMEOUT / 4), id="slow-headers"),
    pytest.param(trickle_body(TIMEOUT / 4), id="trickle-body"),
]


@pytest.mark.slow
@pytest.mark.parametrize("handler", MISBEHAVIOURS)
@pytest.mark.parametrize("retries", [0, 2])
def test_a_misbehaving_wink_never_holds_a_sync_verify_past_the_deadline(
    handler: Handler, retries: int
) -> None:
    with raw_server(handler) as wink_server:
        wink = WinkVerifier(config(base_url=wink_server.url, timeout=TIMEOUT, retries=retries))
        started = time.monotonic()
        with pytest.raises(WinkUnavailable, match="in time"):
            wink.verify(make_token())
        elapsed = time.monotonic() - started
        wink.close()
    deadline = TIMEOUT * (retries + 1)
    assert elapsed < deadline + SLACK, f"waited {elapsed:.2f}s for a {deadline:.2f}s deadline"
    assert min(retries, 1) + 1 <= wink_server.calls <= retries + 1


@pytest.mark.slow
def test_threads_sharing_a_call_to_a_hanging_wink_are_all_answered_by_the_deadline() -> None:
    with raw_server(slow_headers(TIMEOUT / 4)) as wink_server:
        wink = WinkVerifier(config(base_url=wink_server.url, timeout=TIMEOUT))
        started = time.monotonic()
        results = run_threads(16, lambda: wink.verify(make_token()))
        elapsed = time.monotonic() - started
        wink.close()
    assert all(isinstance(r, WinkUnavailable) for r in results)
    assert elapsed < TIMEOUT + SLACK
    assert wink_server.calls == 1


@pytest.mark.slow
def test_an_injected_client_still_cuts_a_trickling_body_at_the_deadline() -> None:
    # A client the user owns keeps httpx's per-read timeouts; the deadline is checked per chunk.
    with raw_server(trickle_body(TIMEOUT / 4)) as wink_server:
        client = httpx.Client()
        wink = WinkVerifier(config(base_url=wink_server.url, timeout=TIMEOUT), client=client)
        started = time.monotonic()
        with pytest.raises(WinkUnavailable, match="in time"):
            wink.verify(make_token())
        elapsed = time.monotonic() - started
        client.close()
    assert elapsed < TIMEOUT + TIMEOUT / 4 + SLACK


@pytest.mark.slow
def test_the_pooled_connection_keeps_later_deadlines_after_a_good_answer() -> None:
    # Keep-alive: the second call reuses the socket the first one made; its deadline still holds.
    answers = iter([b'{"winkToken": "w", "winkTag": ";t"}'])

    def good_then_hang(conn: Any, stop: threading.Event) -> None:
        body = next(answers, None)
        if body is None:
            stop.wait()
            return
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        read_request(conn)  # the second call, on the same connection
        slow_headers(TIMEOUT / 4)(conn, stop)

    with raw_server(good_then_hang) as wink_server:
        wink = WinkVerifier(config(base_url=wink_server.url, timeout=TIMEOUT))
        assert wink.verify(make_token(sub="first")).wink_tag == ";t"
        started = time.monotonic()
        with pytest.raises(WinkUnavailable):
            wink.verify(make_token(sub="second"))
        elapsed = time.monotonic() - started
        wink.close()
    assert elapsed < TIMEOUT + SLACK
    assert wink_server.calls == 1, "both calls went over one kept-alive connection"


@pytest.mark.slow
def test_a_connection_reset_mid_body_is_unavailable_and_not_cached() -> None:
    with raw_server(reset_mid_body) as wink_server:
        wink = WinkVerifier(config(base_url=wink_server.url, timeout=TIMEOUT))
        token = make_token()
        for _ in range(2):
            with pytest.raises(WinkUnavailable):
                wink.verify(token)
        wink.close()
    assert wink_server.calls == 2
    assert len(wink.cache) == 0


@pytest.mark.slow
def test_connection_refused_is_unavailable() -> None:
    with raw_server(hang) as wink_server:
        pass  # closed: its port now refuses connections
    wink = WinkVerifier(config(base_url=wink_server.url, timeout=TIMEOUT))
    started = time.monotonic()
    with pytest.raises(WinkUnavailable, match="could not be reached"):
        wink.verify(make_token())
    assert time.monotonic() - started < SLACK
    wink.close()


class RecordingStream(httpcore.NetworkStream):
    """A network stream that records the timeout of each wait it is asked for."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        return b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.timeouts.append(timeout)
        return self


def test_socket_waits_are_cut_to_what_is_left_of_the_deadline() -> None:
    inner = RecordingStream()
    stream = _client._DeadlineStream(inner)
    with _client._deadline_scope(0.5):
        stream.read(1, timeout=5.0)
        stream.write(b"x", timeout=0.1)
        tls = stream.start_tls(None, "wink.test", timeout=None)
    assert 0.4 < inner.timeouts[0] <= 0.5  # type: ignore[operator]
    assert inner.timeouts[1] == 0.1
    assert 0.4 < inner.timeouts[2] <= 0.5  # type: ignore[operator]
    assert isinstance(tls, _client._DeadlineStream), "the TLS stream keeps the deadline too"


def test_socket_waits_outside_a_call_keep_their_own_timeout() -> None:
    inner = RecordingStream()
    _client._DeadlineStream(inner).read(1, timeout=5.0)
    assert inner.timeouts == [5.0]


@pytest.mark.parametrize(
    ("wait", "error"),
    [
        (lambda s: s.read(1, 5.0), httpcore.ReadTimeout),
        (lambda s: s.write(b"x", 5.0), httpcore.WriteTimeout),
        (lambda s: s.start_tls(None, "wink.test", 5.0), httpcore.ConnectTimeout),
    ],
)
def test_a_socket_wait_after_the_deadline_times_out_without_waiting(
    wait: Callable[[httpcore.NetworkStream], object], error: type[Exception]
) -> None:
    inner = RecordingStream()
    with _client._deadline_scope(0.0), pytest.raises(error):
        wait(_client._DeadlineStream(inner))
    assert inner.timeouts == []


def test_the_default_client_still_works_if_httpx_hides_its_socket_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = httpx.HTTPTransport.__init__

    def without_backend(self: httpx.HTTPTransport, **options: Any) -> None:
        original(self, **options)
        del self._pool._network_backend

    monkeypatch.setattr(httpx.HTTPTransport, "__init__", without_backend)
    client = _client.make_sync_client(config())
    assert isinstance(client, httpx.Client)
    client.close()

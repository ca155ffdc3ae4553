"""create_session: the request Wink receives, each answer, retries and the
breaker shared with Verify Client, on both verifiers."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.helpers import BASE_URL, CLIENT_ID, CLIENT_SECRET, FakeClock, make_token, profile_json
from tests.raw_tcp import answer, hang, raw_server
from tests.stub import WinkStub, sync_verifier, verifier
from wink_middleware import (
    AsyncWinkVerifier,
    AuthenticationFailed,
    InvalidRequest,
    TokenRejected,
    WinkBadResponse,
    WinkConfig,
    WinkCredentialsRejected,
    WinkEvent,
    WinkSession,
    WinkUnavailable,
    WinkVerifier,
    __version__,
)
from wink_middleware.testing import WinkEmulator

pytestmark = pytest.mark.anyio

RETURN_URL = "https://app.example/signed-in"
CANCEL_URL = "https://app.example/cancelled"
BASIC = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
SESSION_URL = f"{BASE_URL}/wink/v1/session"

Create = Callable[..., Awaitable[WinkSession]]


@pytest.fixture(params=["async", "sync"])
def twin(request: pytest.FixtureRequest) -> str:
    """Each test runs on the async and on the sync verifier."""
    return str(request.param)


def build(twin: str, stub: WinkStub, clock: FakeClock | None = None, **options: Any) -> Any:
    if twin == "async":
        return verifier(stub, clock, **options)
    return sync_verifier(stub, clock, **options)


async def create(wink: Any, return_url: str = RETURN_URL, cancel_url: str = CANCEL_URL) -> Any:
    result = wink.create_session(return_url, cancel_url)
    if isinstance(wink, AsyncWinkVerifier):
        return await result
    return result


async def verify(wink: Any, token: str) -> Any:
    result = wink.verify(token)
    if isinstance(wink, AsyncWinkVerifier):
        return await result
    return result


def ok(session_id: str = "sess-123") -> httpx.Response:
    return httpx.Response(200, json={"sessionId": session_id})


def test_the_request_wink_receives_byte_for_byte() -> None:
    with raw_server(answer(200, b'{"sessionId": "abc"}')) as server:
        config = WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=server.url)
        with WinkVerifier(config) as wink:
            session = wink.create_session(RETURN_URL, CANCEL_URL)
    assert session == WinkSession("abc", RETURN_URL, CANCEL_URL)
    body = json.dumps({"returnUrl": RETURN_URL, "cancelUrl": CANCEL_URL}, separators=(",", ":"))
    host = server.url.removeprefix("http://")
    expected = (
        "POST /wink/v1/session HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Connection: keep-alive\r\n"
        "Accept: application/json\r\n"
        "Content-Type: application/json\r\n"
        f"User-Agent: wink-middleware/{__version__}\r\n"
        "Accept-Encoding: identity\r\n"
        f"Authorization: Basic {BASIC}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
        f"{body}"
    ).encode()
    assert server.requests == [expected]


async def test_the_async_twin_sends_the_same_request(twin: str) -> None:
    stub = WinkStub(ok())
    wink = build(twin, stub)
    await create(wink)
    request = stub.requests[0]
    assert (request.method, str(request.url)) == ("POST", SESSION_URL)
    assert request.headers["authorization"] == f"Basic {BASIC}"
    assert request.headers["user-agent"] == f"wink-middleware/{__version__}"
    assert request.headers["accept"] == "application/json"
    assert request.content == b'{"returnUrl":"' + RETURN_URL.encode() + b'","cancelUrl":"' + (
        CANCEL_URL.encode() + b'"}'
    )


@pytest.mark.parametrize("key", ["sessionId", "SessionId", "session_id", "id"])
async def test_each_answer_key_wink_kits_read_is_accepted(twin: str, key: str) -> None:
    wink = build(twin, WinkStub(httpx.Response(201, json={key: "s-1", "other": 1})))
    session = await create(wink)
    assert session.session_id == "s-1"
    assert (session.return_url, session.cancel_url) == (RETURN_URL, CANCEL_URL)


async def test_the_first_key_present_wins_in_wink_kits_order(twin: str) -> None:
    body = {"id": "d", "session_id": "c", "SessionId": "b", "sessionId": "a"}
    wink = build(twin, WinkStub(httpx.Response(200, json=body)))
    assert (await create(wink)).session_id == "a"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sessionId": ""},
        {"sessionId": "   "},
        {"sessionId": 42},
        {"sessionId": None, "id": "x"},
        {"sessionId": "x" * 1025},
        ["sessionId"],
        "text",
    ],
)
async def test_a_2xx_without_a_usable_session_id_is_a_bad_response(twin: str, body: Any) -> None:
    wink = build(twin, WinkStub(httpx.Response(200, json=body)))
    with pytest.raises(WinkBadResponse) as caught:
        await create(wink)
    assert type(caught.value) is WinkBadResponse
    assert caught.value.status_code == 502


async def test_a_session_id_of_exactly_1_kib_is_accepted(twin: str) -> None:
    wink = build(twin, WinkStub(ok("x" * 1024)))
    assert len((await create(wink)).session_id) == 1024


def fresh(status: int, **content: Any) -> Callable[[httpx.Request], httpx.Response]:
    """A reply built anew for each call (a response object is read once, by one client type)."""
    return lambda request: httpx.Response(status, **content)


@pytest.mark.parametrize("reply", [fresh(200, text="<html>"), fresh(204)])
async def test_a_2xx_that_is_not_json_is_a_bad_response(twin: str, reply: Any) -> None:
    with pytest.raises(WinkBadResponse):
        await create(build(twin, WinkStub(reply)))


async def test_a_2xx_longer_than_64_kib_is_a_bad_response(twin: str) -> None:
    reply = httpx.Response(200, json={"sessionId": "a", "pad": "x" * 70_000})
    with pytest.raises(WinkBadResponse, match="longer than"):
        await create(build(twin, WinkStub(reply)))


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_mean_wink_refused_our_credentials(twin: str, status: int) -> None:
    stub = WinkStub(httpx.Response(status))
    wink = build(twin, stub, retries=2)
    with pytest.raises(WinkCredentialsRejected) as caught:
        await create(wink)
    assert caught.value.status_code == 502
    assert caught.value.error == "bad_gateway"
    assert isinstance(caught.value, WinkBadResponse)
    assert stub.calls == 1  # definitive: not retried
    assert wink.breaker_state == "closed"


@pytest.mark.parametrize("status", [400, 404, 405, 409, 302])
async def test_other_statuses_are_a_bad_response_naming_the_status(twin: str, status: int) -> None:
    stub = WinkStub(httpx.Response(status, text="secret-ish body from Wink"))
    with pytest.raises(WinkBadResponse, match=f"status {status}") as caught:
        await create(build(twin, stub, retries=2))
    assert type(caught.value) is WinkBadResponse
    assert "secret-ish" not in caught.value.description
    assert stub.calls == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_are_unavailable_and_retried(twin: str, status: int) -> None:
    stub = WinkStub(httpx.Response(status, headers={"Retry-After": "9"}))
    with pytest.raises(WinkUnavailable) as caught:
        await create(build(twin, stub, retries=1))
    assert caught.value.retry_after == 9
    assert stub.calls == 2


async def test_a_transient_failure_then_success_returns_the_session(twin: str) -> None:
    stub = WinkStub(httpx.Response(503), ok("second"))
    session = await create(build(twin, stub, retries=1))
    assert session.session_id == "second" and stub.calls == 2


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_connection_errors_and_timeouts_are_unavailable(twin: str, error: Exception) -> None:
    stub = WinkStub(error)
    with pytest.raises(WinkUnavailable):
        await create(build(twin, stub, retries=1))
    assert stub.calls == 2


def test_a_wink_that_never_answers_times_out_within_the_deadline() -> None:
    with raw_server(hang) as server:
        config = WinkConfig(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=server.url, timeout=0.2
        )
        started = time.monotonic()
        with WinkVerifier(config) as wink, pytest.raises(WinkUnavailable, match="in time"):
            wink.create_session(RETURN_URL, CANCEL_URL)
        # The overall deadline is timeout x (retries + 1), whatever the attempts.
        assert time.monotonic() - started < 0.4 + 0.3
        assert server.calls >= 1


async def test_a_wink_that_never_answers_times_out_on_the_async_twin() -> None:
    with raw_server(hang) as server:
        config = WinkConfig(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=server.url, timeout=0.2
        )
        async with AsyncWinkVerifier(config) as wink:
            with pytest.raises(WinkUnavailable, match="in time"):
                await wink.create_session(RETURN_URL, CANCEL_URL)


async def test_sessions_and_verify_client_share_one_breaker(twin: str) -> None:
    # One host, one breaker: session failures open it for verification, and the reverse.
    clock = FakeClock()
    stub = WinkStub(httpx.Response(503))
    wink = build(twin, stub, clock, breaker_threshold=2, breaker_cooldown=10)
    with pytest.raises(WinkUnavailable):
        await create(wink)
    with pytest.raises(WinkUnavailable):
        await verify(wink, make_token())
    assert wink.breaker_state == "open"
    calls = stub.calls
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        await create(wink)
    assert stub.calls == calls
    clock.advance(11)
    stub.replies = [ok()]
    await create(wink)  # the half-open probe, answered: closed for both
    assert wink.breaker_state == "closed"
    stub.replies = [httpx.Response(200, json=profile_json())]
    assert (await verify(wink, make_token())).wink_tag


async def test_verification_failures_open_the_breaker_for_sessions(twin: str) -> None:
    stub = WinkStub(httpx.Response(500))
    wink = build(twin, stub, breaker_threshold=1)
    with pytest.raises(WinkUnavailable):
        await verify(wink, make_token())
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        await create(wink)
    assert stub.calls == 1


async def test_retries_and_the_deadline_are_verify_clients(twin: str) -> None:
    stub = WinkStub(httpx.Response(503))
    wink = build(twin, stub, retries=3)
    with pytest.raises(WinkUnavailable):
        await create(wink)
    assert stub.calls == 4
    assert wink.stats.session_calls == 4 and wink.stats.wink_calls == 0


async def test_sessions_are_never_cached(twin: str) -> None:
    stub = WinkStub(ok("a"), ok("b"))
    wink = build(twin, stub)
    assert [(await create(wink)).session_id for _ in range(2)] == ["a", "b"]
    assert wink.stats.sessions_created == 2


@pytest.mark.parametrize(
    ("return_url", "cancel_url", "named"),
    [
        ("javascript:alert(1)", CANCEL_URL, "return_url"),
        (RETURN_URL, "//evil.example/", "cancel_url"),
        ("http://app.example/", CANCEL_URL, "return_url"),
        ("https://user:pw@app.example/", CANCEL_URL, "return_url"),
    ],
)
async def test_a_bad_url_argument_is_refused_without_calling_wink(
    twin: str, return_url: str, cancel_url: str, named: str
) -> None:
    stub = WinkStub(ok())
    with pytest.raises(InvalidRequest, match=named):
        await create(build(twin, stub), return_url, cancel_url)
    assert stub.calls == 0


async def test_loopback_http_urls_are_accepted(twin: str) -> None:
    wink = build(twin, WinkStub(ok()))
    session = await create(wink, "http://localhost:3000/cb", "http://[::1]:8080/x")
    assert session.return_url == "http://localhost:3000/cb"


async def test_concurrent_sessions_count_against_max_pending(twin: str) -> None:
    # A verification in flight and max_pending=1: a session asked for meanwhile is a 503, at once.
    import threading

    gate = threading.Event()
    stub = WinkStub(httpx.Response(200, json=profile_json()), gate=gate)
    events = SessionEvents()
    wink = build(twin, stub, max_pending=1, observers=[events])
    if isinstance(wink, AsyncWinkVerifier):
        import anyio

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wink.verify, make_token())
            await anyio.sleep(0.01)
            with pytest.raises(WinkUnavailable, match="too many"):
                await wink.create_session(RETURN_URL, CANCEL_URL)
            gate.set()
    else:
        thread = threading.Thread(target=wink.verify, args=(make_token(),))
        thread.start()
        while stub.calls == 0:
            threading.Event().wait(0.001)
        with pytest.raises(WinkUnavailable, match="too many"):
            wink.create_session(RETURN_URL, CANCEL_URL)
        gate.set()
        thread.join(5)
    assert stub.calls == 1
    stub.replies = [ok()]
    await create(wink)  # nothing pending any more
    assert events.outcomes == ["unavailable", "created"]


class SessionEvents:
    """An observer keeping the outcome of every ``session`` event."""

    def __init__(self) -> None:
        self.outcomes: list[str | None] = []

    def on_event(self, event: WinkEvent) -> None:
        if event.name == "session":
            self.outcomes.append(event.outcome)


def test_winksession_repr_shows_only_a_fingerprint_of_the_id() -> None:
    session = WinkSession("the-session-id-itself", RETURN_URL, CANCEL_URL)
    text = repr(session)
    assert "the-session-id-itself" not in text
    assert session.fingerprint in text and len(session.fingerprint) == 8
    assert RETURN_URL in text
    with pytest.raises(AttributeError):
        session.session_id = "x"  # type: ignore[misc]


async def test_refused_credentials_are_logged_at_error_at_most_once_a_minute(
    twin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "wink_middleware")
    clock = FakeClock()
    wink = build(twin, WinkStub(httpx.Response(401)), clock)

    def errors() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno == logging.ERROR]

    for _ in range(3):
        with pytest.raises(WinkCredentialsRejected):
            await create(wink)
    assert len(errors()) == 1
    assert CLIENT_ID in errors()[0].getMessage() and "environment" in errors()[0].getMessage()
    clock.advance(61)
    with pytest.raises(WinkCredentialsRejected):
        await create(wink)
    assert len(errors()) == 2


async def test_the_session_id_is_logged_only_as_a_fingerprint(
    twin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "wink_middleware")
    session = await create(build(twin, WinkStub(ok("sid-visible-nowhere"))))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "sid-visible-nowhere" not in text
    assert session.fingerprint in text


SECRET_REPLIES: list[Any] = [
    fresh(200, json={"sessionId": "s"}),
    fresh(400, text=CLIENT_SECRET),
    fresh(401),
    fresh(403),
    fresh(404),
    fresh(429),
    fresh(500, text=CLIENT_SECRET),
    fresh(200, text=f"<html>{CLIENT_SECRET}"),
    httpx.ConnectError(f"failed with {BASIC}"),
    httpx.ReadTimeout("slow"),
]


@pytest.mark.parametrize("reply", SECRET_REPLIES)
async def test_the_secret_never_appears_in_a_message_log_line_or_repr(
    twin: str, reply: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wink = build(twin, WinkStub(reply), retries=1)
    texts = [repr(wink)]
    try:
        session = await create(wink)
    except AuthenticationFailed as exc:
        texts += [str(exc), repr(exc), exc.description]
    else:
        texts.append(repr(session))
    texts += [f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records]
    for text in texts:
        assert CLIENT_SECRET not in text
        assert BASIC not in text


async def test_verify_client_still_sends_no_authorization_header(twin: str) -> None:
    stub = WinkStub(ok(), httpx.Response(200, json=profile_json()))
    wink = build(twin, stub)
    await create(wink)
    await verify(wink, make_token())
    assert "authorization" not in stub.requests[1].headers
    assert stub.requests[1].url == httpx.URL(f"{BASE_URL}/api/ConfidentialClient/verify-client")
    stub.replies = [fresh(401)]
    with pytest.raises(TokenRejected):
        await verify(wink, make_token(sub="other"))


async def test_against_the_emulator_over_real_http(twin: str) -> None:
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    with emulator.serve() as url:
        config = emulator.wink_config(base_url=url)
        if twin == "async":
            async with AsyncWinkVerifier(config) as wink:
                session = await wink.create_session(RETURN_URL, CANCEL_URL)
        else:
            with WinkVerifier(config) as wink:
                session = wink.create_session(RETURN_URL, CANCEL_URL)
    assert emulator.session_calls == 1 and emulator.calls == 0
    assert emulator.use_session(session.session_id) == (RETURN_URL, CANCEL_URL)

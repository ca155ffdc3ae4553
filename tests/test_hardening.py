"""The holes an outside security review found, each closed: one test (or table) per hole.

Preflight fail-closed lives with each adapter (test_asgi.py, test_wsgi.py, test_examples.py); the
rest is here: hostile JWT claims, path patterns at segment boundaries, ``request.user`` on public
paths, a flood of junk tokens, and refused websocket handshakes under uvicorn's real servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.helpers import CLIENT_ID, CLIENT_SECRET, FakeClock, config, make_token, profile_json
from tests.servers import serve_asgi
from tests.stub import WinkStub
from wink_middleware import (
    AsyncWinkVerifier,
    AuthenticationFailed,
    TokenRejected,
    WinkMiddleware,
    WinkUnavailable,
    WinkVerifier,
    WinkWSGIMiddleware,
)
from wink_middleware._cli import main as cli_main
from wink_middleware._routing.policy import Access, PathPolicy
from wink_middleware._routing.view import RequestView
from wink_middleware.testing import WinkEmulator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_with_payload(payload: bytes) -> str:
    """A JWT-shaped token whose middle segment is ``payload``, whatever it holds."""
    return f"{_b64(b'{}')}.{_b64(payload)}.c2ln"


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


# -- 2. hostile claims: judged or ignored, never raised ------------------------------------------

HUGE_EXP = jwt_with_payload(b'{"exp": 1' + b"0" * 400 + b', "azp": "test-client"}')
HUGE_PAST_EXP = jwt_with_payload(b'{"exp": -1' + b"0" * 400 + b"}")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("header", 200),
        ("cookie", 200),
        ("query", 200),
        ("optional", 200),
    ],
)
def test_a_jwt_whose_exp_is_10_to_the_400_is_judged_not_a_500(source: str, expected: int) -> None:
    stub = WinkStub()
    verifier = AsyncWinkVerifier(
        config(cookie_name="session", query_param="access_token", optional_paths=["/open"]),
        client=stub.client(),
        clock=FakeClock(),
    )
    middleware = WinkMiddleware(ok_app, verifier=verifier)
    path, headers, cookies = "/api", {}, {}
    if source == "header":
        headers = {"Authorization": f"Bearer {HUGE_EXP}"}
    elif source == "cookie":
        cookies = {"session": HUGE_EXP}
    elif source == "query":
        path = f"/api?access_token={HUGE_EXP}"
    else:
        path, headers = "/open", {"Authorization": f"Bearer {HUGE_EXP}"}

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://app.test", cookies=cookies
        ) as client:
            return await client.get(path, headers=headers)

    assert asyncio.run(call()).status_code == expected
    assert stub.calls == 1


def test_a_huge_exp_over_a_websocket_handshake_is_judged_not_a_500() -> None:
    from starlette.testclient import TestClient

    verifier = AsyncWinkVerifier(config(), client=WinkStub().client(), clock=FakeClock())
    client = TestClient(WinkMiddleware(ok_app, verifier=verifier))
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {HUGE_EXP}"}) as ws:
        assert ws.receive()["type"] == "websocket.close"


def test_a_huge_negative_exp_is_an_expired_token_on_both_twins() -> None:
    async def verify_async() -> None:
        verifier = AsyncWinkVerifier(config(), client=WinkStub().client(), clock=FakeClock())
        with pytest.raises(TokenRejected, match="expired"):
            await verifier.verify(HUGE_PAST_EXP)

    asyncio.run(verify_async())
    sync = WinkVerifier(config(), client=WinkStub().sync_client(), clock=FakeClock())
    with pytest.raises(TokenRejected, match="expired"):
        sync.verify(HUGE_PAST_EXP)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**1000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
claims = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"exp": json_values, "azp": json_values, "sub": json_values}
    ),
)
CLAIM_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@CLAIM_SETTINGS
@given(payload=claims)
def test_any_json_claims_are_judged_or_ignored_by_both_twins(payload: Any) -> None:
    token = jwt_with_payload(json.dumps(payload).encode())

    async def verify_async() -> object:
        verifier = AsyncWinkVerifier(config(), client=WinkStub().client(), clock=FakeClock())
        try:
            return await verifier.verify(token)
        except AuthenticationFailed as exc:
            return exc

    async_answer = asyncio.run(verify_async())
    sync = WinkVerifier(config(), client=WinkStub().sync_client(), clock=FakeClock())
    try:
        sync_answer: object = sync.verify(token)
    except AuthenticationFailed as exc:
        sync_answer = exc
    # The twins share every decision: the same answer (a profile or a refusal of the same kind).
    assert type(async_answer) is type(sync_answer)
    if isinstance(async_answer, AuthenticationFailed):
        assert async_answer.status_code in (400, 401)  # never an outage or a bad gateway


@pytest.fixture(scope="module")
def served_emulator() -> Iterable[str]:
    emulator = WinkEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with emulator.serve() as base_url:
        yield base_url


@pytest.mark.slow
@CLAIM_SETTINGS
@given(payload=claims)
def test_any_json_claims_give_the_cli_a_one_line_answer(
    payload: Any,
    served_emulator: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WINK_BASE_URL", served_emulator)
    monkeypatch.setenv("WINK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("WINK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("WINK_RETRIES", "0")
    capsys.readouterr()
    code = cli_main(["verify", jwt_with_payload(json.dumps(payload).encode())])
    captured = capsys.readouterr()
    assert code == 1, captured.err  # the emulator knows no such token: rejected, locally or by it
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1


# -- 3. patterns ending in * match at a segment boundary ------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "public"),
    [
        ("/docs*", "/docs", True),
        ("/docs*", "/docs/", True),
        ("/docs*", "/docs/x", True),
        ("/docs*", "/docsecret", False),
        ("/static*", "/staticadmin", False),
        ("/static/*", "/static", True),
        ("/static/*", "/static/app.js", True),
        ("/static/*", "/staticadmin", False),
        ("/*", "/anything", True),
        ("/health", "/health/", False),
    ],
)
def test_star_patterns_match_at_a_segment_boundary_only(
    pattern: str, path: str, public: bool
) -> None:
    policy = PathPolicy([pattern], [])
    assert (policy.access(RequestView(path, "GET", [])) is Access.PUBLIC) is public


def test_static_star_does_not_make_staticadmin_public_on_either_adapter() -> None:
    asgi = WinkMiddleware(
        ok_app,
        verifier=AsyncWinkVerifier(
            config(public_paths=["/static*"]), client=WinkStub().client(), clock=FakeClock()
        ),
    )

    async def get(path: str) -> int:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get(path)).status_code

    assert asyncio.run(get("/static/x.js")) == 200
    assert asyncio.run(get("/staticadmin")) == 401

    def wsgi_ok(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    wsgi = WinkWSGIMiddleware(
        wsgi_ok,
        verifier=WinkVerifier(
            config(public_paths=["/static*"]), client=WinkStub().sync_client(), clock=FakeClock()
        ),
    )
    with httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url="http://t") as client:
        assert client.get("/static/x.js").status_code == 200
        assert client.get("/staticadmin").status_code == 401


# -- 4. request.user on a public path ------------------------------------------------------------


def test_request_user_on_a_public_path_is_anonymous_not_a_500() -> None:
    async def home(request: Request) -> PlainTextResponse:
        user = request.user
        return PlainTextResponse(f"hello {user.display_name}" if user.is_authenticated else "hi")

    app = Starlette(routes=[Route("/", home)])
    verifier = AsyncWinkVerifier(
        config(public_paths=["/"]), client=WinkStub().client(), clock=FakeClock()
    )

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=WinkMiddleware(app, verifier=verifier))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/")

    response = asyncio.run(get())
    assert (response.status_code, response.text) == (200, "hi")


# -- 5. a flood of junk tokens --------------------------------------------------------------------


def _reject_unknown(known: set[str]) -> Any:
    def reply(request: httpx.Request) -> httpx.Response:
        token = json.loads(request.content)["AccessToken"]
        if token in known:
            return httpx.Response(200, json=profile_json(winkToken=token[-12:]))
        return httpx.Response(401)

    return reply


def test_junk_tokens_never_evict_verified_users() -> None:
    users = [f"user-token-{i:04d}" for i in range(20)]
    stub = WinkStub(_reject_unknown(set(users)))
    verifier = WinkVerifier(config(cache_size=50), client=stub.sync_client(), clock=FakeClock())
    for token in users:
        verifier.verify(token)
    for i in range(400):
        with pytest.raises(TokenRejected):
            verifier.verify(f"junk-token-{i:04d}")
    calls = stub.calls
    for token in users:
        verifier.verify(token)
    assert stub.calls == calls == 420  # the 20 users again: no call at all


@pytest.mark.slow
def test_max_pending_bounds_concurrent_calls_and_cached_users_stay_fast() -> None:
    async def scenario() -> None:
        stub = WinkStub(delay=1.0)
        verifier = AsyncWinkVerifier(config(max_pending=4), client=stub.client())
        cached = make_token(sub="cached")
        stub.delay = 0.0
        await verifier.verify(cached)
        stub.delay = 1.0
        calls_before = stub.calls

        async def timed(token: str) -> tuple[float, object]:
            started = time.monotonic()
            try:
                result: object = await verifier.verify(token)
            except WinkUnavailable as exc:
                result = exc
            return time.monotonic() - started, result

        tasks = [asyncio.ensure_future(timed(make_token(sub=f"new-{i}"))) for i in range(12)]
        await asyncio.sleep(0.05)
        cached_time, cached_result = await timed(cached)
        answers = await asyncio.gather(*tasks)
        refused = [(t, r) for t, r in answers if isinstance(r, WinkUnavailable)]
        assert stub.calls - calls_before <= 4
        assert len(refused) == 8
        assert all(t < 0.5 for t, _ in refused)
        assert all(r.retry_after >= 1 for _, r in refused)
        assert cached_time < 0.5 and not isinstance(cached_result, Exception)
        assert verifier.stats.overloaded == 8

    asyncio.run(scenario())


def test_max_pending_bounds_concurrent_calls_on_the_sync_twin() -> None:
    gate = threading.Event()
    stub = WinkStub(gate=gate)
    verifier = WinkVerifier(config(max_pending=2), client=stub.sync_client(), clock=FakeClock())
    results: list[object] = []

    def verify(token: str) -> None:
        try:
            results.append(verifier.verify(token))
        except WinkUnavailable as exc:
            results.append(exc)

    threads = [threading.Thread(target=verify, args=(make_token(sub=f"t{i}"),)) for i in range(2)]
    for thread in threads:
        thread.start()
    while stub.calls < 2:
        time.sleep(0.01)
    started = time.monotonic()
    verify(make_token(sub="third"))
    assert isinstance(results[-1], WinkUnavailable) and time.monotonic() - started < 0.5
    gate.set()
    for thread in threads:
        thread.join()
    assert stub.calls == 2 and verifier.stats.overloaded == 1


# -- 6. refused websocket handshakes log no ERROR under uvicorn ---------------------------------


@pytest.mark.slow
@pytest.mark.slow
# uvicorn's legacy ws="websockets" mode is deprecated and fails on websockets >= 14 before any app
# code runs; the two current implementations are the ones to prove.
@pytest.mark.parametrize("ws", ["websockets-sansio", "wsproto"])
def test_a_refused_websocket_handshake_logs_no_error_under_uvicorn(
    ws: str, caplog: pytest.LogCaptureFixture
) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    verifier = AsyncWinkVerifier(config(), client=WinkStub(httpx.Response(401)).client())
    middleware = WinkMiddleware(ok_app, verifier=verifier)
    caplog.set_level(logging.INFO)
    with serve_asgi(middleware, ws=ws, log_config=None) as base_url:
        url = base_url.replace("http://", "ws://") + "/ws"
        for headers in ({}, {"Authorization": f"Bearer {make_token()}"}):
            with pytest.raises(InvalidStatus) as refused:
                connect(url, additional_headers=headers, open_timeout=5).close()
            assert refused.value.response.status_code in (401, 403)
        time.sleep(0.1)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # uvicorn before 0.55 logged "ASGI callable returned without completing handshake." under
    # websockets-sansio after such a denial (Kludex/uvicorn#3138); the lock's uvicorn does not.
    assert errors == []


@pytest.mark.parametrize("extensions", [{}, {"websocket.http.response": {}}])
def test_a_websocket_denial_is_sent_only_after_the_connect_message_is_received(
    extensions: dict[str, Any],
) -> None:
    verifier = AsyncWinkVerifier(config(), client=WinkStub().client(), clock=FakeClock())
    middleware = WinkMiddleware(ok_app, verifier=verifier)
    events: list[str] = []

    async def receive() -> dict[str, Any]:
        events.append("received websocket.connect")
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        events.append(f"sent {message['type']}")

    scope = {"type": "websocket", "path": "/ws", "headers": [], "extensions": extensions}
    asyncio.run(middleware(scope, receive, send))
    assert events[0] == "received websocket.connect"
    assert len(events) > 1 and events[1].startswith("sent websocket.")

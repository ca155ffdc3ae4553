"""WinkEmulator: Wink's Verify Client contract, tokens, fault injection, transports and real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from tests.helpers import NOW, FakeClock
from wink_middleware import (
    TokenRejected,
    WinkBadResponse,
    WinkConfig,
    WinkMiddleware,
    WinkUnavailable,
    WinkWSGIMiddleware,
    get_profile,
)
from wink_middleware.testing import SAMPLE_PROFILE, TOKENS_PATH, VERIFY_PATH, WinkEmulator, serve
from wink_middleware.testing.pytest_plugin import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.anyio

ISSUED_AT_NOW_ISO = "2027-01-15T08:05:00Z"  # NOW + 300 s


def emulator(clock: FakeClock | None = None) -> WinkEmulator:
    return WinkEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock)


def body(token: str, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> bytes:
    return json.dumps(
        {"ClientId": client_id, "AccessToken": token, "ClientSecret": secret}
    ).encode()


def call(emu: WinkEmulator, content: bytes, path: str = VERIFY_PATH) -> httpx.Response:
    with httpx.Client(transport=emu.sync_transport(), base_url="https://wink.test") as client:
        return client.post(path, content=content)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


# -- the contract --------------------------------------------------------------------------------


def test_verify_answers_the_camel_case_profile_with_the_tokens_expiry() -> None:
    emu = emulator(FakeClock())
    token = emu.issue_token(ttl=300)
    response = call(emu, body(token))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert list(data) == [
        "firstName",
        "lastName",
        "contactNo",
        "email",
        "winkTag",
        "winkToken",
        "dateOfBirth",
        "expiryTime",
    ]
    assert data["expiryTime"] == ISSUED_AT_NOW_ISO
    assert data["winkToken"] == claims_of(token)["sub"]


def test_no_fields_gives_the_realistic_sample_profile() -> None:
    emu = emulator()
    data = call(emu, body(emu.issue_token())).json()
    assert {k: data[k] for k in SAMPLE_PROFILE} == dict(SAMPLE_PROFILE)
    assert data["firstName"] == "Ada"
    assert data["dateOfBirth"] == "**/**/1983"


def test_each_token_gets_a_distinct_wink_token_unless_one_is_given() -> None:
    emu = emulator()
    first, second = emu.issue_token(), emu.issue_token()
    assert claims_of(first)["sub"] != claims_of(second)["sub"]
    fixed = emu.issue_token(wink_token="user-1")
    assert claims_of(fixed)["sub"] == "user-1"
    assert call(emu, body(fixed)).json()["winkToken"] == "user-1"


def test_profile_fields_override_the_sample_and_extra_keys_are_added() -> None:
    emu = emulator()
    token = emu.issue_token(
        first_name="Grace", date_of_birth=None, wink_tag=";grace", extra={"locale": "en"}
    )
    data = call(emu, body(token)).json()
    assert data["firstName"] == "Grace"
    assert data["lastName"] == "Lovelace"
    assert data["dateOfBirth"] is None
    assert data["locale"] == "en"
    assert claims_of(token)["preferred_username"] == ";grace"


def test_unknown_profile_field_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="nickname"):
        emulator().issue_token(nickname="x")


def test_token_is_a_jwt_with_winks_claims() -> None:
    emu = emulator(FakeClock())
    token = emu.issue_token(ttl=60)
    header, _, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["typ"] == "JWT"
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32
    claims = claims_of(token)
    assert claims["exp"] == int(NOW) + 60
    assert claims["iat"] == int(NOW)
    assert claims["azp"] == CLIENT_ID
    assert claims["sub"]
    assert claims["preferred_username"] == SAMPLE_PROFILE["winkTag"]
    assert claims_of(emu.issue_token(azp="other"))["azp"] == "other"


def test_unknown_token_is_401_with_an_empty_body() -> None:
    other = emulator().issue_token()  # signed by another emulator's key
    response = call(emulator(), body(other))
    assert response.status_code == 401
    assert response.content == b""


def test_expired_token_is_401() -> None:
    clock = FakeClock()
    emu = emulator(clock)
    token = emu.issue_token(ttl=30)
    clock.advance(29)
    assert call(emu, body(token)).status_code == 200
    clock.advance(1)
    assert call(emu, body(token)).status_code == 401


def test_negative_ttl_issues_an_expired_token() -> None:
    emu = emulator()
    assert call(emu, body(emu.issue_token(ttl=-1))).status_code == 401


def test_revoked_token_is_401() -> None:
    emu = emulator()
    token = emu.issue_token()
    emu.revoke(token)
    assert call(emu, body(token)).status_code == 401


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("other-client", CLIENT_SECRET), (CLIENT_ID, "wrong-secret"), (CLIENT_ID, "")],
)
def test_wrong_client_credentials_are_401(client_id: str, secret: str) -> None:
    emu = emulator()
    assert call(emu, body(emu.issue_token(), client_id, secret)).status_code == 401


def test_token_issued_for_another_client_is_401() -> None:
    emu = emulator()
    assert call(emu, body(emu.issue_token(azp="another-app"))).status_code == 401


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"ClientId": "test-client", "ClientSecret": "test-secret"}',
        b'{"clientId": "test-client", "accessToken": "t", "clientSecret": "test-secret"}',
        b'{"ClientId": 1, "AccessToken": "t", "ClientSecret": "test-secret"}',
    ],
)
def test_a_body_that_is_not_the_expected_json_is_400(content: bytes) -> None:
    assert call(emulator(), content).status_code == 400


def test_other_paths_are_404_and_not_counted() -> None:
    emu = emulator()
    assert call(emu, body("x"), path="/api/other").status_code == 404
    assert emu.calls == 0


def test_get_on_the_verify_path_is_405() -> None:
    emu = emulator()
    with httpx.Client(transport=emu.sync_transport(), base_url="https://wink.test") as client:
        response = client.get(VERIFY_PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# -- the token endpoint (the emulator's own) ------------------------------------------------------


def test_token_endpoint_issues_a_token_with_the_given_fields_and_ttl() -> None:
    clock = FakeClock(NOW)
    emu = emulator(clock)
    minted = call(emu, b'{"ttl": 60, "first_name": "Grace", "wink_token": "u-1"}', TOKENS_PATH)
    assert minted.status_code == 200
    assert minted.headers["cache-control"] == "no-store"
    answer = minted.json()
    assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 60)
    profile = call(emu, body(answer["access_token"])).json()
    assert (profile["firstName"], profile["winkToken"]) == ("Grace", "u-1")
    assert claims_of(answer["access_token"])["exp"] == NOW + 60
    assert emu.calls == 1  # minting is not a Verify Client call


def test_token_endpoint_without_a_body_issues_a_five_minute_sample_token() -> None:
    emu = emulator()
    answer = call(emu, b"", TOKENS_PATH).json()
    assert answer["expires_in"] == 300
    assert call(emu, body(answer["access_token"])).json()["lastName"] == "Lovelace"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "JSON object"),
        (b"[1]", "JSON object"),
        (b'{"ttl": "soon"}', "ttl must be"),
        (b'{"ttl": true}', "ttl must be"),
        (b'{"ttl": 1e12}', "ttl must be"),
        (b'{"nickname": "x"}', "unknown field(s): nickname"),
        (b'{"first_name": 7}', "strings or null"),
    ],
)
def test_token_endpoint_refuses_a_bad_body_with_400_and_the_reason(
    content: bytes, reason: str
) -> None:
    answer = call(emulator(), content, TOKENS_PATH)
    assert answer.status_code == 400
    assert reason in answer.json()["error"]


def test_token_endpoint_only_takes_post() -> None:
    with httpx.Client(transport=emulator().sync_transport(), base_url="https://wink.test") as c:
        answer = c.get(TOKENS_PATH)
    assert (answer.status_code, answer.headers["allow"]) == (405, "POST")


@pytest.mark.slow
def test_calls_counts_verify_calls_and_reset_zeroes_it() -> None:
    emu = emulator()
    token = emu.issue_token()
    emu.latency = 0.5
    emu.fail_next(3)
    for _ in range(2):
        call(emu, body(token))
    assert emu.calls == 2
    emu.reset()
    assert (emu.calls, emu.latency) == (0, 0.0)
    assert call(emu, body(token)).status_code == 200  # the pending fault is gone, the token stays


def test_repr_and_answers_never_show_the_secret() -> None:
    emu = emulator()
    assert CLIENT_SECRET not in repr(emu)
    response = call(emu, body(emu.issue_token(), secret="wrong"))
    assert CLIENT_SECRET.encode() not in response.content
    assert CLIENT_SECRET not in repr(emu.wink_config())


def test_constructor_needs_credentials() -> None:
    with pytest.raises(ValueError, match="client_id"):
        WinkEmulator(client_id="", client_secret="s")


# -- fault injection -----------------------------------------------------------------------------


def test_fail_next_answers_the_status_for_n_calls_then_recovers() -> None:
    emu = emulator()
    token = emu.issue_token()
    emu.fail_next(2, status=429, body=b"slow down", headers={"Retry-After": "7"})
    for _ in range(2):
        response = call(emu, body(token))
        assert (response.status_code, response.content) == (429, b"slow down")
        assert response.headers["retry-after"] == "7"
    assert call(emu, body(token)).status_code == 200
    assert emu.calls == 3


def test_fail_next_defaults_to_503() -> None:
    emu = emulator()
    emu.fail_next()
    assert call(emu, body(emu.issue_token())).status_code == 503


def test_malformed_next_answers_200_with_a_body_that_is_no_profile() -> None:
    emu = emulator()
    token = emu.issue_token()
    emu.malformed_next()
    truncated = call(emu, body(token))
    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    emu.malformed_next(body=b"<html>gateway</html>", content_type="text/html")
    html = call(emu, body(token))
    assert (html.status_code, html.headers["content-type"]) == (200, "text/html")
    assert call(emu, body(token)).json()["firstName"] == "Ada"


def test_drop_next_raises_remote_protocol_error_in_process() -> None:
    emu = emulator()
    token = emu.issue_token()
    emu.drop_next()
    with pytest.raises(httpx.RemoteProtocolError):
        call(emu, body(token))
    assert call(emu, body(token)).status_code == 200


async def test_drop_next_raises_remote_protocol_error_with_the_async_transport() -> None:
    emu = emulator()
    emu.drop_next()
    async with httpx.AsyncClient(transport=emu.transport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"https://wink.test{VERIFY_PATH}", content=body("x"))


def test_faults_apply_in_the_order_they_were_asked() -> None:
    emu = emulator()
    token = emu.issue_token()
    emu.fail_next(1, status=500)
    emu.drop_next(1)
    emu.malformed_next(1, body=b"{}")
    assert call(emu, body(token)).status_code == 500
    with pytest.raises(httpx.RemoteProtocolError):
        call(emu, body(token))
    assert call(emu, body(token)).content == b"{}"
    assert call(emu, body(token)).status_code == 200


@pytest.mark.parametrize(
    "fault",
    [
        lambda e: e.fail_next(0),
        lambda e: e.drop_next(-1),
        lambda e: e.fail_next(1, status=99),
        lambda e: setattr(e, "latency", -1),
        lambda e: setattr(e, "latency", True),
    ],
)
def test_bad_fault_arguments_are_value_errors(fault: Any) -> None:
    with pytest.raises(ValueError, match=r"n must|status|latency"):
        fault(emulator())


def test_latency_blocks_the_sync_transport_with_time_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("wink_middleware.testing._transport.time.sleep", slept.append)
    emu = emulator()
    emu.latency = 0.25
    assert call(emu, body(emu.issue_token())).status_code == 200
    assert slept == [0.25]


async def test_latency_does_not_block_the_event_loop() -> None:
    emu = WinkEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, latency=0.2)
    token = emu.issue_token()
    async with httpx.AsyncClient(transport=emu.transport()) as client:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(client.post(f"https://wink.test{VERIFY_PATH}", content=body(token)) for _ in range(5))
        )
        elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 5
    assert 0.2 <= elapsed < 0.9  # five concurrent waits overlap


def test_latency_longer_than_the_read_timeout_is_a_read_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("wink_middleware.testing._transport.time.sleep", slept.append)
    emu = emulator()
    emu.latency = 10
    with (
        httpx.Client(transport=emu.sync_transport(), timeout=0.5) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post(f"https://wink.test{VERIFY_PATH}", content=body("x"))
    assert slept == [0.5]


# -- wired to the middleware -----------------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    profile = get_profile(request)
    assert profile is not None
    return JSONResponse({"user": profile.user_id, "name": profile.display_name})


def protected_app(emu: WinkEmulator, **options: Any) -> WinkMiddleware:
    return WinkMiddleware(
        Starlette(routes=[Route("/me", whoami)]),
        verifier=emu.async_verifier(retries=0, **options),
    )


async def get_me(app: WinkMiddleware, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as client:
        return await client.get("/me", headers=headers)


async def test_middleware_wired_to_the_emulator_gives_200_with_a_token_and_401_without(
    wink_emulator: WinkEmulator, wink_token: str
) -> None:
    app = protected_app(wink_emulator)
    ok = await get_me(app, wink_token)
    assert ok.status_code == 200
    assert ok.json()["name"] == "Ada Lovelace"
    assert (await get_me(app, None)).status_code == 401


@pytest.mark.parametrize(
    ("inject", "status"),
    [
        (lambda e: e.fail_next(), 503),
        (lambda e: e.drop_next(), 503),
        (lambda e: e.malformed_next(), 502),
        (lambda e: e.fail_next(status=401), 401),
    ],
)
async def test_faults_reach_the_middleware_as_the_right_answer(inject: Any, status: int) -> None:
    emu = emulator()
    inject(emu)
    assert (await get_me(protected_app(emu), emu.issue_token())).status_code == status


async def test_verifier_sees_expiry_through_a_shared_clock() -> None:
    clock = FakeClock()
    emu = emulator(clock)
    verifier = emu.async_verifier(clock=clock, cache_size=0)
    token = emu.issue_token(ttl=60)
    assert (await verifier.verify(token)).expiry_time is not None
    clock.advance(60)
    with pytest.raises(TokenRejected):
        await verifier.verify(token)


async def test_async_verifier_takes_a_config_or_options_not_both() -> None:
    emu = emulator()
    verifier = emu.async_verifier(emu.wink_config(retries=0))
    assert verifier.config.retries == 0
    with pytest.raises(TypeError, match="not both"):
        emu.async_verifier(emu.wink_config(), retries=0)


async def test_verifier_maps_emulator_faults_to_package_errors() -> None:
    emu = emulator()
    verifier = emu.async_verifier(retries=0, cache_size=0)
    token = emu.issue_token()
    emu.drop_next()
    with pytest.raises(WinkUnavailable):
        await verifier.verify(token)
    emu.malformed_next(body=b"<html></html>", content_type="text/html")
    with pytest.raises(WinkBadResponse):
        await verifier.verify(token)


def test_sync_verifier_reaches_the_emulator_for_wsgi_apps() -> None:
    emu = emulator()
    token = emu.issue_token(first_name="Grace")
    assert emu.verifier().verify(token).first_name == "Grace"

    def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        profile = get_profile(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"" if profile is None else profile.first_name.encode()]

    app = WinkWSGIMiddleware(hello, verifier=emu.verifier(retries=0))
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://app") as client:
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).text == "Grace"
        assert client.get("/").status_code == 401
        emu.fail_next()
        other = emu.issue_token()
        assert client.get("/", headers={"Authorization": f"Bearer {other}"}).status_code == 503


# -- the ASGI app --------------------------------------------------------------------------------


async def test_asgi_app_answers_like_the_transports() -> None:
    emu = emulator()
    token = emu.issue_token()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu), base_url="http://wink"
    ) as client:
        ok = await client.post(VERIFY_PATH, content=body(token))
        assert ok.status_code == 200
        assert ok.headers["content-length"] == str(len(ok.content))
        assert (await client.post(VERIFY_PATH, content=b"{")).status_code == 400
        assert (await client.post(VERIFY_PATH, content=b"x" * 70_000)).status_code == 400
        assert (await client.get("/")).status_code == 404
    assert emu.calls == 3


async def test_asgi_app_waits_out_the_latency() -> None:
    emu = WinkEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, latency=0.05)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu), base_url="http://wink"
    ) as client:
        started = time.monotonic()
        response = await client.post(VERIFY_PATH, content=body(emu.issue_token()))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.05


async def test_asgi_app_treats_a_client_gone_mid_body_as_an_empty_body() -> None:
    emu = emulator()
    incoming: Iterator[dict[str, Any]] = iter(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "POST", "path": VERIFY_PATH, "headers": []}
    await emu(scope, receive, send)
    assert sent[0]["status"] == 400


async def test_asgi_app_mounted_under_a_prefix_strips_it() -> None:
    emu = emulator()
    app = Starlette(routes=[Mount("/wink", app=emu)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://demo"
    ) as client:
        response = await client.post(f"/wink{VERIFY_PATH}", content=body(emu.issue_token()))
    assert response.status_code == 200


async def test_asgi_app_acknowledges_lifespan_and_refuses_websockets() -> None:
    emu = emulator()
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await emu({"type": "lifespan"}, receive, send)
    await emu({"type": "websocket", "path": "/"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
        "websocket.close",
    ]


async def test_asgi_drop_outside_serve_aborts_the_request() -> None:
    emu = emulator()
    emu.drop_next()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu), base_url="http://wink"
    ) as client:
        with pytest.raises(ConnectionAbortedError):
            await client.post(VERIFY_PATH, content=body("x"))


# -- real HTTP -----------------------------------------------------------------------------------


def raw_post(base_url: str, content: bytes) -> bytes:
    """One HTTP/1.1 request over a plain socket; everything the server sent before closing."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        request = (
            f"POST {VERIFY_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(request + content)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.slow
def test_serve_answers_over_real_http_and_really_drops_the_socket() -> None:
    emu = emulator()
    token = emu.issue_token()
    with emu.serve() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert raw_post(base_url, body(token)).startswith(b"HTTP/1.1 200 ")
        emu.drop_next()
        assert raw_post(base_url, body(token)) == b""  # closed without a byte of answer
        with httpx.Client(base_url=base_url) as client:
            emu.drop_next()
            with pytest.raises(httpx.RemoteProtocolError):
                client.post(VERIFY_PATH, content=body(token))
            assert client.post(VERIFY_PATH, content=body(token)).status_code == 200
    assert emu.calls == 4
    port = int(base_url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="refused"):
        socket.create_connection(("127.0.0.1", port), timeout=2)


@pytest.mark.slow
async def test_middleware_over_real_http_reports_a_dropped_connection_as_503() -> None:
    emu = emulator()
    token = emu.issue_token()
    with emu.serve() as base_url:
        config = WinkConfig(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=base_url, retries=0
        )
        app = WinkMiddleware(Starlette(routes=[Route("/me", whoami)]), config=config)
        assert (await get_me(app, token)).status_code == 200
        await app.verifier.invalidate(token)
        emu.drop_next()
        assert (await get_me(app, token)).status_code == 503
        await app.aclose()


def test_serve_without_uvicorn_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with (
        pytest.raises(RuntimeError, match=r"pip install \"wink-middleware\[demo\]\""),
        emulator().serve(),
    ):
        pass


@pytest.mark.slow
def test_a_server_that_dies_at_startup_is_a_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: uvicorn.Server, sockets: Any = None) -> None:
        raise SystemExit(3)

    monkeypatch.setattr(uvicorn.Server, "run", crash)
    with pytest.raises(RuntimeError, match="did not start"), emulator().serve():
        pass


@pytest.mark.slow
def test_a_server_that_does_not_start_in_time_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    def never_starts(self: uvicorn.Server, sockets: Any = None) -> None:
        while not self.should_exit:
            time.sleep(0.01)

    # A server that never reports started (rather than a negative timeout, which a fast start
    # could beat before the first check).
    monkeypatch.setattr(uvicorn.Server, "run", never_starts)
    monkeypatch.setattr("wink_middleware.testing._server._START_TIMEOUT", 0.05)
    with pytest.raises(RuntimeError, match="in time"), emulator().serve():
        pass


@pytest.mark.slow
def test_serve_on_a_port_in_use_raises_oserror() -> None:
    with serve(emulator()) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="in use"), emulator().serve(port=port):
            pass


# -- the pytest plugin ---------------------------------------------------------------------------


def test_plugin_fixtures_give_a_fresh_emulator_config_and_token(
    wink_emulator: WinkEmulator, wink_config: WinkConfig, wink_token: str
) -> None:
    assert wink_emulator.calls == 0
    assert (wink_config.client_id, wink_config.client_secret) == (CLIENT_ID, CLIENT_SECRET)
    assert call(wink_emulator, body(wink_token)).status_code == 200


PLUGIN_TEST = """
def test_uses_the_fixture(wink_emulator, wink_token):
    assert wink_emulator.client_id == "test-client"
"""
PLAIN_TEST = """
def test_plain():
    assert True
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "args"),
    [(PLUGIN_TEST, ["-W", "error"]), (PLAIN_TEST, ["-W", "error", "-p", "no:wink_middleware"])],
)
def test_plugin_loads_from_its_entry_point_and_can_be_disabled(
    tmp_path: Path, source: str, args: list[str]
) -> None:
    (tmp_path / "test_it.py").write_text(source)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout

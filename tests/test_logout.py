"""Logout: ``get_access_token(request)`` is the token the request was verified with, whatever its
source (header, cookie, query parameter, websocket subprotocol), and ``get_verifier(request)`` the
verifier of the middleware that handled it, so a handler behind ``Middleware(WinkMiddleware, ...)``
can revoke exactly that token."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from wink_middleware import (
    AsyncWinkVerifier,
    WinkMiddleware,
    WinkVerifier,
    WinkWSGIMiddleware,
    get_access_token,
    get_verifier,
)
from wink_middleware.testing import WinkEmulator

pytestmark = pytest.mark.anyio

SOURCES: dict[str, Callable[[str], Any]] = {
    "header": lambda token: {"headers": {"Authorization": f"Bearer {token}"}},
    "cookie": lambda token: {"headers": {"Cookie": f"wink={token}"}},
    "query": lambda token: {"params": {"access_token": token}},
}
OPTIONS: dict[str, Any] = {
    "cookie_name": "wink",
    "query_param": "access_token",
    "websocket_subprotocol": "wink.bearer",
    "public_paths": ["/health"],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def logout(request: Request) -> JSONResponse:
    token = get_access_token(request)
    assert token is not None  # a protected path: the middleware verified it
    await get_verifier(request).revoke(token)
    return JSONResponse({"signed_out": True})


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"token": get_access_token(request)})


async def health(request: Request) -> JSONResponse:
    verifier = get_verifier(request)
    return JSONResponse({"token": get_access_token(request), "verifier": type(verifier).__name__})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="wink.bearer")
    await websocket.send_json({"token": get_access_token(websocket)})
    await websocket.close()


def starlette_app() -> Starlette:
    from starlette.middleware import Middleware

    return Starlette(
        routes=[
            Route("/me", me),
            Route("/logout", logout, methods=["POST"]),
            Route("/health", health),
            WebSocketRoute("/ws", socket),
        ],
        # The way the README builds it: no handle on the middleware object from the app.
        middleware=[Middleware(WinkMiddleware, **OPTIONS)],
    )


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch, wink_emulator: WinkEmulator
) -> Iterator[WinkEmulator]:
    with wink_emulator.serve() as base_url:
        monkeypatch.setenv("WINK_BASE_URL", base_url)
        monkeypatch.setenv("WINK_CLIENT_ID", wink_emulator.client_id)
        monkeypatch.setenv("WINK_CLIENT_SECRET", wink_emulator.wink_config().client_secret)
        monkeypatch.setenv("WINK_RETRIES", "0")
        yield wink_emulator


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_get_access_token_is_the_verified_token_whatever_its_source(
    configured: WinkEmulator, source: str
) -> None:
    token = configured.issue_token()
    with TestClient(starlette_app()) as client:
        sent = SOURCES[source](token)
        assert client.get("/me", **sent).json() == {"token": token}
        assert client.post("/logout", **sent).json() == {"signed_out": True}
        # Revoked by the middleware's own verifier: refused from now on, from any source.
        for other in SOURCES.values():
            assert client.get("/me", **other(token)).status_code == 401


def test_get_access_token_reads_the_websocket_subprotocol_token(configured: WinkEmulator) -> None:
    token = configured.issue_token()
    with (
        TestClient(starlette_app()) as client,
        client.websocket_connect("/ws", subprotocols=["wink.bearer", token]) as ws,
    ):
        assert ws.receive_json() == {"token": token}


def test_a_public_path_has_no_token_but_reaches_the_verifier(configured: WinkEmulator) -> None:
    with TestClient(starlette_app()) as client:
        answer = client.get("/health", headers={"Authorization": "Bearer whatever"})
        assert answer.json() == {"token": None, "verifier": "AsyncWinkVerifier"}


async def test_get_verifier_is_the_middlewares_own(wink_emulator: WinkEmulator) -> None:
    verifier = wink_emulator.async_verifier()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(get_verifier(scope))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=WinkMiddleware(app, verifier=verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get(
            "/", headers={"Authorization": f"Bearer {wink_emulator.issue_token()}"}
        )
    assert answer.status_code == 204
    assert seen == [verifier] and isinstance(seen[0], AsyncWinkVerifier)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_get_access_token_under_wsgi_whatever_its_source(
    wink_emulator: WinkEmulator, source: str
) -> None:
    verifier = wink_emulator.verifier()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        token = get_access_token(environ)
        if environ["PATH_INFO"] == "/logout":
            assert token is not None
            get_verifier(environ).revoke(token)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(token).encode()]

    middleware = WinkWSGIMiddleware(app, verifier=verifier, **OPTIONS)
    token = wink_emulator.issue_token()
    sent = SOURCES[source](token)
    with httpx.Client(transport=httpx.WSGITransport(app=middleware), base_url="http://t") as client:
        assert client.get("/me", **sent).text == token
        assert client.post("/logout", **sent).status_code == 200
        assert client.get("/me", **sent).status_code == 401
        assert client.get("/health").text == "None"
    assert isinstance(verifier, WinkVerifier)


def test_the_helpers_refuse_what_is_not_a_request() -> None:
    with pytest.raises(TypeError, match=r"get_access_token\(\) takes an ASGI scope"):
        get_access_token(42)
    with pytest.raises(TypeError, match=r"get_verifier\(\) takes an ASGI scope"):
        get_verifier(object())


def test_no_middleware_no_token_no_verifier() -> None:
    assert get_access_token({"type": "http"}) is None
    assert get_verifier({"wsgi.version": (1, 0)}) is None

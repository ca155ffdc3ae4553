"""WinkMiddleware in real frameworks: Starlette, FastAPI, websockets, plain ASGI, and uvicorn."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.helpers import FakeClock, config, make_token
from tests.servers import serve_asgi
from tests.stub import WinkStub
from wink_middleware import AsyncWinkVerifier, WinkMiddleware, WinkProfile, get_profile

TOKEN = make_token()
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def verifier(stub: WinkStub | None = None, **options: Any) -> AsyncWinkVerifier:
    return AsyncWinkVerifier(
        config(**options), client=(stub or WinkStub()).client(), clock=FakeClock()
    )


# -- Starlette ----------------------------------------------------------------------------------


@requires("authenticated")
async def me(request: Request) -> JSONResponse:
    user = request.user
    assert isinstance(user, WinkProfile)
    profile = get_profile(request)
    assert profile is user
    return JSONResponse(
        {"name": user.display_name, "id": user.identity, "auth": request.auth.scopes}
    )


async def feed(request: Request) -> PlainTextResponse:
    return PlainTextResponse(
        "hello " + ("anonymous" if not request.user.is_authenticated else request.user.display_name)
    )


async def echo(websocket: WebSocket) -> None:
    profile = get_profile(websocket)
    assert profile is not None
    await websocket.accept()
    await websocket.send_text(f"hi {profile.wink_tag}")
    await websocket.close()


def starlette_app(**options: Any) -> Starlette:
    return Starlette(
        routes=[Route("/me", me), Route("/feed", feed), WebSocketRoute("/ws", echo)],
        middleware=[Middleware(WinkMiddleware, verifier=verifier(**options))],
    )


def test_starlette_request_user_and_requires_authenticated() -> None:
    with TestClient(starlette_app()) as client:
        response = client.get("/me", headers=AUTH)
        assert response.status_code == 200
        assert response.json() == {
            "name": "Ada Lovelace",
            "id": "4b15e1bc-d098-4555-bd12-4e904775a413",
            "auth": ["authenticated"],
        }
        assert client.get("/me").status_code == 401


def test_starlette_optional_path_sees_an_unauthenticated_user() -> None:
    with TestClient(starlette_app(optional_paths=["/feed"])) as client:
        assert client.get("/feed").text == "hello anonymous"
        assert client.get("/feed", headers=AUTH).text == "hello Ada Lovelace"


def test_add_middleware_works_in_starlette() -> None:
    app = Starlette(routes=[Route("/me", me)])
    app.add_middleware(WinkMiddleware, verifier=verifier())
    with TestClient(app) as client:
        assert client.get("/me", headers=AUTH).status_code == 200
        assert client.get("/me").status_code == 401


# -- FastAPI ------------------------------------------------------------------------------------


def current_user(request: Request) -> WinkProfile:
    profile = get_profile(request)
    if profile is None:
        raise HTTPException(status_code=401, detail="sign in with Wink")
    return profile


def fastapi_app(**options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/profile")
    def read_profile(user: Annotated[WinkProfile, Depends(current_user)]) -> dict[str, Any]:
        return user.to_wink()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(WinkMiddleware, verifier=verifier(**options))
    return app


def test_fastapi_dependency_reads_the_profile() -> None:
    with TestClient(fastapi_app(public_paths=["/health"])) as client:
        response = client.get("/profile", headers=AUTH)
        assert response.status_code == 200
        assert response.json()["email"] == "ada@example.com"
        assert client.get("/profile").status_code == 401
        assert client.get("/health").json() == {"status": "ok"}


def test_fastapi_optional_route_dependency_answers_401_itself() -> None:
    with TestClient(fastapi_app(optional_paths=["/profile"])) as client:
        response = client.get("/profile")
        assert response.status_code == 401
        assert response.json() == {"detail": "sign in with Wink"}


# -- websockets ---------------------------------------------------------------------------------


def test_websocket_with_a_valid_token_is_accepted_with_the_profile() -> None:
    with TestClient(starlette_app()) as client, client.websocket_connect("/ws", headers=AUTH) as ws:
        assert ws.receive_text() == "hi ;ada"


def test_websocket_query_token_for_browsers() -> None:
    app = starlette_app(query_param="access_token")
    with TestClient(app) as client, client.websocket_connect(f"/ws?access_token={TOKEN}") as ws:
        assert ws.receive_text() == "hi ;ada"


@pytest.mark.parametrize(
    ("stub", "headers", "status"),
    [
        (WinkStub(), {}, 401),
        (WinkStub(httpx.Response(401)), AUTH, 401),
        (WinkStub(), {"Authorization": "Bearer a b"}, 400),
        (WinkStub(httpx.Response(500)), AUTH, 503),
        (WinkStub(httpx.Response(200, text="x")), AUTH, 502),
    ],
)
def test_websocket_denial_uses_the_http_response_extension(
    stub: WinkStub, headers: dict[str, str], status: int
) -> None:
    app = Starlette(
        routes=[WebSocketRoute("/ws", echo)],
        middleware=[Middleware(WinkMiddleware, verifier=verifier(stub))],
    )
    with (
        TestClient(app) as client,
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass  # pragma: no cover - the handshake is denied
    assert info.value.status_code == status
    assert info.value.headers["cache-control"] == "no-store"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("stub", "headers", "code"),
    [
        (WinkStub(), [], 1008),
        (WinkStub(httpx.Response(401)), [(b"authorization", f"Bearer {TOKEN}".encode())], 1008),
        (WinkStub(httpx.Response(503)), [(b"authorization", f"Bearer {TOKEN}".encode())], 1013),
        (
            WinkStub(httpx.Response(200, text="x")),
            [(b"authorization", f"Bearer {TOKEN}".encode())],
            1013,
        ),
    ],
)
async def test_websocket_denial_closes_1008_or_1013_without_the_extension(
    stub: WinkStub, headers: list[tuple[bytes, bytes]], code: int
) -> None:
    called: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)  # pragma: no cover - must not run

    middleware = WinkMiddleware(app, verifier=verifier(stub))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": headers,
        "query_string": b"",
        "extensions": {},
    }
    await middleware(scope, receive, send)
    assert len(sent) == 1
    assert sent[0]["type"] == "websocket.close"
    assert sent[0]["code"] == code
    assert called == []


def test_websocket_denial_through_on_error() -> None:
    def on_error(conn: Any, exc: Any) -> Any:
        async def close(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "websocket.close", "code": 4401})

        return close

    app = Starlette(
        routes=[WebSocketRoute("/ws", echo)],
        middleware=[Middleware(WinkMiddleware, verifier=verifier(on_error=on_error))],
    )
    with (
        TestClient(app) as client,
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws"),
    ):
        pass  # pragma: no cover - the handshake is denied
    assert info.value.code == 4401


# -- plain ASGI and a real server ---------------------------------------------------------------


async def plain_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    profile = get_profile(scope)
    body = b"anonymous" if profile is None else profile.wink_tag.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def test_plain_asgi_app() -> None:
    with TestClient(WinkMiddleware(plain_app, verifier=verifier())) as client:
        assert client.get("/", headers=AUTH).text == ";ada"
        assert client.get("/").status_code == 401


@pytest.mark.slow
def test_served_by_uvicorn_over_a_real_socket() -> None:
    stub = WinkStub()
    wink = verifier(stub, public_paths=["/health"])
    app = WinkMiddleware(plain_app, verifier=wink)
    with serve_asgi(app) as base_url, httpx.Client(base_url=base_url) as client:
        assert client.get("/x", headers=AUTH).text == ";ada"
        assert client.get("/x", headers=AUTH).text == ";ada"
        missing = client.get("/x")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="wink"'
        assert client.get("/x", headers={"Authorization": "Bearer a b"}).status_code == 400
        assert client.get("/health").text == "anonymous"
    assert stub.calls == 1

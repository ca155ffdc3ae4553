"""wink_middleware.fastapi: CurrentUser, OptionalUser and require() in a real FastAPI app behind a
real WinkMiddleware, with the shipped Wink emulator."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import PlainTextResponse
from starlette.requests import HTTPConnection, Request
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import Message

from wink_middleware import WinkConfigError, WinkMiddleware, WinkProfile
from wink_middleware.fastapi import (
    CurrentUser,
    OptionalUser,
    WinkHTTPException,
    current_user,
    optional_user,
    require,
)
from wink_middleware.testing import WinkEmulator

MISSING_BODY = {"error": "missing_token", "error_description": "a bearer token is required"}


def is_grace(user: WinkProfile) -> bool:
    return user.first_name == "Grace"


def build_app(emulator: WinkEmulator | None, **options: Any) -> FastAPI:
    """Routes for every dependency; WinkMiddleware in front unless ``emulator`` is None."""
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user_id": user.user_id, "name": user.display_name}

    @app.get("/feed")
    async def feed(user: OptionalUser) -> dict[str, str | None]:
        return {"user_id": None if user is None else user.user_id}

    @app.get("/graces", dependencies=[Depends(require(is_grace, "only Graces may look"))])
    async def graces() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/grace")
    async def grace(user: Annotated[WinkProfile, Depends(require(is_grace))]) -> dict[str, str]:
        return {"name": user.display_name}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.websocket("/ws")
    async def hello(websocket: WebSocket, user: CurrentUser) -> None:
        await websocket.accept()
        await websocket.send_text(f"hi {user.first_name}")
        await websocket.close()

    if emulator is not None:
        options.setdefault("optional_paths", ["/feed", "/graces", "/grace", "/ws"])
        options.setdefault("public_paths", ["/openapi.json", "/health"])
        app.add_middleware(WinkMiddleware, verifier=emulator.async_verifier(**options))
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(wink_emulator: WinkEmulator) -> FastAPI:
    return build_app(wink_emulator)


@pytest.mark.anyio
async def test_current_user_is_the_profile_the_middleware_verified(
    app: FastAPI, wink_emulator: WinkEmulator
) -> None:
    token = wink_emulator.issue_token(first_name="Grace", wink_token="user-1")
    async with client(app) as http:
        response = await http.get("/me", headers=bearer(token))
        assert response.json() == {"user_id": "user-1", "name": "Grace Lovelace"}
        await http.get("/me", headers=bearer(token))
    assert wink_emulator.calls == 1


@pytest.mark.anyio
@pytest.mark.parametrize("realm", ["wink", 'my "api"'])
async def test_current_user_without_a_token_answers_the_middlewares_401(
    wink_emulator: WinkEmulator, realm: str
) -> None:
    optional = build_app(wink_emulator, realm=realm, optional_paths=["/me"])
    protected = build_app(wink_emulator, realm=realm)
    async with client(optional) as http, client(protected) as http_protected:
        from_dependency = await http.get("/me")
        from_middleware = await http_protected.get("/me")
    assert from_dependency.status_code == 401
    assert from_dependency.json() == MISSING_BODY
    escaped = realm.replace('"', '\\"')
    assert from_dependency.headers["www-authenticate"] == f'Bearer realm="{escaped}"'
    assert from_dependency.headers["content-type"] == "application/json"
    assert from_dependency.headers["cache-control"] == "no-store"
    # The very answer the middleware gives on a protected path.
    assert from_dependency.content == from_middleware.content
    assert from_dependency.headers.multi_items() == from_middleware.headers.multi_items()


@pytest.mark.anyio
async def test_current_user_on_a_public_path_answers_401_too(wink_emulator: WinkEmulator) -> None:
    app = build_app(wink_emulator, public_paths=["/me"])
    async with client(app) as http:
        response = await http.get("/me")
    assert (response.status_code, response.json()) == (401, MISSING_BODY)


@pytest.mark.anyio
async def test_a_refused_token_never_reaches_the_dependency(
    app: FastAPI, wink_emulator: WinkEmulator
) -> None:
    token = wink_emulator.issue_token()
    wink_emulator.revoke(token)
    async with client(app) as http:
        response = await http.get("/feed", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


@pytest.mark.anyio
async def test_optional_user_is_none_when_anonymous_and_the_profile_with_a_token(
    app: FastAPI, wink_emulator: WinkEmulator
) -> None:
    async with client(app) as http:
        anonymous = await http.get("/feed")
        signed_in = await http.get(
            "/feed", headers=bearer(wink_emulator.issue_token(wink_token="u"))
        )
    assert anonymous.json() == {"user_id": None}
    assert signed_in.json() == {"user_id": "u"}


@pytest.mark.anyio
async def test_require_answers_403_insufficient_scope_when_the_predicate_is_false(
    app: FastAPI, wink_emulator: WinkEmulator
) -> None:
    async with client(app) as http:
        refused = await http.get("/graces", headers=bearer(wink_emulator.issue_token()))
        allowed = await http.get(
            "/graces", headers=bearer(wink_emulator.issue_token(first_name="Grace"))
        )
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "insufficient_scope",
        "error_description": "only Graces may look",
    }
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="wink", error="insufficient_scope", error_description="only Graces may look"'
    )
    assert refused.headers["cache-control"] == "no-store"
    assert allowed.json() == {"ok": True}


@pytest.mark.anyio
async def test_require_as_an_annotated_parameter_gives_the_user(
    app: FastAPI, wink_emulator: WinkEmulator
) -> None:
    async with client(app) as http:
        allowed = await http.get(
            "/grace", headers=bearer(wink_emulator.issue_token(first_name="Grace"))
        )
        refused = await http.get("/grace", headers=bearer(wink_emulator.issue_token()))
        anonymous = await http.get("/grace")
    assert allowed.json() == {"name": "Grace Lovelace"}
    assert refused.status_code == 403
    assert refused.json()["error_description"] == "the user is not allowed to do this"
    assert (anonymous.status_code, anonymous.json()) == (401, MISSING_BODY)


def test_require_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="function of the WinkProfile"):
        require("admin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="printable ASCII"):
        require(is_grace, "no\nnewlines")
    assert require(is_grace).__name__ == "require(is_grace)"


@pytest.mark.anyio
async def test_an_apps_own_handler_for_the_exception_wins(
    app: FastAPI, wink_emulator: WinkEmulator
) -> None:
    async def teapot(request: Request, exc: Exception) -> PlainTextResponse:
        assert isinstance(exc, WinkHTTPException)
        return PlainTextResponse(exc.error.description, status_code=418)

    app.add_exception_handler(WinkHTTPException, teapot)
    async with client(app) as http:
        response = await http.get("/graces")
    assert (response.status_code, response.text) == (418, "a bearer token is required")


@pytest.mark.anyio
async def test_the_exception_is_an_http_exception_with_the_challenge() -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "path": "/",
        "headers": [],
        "wink": None,
        "wink.realm": "api",
    }
    with pytest.raises(HTTPException) as raised:
        await current_user(HTTPConnection(scope), None)
    assert isinstance(raised.value, WinkHTTPException)
    assert raised.value.status_code == 401
    assert raised.value.detail == "a bearer token is required"
    # Without the JSON body's own headers, for a handler that renders a body of its own.
    assert raised.value.headers == {
        "Cache-Control": "no-store",
        "WWW-Authenticate": 'Bearer realm="api"',
    }


# -- websockets ---------------------------------------------------------------------------------


def test_websocket_route_gets_the_user_or_the_http_denial(
    app: FastAPI, wink_emulator: WinkEmulator
) -> None:
    token = wink_emulator.issue_token(first_name="Grace")
    with TestClient(app) as http:
        with http.websocket_connect("/ws", headers=bearer(token)) as ws:
            assert ws.receive_text() == "hi Grace"
        # TestClient offers websocket.http.response: the refusal is the same HTTP 401.
        with pytest.raises(WebSocketDenialResponse) as denied, http.websocket_connect("/ws"):
            pass  # pragma: no cover - the handshake is denied
    assert denied.value.status_code == 401
    assert denied.value.json() == MISSING_BODY
    assert denied.value.headers["www-authenticate"] == 'Bearer realm="wink"'


@pytest.mark.anyio
async def test_websocket_denial_closes_1008_before_accepting_without_the_extension(
    app: FastAPI,
) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "root_path": "",
        "scheme": "ws",
        "server": ("testserver", 80),
        "headers": [],
        "query_string": b"",
        "extensions": {},
    }
    await app(scope, receive, send)
    assert sent == [
        {"type": "websocket.close", "code": 1008, "reason": "a bearer token is required"}
    ]


# -- setup errors, OpenAPI, tests of apps ---------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/me", "/feed", "/graces"])
async def test_without_the_middleware_the_dependencies_raise_a_config_error(path: str) -> None:
    async with client(build_app(None)) as http:
        with pytest.raises(WinkConfigError, match="WinkMiddleware"):
            await http.get(path)


@pytest.mark.anyio
async def test_openapi_documents_the_bearer_scheme_on_the_routes_that_use_it(app: FastAPI) -> None:
    async with client(app) as http:
        document = (await http.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["WinkBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path in ("/me", "/feed", "/graces", "/grace"):
        assert document["paths"][path]["get"]["security"] == [{"WinkBearer": []}]
    assert "security" not in document["paths"]["/health"]["get"]


@pytest.mark.anyio
async def test_dependency_overrides_stand_in_for_a_signed_in_user(app: FastAPI) -> None:
    app.dependency_overrides[current_user] = lambda: WinkProfile(
        wink_token="u1", first_name="Grace"
    )
    app.dependency_overrides[optional_user] = lambda: None
    async with client(app) as http:
        graces = await http.get("/graces")
        feed = await http.get("/feed")
        me = await http.get("/me")
    assert graces.json() == {"ok": True}
    # The middleware still guards its protected paths: an override replaces only the dependency.
    assert me.status_code == 401
    assert feed.json() == {"user_id": None}


@pytest.mark.anyio
async def test_dependency_overrides_work_without_the_middleware() -> None:
    app = build_app(None)
    app.dependency_overrides[current_user] = lambda: WinkProfile(
        wink_token="u1", first_name="Grace"
    )
    async with client(app) as http:
        me = await http.get("/me")
        grace = await http.get("/grace")
    assert me.json() == {"user_id": "u1", "name": "Grace"}
    assert grace.json() == {"name": "Grace"}


def test_importing_without_fastapi_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.delitem(sys.modules, "wink_middleware.fastapi")
    with pytest.raises(ImportError, match="pip install fastapi"):
        importlib.import_module("wink_middleware.fastapi")

"""WinkMiddleware: request handling, path policy, token sources and RFC 6750 answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from werkzeug.datastructures import WWWAuthenticate

from tests.helpers import CLIENT_SECRET, NOW, FakeClock, config, make_token, profile_json
from tests.stub import WinkStub
from wink_middleware import (
    AsyncWinkVerifier,
    AuthenticationFailed,
    WinkConfig,
    WinkConfigError,
    WinkMiddleware,
    WinkProfile,
    get_profile,
)

pytestmark = pytest.mark.anyio

TOKEN = make_token()
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Recorder:
    """A plain ASGI app that records the scope it was called with and answers 200."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            profile = get_profile(scope)
            body = json.dumps({"user": None if profile is None else profile.wink_token}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})


def build(
    stub: WinkStub | None = None, **options: Any
) -> tuple[WinkMiddleware, Recorder, WinkStub]:
    stub = stub or WinkStub()
    app = Recorder()
    verifier = AsyncWinkVerifier(config(**options), client=stub.client(), clock=FakeClock())
    return WinkMiddleware(app, verifier=verifier), app, stub


async def call(
    middleware: Any,
    path: str = "/api",
    *,
    method: str = "GET",
    headers: Any = None,
    cookies: dict[str, str] | None = None,
) -> httpx.Response:
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://app.test", cookies=cookies
    ) as client:
        return await client.request(method, path, headers=headers)


def challenge(response: httpx.Response) -> WWWAuthenticate:
    parsed = WWWAuthenticate.from_header(response.headers["www-authenticate"])
    assert parsed is not None
    return parsed


# -- success ------------------------------------------------------------------------------------


async def test_valid_token_reaches_the_app_with_the_profile_in_scope() -> None:
    middleware, app, _stub = build()
    response = await call(middleware, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"user": profile_json()["winkToken"]}
    scope = app.scopes[0]
    assert isinstance(scope["wink"], WinkProfile)
    assert scope["user"] is scope["wink"]
    assert isinstance(scope["auth"], AuthCredentials)
    assert scope["auth"].scopes == ["authenticated"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    middleware, _, _ = build()
    assert (
        await call(middleware, headers={"Authorization": f"{scheme} {TOKEN}"})
    ).status_code == 200


async def test_cache_hit_makes_no_second_call() -> None:
    middleware, _, stub = build()
    for _ in range(3):
        assert (await call(middleware, headers=AUTH)).status_code == 200
    assert stub.calls == 1


# -- missing and invalid tokens -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc"},
        {"Authorization": ""},
    ],
    ids=["none", "basic", "other-scheme", "empty-header"],
)
async def test_missing_token_is_401_without_error_code(headers: dict[str, str]) -> None:
    middleware, app, stub = build()
    response = await call(middleware, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing_token",
        "error_description": "a bearer token is required",
    }
    parsed = challenge(response)
    assert parsed.type == "bearer"
    assert dict(parsed.parameters) == {"realm": "wink"}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert app.scopes == [] and stub.calls == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Bearer", "empty"),
        ("Bearer    ", "empty"),
        ("Bearer " + "a" * 4097, "longer than 4096"),
        ("Bearer abc def", "malformed"),
        ("Bearer abc,def", "malformed"),
        ("Bearer =abc", "malformed"),
        ("Bearer abc=def", "malformed"),
        ("Bearer tok\u00e9n", "malformed"),
        ('Bearer "quoted"', "malformed"),
    ],
)
async def test_ill_formed_bearer_credentials_are_400_invalid_request(
    value: str, reason: str
) -> None:
    middleware, app, stub = build()
    response = await call(middleware, headers=[("Authorization", value.encode("latin-1"))])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert reason in response.json()["error_description"]
    params = challenge(response).parameters
    assert params["error"] == "invalid_request"
    assert reason in (params.get("error_description") or "")
    assert app.scopes == [] and stub.calls == 0


async def test_non_ascii_bytes_in_authorization_are_400() -> None:
    middleware, _, stub = build()
    response = await call(middleware, headers=[(b"authorization", b"Bearer \xff\xfe\x00abc")])
    assert response.status_code == 400
    assert stub.calls == 0


async def test_two_authorization_headers_are_400() -> None:
    middleware, _, stub = build()
    response = await call(middleware, headers=[("Authorization", f"Bearer {TOKEN}")] * 2)
    assert response.status_code == 400
    assert "more than one" in response.json()["error_description"]
    assert stub.calls == 0


async def test_max_token_length_is_configurable() -> None:
    middleware, _, _ = build(max_token_length=10)
    assert (
        await call(middleware, headers={"Authorization": "Bearer abcdefghij"})
    ).status_code == 200
    assert (
        await call(middleware, headers={"Authorization": "Bearer abcdefghijk"})
    ).status_code == 400


async def test_huge_authorization_header_is_400_not_500() -> None:
    middleware, _, _ = build()
    response = await call(middleware, headers={"Authorization": "Bearer " + "A" * 1_000_000})
    assert response.status_code == 400


# -- Wink's answers -----------------------------------------------------------------------------


async def test_rejected_token_is_401_invalid_token() -> None:
    middleware, app, _ = build(WinkStub(httpx.Response(401)))
    response = await call(middleware, headers=AUTH)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "the access token was rejected by Wink",
    }
    params = challenge(response).parameters
    assert params["realm"] == "wink"
    assert params["error"] == "invalid_token"
    assert params["error_description"] == "the access token was rejected by Wink"
    assert app.scopes == []


async def test_expired_token_is_401_invalid_token_without_calling_wink() -> None:
    middleware, _, stub = build()
    response = await call(
        middleware, headers={"Authorization": f"Bearer {make_token(exp=NOW - 1)}"}
    )
    assert response.status_code == 401
    assert challenge(response).parameters["error_description"] == "the access token has expired"
    assert stub.calls == 0


async def test_wink_down_is_503_with_retry_after_not_401() -> None:
    middleware, app, _ = build(WinkStub(httpx.Response(503, headers={"Retry-After": "7"})))
    response = await call(middleware, headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"] == "temporarily_unavailable"
    assert "www-authenticate" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert app.scopes == []


async def test_connection_failure_is_503() -> None:
    middleware, _, _ = build(WinkStub(httpx.ConnectError("refused")))
    response = await call(middleware, headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()


async def test_bad_wink_answer_is_502_bad_gateway() -> None:
    middleware, _, _ = build(WinkStub(httpx.Response(200, text="<html>oops</html>")))
    response = await call(middleware, headers=AUTH)
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
    assert "www-authenticate" not in response.headers


async def test_realm_is_configurable_and_quoted() -> None:
    middleware, _, _ = build(realm='my "api" \\ v2')
    response = await call(middleware)
    assert response.headers["www-authenticate"] == 'Bearer realm="my \\"api\\" \\\\ v2"'
    assert challenge(response).parameters["realm"] == 'my "api" \\ v2'


# -- path policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/docs", "/docs/", "/docs/openapi.json"])
async def test_public_paths_skip_authentication(path: str) -> None:
    middleware, app, stub = build(public_paths=["/health", "/docs*"])
    response = await call(middleware, path, headers={"Authorization": "Bearer bad token"})
    assert response.status_code == 200
    scope = app.scopes[0]
    assert scope["wink"] is None and get_profile(scope) is None
    assert isinstance(scope["user"], UnauthenticatedUser) and scope["auth"].scopes == []
    assert stub.calls == 0


async def test_public_path_keeps_an_outer_middlewares_user() -> None:
    middleware, app, _ = build(public_paths=["/health"])
    outer_user = object()

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = outer_user
        await middleware(scope, receive, send)

    await call(outer, "/health")
    assert app.scopes[0]["user"] is outer_user


@pytest.mark.parametrize("path", ["/healthz", "/health/x", "/doc", "/api"])
async def test_paths_not_matching_a_pattern_are_protected(path: str) -> None:
    middleware, _, _ = build(public_paths=["/health", "/docs*"])
    assert (await call(middleware, path)).status_code == 401


async def test_optional_path_without_token_is_anonymous() -> None:
    middleware, app, _ = build(optional_paths=["/feed*"])
    response = await call(middleware, "/feed/today")
    assert response.status_code == 200
    assert response.json() == {"user": None}
    scope = app.scopes[0]
    assert isinstance(scope["user"], UnauthenticatedUser)
    assert isinstance(scope["auth"], AuthCredentials) and scope["auth"].scopes == []
    assert get_profile(scope) is None


async def test_optional_path_with_valid_token_gets_the_profile() -> None:
    middleware, _, _ = build(optional_paths=["/feed"])
    response = await call(middleware, "/feed", headers=AUTH)
    assert response.json() == {"user": profile_json()["winkToken"]}


async def test_optional_path_still_refuses_a_bad_token() -> None:
    middleware, app, _ = build(WinkStub(httpx.Response(401)), optional_paths=["/feed"])
    assert (await call(middleware, "/feed", headers=AUTH)).status_code == 401
    assert (
        await call(middleware, "/feed", headers={"Authorization": "Bearer a b"})
    ).status_code == 400
    assert app.scopes == []


async def test_public_wins_over_optional() -> None:
    middleware, app, stub = build(public_paths=["/x"], optional_paths=["/x"])
    assert (await call(middleware, "/x", headers={"Authorization": "Bearer ok"})).status_code == 200
    assert stub.calls == 0 and app.scopes[0]["wink"] is None


async def test_paths_match_without_root_path() -> None:
    middleware, _app, _ = build(public_paths=["/health"])
    scope_app = middleware

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "root_path": "/prefix", "path": "/prefix" + scope["path"]}
        await scope_app(scope, receive, send)

    assert (await call(mounted, "/health")).status_code == 200
    assert (await call(mounted, "/api")).status_code == 401


PREFLIGHT = {"Origin": "https://front.test", "Access-Control-Request-Method": "POST"}


async def cors_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A method-agnostic app behind its own CORS layer: answers preflights with CORS headers."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"6")]
    if scope["method"] == "OPTIONS":
        headers.append((b"access-control-allow-origin", b"https://front.test"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"secret"})


async def test_cors_preflight_with_a_cors_answer_passes_without_its_body() -> None:
    stub = WinkStub()
    verifier = AsyncWinkVerifier(config(), client=stub.client(), clock=FakeClock())
    response = await call(
        WinkMiddleware(cors_app, verifier=verifier), method="OPTIONS", headers=PREFLIGHT
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://front.test"
    assert response.content == b"" and response.headers["content-length"] == "0"
    assert stub.calls == 0


async def test_cors_preflight_reaching_a_method_agnostic_handler_gets_the_tokenless_401() -> None:
    middleware, app, stub = build()
    response = await call(middleware, method="OPTIONS", headers=PREFLIGHT)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"
    assert b"user" not in response.content
    assert isinstance(app.scopes[0]["user"], UnauthenticatedUser)
    assert stub.calls == 0


async def test_cors_preflight_through_starlettes_cors_middleware_keeps_working() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.routing import Route

    async def secret(request: Any) -> Response:
        return PlainTextResponse("secret")

    inner = Starlette(
        routes=[Route("/api", secret, methods=["GET", "POST"])],
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["https://front.test"], allow_methods=["*"])
        ],
    )
    verifier = AsyncWinkVerifier(config(), client=WinkStub().client(), clock=FakeClock())
    middleware = WinkMiddleware(inner, verifier=verifier)
    response = await call(middleware, method="OPTIONS", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://front.test"
    assert "POST" in response.headers["access-control-allow-methods"]
    # Starlette's CORS layer refuses a disallowed origin with a 400 without CORS headers: the
    # middleware turns that into the answer a token-less request gets.
    evil = {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    assert (await call(middleware, method="OPTIONS", headers=evil)).status_code == 401


async def test_options_without_preflight_headers_is_protected() -> None:
    middleware, _, _ = build()
    assert (
        await call(middleware, method="OPTIONS", headers={"Origin": "https://x"})
    ).status_code == 401


async def test_protect_preflight_requires_a_token_on_preflight() -> None:
    middleware, _, _ = build(protect_preflight=True)
    assert (await call(middleware, method="OPTIONS", headers=PREFLIGHT)).status_code == 401


# -- cookie and query sources -------------------------------------------------------------------


async def test_token_is_read_from_the_configured_cookie() -> None:
    middleware, _, stub = build(cookie_name="wink_at")
    response = await call(middleware, cookies={"theme": "dark", "wink_at": TOKEN})
    assert response.status_code == 200
    assert stub.last_body()["AccessToken"] == TOKEN


async def test_cookie_is_ignored_unless_configured() -> None:
    middleware, _, _ = build()
    assert (await call(middleware, cookies={"wink_at": TOKEN})).status_code == 401


async def test_authorization_header_wins_over_cookie() -> None:
    middleware, _, stub = build(cookie_name="wink_at")
    other = make_token(sub="other")
    await call(middleware, headers=AUTH, cookies={"wink_at": other})
    assert stub.last_body()["AccessToken"] == TOKEN


@pytest.mark.parametrize(
    "cookie",
    ["wink_at=", "wink_at=a b", "wink_at=ab;wink_at=cd", 'wink_at="x\ty"'],
)
async def test_malformed_token_cookie_is_400(cookie: str) -> None:
    middleware, _, stub = build(cookie_name="wink_at")
    response = await call(middleware, headers={"Cookie": cookie})
    assert response.status_code == 400
    assert stub.calls == 0


@pytest.mark.parametrize("cookie", ["junk", ";;;", "=x", "a=b=c; d", "\u00e9=\u00e9", "wink_atx=1"])
async def test_junk_cookies_are_ignored(cookie: str) -> None:
    middleware, _, _ = build(cookie_name="wink_at")
    response = await call(middleware, headers=[(b"cookie", cookie.encode())])
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"


async def test_quoted_cookie_value_is_unquoted() -> None:
    middleware, _, stub = build(cookie_name="wink_at")
    assert (await call(middleware, headers={"Cookie": f'wink_at="{TOKEN}"'})).status_code == 200
    assert stub.last_body()["AccessToken"] == TOKEN


async def test_token_is_read_from_the_configured_query_parameter() -> None:
    middleware, _, stub = build(query_param="access_token")
    assert (await call(middleware, f"/api?x=1&access_token={TOKEN}")).status_code == 200
    assert stub.last_body()["AccessToken"] == TOKEN


async def test_query_parameter_is_ignored_unless_configured() -> None:
    middleware, _, _ = build()
    assert (await call(middleware, f"/api?access_token={TOKEN}")).status_code == 401


@pytest.mark.parametrize(
    "query",
    ["access_token=", "access_token=a+b", "access_token=a&access_token=b", "access_token=%ff"],
)
async def test_malformed_query_token_is_400(query: str) -> None:
    middleware, _, _ = build(query_param="access_token")
    assert (await call(middleware, f"/api?{query}")).status_code == 400


# -- on_error -----------------------------------------------------------------------------------


async def test_on_error_renders_a_custom_response() -> None:
    seen: list[tuple[HTTPConnection, AuthenticationFailed]] = []

    def on_error(conn: HTTPConnection, exc: AuthenticationFailed) -> Response:
        seen.append((conn, exc))
        return PlainTextResponse(f"nope: {exc.status_code}", status_code=exc.status_code)

    middleware, _, _ = build(on_error=on_error)
    response = await call(middleware, "/api/x")
    assert (response.status_code, response.text) == (401, "nope: 401")
    assert seen[0][0].url.path == "/api/x"


async def test_on_error_returning_none_falls_back_to_the_default() -> None:
    middleware, _, _ = build(on_error=lambda conn, exc: None)
    response = await call(middleware)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"


# -- scopes, lifespan and construction ----------------------------------------------------------


async def test_other_scope_types_pass_straight_through() -> None:
    middleware, app, stub = build()
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "custom"}

    async def send(message: Message) -> None:
        messages.append(message)

    await middleware({"type": "custom"}, receive, send)
    assert app.scopes == [{"type": "custom"}]
    assert stub.calls == 0


async def test_lifespan_shutdown_closes_the_http_client() -> None:
    from starlette.applications import Starlette

    stub = WinkStub()
    verifier = AsyncWinkVerifier(config(), clock=FakeClock())
    middleware = WinkMiddleware(Starlette(), verifier=verifier)
    import respx

    with respx.mock() as mock:
        mock.post(config().verify_url).mock(side_effect=stub.handler)
        await verifier.invalidate(TOKEN)
        await verifier.verify(TOKEN)
    client = verifier._client
    assert client is not None and not client.is_closed

    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert client.is_closed


async def test_aclose_closes_the_verifier() -> None:
    verifier = AsyncWinkVerifier(config())
    middleware = WinkMiddleware(Recorder(), verifier=verifier)
    verifier._get_client()
    await middleware.aclose()
    assert verifier._client is None


def test_middleware_takes_config_or_options_not_both() -> None:
    with pytest.raises(WinkConfigError, match="not both"):
        WinkMiddleware(Recorder(), config=config(), timeout=1)


def test_middleware_refuses_unknown_options() -> None:
    with pytest.raises(WinkConfigError, match="unknown option"):
        WinkMiddleware(Recorder(), client_id="a", client_secret="b", tiemout=1)  # type: ignore[call-arg]


def test_middleware_refuses_verifier_with_config() -> None:
    verifier = AsyncWinkVerifier(config())
    with pytest.raises(WinkConfigError, match="verifier"):
        WinkMiddleware(Recorder(), verifier=verifier, config=config())


def test_middleware_options_fill_in_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINK_CLIENT_ID", "env-client")
    monkeypatch.setenv("WINK_CLIENT_SECRET", "env-secret")
    middleware = WinkMiddleware(Recorder(), public_paths=["/health"])
    assert middleware.config.client_id == "env-client"
    assert middleware.config.public_paths == ("/health",)
    assert isinstance(middleware.verifier, AsyncWinkVerifier)


def test_middleware_without_arguments_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WINK_CLIENT_ID", raising=False)
    monkeypatch.delenv("WINK_IDENTITY_CLIENT_ID", raising=False)
    with pytest.raises(WinkConfigError, match="WINK_CLIENT_ID"):
        WinkMiddleware(Recorder())


def test_middleware_with_config_keeps_it() -> None:
    cfg = WinkConfig(client_id="a", client_secret="b")
    assert WinkMiddleware(Recorder(), config=cfg).config is cfg


def test_middleware_config_must_be_a_wink_config() -> None:
    with pytest.raises(WinkConfigError):
        WinkMiddleware(Recorder(), config={"client_id": "a"})  # type: ignore[arg-type]


def test_get_profile_refuses_unknown_objects() -> None:
    with pytest.raises(TypeError, match="get_profile"):
        get_profile(42)


def test_get_profile_ignores_non_profile_values() -> None:
    assert get_profile({"type": "http", "wink": "forged"}) is None


async def test_secret_never_appears_in_responses() -> None:
    for stub in (WinkStub(), WinkStub(httpx.Response(401)), WinkStub(httpx.Response(500))):
        middleware, _, _ = build(stub)
        response = await call(middleware, headers=AUTH)
        assert CLIENT_SECRET not in response.text
        assert TOKEN not in response.text
        assert CLIENT_SECRET not in str(response.headers)

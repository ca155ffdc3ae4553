"""WinkWSGIMiddleware: request handling, path policy, token sources and RFC 6750 answers.

Every app here sits between two ``wsgiref.validate.validator`` layers, so each test also proves the
middleware speaks PEP 3333 correctly to the server and to the app, on success and on every error path.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import WWWAuthenticate

from tests.helpers import CLIENT_SECRET, NOW, FakeClock, config, make_token, profile_json
from tests.stub import Trickle, WinkStub, sync_verifier
from wink_middleware import (
    AuthenticationFailed,
    WinkConfig,
    WinkConfigError,
    WinkProfile,
    WinkVerifier,
    WinkWSGIMiddleware,
    get_profile,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

TOKEN = make_token()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WINK_TOKEN = profile_json()["winkToken"]


class Recorder:
    """A plain WSGI app that records the environ it was called with and answers 200 with the user."""

    def __init__(self) -> None:
        self.environs: list[WSGIEnvironment] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.environs.append(environ)
        profile = get_profile(environ)
        body = json.dumps(
            {
                "user": None if profile is None else profile.wink_token,
                "remote_user": environ.get("REMOTE_USER"),
            }
        ).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


class Built:
    """A middleware around a recording app, both wrapped in validators, talking to a Wink stub."""

    def __init__(self, stub: WinkStub | None = None, **options: Any) -> None:
        self.stub = stub or WinkStub()
        self.recorder = Recorder()
        self.clock = FakeClock()
        verifier = WinkVerifier(config(**options), client=self.stub.sync_client(), clock=self.clock)
        self.middleware = WinkWSGIMiddleware(validator(self.recorder), verifier=verifier)
        self.app = validator(self.middleware)

    def get(
        self,
        path: str = "/api",
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        transport = httpx.WSGITransport(app=self.app)
        with httpx.Client(transport=transport, base_url="http://app.test") as client:
            return client.request(method, path, headers=headers)

    def direct(self, **environ: Any) -> Answer:
        return call_wsgi(self.app, **environ)


class Answer:
    """What a WSGI app answered to one direct call."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def code(self) -> int:
        return int(self.status.split()[0])

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


def call_wsgi(app: WSGIApplication, **overrides: Any) -> Answer:
    """Call ``app`` as a server would: fresh environ, iterate the body, then close it."""
    environ: dict[str, Any] = {"SCRIPT_NAME": "", "PATH_INFO": "/api", "QUERY_STRING": ""}
    environ.update(overrides)
    setup_testing_defaults(environ)
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        seen.append((status, headers))
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert len(seen) == 1
    return Answer(seen[0][0], seen[0][1], body)


def challenge(value: str | None) -> WWWAuthenticate:
    assert value is not None
    parsed = WWWAuthenticate.from_header(value)
    assert parsed is not None
    return parsed


# -- success ------------------------------------------------------------------------------------


def test_valid_token_reaches_the_app_with_the_profile_and_remote_user() -> None:
    built = Built()
    response = built.get(headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"user": WINK_TOKEN, "remote_user": WINK_TOKEN}
    environ = built.recorder.environs[0]
    assert isinstance(environ["wink.profile"], WinkProfile)
    assert environ["REMOTE_USER"] == WINK_TOKEN


def test_remote_user_false_leaves_remote_user_alone() -> None:
    built = Built(remote_user=False)
    assert built.get(headers=AUTH).json() == {"user": WINK_TOKEN, "remote_user": None}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert Built().get(headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200


def test_cache_hit_makes_no_second_call() -> None:
    built = Built()
    for _ in range(3):
        assert built.get(headers=AUTH).status_code == 200
    assert built.stub.calls == 1


def test_head_request_with_a_valid_token_reaches_the_app() -> None:
    built = Built()
    assert built.get(method="HEAD", headers=AUTH).status_code == 200
    assert built.recorder.environs[0]["REQUEST_METHOD"] == "HEAD"


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
def test_missing_token_is_a_401_with_a_bare_challenge(headers: dict[str, str]) -> None:
    built = Built()
    response = built.get(headers=headers)
    assert response.status_code == 401
    parsed = challenge(response.headers["www-authenticate"])
    assert parsed.type == "bearer"
    assert dict(parsed.parameters) == {"realm": "wink"}
    assert response.json()["error"] == "missing_token"
    assert built.recorder.environs == []
    assert built.stub.calls == 0


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer abc;def",
        "Bearer " + "a" * 4097,
        "Bearer " + "a" * 1_000_000,
        "Bearer \u00e9t\u00e9",
        "Bearer caf\u00c3\u00a9",
        "Bearer abc\x00def",
        "Bearer abc\tdef",
        "Bearer ===",
        f"Bearer {TOKEN}, Bearer {TOKEN}",
        f"Bearer {TOKEN},Bearer {TOKEN}",
        f"Basic dXNlcjpwYXNz, Bearer {TOKEN}",
        f"Bearer {TOKEN}, Basic dXNlcjpwYXNz",
    ],
    ids=[
        "no-credential",
        "empty-credential",
        "space-inside",
        "semicolon",
        "over-max-length",
        "one-megabyte",
        "non-ascii",
        "utf8-as-latin1",
        "nul",
        "tab",
        "only-padding",
        "duplicated-comma-space",
        "duplicated-comma",
        "basic-then-bearer",
        "bearer-then-basic",
    ],
)
def test_ill_formed_or_repeated_bearer_is_a_400_invalid_request(authorization: str) -> None:
    built = Built()
    answer = built.direct(HTTP_AUTHORIZATION=authorization)
    assert answer.status == "400 Bad Request"
    assert answer.json()["error"] == "invalid_request"
    parsed = challenge(answer.header("WWW-Authenticate"))
    assert parsed.parameters["error"] == "invalid_request"
    assert built.stub.calls == 0
    assert built.recorder.environs == []


def test_another_scheme_with_commas_is_a_missing_token() -> None:
    built = Built()
    answer = built.direct(HTTP_AUTHORIZATION='Digest username="ada", realm="x", nonce="abc"')
    assert answer.code == 401
    assert answer.json()["error"] == "missing_token"


def test_an_unreadable_authorization_value_is_a_400_not_a_crash() -> None:
    # Outside the validator: it would refuse this environ itself, as a server bug.
    answer = call_wsgi(Built().middleware, HTTP_AUTHORIZATION=b"Bearer abc")
    assert answer.code == 400


def test_rejected_token_is_a_401_invalid_token() -> None:
    built = Built(WinkStub(httpx.Response(401)))
    answer = built.direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status == "401 Unauthorized"
    assert challenge(answer.header("WWW-Authenticate")).parameters["error"] == "invalid_token"
    assert answer.json()["error"] == "invalid_token"


def test_expired_token_is_rejected_locally_with_a_401() -> None:
    built = Built()
    answer = built.direct(HTTP_AUTHORIZATION=f"Bearer {make_token(exp=NOW - 60)}")
    assert answer.code == 401
    assert "expired" in answer.json()["error_description"]
    assert built.stub.calls == 0


def test_wink_outage_is_a_503_with_retry_after_not_a_bad_token() -> None:
    built = Built(WinkStub(httpx.Response(503, headers={"Retry-After": "7"})))
    answer = built.direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status == "503 Service Unavailable"
    assert answer.header("Retry-After") == "7"
    assert answer.header("WWW-Authenticate") is None
    assert answer.json()["error"] == "temporarily_unavailable"


def test_unusable_wink_answer_is_a_502() -> None:
    built = Built(WinkStub(httpx.Response(200, text="<html>oops</html>")))
    answer = built.direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status == "502 Bad Gateway"
    assert answer.json()["error"] == "bad_gateway"


def test_error_responses_are_json_and_never_cached() -> None:
    answer = Built().direct()
    assert answer.header("Content-Type") == "application/json"
    assert answer.header("Cache-Control") == "no-store"
    assert answer.header("Content-Length") == str(len(answer.body))


def test_head_error_has_the_headers_but_no_body() -> None:
    built = Built()
    get = built.direct()
    head = built.direct(REQUEST_METHOD="HEAD")
    assert head.status == get.status == "401 Unauthorized"
    assert head.body == b""
    assert head.headers == get.headers


def test_custom_realm_is_in_the_challenge() -> None:
    response = Built(realm="my api").get()
    assert challenge(response.headers["www-authenticate"]).parameters["realm"] == "my api"


# -- path policy --------------------------------------------------------------------------------


def test_optional_path_without_a_token_is_anonymous() -> None:
    built = Built(optional_paths=("/feed*",))
    response = built.get("/feed/today")
    assert response.status_code == 200
    assert response.json() == {"user": None, "remote_user": None}
    assert built.recorder.environs[0]["wink.profile"] is None
    assert get_profile(built.recorder.environs[0]) is None


def test_optional_path_with_a_valid_token_has_the_profile() -> None:
    built = Built(optional_paths=("/feed*",))
    assert built.get("/feed", headers=AUTH).json()["user"] == WINK_TOKEN


def test_optional_path_still_refuses_a_bad_token() -> None:
    built = Built(WinkStub(httpx.Response(401)), optional_paths=("/feed*",))
    assert built.get("/feed", headers=AUTH).status_code == 401
    assert built.get("/feed", headers={"Authorization": "Bearer a b"}).status_code == 400
    assert built.recorder.environs == []


@pytest.mark.parametrize("path", ["/health", "/docs", "/docs/index.html"])
def test_public_paths_skip_authentication_entirely(path: str) -> None:
    built = Built(public_paths=("/health", "/docs*"))
    response = built.get(path, headers={"Authorization": "Bearer not valid"})
    assert response.status_code == 200
    assert built.stub.calls == 0
    environ = built.recorder.environs[0]
    assert "wink.profile" not in environ
    assert "REMOTE_USER" not in environ


def test_paths_outside_the_patterns_stay_protected() -> None:
    built = Built(public_paths=("/health",), optional_paths=("/feed",))
    assert built.get("/healthz").status_code == 401
    assert built.get("/feed/x").status_code == 401


def test_path_matching_uses_path_info_not_script_name() -> None:
    built = Built(public_paths=("/health",))
    assert built.direct(SCRIPT_NAME="/mount", PATH_INFO="/health").code == 200
    assert built.recorder.environs[0]["SCRIPT_NAME"] == "/mount"
    assert built.direct(SCRIPT_NAME="/health", PATH_INFO="/api").code == 401


def test_empty_path_info_counts_as_root() -> None:
    built = Built(public_paths=("/",))
    assert built.direct(SCRIPT_NAME="/mount", PATH_INFO="").code == 200


def test_non_ascii_path_is_matched_as_utf8_text() -> None:
    built = Built(public_paths=("/caf\u00e9",))
    raw = "/caf\u00e9".encode().decode("latin-1")  # what a WSGI server puts in PATH_INFO
    assert built.direct(PATH_INFO=raw).code == 200
    assert built.direct(PATH_INFO="/caf\xe9\xff").code == 401


PREFLIGHT = {"Origin": "https://front.test", "Access-Control-Request-Method": "POST"}


def cors_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A method-agnostic app behind its own CORS layer: answers preflights with CORS headers."""
    headers = [("Content-Type", "text/plain"), ("Content-Length", "6")]
    if environ["REQUEST_METHOD"] == "OPTIONS":
        headers.append(("Access-Control-Allow-Origin", "https://front.test"))
    start_response("200 OK", headers)
    return [b"secret"]


def lazy_cors_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    """:func:`cors_app` as a generator: it answers only when first iterated."""
    yield from cors_app(environ, start_response)


@pytest.mark.parametrize("app", [cors_app, lazy_cors_app])
def test_cors_preflight_with_a_cors_answer_passes_without_its_body(app: WSGIApplication) -> None:
    stub = WinkStub()
    verifier = WinkVerifier(config(), client=stub.sync_client(), clock=FakeClock())
    middleware = validator(WinkWSGIMiddleware(validator(app), verifier=verifier))
    answer = call_wsgi(
        middleware,
        REQUEST_METHOD="OPTIONS",
        HTTP_ORIGIN="https://front.test",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert answer.code == 200
    assert answer.header("Access-Control-Allow-Origin") == "https://front.test"
    assert answer.body == b"" and answer.header("Content-Length") == "0"
    assert stub.calls == 0


def test_cors_preflight_reaching_a_method_agnostic_handler_gets_the_tokenless_401() -> None:
    built = Built()
    response = built.get(method="OPTIONS", headers=PREFLIGHT)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"
    assert built.stub.calls == 0


def test_options_without_preflight_headers_is_still_protected() -> None:
    built = Built()
    assert built.get(method="OPTIONS", headers={"Origin": "https://front.test"}).status_code == 401


def test_protect_preflight_verifies_preflights_too() -> None:
    built = Built(protect_preflight=True)
    headers = {"Origin": "https://front.test", "Access-Control-Request-Method": "POST"}
    assert built.get(method="OPTIONS", headers=headers).status_code == 401


# -- token sources ------------------------------------------------------------------------------


def test_token_from_the_configured_cookie() -> None:
    built = Built(cookie_name="wink_at")
    response = built.get(headers={"Cookie": f"theme=dark; wink_at={TOKEN}"})
    assert response.json()["user"] == WINK_TOKEN


def test_cookie_is_ignored_unless_configured() -> None:
    assert Built().get(headers={"Cookie": f"wink_at={TOKEN}"}).status_code == 401


def test_authorization_header_wins_over_the_cookie() -> None:
    built = Built(cookie_name="wink_at")
    response = built.get(headers={"Cookie": "wink_at=a b", **AUTH})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("cookie", "status"),
    [
        ("", 401),
        (";;;", 401),
        ("=; =x; junk", 401),
        ("wink_at", 401),
        ("\x00\xff\xfe=\x01", 401),
        ("wink_at=", 400),
        ("wink_at=a b", 400),
        ('wink_at="', 400),
        ("wink_at=\u00e9", 400),
        ("wink_at=x; wink_at=y", 400),
        ("wink_at=" + "a" * 10_000, 400),
    ],
)
def test_junk_cookies_are_missing_or_invalid_never_a_crash(cookie: str, status: int) -> None:
    built = Built(cookie_name="wink_at")
    assert built.direct(HTTP_COOKIE=cookie).code == status
    assert built.stub.calls == 0


def test_token_from_the_configured_query_parameter() -> None:
    built = Built(query_param="access_token")
    assert built.get(f"/api?access_token={TOKEN}").json()["user"] == WINK_TOKEN


def test_query_parameter_is_ignored_unless_configured() -> None:
    assert Built().get(f"/api?access_token={TOKEN}").status_code == 401


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("access_token=", 400),
        ("access_token=a&access_token=b", 400),
        ("access_token=%ZZ%00", 400),
        ("%ff%fe=1&&&==", 401),
    ],
)
def test_bad_query_tokens_are_refused(query: str, status: int) -> None:
    assert Built(query_param="access_token").direct(QUERY_STRING=query).code == status


# -- on_error -----------------------------------------------------------------------------------


def test_on_error_renders_the_applications_own_response() -> None:
    seen: list[tuple[WSGIEnvironment, AuthenticationFailed]] = []

    def on_error(environ: WSGIEnvironment, exc: AuthenticationFailed) -> WSGIApplication:
        seen.append((environ, exc))

        def page(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response("302 Found", [("Location", "/login"), ("Content-Type", "text/plain")])
            return [b"log in first"]

        return page

    built = Built(on_error=on_error)
    answer = built.direct()
    assert answer.status == "302 Found"
    assert answer.header("Location") == "/login"
    assert answer.body == b"log in first"
    assert seen[0][1].status_code == 401
    assert seen[0][0]["PATH_INFO"] == "/api"


def test_on_error_returning_none_falls_back_to_the_default_answer() -> None:
    built = Built(WinkStub(httpx.Response(503)), on_error=lambda environ, exc: None)
    assert built.direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status == "503 Service Unavailable"


# -- PEP 3333 manners ---------------------------------------------------------------------------


class Untouchable(io.BytesIO):
    """A wsgi.input that fails the test if anyone reads it."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the middleware read the request body")

    def readline(self, size: int | None = -1) -> bytes:
        raise AssertionError("the middleware read the request body")


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", "Bearer a b", None])
def test_the_request_body_is_never_read(authorization: str | None) -> None:
    def no_content(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("204 No Content", [])
        return []

    middleware = WinkWSGIMiddleware(no_content, verifier=sync_verifier(WinkStub()))
    environ: dict[str, Any] = {"wsgi.input": Untouchable(b"x" * 100), "CONTENT_LENGTH": "100"}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    call_wsgi(middleware, **environ)


class ClosingBody:
    """A response iterable that records whether the server closed it."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"hello"

    def close(self) -> None:
        self.closed = True


def test_the_apps_iterable_is_handed_back_as_is_and_closed() -> None:
    body = ClosingBody()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    middleware = WinkWSGIMiddleware(app, verifier=sync_verifier(WinkStub()))
    environ: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    setup_testing_defaults(environ)
    result = middleware(environ, lambda status, headers, exc_info=None: lambda data: None)
    assert result is body
    assert call_wsgi(validator(middleware), HTTP_AUTHORIZATION=f"Bearer {TOKEN}").body == b"hello"
    assert body.closed


def test_a_lazy_app_that_calls_start_response_while_iterating_works() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"lazy"

    wrapped = validator(WinkWSGIMiddleware(validator(app), verifier=sync_verifier(WinkStub())))
    assert call_wsgi(wrapped, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").body == b"lazy"


def _on_error_page(environ: WSGIEnvironment, exc: AuthenticationFailed) -> WSGIApplication:
    def page(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"no"]

    return page


@pytest.mark.parametrize(
    ("reply", "options", "environ", "status"),
    [
        (None, {}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, 200),
        (None, {}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}", "REQUEST_METHOD": "HEAD"}, 200),
        (None, {}, {}, 401),
        (None, {}, {"REQUEST_METHOD": "HEAD"}, 401),
        (None, {}, {"HTTP_AUTHORIZATION": "Bearer a b"}, 400),
        (httpx.Response(401), {}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, 401),
        (httpx.Response(503), {}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, 503),
        (httpx.Response(200, json=[]), {}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, 502),
        (None, {"on_error": _on_error_page}, {}, 403),
        (None, {"optional_paths": ("/api",)}, {}, 200),
        (None, {"public_paths": ("/api",)}, {}, 200),
        (
            None,
            {},
            {
                "REQUEST_METHOD": "OPTIONS",
                "HTTP_ORIGIN": "https://x.test",
                "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
            },
            401,  # the recorder answers without CORS headers: fail-closed
        ),
    ],
    ids=[
        "success",
        "head-success",
        "missing",
        "head-missing",
        "invalid-request",
        "rejected",
        "unavailable",
        "bad-response",
        "on-error",
        "anonymous",
        "public",
        "preflight",
    ],
)
def test_validator_on_both_sides_passes_on_every_path(
    reply: httpx.Response | None,
    options: dict[str, Any],
    environ: dict[str, Any],
    status: int,
) -> None:
    # Any WSGIWarning from either validator fails the test too: warnings are errors here.
    built = Built(WinkStub(reply) if reply is not None else None, **options)
    assert built.direct(**environ).code == status


# -- bad input never makes a 500 ----------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="<!doctype html><title>Gateway</title>"),
        httpx.Response(200, content=b'{"winkToken": "abc", "firstN'),
        httpx.Response(200, json=[profile_json()]),
        httpx.Response(200, json={"winkToken": 12, "email": ["x"]}),
        httpx.Response(200, json=profile_json(expiryTime="next tuesday")),
        httpx.Response(200, json=profile_json(expiryTime=True)),
        httpx.Response(200, json="just a string"),
        httpx.Response(200, content=b"x" * 10_000_000),
        httpx.Response(
            200, stream=httpx.ByteStream(b"\x1f\x8b garbage"), headers={"Content-Encoding": "gzip"}
        ),
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(418),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadTimeout("hanging"),
    ],
    ids=[
        "html",
        "truncated-json",
        "list",
        "wrong-types",
        "bad-expiry",
        "bool-expiry",
        "string",
        "10mb",
        "bad-gzip",
        "500",
        "418",
        "connect-error",
        "dropped",
        "read-timeout",
    ],
)
def test_bad_wink_answers_become_a_502_or_503_never_a_500(
    reply: httpx.Response | BaseException,
) -> None:
    answer = Built(WinkStub(reply)).direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.code in (502, 503)
    assert answer.json()["error"] in ("bad_gateway", "temporarily_unavailable")


def test_a_wink_that_trickles_forever_becomes_a_503() -> None:
    built = Built(timeout=2.0)
    built.stub.replies = [httpx.Response(200, stream=Trickle(built.clock, step=0.5))]
    answer = built.direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status == "503 Service Unavailable"


@pytest.mark.parametrize(
    "environ",
    [
        {"PATH_INFO": 42},
        {"QUERY_STRING": None},
        {"HTTP_COOKIE": b"wink_at=abc"},
        {"REQUEST_METHOD": "BREW"},
        {"HTTP_AUTHORIZATION": "\r\n\r\n"},
        {"HTTP_AUTHORIZATION": "Bearer\x00"},
        {"HTTP_AUTHORIZATION": " , , , "},
        {"HTTP_AUTHORIZATION": "Bearer " + "\u2603" * 5000},
    ],
)
def test_malformed_environ_values_never_raise(environ: dict[str, Any]) -> None:
    variants: list[dict[str, Any]] = [{}, {"public_paths": ("/health",), "cookie_name": "wink_at"}]
    for options in variants:
        middleware = WinkWSGIMiddleware(Recorder(), verifier=sync_verifier(WinkStub(), **options))
        answer = call_wsgi(middleware, **environ)
        assert answer.code in (400, 401)


# Header values as a WSGI server hands them over: any bytes, decoded as latin-1 (PEP 3333).
latin1 = st.binary(max_size=300).map(lambda b: b.decode("latin-1"))
header_values = st.one_of(
    latin1,
    st.builds(
        lambda scheme, sep, credential: scheme + sep + credential,
        st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "", "Bearer\t", "Bear"]),
        st.sampled_from([" ", "  ", "\t", "", " \t "]),
        st.one_of(latin1, st.just(TOKEN), st.just("A" * 5000), st.just("abc,def")),
    ),
)
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _scheme_is_bearer(value: str) -> bool:
    return value.strip(" \t").partition(" ")[0].lower() == "bearer"


@HYPOTHESIS
@given(authorization=header_values, cookie=latin1, query=latin1)
def test_any_authorization_cookie_and_query_get_200_400_or_401(
    authorization: str, cookie: str, query: str
) -> None:
    built = Built(cookie_name="wink_at", query_param="access_token")
    answer = built.direct(HTTP_AUTHORIZATION=authorization, HTTP_COOKIE=cookie, QUERY_STRING=query)
    assert answer.code in (200, 400, 401)
    if built.stub.calls:
        assert authorization == f"Bearer {TOKEN}" or _scheme_is_bearer(authorization)


@HYPOTHESIS
@given(
    values=st.lists(header_values, min_size=2, max_size=4),
    separator=st.sampled_from([",", ", "]),
)
def test_repeated_authorization_headers_merged_by_the_server_are_refused(
    values: list[str], separator: str
) -> None:
    built = Built()
    answer = built.direct(HTTP_AUTHORIZATION=separator.join(values))
    assert answer.code in (400, 401)
    if any(_scheme_is_bearer(v) for v in values):
        assert answer.code == 400
    assert built.stub.calls == 0


# -- secrets ------------------------------------------------------------------------------------


def test_error_answers_never_hold_the_token_or_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="wink_middleware")
    for reply in [httpx.Response(401), httpx.Response(503), httpx.Response(200, text="<html>")]:
        answer = Built(WinkStub(reply)).direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        text = answer.body.decode() + repr(answer.headers)
        assert TOKEN not in text
        assert CLIENT_SECRET not in text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert CLIENT_SECRET not in record.getMessage()


# -- threads ------------------------------------------------------------------------------------


def test_threaded_requests_for_one_cold_token_make_one_wink_call() -> None:
    gate = threading.Event()
    built = Built(WinkStub(gate=gate))
    verifier = built.middleware.verifier
    answers: list[int] = []
    barrier = threading.Barrier(16)

    def request() -> None:
        barrier.wait()
        answers.append(built.direct(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").code)

    threads = [threading.Thread(target=request) for _ in range(16)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while verifier.stats.coalesced < 15 and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()
    for thread in threads:
        thread.join()
    assert answers == [200] * 16
    assert built.stub.calls == 1


# -- construction and lifecycle -----------------------------------------------------------------


def test_keyword_options_build_the_config() -> None:
    middleware = WinkWSGIMiddleware(
        Recorder(),
        client_id="cid",
        client_secret="sec",
        public_paths=["/health"],
        remote_user=False,
    )
    assert middleware.config.client_id == "cid"
    assert middleware.config.public_paths == ("/health",)
    assert isinstance(middleware.verifier, WinkVerifier)
    assert middleware.verifier.config is middleware.config


def test_config_comes_from_the_environment_when_nothing_is_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WINK_CLIENT_ID", "from-env")
    monkeypatch.setenv("WINK_CLIENT_SECRET", "env-secret")
    assert WinkWSGIMiddleware(Recorder()).config.client_id == "from-env"


def test_config_and_options_are_exclusive() -> None:
    with pytest.raises(WinkConfigError):
        WinkWSGIMiddleware(Recorder(), config=config(), realm="x")
    with pytest.raises(WinkConfigError):
        WinkWSGIMiddleware(Recorder(), verifier=sync_verifier(WinkStub()), config=config())
    with pytest.raises(WinkConfigError, match="unknown"):
        WinkWSGIMiddleware(Recorder(), client_id="a", client_secret="b", colour="blue")  # type: ignore[call-arg]


def test_verifier_must_be_the_sync_one() -> None:
    with pytest.raises(WinkConfigError):
        WinkWSGIMiddleware(Recorder(), verifier=object())  # type: ignore[arg-type]


def test_an_injected_verifier_is_exposed_and_shared() -> None:
    verifier = sync_verifier(WinkStub())
    first = WinkWSGIMiddleware(Recorder(), verifier=verifier)
    second = WinkWSGIMiddleware(Recorder(), verifier=verifier)
    assert first.verifier is second.verifier is verifier
    assert first.config is verifier.config


def test_close_closes_the_verifiers_client() -> None:
    middleware = WinkWSGIMiddleware(Recorder(), config=WinkConfig(client_id="a", client_secret="b"))
    client = middleware.verifier._get_client()
    middleware.close()
    assert client.is_closed


def test_a_lone_surrogate_in_the_authorization_value_is_a_400_not_a_crash() -> None:
    from tests.stub import WinkStub, sync_verifier
    from wink_middleware import WinkWSGIMiddleware

    stub = WinkStub()
    middleware = WinkWSGIMiddleware(
        lambda environ, start_response: [b"ok"], verifier=sync_verifier(stub)
    )
    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_AUTHORIZATION": "Bearer ab\udcffcd"}
    middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    assert statuses == ["400 Bad Request"]
    assert stub.calls == 0

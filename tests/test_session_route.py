"""The session route on WinkMiddleware and WinkWSGIMiddleware, against the
emulator: the answer, the URL rules (with zero calls to Wink when refused), the rate limit, and
where the route sits next to root_path, public_paths, protected paths and a shared verifier."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tests.helpers import FakeClock
from wink_middleware import WinkConfigError, WinkMiddleware, WinkWSGIMiddleware
from wink_middleware._events import WinkEvent
from wink_middleware.testing import WinkEmulator

pytestmark = pytest.mark.anyio

PATH = "/api/wink/session"
RETURN_URL = "https://app.example/signed-in"
CANCEL_URL = "https://app.example/cancelled"
SESSIONS: dict[str, Any] = {
    "session_path": PATH,
    "session_return_url": RETURN_URL,
    "session_cancel_url": CANCEL_URL,
}


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", b"text/plain")]
    if scope["method"] == "OPTIONS":
        headers.append((b"access-control-allow-origin", b"https://app.example"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"the app"})


def wsgi_app(environ: Any, start_response: Any) -> Iterable[bytes]:
    headers = [("Content-Type", "text/plain")]
    if environ["REQUEST_METHOD"] == "OPTIONS":
        headers.append(("Access-Control-Allow-Origin", "https://app.example"))
    start_response("200 OK", headers)
    return [b"the app"]


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def _since(started: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - started[0], cpu - started[1]


class Site:
    """One middleware over the emulator, in-process; ``send`` answers as the adapter does."""

    def __init__(self, adapter: str, emulator: WinkEmulator, clock: Any = None, **options: Any):
        self.adapter = adapter
        self.emulator = emulator
        self.root_path = options.pop("root_path", "")
        verifier_options = options.pop("verifier_options", {})
        self.middleware: Any
        if adapter == "asgi":
            verifier: Any = options.pop("verifier", None) or emulator.async_verifier(
                clock=clock, **verifier_options
            )
            self.middleware = WinkMiddleware(asgi_app, verifier=verifier, **options)
        else:
            verifier = options.pop("verifier", None) or emulator.verifier(
                clock=clock, **verifier_options
            )
            self.middleware = WinkWSGIMiddleware(wsgi_app, verifier=verifier, **options)

    async def send(
        self, method: str, path: str, query: str = "", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        url = path + (f"?{query}" if query else "")
        if self.adapter == "asgi":
            transport = httpx.ASGITransport(app=self.middleware, root_path=self.root_path)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, self.root_path + url, headers=headers)
        # httpx's WSGI transport sets SCRIPT_NAME and leaves PATH_INFO the request's path, as a
        # server mounting the app under SCRIPT_NAME hands it over.
        wsgi = httpx.WSGITransport(app=self.middleware, script_name=self.root_path)
        with httpx.Client(transport=wsgi, base_url="http://t") as client:
            return client.request(method, url, headers=headers)

    async def get(self, query: str = "", path: str = PATH) -> httpx.Response:
        return await self.send("GET", path, query)

    async def burst(self, n: int) -> list[tuple[httpx.Response, float, float]]:
        """``n`` GETs of the route through one client; each answer with how long it took, in
        wall-clock seconds and in this thread's CPU seconds (in-process, the app runs here)."""
        seen = []
        if self.adapter == "asgi":
            transport = httpx.ASGITransport(app=self.middleware)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for _ in range(n):
                    started = _clocks()
                    response = await client.get(PATH)
                    seen.append((response, *_since(started)))
            return seen
        with httpx.Client(
            transport=httpx.WSGITransport(app=self.middleware), base_url="http://t"
        ) as sync_client:
            for _ in range(n):
                started = _clocks()
                response = sync_client.get(PATH)
                seen.append((response, *_since(started)))
        return seen


@pytest.fixture(params=["asgi", "wsgi"])
def adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def emulator() -> WinkEmulator:
    return WinkEmulator("route-client", "route-secret")


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


async def test_get_answers_a_fresh_session_as_json_never_cached(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    response = await site.get()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert set(response.json()) == {"sessionId"}
    # No query: the configured URLs went to Wink.
    assert emulator.use_session(response.json()["sessionId"]) == (RETURN_URL, CANCEL_URL)
    assert emulator.session_calls == 1 and emulator.calls == 0


async def test_the_query_names_urls_on_an_allowed_origin(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    query = urlencode(
        {"returnUrl": "https://app.example/a?x=1", "cancelUrl": "https://app.example/b"}
    )
    response = await site.get(query)
    assert response.status_code == 200
    assert emulator.use_session(response.json()["sessionId"]) == (
        "https://app.example/a?x=1",
        "https://app.example/b",
    )


async def test_one_parameter_given_the_other_defaults(adapter: str, emulator: WinkEmulator) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    response = await site.get(
        "cancelUrl=" + quote("https://app.example/no", safe="") + "&returnUrl="
    )
    assert emulator.use_session(response.json()["sessionId"]) == (
        RETURN_URL,
        "https://app.example/no",
    )


async def test_origins_compare_without_case_and_with_default_ports(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    response = await site.get(urlencode({"returnUrl": "HTTPS://App.Example:443/x"}))
    assert response.status_code == 200


async def test_session_origins_replaces_the_default_allow_list(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(
        adapter,
        emulator,
        **SESSIONS,
        session_origins=["https://web.example:8443", "http://localhost:3000"],
    )
    allowed = await site.get(urlencode({"returnUrl": "https://web.example:8443/cb"}))
    local = await site.get(urlencode({"cancelUrl": "http://localhost:3000/"}))
    own = await site.get(urlencode({"returnUrl": "https://app.example/x"}))
    assert (allowed.status_code, local.status_code) == (200, 200)
    assert error_of(own)[:2] == (400, "invalid_request")
    assert "returnUrl" in error_of(own)[2]


TEN_KB = "https://app.example/" + "a" * 10_240
BAD_QUERIES = [
    ("returnUrl", "https://evil.example/steal"),
    ("returnUrl", "https://app.example.evil.example/"),
    ("returnUrl", "https://app.example:8443/"),
    ("returnUrl", "http://app.example/"),
    ("returnUrl", "javascript:alert(document.cookie)"),
    ("returnUrl", "//evil.example/x"),
    ("returnUrl", "https://user@app.example/"),
    ("returnUrl", "https://user:pw@app.example/"),
    ("cancelUrl", "https://app.example@evil.example/"),
    ("cancelUrl", "/relative/path"),
    ("cancelUrl", "relative"),
    ("cancelUrl", "https://app.exämple/"),
    ("cancelUrl", "https://app.example/caf\u00e9"),
    ("returnUrl", TEN_KB),
    ("returnUrl", "https://app.example\\@evil.example/"),
    ("returnUrl", "https://app.example/ x"),
    ("returnUrl", "data:text/html,hi"),
    ("returnUrl", "https:///path"),
    ("returnUrl", "https://[::1/"),
    ("returnUrl", "https://app.example:99999/"),
    ("returnUrl", "ftp://app.example/"),
    ("cancelUrl", "wss://app.example/"),
]


@pytest.mark.parametrize(("name", "value"), BAD_QUERIES)
async def test_a_bad_url_in_the_query_is_400_naming_it_and_wink_is_never_called(
    adapter: str, emulator: WinkEmulator, name: str, value: str
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    response = await site.get(urlencode({name: value}))
    status, error, description = error_of(response)
    assert (status, error) == (400, "invalid_request")
    assert name in description
    assert response.headers["cache-control"] == "no-store"
    assert emulator.session_calls == 0


@pytest.mark.parametrize(
    "query",
    [
        "returnUrl=https%3A%2F%2Fapp.example%2Fa&returnUrl=https%3A%2F%2Fapp.example%2Fb",
        "returnUrl=" + "https://app.example/" + "%C3%A9",
        "cancelUrl=https://app.example/\xe9",
    ],
)
async def test_twice_or_not_ascii_is_400_and_wink_is_never_called(
    adapter: str, emulator: WinkEmulator, query: str
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    if adapter == "asgi":
        # A raw non-ASCII byte in the query string, as a client may send it.
        scope_query = query.encode("latin-1")
        response = await _raw_asgi_get(site.middleware, scope_query)
    else:
        response = await site.get(query)
    status, error, description = error_of(response)
    assert (status, error) == (400, "invalid_request")
    assert ("cancelUrl" if "cancelUrl" in query else "returnUrl") in description
    assert emulator.session_calls == 0


async def _raw_asgi_get(app: Any, query: bytes) -> httpx.Response:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"t")],
        "server": ("t", 80),
        "client": ("127.0.0.1", 1),
    }
    await app(scope, receive, send)
    start, body = sent
    return httpx.Response(start["status"], headers=start["headers"], content=body["body"])


async def test_a_query_of_too_many_parameters_is_400(adapter: str, emulator: WinkEmulator) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    response = await site.get("&".join(f"p{i}=1" for i in range(100)))
    assert error_of(response)[:2] == (400, "invalid_request")
    assert emulator.session_calls == 0


async def test_neither_given_nor_configured_is_400_naming_it(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(
        adapter,
        emulator,
        session_path=PATH,
        session_cancel_url=CANCEL_URL,
    )
    response = await site.get()
    status, _, description = error_of(response)
    assert status == 400 and "returnUrl" in description
    assert emulator.session_calls == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
async def test_other_methods_are_405_allowing_get(
    adapter: str, emulator: WinkEmulator, method: str
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    response = await site.send(method, PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.headers["cache-control"] == "no-store"
    if method != "HEAD":
        assert response.json()["error"] == "method_not_allowed"
    assert emulator.session_calls == 0


async def test_a_cors_preflight_there_follows_the_preflight_rule(
    adapter: str, emulator: WinkEmulator
) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    passing = Site(adapter, emulator, **SESSIONS)
    response = await passing.send("OPTIONS", PATH, headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.content == b""
    protected = Site(adapter, emulator, **SESSIONS, protect_preflight=True)
    assert (await protected.send("OPTIONS", PATH, headers=preflight)).status_code == 405


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(401, 502, "bad_gateway"), (403, 502, "bad_gateway"), (404, 502, "bad_gateway")],
)
async def test_wink_refusing_is_a_502(
    adapter: str, emulator: WinkEmulator, status: int, code: int, error: str
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    emulator.fail_next(1, status, b"route-secret in a body")
    response = await site.get()
    assert error_of(response)[:2] == (code, error)
    assert "route-secret" not in response.text


async def test_wrong_credentials_are_a_502_not_a_200(adapter: str) -> None:
    emulator = WinkEmulator("route-client", "the-real-secret")
    site = Site(adapter, emulator, **SESSIONS, verifier=_wrong_secret(adapter, emulator))
    response = await site.get()
    status, error, description = error_of(response)
    assert (status, error) == (502, "bad_gateway")
    assert "credentials" in description
    assert "a-wrong-secret" not in response.text
    assert emulator.session_calls == 1


def _wrong_secret(adapter: str, emulator: WinkEmulator) -> Any:
    config = emulator.wink_config().replace(client_secret="a-wrong-secret")
    if adapter == "asgi":
        return emulator.async_verifier(config)
    return emulator.verifier(config)


async def test_wink_unavailable_is_a_503_with_retry_after(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(adapter, emulator, **SESSIONS, verifier_options={"retries": 0})
    emulator.fail_next(1, 503, headers={"Retry-After": "7"})
    response = await site.get()
    assert error_of(response)[:2] == (503, "temporarily_unavailable")
    assert response.headers["retry-after"] == "7"


async def test_wink_answering_nonsense_is_a_502(adapter: str, emulator: WinkEmulator) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    emulator.malformed_next(1, b'{"notASession": true}')
    response = await site.get()
    assert error_of(response)[:2] == (502, "bad_gateway")


async def test_a_burst_of_200_with_session_rate_10_lets_20_reach_wink(
    adapter: str, emulator: WinkEmulator
) -> None:
    clock = FakeClock()  # no time passes during the burst: the bucket holds 2 x 10
    site = Site(adapter, emulator, clock, **SESSIONS, session_rate=10)
    refusals: list[float] = []
    refusals_cpu: list[float] = []
    statuses = []
    # A full collection in a suite-sized process costs tens of ms of CPU: the process's, not the
    # refusal's. The burst runs with the collector paused.
    gc.disable()
    try:
        answers = await site.burst(200)
    finally:
        gc.enable()
    for response, took, cpu in answers:
        statuses.append(response.status_code)
        if response.status_code == 429:
            refusals.append(took)
            refusals_cpu.append(cpu)
            assert response.json()["error"] == "too_many_requests"
            assert int(response.headers["retry-after"]) >= 1
    assert statuses.count(200) == 20 and statuses.count(429) == 180
    assert emulator.session_calls == 20
    # None spends 50 ms refusing; on a machine other test runs load, the wall clock also counts
    # time spent descheduled, so it is held to that bound for 95% of the refusals.
    assert max(refusals_cpu) < 0.05
    assert sorted(refusals)[int(len(refusals) * 0.95)] < 0.05
    clock.advance(1.0)  # 10 more a second
    assert [(await site.get()).status_code for _ in range(11)] == [200] * 10 + [429]


async def test_a_refused_request_takes_no_token(adapter: str, emulator: WinkEmulator) -> None:
    site = Site(adapter, emulator, FakeClock(), **SESSIONS, session_rate=1)
    for _ in range(10):
        assert (await site.get("returnUrl=javascript:x")).status_code == 400
        assert (await site.send("POST", PATH)).status_code == 405
    assert [(await site.get()).status_code for _ in range(3)] == [200, 200, 429]


async def test_the_route_under_root_path(adapter: str, emulator: WinkEmulator) -> None:
    site = Site(adapter, emulator, **SESSIONS, root_path="/mounted")
    response = await site.get()
    assert response.status_code == 200 and "sessionId" in response.json()


async def test_the_route_beside_public_paths(adapter: str, emulator: WinkEmulator) -> None:
    site = Site(adapter, emulator, **SESSIONS, public_paths=["/api/*", "/health"])
    assert "sessionId" in (await site.get()).json()
    assert (await site.send("GET", "/health")).text == "the app"
    assert (await site.send("GET", "/api/other")).text == "the app"


async def test_the_route_wins_on_a_path_that_is_also_protected(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(adapter, emulator, **SESSIONS)
    assert (await site.get()).status_code == 200  # no token needed
    assert (await site.send("GET", "/api/wink/other")).status_code == 401
    # A bad token sent to the route changes nothing: it is never read.
    response = await site.send("GET", PATH, headers={"Authorization": "Bearer %%%"})
    assert response.status_code == 200


async def test_a_shared_verifier_behind_two_session_paths(
    adapter: str, emulator: WinkEmulator
) -> None:
    clock = FakeClock()
    shared: Any = (
        emulator.async_verifier(clock=clock)
        if adapter == "asgi"
        else emulator.verifier(clock=clock)
    )
    one = Site(
        adapter,
        emulator,
        **{**SESSIONS, "session_path": "/one/session"},
        verifier=shared,
        session_rate=1,
    )
    two = Site(
        adapter,
        emulator,
        verifier=shared,
        session_path="/two/session",
        session_return_url="https://two.example/in",
        session_cancel_url="https://two.example/out",
        session_rate=1,
    )
    first = await one.get(path="/one/session")
    second = await two.get(path="/two/session")
    assert emulator.use_session(first.json()["sessionId"]) == (RETURN_URL, CANCEL_URL)
    assert emulator.use_session(second.json()["sessionId"]) == (
        "https://two.example/in",
        "https://two.example/out",
    )
    # Each app's route is its own: the other's path is just a protected path there.
    assert (await one.get(path="/two/session")).status_code == 401
    assert (await two.get(path="/one/session")).status_code == 401
    # ... and each has its own bucket (burst 2 each).
    assert [(await one.get(path="/one/session")).status_code for _ in range(2)] == [200, 429]
    assert [(await two.get(path="/two/session")).status_code for _ in range(2)] == [200, 429]
    # Each app's own origins: two.example is not allowed on the first.
    bad = await one.get(urlencode({"returnUrl": "https://two.example/in"}), path="/one/session")
    assert bad.status_code == 400


async def test_without_session_path_the_path_is_an_ordinary_protected_path(
    adapter: str, emulator: WinkEmulator
) -> None:
    site = Site(adapter, emulator)
    assert (await site.get()).status_code == 401
    assert emulator.session_calls == 0


class Events:
    def __init__(self) -> None:
        self.outcomes: list[str | None] = []

    def on_event(self, event: WinkEvent) -> None:
        if event.name == "session":
            self.outcomes.append(event.outcome)


async def test_observers_get_a_session_event_for_each_outcome(
    adapter: str, emulator: WinkEmulator
) -> None:
    events = Events()
    site = Site(
        adapter,
        emulator,
        FakeClock(),
        **SESSIONS,
        session_rate=1,
        verifier_options={"observers": [events], "retries": 0},
    )
    await site.get()
    await site.get("returnUrl=https://evil.example/")
    emulator.fail_next(1, 401)
    await site.get()
    await site.get()  # the bucket (2) is spent
    assert events.outcomes == ["created", "invalid", "rejected", "rate_limited"]


async def test_observers_hear_unavailable_and_bad_response(
    adapter: str, emulator: WinkEmulator
) -> None:
    events = Events()
    site = Site(
        adapter, emulator, **SESSIONS, verifier_options={"observers": [events], "retries": 0}
    )
    emulator.fail_next(1, 500)
    await site.get()
    emulator.malformed_next(1)
    await site.get()
    assert events.outcomes == ["unavailable", "bad_response"]


BAD_CONFIG = [
    {"session_return_url": "http://app.example/"},
    {"session_return_url": "javascript:alert(1)"},
    {"session_return_url": "//evil.example/"},
    {"session_cancel_url": "https://user:pw@app.example/"},
    {"session_cancel_url": "/relative"},
    {"session_cancel_url": "https://app.example/" + "a" * 3000},
    {"session_cancel_url": "https://app.exämple/"},
    {"session_return_url": 42},
    {"session_origins": "https://app.example"},
    {"session_origins": ["https://app.example/path"]},
    {"session_origins": ["app.example"]},
    {"session_origins": ["ftp://app.example"]},
    {"session_origins": ["https://u@app.example"]},
    {"session_origins": [None]},
    {"session_origins": 5},
    {"session_path": "api/session"},
    {"session_path": "/api/*"},
    {"session_path": "/api/s p"},
    {"session_rate": 0},
    {"session_rate": -1},
    {"session_rate": float("inf")},
]


@pytest.mark.parametrize("options", BAD_CONFIG)
def test_a_bad_session_option_is_a_config_error_at_construction(
    emulator: WinkEmulator, options: dict[str, Any]
) -> None:
    with pytest.raises(WinkConfigError) as caught:
        WinkMiddleware(asgi_app, verifier=emulator.async_verifier(), **options)
    assert next(iter(options)) in str(caught.value)
    with pytest.raises(WinkConfigError):
        WinkWSGIMiddleware(wsgi_app, verifier=emulator.verifier(), **options)
    with pytest.raises(WinkConfigError):
        emulator.wink_config(**options)


def test_session_options_come_from_the_environment() -> None:
    from wink_middleware import WinkConfig

    config = WinkConfig.from_env(
        {
            "WINK_CLIENT_ID": "c",
            "WINK_CLIENT_SECRET": "s",
            "WINK_SESSION_RETURN_URL": RETURN_URL,
            "WINK_SESSION_CANCEL_URL": CANCEL_URL,
            "WINK_SESSION_RATE": "2.5",
        }
    )
    assert (config.session_return_url, config.session_cancel_url) == (RETURN_URL, CANCEL_URL)
    assert config.session_rate == 2.5
    with pytest.raises(WinkConfigError, match="WINK_SESSION_RATE"):
        WinkConfig.from_env(
            {"WINK_CLIENT_ID": "c", "WINK_CLIENT_SECRET": "s", "WINK_SESSION_RATE": "x"}
        )
    with pytest.raises(WinkConfigError, match="session_return_url"):
        WinkConfig.from_env(
            {
                "WINK_CLIENT_ID": "c",
                "WINK_CLIENT_SECRET": "s",
                "WINK_SESSION_RETURN_URL": "http://x.example/",
            }
        )


def test_session_options_are_request_options_next_to_verifier(emulator: WinkEmulator) -> None:
    middleware = WinkMiddleware(
        asgi_app, verifier=emulator.async_verifier(), **SESSIONS, session_rate=3
    )
    assert middleware.config.session_path == PATH and middleware.config.session_rate == 3
    with pytest.raises(WinkConfigError, match="timeout"):
        WinkMiddleware(asgi_app, verifier=emulator.async_verifier(), **SESSIONS, timeout=1)


async def test_a_websocket_on_the_session_path_is_not_the_route(emulator: WinkEmulator) -> None:
    middleware = WinkMiddleware(asgi_app, verifier=emulator.async_verifier(), **SESSIONS)
    sent: list[dict[str, Any]] = []
    received = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return received.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": PATH,
        "headers": [],
        "query_string": b"",
        "subprotocols": [],
    }
    await middleware(scope, receive, send)
    assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008  # no token
    assert emulator.session_calls == 0


def test_the_session_answer_body_is_exactly_the_session_id(emulator: WinkEmulator) -> None:
    site = Site("wsgi", emulator, **SESSIONS)
    response = httpx.Client(
        transport=httpx.WSGITransport(app=site.middleware), base_url="http://t"
    ).get(PATH)
    session_id = response.json()["sessionId"]
    assert response.content == json.dumps({"sessionId": session_id}, separators=(",", ":")).encode()
    assert response.headers["content-length"] == str(len(response.content))

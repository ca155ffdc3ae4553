"""Fault injection over real sockets: Wink (the emulator served on 127.0.0.1) misbehaves in every way
we know, in front of the ASGI middleware served by uvicorn and the WSGI middleware.

For each fault: the status the client gets, that nothing is cached that must not be (the cache size,
the counters and a repeat request that has to ask Wink again), and that a user cached before the
fault keeps being served during it without a call to Wink.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.helpers import FakeClock
from tests.raw_tcp import Handler, RawServer, chunked_flood, raw_server, reset_mid_body
from tests.servers import serve_asgi
from wink_middleware import (
    AsyncWinkVerifier,
    WinkMiddleware,
    WinkProfile,
    WinkVerifier,
    WinkWSGIMiddleware,
    get_profile,
)
from wink_middleware.testing import SAMPLE_PROFILE, WinkEmulator, serve

pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from starlette.types import Receive, Scope, Send

# Per attempt. A real answer over loopback must arrive well within it on a busy 2-core machine
# (0.3 s did not, with other suites running: a healthy call became a 503).
TIMEOUT = 1.0
TEN_MB = 10 * 1024 * 1024


class Upstream:
    """Wink on one fixed 127.0.0.1 port: the emulator served, or for a while something worse."""

    def __init__(self, emulator: WinkEmulator) -> None:
        self.emulator = emulator
        self._stack = ExitStack()
        self.url = self._stack.enter_context(serve(emulator, "127.0.0.1", 0))
        self.port = int(self.url.rsplit(":", 1)[1])
        self.raw_calls = 0
        self._raw: RawServer | None = None

    @property
    def calls(self) -> int:
        """Requests that reached Wink, whoever answered them."""
        raw = self._raw
        return self.emulator.calls + self.raw_calls + (0 if raw is None else raw.calls)

    @contextmanager
    def replaced_by(self, handler: Handler | None) -> Iterator[None]:
        """Stop the emulator; serve ``handler`` on its port (``None``: nothing, so connections are
        refused); serve the emulator again on exit."""
        self._stack.close()
        try:
            if handler is None:
                yield
            else:
                with raw_server(handler, self.port) as self._raw:
                    try:
                        yield
                    finally:
                        self.raw_calls += self._raw.calls
                        self._raw = None
        finally:
            self._stack = ExitStack()
            self._stack.enter_context(serve(self.emulator, "127.0.0.1", self.port))

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    wink = Upstream(WinkEmulator("fault-client", "fault-secret-never-shown"))
    yield wink
    wink.close()


@pytest.fixture
def wink(upstream: Upstream) -> Upstream:
    upstream.emulator.reset()
    upstream.raw_calls = 0
    return upstream


# -- the faults ---------------------------------------------------------------------------------

Make = Callable[["Upstream"], AbstractContextManager[None]]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def failing(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Make:
    """The emulator answers its next call with ``status``."""

    def make(wink: Upstream) -> AbstractContextManager[None]:
        wink.emulator.fail_next(1, status, body, headers=headers)
        return _nothing()

    return make


def malformed(body: Callable[[], bytes], content_type: str = "application/json") -> Make:
    """The emulator answers its next call 200 with ``body()`` instead of a profile."""

    def make(wink: Upstream) -> AbstractContextManager[None]:
        wink.emulator.malformed_next(1, body(), content_type=content_type)
        return _nothing()

    return make


def dropped(wink: Upstream) -> AbstractContextManager[None]:
    wink.emulator.drop_next()
    return _nothing()


@contextmanager
def slow(wink: Upstream) -> Iterator[None]:
    wink.emulator.latency = TIMEOUT * 4
    try:
        yield
    finally:
        wink.emulator.latency = 0


def replaced_by(handler: Handler | None) -> Make:
    """Wink's port served by a raw TCP ``handler`` (``None``: by nothing, so refused)."""
    return lambda wink: wink.replaced_by(handler)


def profile_body(**overrides: Any) -> Callable[[], bytes]:
    def body() -> bytes:
        data: dict[str, Any] = {
            **SAMPLE_PROFILE,
            "winkToken": "w-1",
            "expiryTime": "2099-01-01T00:00:00Z",
        }
        data.update(overrides)
        return json.dumps(data).encode()

    return body


HTML_PAGE = b"<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True)
class Fault:
    """How to make Wink fail, what the client must get, and which counter must move."""

    make: Make
    status: int
    counter: str | None  # key of stats.wink_failures, None when Wink's answer is used
    retry_after: str | None = None
    reaches_wink: bool = True


def outage(make: Make, retry_after: str = "5", *, reaches_wink: bool = True) -> Fault:
    return Fault(make, 503, "unavailable", retry_after, reaches_wink)


def nonsense(make: Make) -> Fault:
    return Fault(make, 502, "bad_response")


FAULTS: list[Any] = [
    pytest.param(outage(replaced_by(None), reaches_wink=False), id="connection-refused"),
    pytest.param(outage(replaced_by(reset_mid_body)), id="reset-mid-body"),
    pytest.param(outage(dropped), id="dropped-before-answering"),
    pytest.param(outage(slow), id="latency-above-timeout"),
    pytest.param(outage(failing(429, headers={"Retry-After": "7"}), "7"), id="429-retry-after"),
    *[pytest.param(outage(failing(s)), id=str(s)) for s in (500, 502, 503, 504)],
    pytest.param(
        outage(failing(502, HTML_PAGE, {"Content-Type": "text/html"})), id="html-error-page-502"
    ),
    pytest.param(nonsense(malformed(lambda: HTML_PAGE, "text/html")), id="html-page-200"),
    pytest.param(nonsense(malformed(lambda: b'{"firstName": "Ada", "las')), id="truncated-json"),
    pytest.param(nonsense(malformed(profile_body(pad="x" * TEN_MB))), id="10mb-body"),
    pytest.param(nonsense(replaced_by(chunked_flood(TEN_MB))), id="10mb-chunked-body"),
    *[
        pytest.param(nonsense(malformed(body)), id=f"wrong-types-{name}")
        for name, body in [
            ("winkToken-number", profile_body(winkToken=12345)),
            ("email-list", profile_body(email=["a@example.com"])),
            ("expiryTime-boolean", profile_body(expiryTime=True)),
            ("no-winkToken", profile_body(winkToken=None)),
            ("profile-is-a-list", lambda: b'[{"winkToken": "w-1"}]'),
        ]
    ],
    pytest.param(
        Fault(malformed(profile_body(expiryTime="2001-01-01T00:00:00Z")), 200, None),
        id="expiryTime-in-the-past",
    ),
]


# -- the apps in front of Wink ------------------------------------------------------------------

Verifier = AsyncWinkVerifier | WinkVerifier


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        # Speaking lifespan lets the middleware close its client to Wink at shutdown.
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    user: WinkProfile = scope["user"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": user.wink_token.encode()})


def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    profile = get_profile(environ)
    assert profile is not None
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [profile.wink_token.encode()]


class Switch:
    """One uvicorn for the module, handing each request to the current test's middleware."""

    def __init__(self) -> None:
        self.app: WinkMiddleware | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.loop = asyncio.get_running_loop()
        assert self.app is not None
        await self.app(scope, receive, send)

    def close(self) -> None:
        """Close the current middleware's client to Wink, on uvicorn's loop where it lives."""
        if self.app is not None and self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.app.aclose(), self.loop).result(5)
        self.app = None


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    with serve_asgi(switch) as url:
        yield switch, url


Front = Callable[..., AbstractContextManager[tuple[httpx.Client, "Verifier"]]]


@pytest.fixture
def front(uvicorn_server: tuple[Switch, str], wink: Upstream) -> Front:
    """``front(adapter, **options)``: the middleware in front of ``wink``, a client to reach it
    (the ASGI one through uvicorn on 127.0.0.1), and its verifier."""
    switch, url = uvicorn_server
    return partial(_front, switch, url, wink)


@contextmanager
def _front(
    switch: Switch, url: str, wink: Upstream, adapter: str, **options: Any
) -> Iterator[tuple[httpx.Client, Verifier]]:
    clock = options.pop("clock", None)
    config = wink.emulator.wink_config(base_url=wink.url, timeout=TIMEOUT, retries=0, **options)
    if adapter == "asgi":
        verifier = AsyncWinkVerifier(config, clock=clock)
        switch.app = WinkMiddleware(asgi_app, verifier=verifier)
        try:
            with httpx.Client(base_url=url) as client:
                yield client, verifier
        finally:
            switch.close()
    else:
        sync = WinkVerifier(config, clock=clock)
        middleware = WinkWSGIMiddleware(wsgi_app, verifier=sync)
        transport = httpx.WSGITransport(app=middleware)
        try:
            with httpx.Client(transport=transport, base_url="http://app") as client:
                yield client, sync
        finally:
            middleware.close()


def get(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/", headers={"Authorization": f"Bearer {token}"}, timeout=10)


ADAPTERS = pytest.mark.parametrize("adapter", ["asgi", "wsgi"])


@ADAPTERS
@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_gives_its_status_caches_nothing_and_spares_cached_users(
    adapter: str, fault: Fault, wink: Upstream, front: Front
) -> None:
    cached, fresh = wink.emulator.issue_token(), wink.emulator.issue_token()
    with front(adapter) as (client, verifier):
        assert get(client, cached).status_code == 200
        assert len(verifier.cache) == 1
        with fault.make(wink):
            calls = wink.calls
            assert get(client, cached).status_code == 200, "a cached user is served during it"
            assert wink.calls == calls, "... without asking Wink"
            response = get(client, fresh)
            assert get(client, cached).status_code == 200
            assert wink.calls == calls + fault.reaches_wink
        assert response.status_code == fault.status
        if fault.status == 200:
            assert response.text == "w-1", "the answer is used for this request"
        else:
            assert response.headers["content-type"] == "application/json"
            assert response.headers["cache-control"] == "no-store"
            assert response.headers.get("retry-after") == fault.retry_after
            body = response.json()
            assert (
                body["error"] == {503: "temporarily_unavailable", 502: "bad_gateway"}[fault.status]
            )
        stats = verifier.stats
        failures = {k: v for k, v in stats.wink_failures.items() if v}
        assert failures == ({fault.counter: 1} if fault.counter else {})
        assert len(verifier.cache) == 1, "nothing was cached for the token that met the fault"
        assert stats.negative_hits == stats.stale_served == 0
        assert stats.hits == 2

        calls = wink.calls
        again = get(client, fresh)
        assert again.status_code == 200, "Wink is back, and nothing was remembered of the fault"
        assert wink.calls == calls + 1, "the repeat asked Wink again"
        assert len(verifier.cache) == 2


# One of each kind of outage (the other 5xx answers take the 503 path).
OUTAGES = {"connection-refused", "reset-mid-body", "dropped-before-answering"}
OUTAGES |= {"latency-above-timeout", "429-retry-after", "503"}
TRANSIENT: list[Any] = [p for p in FAULTS if p.id in OUTAGES]


@ADAPTERS
@pytest.mark.parametrize("fault", TRANSIENT)
def test_a_cached_user_past_cache_ttl_is_served_stale_during_an_outage(
    adapter: str, fault: Fault, wink: Upstream, front: Front
) -> None:
    clock = FakeClock(time.time())
    user = wink.emulator.issue_token(ttl=600)
    options = {"clock": clock, "cache_ttl": 60, "stale_if_error": 120}
    with front(adapter, **options) as (client, verifier):
        assert get(client, user).status_code == 200
        clock.advance(61)
        calls = wink.calls
        with fault.make(wink):
            response = get(client, user)
        assert response.status_code == 200
        assert wink.calls == calls + fault.reaches_wink, "Wink was asked first"
        assert verifier.stats.stale_served == 1
        clock.advance(120)
        with fault.make(wink):
            assert get(client, user).status_code == 503, "never past the grace"


def test_the_served_emulator_answers_kept_alive_calls_without_a_delayed_ack_stall(
    wink: Upstream,
) -> None:
    # Without TCP_NODELAY on the emulator's sockets each kept-alive call took ~40 ms more.
    verifier = WinkVerifier(wink.emulator.wink_config(base_url=wink.url, retries=0))
    verifier.verify(wink.emulator.issue_token())
    took = []
    for _ in range(5):
        token = wink.emulator.issue_token()
        started = time.monotonic()
        verifier.verify(token)
        took.append(time.monotonic() - started)
    verifier.close()
    assert sorted(took)[2] < 0.02, took

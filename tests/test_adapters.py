"""The ASGI and WSGI middlewares, side by side: each test runs through both adapters.

What the two must do alike (the gate's outcomes as HTTP answers, what the app sees, the request
events) is tested here once, parametrized over ``asgi`` and ``wsgi``; ``test_asgi.py`` and
``test_wsgi.py`` keep what belongs to one server alone (websockets and lifespan, PEP 3333 text and
``wsgiref.validate``). The decisions themselves are tables in ``test_routing.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from tests.helpers import FakeClock, config, make_token, profile_json
from tests.stub import WinkStub
from wink_middleware import (
    AsyncWinkVerifier,
    WinkEvent,
    WinkMiddleware,
    WinkVerifier,
    WinkWSGIMiddleware,
    get_profile,
)

TOKEN = make_token()
WINK_TOKEN = profile_json()["winkToken"]
PREFLIGHT = {"Origin": "http://app.test", "Access-Control-Request-Method": "GET"}

Send = Callable[[str, str, dict[str, str]], httpx.Response]


def _seen(profile: Any, error: Any) -> bytes:
    return json.dumps(
        {
            "user": None if profile is None else profile.wink_token,
            "error": None if error is None else error.error,
        }
    ).encode()


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    body = _seen(get_profile(scope), scope.get("wink.error"))
    headers = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: Any, start_response: Any) -> Iterable[bytes]:
    body = _seen(get_profile(environ), environ.get("wink.error"))
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*")]
    )
    return [body]


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[str | None] = []

    def on_event(self, event: WinkEvent) -> None:
        if event.name == "request":
            self.outcomes.append(event.outcome)


def through(adapter: str, stub: WinkStub, **options: Any) -> Send:
    """Send requests through ``adapter`` (``asgi`` or ``wsgi``) in front of the app above."""
    if adapter == "wsgi":
        verifier = WinkVerifier(config(**options), client=stub.sync_client(), clock=FakeClock())
        middleware = WinkWSGIMiddleware(wsgi_app, verifier=verifier)
        client = httpx.Client(transport=httpx.WSGITransport(app=middleware), base_url="http://t")

        def send_wsgi(method: str, path: str, headers: dict[str, str]) -> httpx.Response:
            return client.request(method, path, headers=headers)

        return send_wsgi

    # One verifier for every request, as in an app; each request runs in its own event loop.
    verifier_ = AsyncWinkVerifier(config(**options), client=stub.client(), clock=FakeClock())
    asgi = WinkMiddleware(asgi_app, verifier=verifier_)

    def send_asgi(method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        async def one() -> httpx.Response:
            transport = httpx.ASGITransport(app=asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, path, headers=headers)

        return asyncio.run(one())

    return send_asgi


ADAPTERS = ["asgi", "wsgi"]
OPTIONS: dict[str, Any] = {"public_paths": ["/health"], "optional_paths": ["/feed"]}


def wink(status: int, **content: Any) -> Callable[[httpx.Request], httpx.Response]:
    """Wink's reply, built afresh for each call (a response object is read once)."""
    return lambda _: httpx.Response(status, **content)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    ("method", "path", "headers", "reply", "status", "seen", "outcome"),
    [
        ("GET", "/me", bearer(), None, 200, {"user": WINK_TOKEN, "error": None}, "authenticated"),
        ("GET", "/me", {}, None, 401, None, "missing"),
        ("GET", "/me", {"Authorization": "Bearer %%%"}, None, 400, None, "invalid"),
        ("GET", "/me", bearer(), wink(401), 401, None, "rejected"),
        ("GET", "/me", bearer(), wink(503), 503, None, "unavailable"),
        ("GET", "/me", bearer(), wink(200, text="<html>"), 502, None, "bad_response"),
        ("GET", "/health", {}, None, 200, {"user": None, "error": None}, "public"),
        ("GET", "/feed", {}, None, 200, {"user": None, "error": None}, "anonymous"),
        ("GET", "/feed", bearer(), wink(401), 401, None, "rejected"),
        ("GET", "/feed", bearer(), wink(503), 503, None, "unavailable"),
        ("OPTIONS", "/me", PREFLIGHT, None, 200, None, "preflight"),
    ],
)
def test_each_outcome_is_the_same_answer_and_event_on_both_adapters(
    adapter: str,
    method: str,
    path: str,
    headers: dict[str, str],
    reply: Callable[[httpx.Request], httpx.Response] | None,
    status: int,
    seen: dict[str, Any] | None,
    outcome: str,
) -> None:
    recorder = Recorder()
    stub = WinkStub(*([] if reply is None else [reply]))
    send = through(adapter, stub, **OPTIONS, observers=[recorder])
    answer = send(method, path, headers)
    assert answer.status_code == status
    if seen is not None:
        assert answer.json() == seen
    elif method == "OPTIONS":
        assert answer.content == b"" and answer.headers["access-control-allow-origin"] == "*"
    else:
        assert answer.json()["error"] == (
            "missing_token"
            if outcome == "missing"
            else {
                "invalid": "invalid_request",
                "rejected": "invalid_token",
                "unavailable": "temporarily_unavailable",
                "bad_response": "bad_gateway",
            }[outcome]
        )
        assert answer.headers["cache-control"] == "no-store"
    assert recorder.outcomes == [outcome]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_cached_token_is_not_asked_of_wink_again(adapter: str) -> None:
    stub = WinkStub()
    send = through(adapter, stub)
    assert [send("GET", "/me", bearer()).status_code for _ in range(3)] == [200] * 3
    assert stub.calls == 1


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_anonymous_on_invalid_lets_a_refused_token_in_with_its_error(adapter: str) -> None:
    send = through(adapter, WinkStub(wink(401)), **OPTIONS, anonymous_on_invalid=True)
    answer = send("GET", "/feed", bearer())
    assert (answer.status_code, answer.json()) == (200, {"user": None, "error": "invalid_token"})


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_head_refusal_has_headers_and_no_body(adapter: str) -> None:
    answer = through(adapter, WinkStub())("HEAD", "/me", {})
    assert answer.status_code == 401
    assert answer.content == b""
    assert answer.headers["www-authenticate"] == 'Bearer realm="wink"'

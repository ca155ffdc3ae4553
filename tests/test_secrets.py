"""The client secret and raw tokens never leak: not in logs, reprs, exceptions or responses."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import httpx
import pytest

from tests.helpers import CLIENT_SECRET, NOW, FakeClock, config, make_token, profile_json
from tests.stub import WinkStub
from wink_middleware import AsyncWinkVerifier, AuthenticationFailed, WinkMiddleware

pytestmark = pytest.mark.anyio

TOKEN = make_token(padding=40)
PERSONAL = ("Ada", "Lovelace", "945-3854", "ada@example.com", "1983")

REPLIES: list[Any] = [
    httpx.Response(200, json=profile_json(clientSecret=CLIENT_SECRET)),
    httpx.Response(400),
    httpx.Response(401),
    httpx.Response(403),
    httpx.Response(404),
    httpx.Response(429),
    httpx.Response(500),
    httpx.Response(302),
    httpx.Response(200, text="<html>"),
    httpx.Response(200, json=profile_json(winkToken=None)),
    httpx.ConnectError(f"failed for {TOKEN}"),
    httpx.ReadTimeout("slow"),
]


def log_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records)


@pytest.mark.parametrize("reply", REPLIES)
async def test_no_secret_token_or_personal_data_in_logs_or_errors(
    reply: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wink = AsyncWinkVerifier(config(retries=1), client=WinkStub(reply).client(), clock=FakeClock())
    outcome: Any
    try:
        outcome = await wink.verify(TOKEN)
    except AuthenticationFailed as exc:
        outcome = exc
        texts = [str(exc), repr(exc), exc.description]
        assert not any(TOKEN in t or CLIENT_SECRET in t for t in texts)
    text = log_text(caplog.records)
    assert CLIENT_SECRET not in text
    assert TOKEN not in text
    for private in PERSONAL:
        assert private not in text
    assert CLIENT_SECRET not in repr(outcome) and CLIENT_SECRET not in repr(wink)


async def test_token_is_logged_only_as_a_short_sha256_fingerprint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "wink_middleware")
    wink = AsyncWinkVerifier(config(), client=WinkStub(httpx.Response(401)).client())
    with pytest.raises(AuthenticationFailed):
        await wink.verify(TOKEN)
    fingerprint = hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    assert fingerprint in log_text(caplog.records)


async def test_local_rejection_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = make_token(exp=NOW - 1)
    wink = AsyncWinkVerifier(config(), client=WinkStub().client(), clock=FakeClock())
    with pytest.raises(AuthenticationFailed):
        await wink.verify(token)
    assert token not in log_text(caplog.records)


async def test_middleware_responses_and_logs_hold_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for reply in REPLIES:
        wink = AsyncWinkVerifier(config(), client=WinkStub(reply).client(), clock=FakeClock())

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        transport = httpx.ASGITransport(app=WinkMiddleware(app, verifier=wink))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        dump = response.text + str(response.headers)
        assert CLIENT_SECRET not in dump and TOKEN not in dump
    text = log_text(caplog.records)
    assert CLIENT_SECRET not in text and TOKEN not in text


SESSION_REPLIES: list[Any] = [
    lambda request: httpx.Response(200, json={"sessionId": "s-1"}),
    lambda request: httpx.Response(401),
    lambda request: httpx.Response(403, text=CLIENT_SECRET),
    lambda request: httpx.Response(400, text=CLIENT_SECRET),
    lambda request: httpx.Response(500, text=CLIENT_SECRET),
    lambda request: httpx.Response(200, text=f"<html>{CLIENT_SECRET}"),
    httpx.ConnectError(f"failed for {CLIENT_SECRET}"),
    httpx.ReadTimeout("slow"),
]


@pytest.mark.parametrize("reply", SESSION_REPLIES)
async def test_the_session_route_leaks_no_secret_in_answers_or_logs(
    reply: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import base64

    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"test-client:{CLIENT_SECRET}".encode()).decode()
    wink = AsyncWinkVerifier(config(retries=1), client=WinkStub(reply).client(), clock=FakeClock())

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the session route never reaches the app")

    middleware = WinkMiddleware(
        app,
        verifier=wink,
        session_path="/session",
        session_return_url="https://app.example/",
        session_cancel_url="https://app.example/",
    )
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/session")
    dump = (
        response.text + str(response.headers) + log_text(caplog.records) + repr(middleware.config)
    )
    assert CLIENT_SECRET not in dump and basic not in dump

"""Testing an app with the kit: the pytest plugin's fixtures, an injected verifier, a fault, a
``FakeClock`` and FastAPI's ``dependency_overrides``. No Wink account, no network, no sleeping.

These are pytest tests. With the package installed, its plugin gives them the ``wink_emulator`` and
``wink_token`` fixtures:

    pytest examples/testing_kit.py

In this repository, whose pytest settings turn the plugin's entry point off (the suite loads it
itself), name it: ``pytest -p wink_middleware.testing.pytest_plugin examples/testing_kit.py``.
"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.testclient import TestClient

from examples import fastapi_app
from examples.starlette_app import me
from wink_middleware import TokenRejected, WinkMiddleware, WinkProfile
from wink_middleware.fastapi import current_user
from wink_middleware.testing import FakeClock, WinkEmulator


def test_me_needs_a_token(wink_emulator: WinkEmulator, wink_token: str) -> None:
    app = Starlette(
        routes=[Route("/me", me)],
        middleware=[Middleware(WinkMiddleware, verifier=wink_emulator.async_verifier())],
    )
    with TestClient(app) as client:
        ok = client.get("/me", headers={"Authorization": f"Bearer {wink_token}"})
        assert ok.json()["name"] == "Ada Lovelace"
        assert client.get("/me").status_code == 401


def test_wink_down_is_503_not_401(wink_emulator: WinkEmulator, wink_token: str) -> None:
    verifier = wink_emulator.async_verifier(retries=0)
    app = Starlette(
        routes=[Route("/me", me)], middleware=[Middleware(WinkMiddleware, verifier=verifier)]
    )
    wink_emulator.fail_next(1, status=503)
    with TestClient(app) as client:
        answer = client.get("/me", headers={"Authorization": f"Bearer {wink_token}"})
        assert answer.status_code == 503
        assert answer.json()["error"] == "temporarily_unavailable"
        assert "retry-after" in answer.headers
    assert wink_emulator.calls == 1


def test_a_token_expires_without_sleeping() -> None:
    clock = FakeClock()
    wink = WinkEmulator(client_id="my-client", client_secret="my-secret", clock=clock)
    verifier = wink.verifier(clock=clock)
    token = wink.issue_token(ttl=60, first_name="Grace")
    assert verifier.verify(token).first_name == "Grace"
    clock.advance(60)
    with pytest.raises(TokenRejected):
        verifier.verify(token)
    verifier.close()


def test_fastapi_route_as_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    # The middleware still runs (every path of this app is optional): it needs credentials, but
    # no token is sent, so it never calls Wink.
    monkeypatch.setenv("WINK_CLIENT_ID", "test-client")
    monkeypatch.setenv("WINK_CLIENT_SECRET", "test-secret")
    app = fastapi_app.app
    app.dependency_overrides[current_user] = lambda: WinkProfile(
        wink_token="u1", first_name="Grace"
    )
    try:
        with TestClient(app) as client:
            assert client.get("/me").json()["name"] == "Grace"
    finally:
        app.dependency_overrides.clear()

"""The demo app's own endpoints: the page and keycloak-js served locally, the status, the session
route, the worker labels, the two workers sharing Redis, and a demo that cannot be built or served."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from wink_middleware.testing import KEYCLOAK_JS
from wink_middleware.testing._demo import build_demo, run_demo
from wink_middleware.testing._server import bind

pytestmark = pytest.mark.anyio


async def get(path: str) -> httpx.Response:
    demo = build_demo("http://127.0.0.1:9")  # these pages never call the verifier
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=demo.app), base_url="http://demo"
    ) as client:
        return await client.get(path)


async def test_the_page_and_keycloak_js_are_public_and_never_fetched_elsewhere() -> None:
    page = await get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert 'import Keycloak from "/keycloak.js"' in page.text
    assert "https://" not in page.text  # nothing is loaded from another host
    script = await get("/keycloak.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.content == KEYCLOAK_JS.read_bytes()
    silent = await get("/silent-check-sso.html")
    assert "parent.postMessage(location.href, location.origin)" in silent.text


async def test_status_names_the_client_and_realm_the_page_signs_in_with() -> None:
    status = (await get("/status")).json()
    assert status == {
        "workers": 1,
        "wink_calls": 0,
        "client_id": "demo-client",
        "realm": "wink",
        "auth_path": "/wink",
    }
    discovery = await get("/wink/realms/wink/.well-known/openid-configuration")
    assert discovery.json()["issuer"] == "http://demo/wink/realms/wink"


async def test_the_api_gives_a_session_for_the_demos_own_page() -> None:
    demo = build_demo("http://127.0.0.1:9")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=demo.app), base_url="http://demo"
    ) as client:
        refused = await client.get("/api/session", params={"returnUrl": "https://evil.example/"})
    assert refused.status_code == 400
    assert demo.emulator.session_calls == 0


@pytest.mark.slow
def test_the_api_session_is_one_the_emulator_sign_in_accepts() -> None:
    with run_demo() as (url, demo), httpx.Client(base_url=url, timeout=5) as client:
        answer = client.get("/api/session")
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        session_id = answer.json()["sessionId"]
        page = client.get(
            "/wink/realms/wink/protocol/openid-connect/auth",
            params={
                "client_id": "demo-client",
                "redirect_uri": f"{url}/",
                "response_type": "code",
                "state": "s",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
                "sessionId": session_id,
            },
        )
    assert page.status_code == 200
    assert "Sign in as Ada Lovelace" in page.text
    assert demo.emulator.session_calls == 1


async def test_favicon_is_public_and_empty() -> None:
    demo = build_demo("http://127.0.0.1:9")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=demo.app), base_url="http://demo"
    ) as client:
        response = await client.get("/favicon.ico")
    assert (response.status_code, response.content) == (204, b"")


@pytest.mark.slow
def test_the_echo_websocket_takes_the_token_as_the_wink_bearer_subprotocol() -> None:
    with run_demo() as (url, demo):
        ws_url = url.replace("http://", "ws://", 1) + "/api/echo"
        offer = [Subprotocol("wink.bearer"), Subprotocol(demo.emulator.issue_token())]
        with connect(ws_url, subprotocols=offer) as ws:
            assert ws.subprotocol == "wink.bearer"
            assert json.loads(ws.recv()) == {"hello": "Ada Lovelace"}
            ws.send("ping")
            assert ws.recv() == "ping"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, subprotocols=[Subprotocol("chat")]).close()
    assert refused.value.response.status_code == 401


def test_run_demo_closes_its_socket_when_the_demo_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound: list[socket.socket] = []

    def recording_bind(host: str, port: int) -> socket.socket:
        bound.append(bind(host, port))
        return bound[-1]

    def broken(base_url: str, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("wink_middleware.testing._demo.bind", recording_bind)
    monkeypatch.setattr("wink_middleware.testing._demo.build_demo", broken)
    with pytest.raises(RuntimeError, match="boom"), run_demo():
        pass
    assert bound[0].fileno() == -1


def labels(answers: list[httpx.Response]) -> list[tuple[str, str]]:
    return [(a.headers["x-demo-worker"], a.headers["x-demo-answered-from"]) for a in answers]


def test_status_counts_workers_and_wink_calls_and_api_answers_name_their_worker() -> None:
    with run_demo() as (url, demo), httpx.Client(base_url=url, timeout=5) as client:
        auth = {"Authorization": f"Bearer {demo.emulator.issue_token()}"}
        answers = [client.get("/api/profile", headers=auth) for _ in range(2)]
        answers.append(client.get("/api/profile"))
        status = client.get("/status").json()
    assert [a.status_code for a in answers] == [200, 200, 401]
    assert labels(answers) == [("1", "wink"), ("1", "local cache"), ("1", "none")]
    assert (status["workers"], status["wink_calls"]) == (1, 1)


def test_with_redis_two_workers_take_turns_and_share_one_verification(redis_url: str) -> None:
    with (
        run_demo(redis_url=redis_url) as (url, demo),
        httpx.Client(base_url=url, timeout=5) as client,
    ):
        assert len(demo.workers) == 2
        assert demo.workers[0] is not demo.workers[1]
        auth = {"Authorization": f"Bearer {demo.emulator.issue_token()}"}
        answers = [client.get("/api/profile", headers=auth) for _ in range(4)]
        signed_out = client.post("/api/sign-out", headers=auth).json()
        status = client.get("/status").json()
    assert labels(answers) == [
        ("1", "wink"),
        ("2", "fleet cache"),
        ("1", "local cache"),
        ("2", "local cache"),
    ]
    assert (status["workers"], status["wink_calls"]) == (2, 1)
    assert signed_out == {"signed_out": True, "reached_fleet": True}


@pytest.mark.slow
def test_a_demo_bound_to_every_interface_sends_users_back_to_localhost() -> None:
    with run_demo(host="0.0.0.0") as (url, demo):
        port = url.rsplit(":", 1)[1]
        answer = httpx.get(f"http://127.0.0.1:{port}/api/session", timeout=5)
        assert answer.status_code == 200
        urls = demo.emulator.use_session(answer.json()["sessionId"])
    assert urls == (f"http://localhost:{port}/", f"http://localhost:{port}/")

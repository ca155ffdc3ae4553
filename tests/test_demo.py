"""The demo app's own endpoints: sign-in validation, the status and worker labels, the two workers
sharing Redis, and a demo that cannot be built or served."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from wink_middleware.testing._demo import build_demo, run_demo
from wink_middleware.testing._server import bind

pytestmark = pytest.mark.anyio


async def sign_in(**kwargs: Any) -> httpx.Response:
    demo = build_demo("http://127.0.0.1:9")  # sign-in never calls the verifier
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=demo.app), base_url="http://demo"
    ) as client:
        return await client.post("/wink/demo/sign-in", **kwargs)


async def test_sign_in_without_a_body_issues_a_five_minute_token() -> None:
    response = await sign_in()
    assert response.status_code == 200
    assert response.json()["expires_in"] == 300
    assert response.json()["token_type"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "send JSON"),
        (b"[1]", "send JSON"),
        (b'{"ttl": "soon"}', "send JSON"),
        (b'{"ttl": 0}', "ttl must be"),
        (b'{"ttl": 1e9}', "ttl must be"),
    ],
)
async def test_sign_in_refuses_a_bad_lifetime(content: bytes, reason: str) -> None:
    response = await sign_in(content=content)
    assert response.status_code == 400
    assert reason in response.json()["error"]


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
    assert status == {"workers": 1, "wink_calls": 1}


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
    assert status == {"workers": 2, "wink_calls": 1}
    assert signed_out == {"signed_out": True, "reached_fleet": True}

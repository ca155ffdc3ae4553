"""websocket_subprotocol: a browser's token as ``Sec-WebSocket-Protocol: wink.bearer, <token>``.

Browsers cannot set headers on a websocket; the subprotocol list is the one header they can fill, and
unlike a query string it is not in the URL that servers log. The token entry is taken out of
``scope["subprotocols"]`` before the app sees it, and the app accepts with ``wink.bearer``, as a
browser requires. Driven with Starlette's TestClient, then over real sockets with uvicorn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.servers import serve_asgi
from wink_middleware import WinkMiddleware, get_profile
from wink_middleware.testing import WinkEmulator

MARKER = "wink.bearer"


async def greet(websocket: WebSocket) -> None:
    """Accepts with ``wink.bearer`` when offered; tells who connected and what it was offered."""
    offered = list(websocket.scope["subprotocols"])
    await websocket.accept(subprotocol=MARKER if MARKER in offered else None)
    profile = get_profile(websocket)
    error = websocket.scope.get("wink.error")
    await websocket.send_json(
        {
            "user": None if profile is None else profile.wink_tag,
            "offered": offered,
            "error": None if error is None else error.status_code,
        }
    )
    await websocket.close()


ROUTES = [WebSocketRoute("/ws", greet), WebSocketRoute("/lobby", greet)]


def build(wink: WinkEmulator, **options: Any) -> WinkMiddleware:
    options.setdefault("websocket_subprotocol", MARKER)
    return WinkMiddleware(Starlette(routes=ROUTES), verifier=wink.async_verifier(), **options)


@pytest.fixture
def client(wink_emulator: WinkEmulator) -> Iterator[TestClient]:
    app = build(wink_emulator, optional_paths=["/lobby"], anonymous_on_invalid=True)
    with TestClient(app) as client:
        yield client


def denial(client: TestClient, path: str, subprotocols: list[str]) -> WebSocketDenialResponse:
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(path, subprotocols=subprotocols),
    ):
        pass
    return refused.value


def test_the_token_in_the_subprotocol_signs_the_websocket_in(
    client: TestClient, wink_emulator: WinkEmulator
) -> None:
    token = wink_emulator.issue_token()
    with client.websocket_connect("/ws", subprotocols=[MARKER, token]) as ws:
        assert ws.accepted_subprotocol == MARKER
        assert ws.receive_json() == {"user": ";ada.lovelace", "offered": [MARKER], "error": None}


def test_the_app_never_sees_the_token_entry_among_other_subprotocols(
    client: TestClient, wink_emulator: WinkEmulator
) -> None:
    token = wink_emulator.issue_token()
    with client.websocket_connect("/ws", subprotocols=["chat.v2", MARKER, token, "json"]) as ws:
        greeting = ws.receive_json()
    assert greeting["user"] == ";ada.lovelace"
    assert greeting["offered"] == ["chat.v2", MARKER, "json"]


def test_the_marker_without_a_token_is_an_invalid_request(client: TestClient) -> None:
    refused = denial(client, "/ws", [MARKER])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"


def test_a_malformed_subprotocol_token_is_an_invalid_request(client: TestClient) -> None:
    refused = denial(client, "/ws", [MARKER, "not<a>token"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")


def test_a_refused_subprotocol_token_gets_401_and_the_app_is_not_called(
    client: TestClient, wink_emulator: WinkEmulator
) -> None:
    token = wink_emulator.issue_token()
    wink_emulator.revoke(token)
    refused = denial(client, "/ws", [MARKER, token])
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")


def test_the_authorization_header_comes_before_the_subprotocol(
    client: TestClient, wink_emulator: WinkEmulator
) -> None:
    stale = wink_emulator.issue_token()
    wink_emulator.revoke(stale)
    header = {"Authorization": f"Bearer {wink_emulator.issue_token(first_name='Grace')}"}
    with client.websocket_connect("/ws", subprotocols=[MARKER, stale], headers=header) as ws:
        greeting = ws.receive_json()
    assert greeting["user"] == ";ada.lovelace"
    assert greeting["offered"] == [MARKER]
    assert wink_emulator.calls == 1  # the subprotocol's token was never asked about


def test_without_websocket_subprotocol_the_subprotocol_carries_no_token(
    wink_emulator: WinkEmulator,
) -> None:
    app = build(wink_emulator, websocket_subprotocol=None)
    with TestClient(app) as client:
        refused = denial(client, "/ws", [MARKER, wink_emulator.issue_token()])
    assert (refused.status_code, refused.json()["error"]) == (401, "missing_token")


def test_an_http_request_never_reads_the_subprotocol_header(
    client: TestClient, wink_emulator: WinkEmulator
) -> None:
    header = {"Sec-WebSocket-Protocol": f"{MARKER}, {wink_emulator.issue_token()}"}
    assert client.get("/ws", headers=header).status_code == 401


def test_a_websocket_on_an_optional_path_without_a_token_is_anonymous(client: TestClient) -> None:
    with client.websocket_connect("/lobby", subprotocols=["chat.v2"]) as ws:
        assert ws.accepted_subprotocol is None
        assert ws.receive_json() == {"user": None, "offered": ["chat.v2"], "error": None}


@pytest.mark.parametrize("token", ["revoked", "not<a>token"])
def test_anonymous_on_invalid_still_hides_the_subprotocol_token_from_the_app(
    client: TestClient, wink_emulator: WinkEmulator, token: str
) -> None:
    if token == "revoked":
        token = wink_emulator.issue_token()
        wink_emulator.revoke(token)
    with client.websocket_connect("/lobby", subprotocols=[MARKER, token, "json"]) as ws:
        assert ws.accepted_subprotocol == MARKER
        greeting = ws.receive_json()
    assert greeting["user"] is None
    assert greeting["error"] in (400, 401)
    assert greeting["offered"] == [MARKER, "json"]


# -- over a real socket: uvicorn's current websocket implementations ------------------------------

# (its legacy ws="websockets" mode is deprecated and fails on websockets >= 14 before any app runs)
WS_IMPLEMENTATIONS = ["websockets-sansio", "wsproto"]


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://", 1) + path


def offer(*entries: str) -> list[Subprotocol]:
    return [Subprotocol(entry) for entry in entries]


@pytest.mark.slow
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
def test_a_browser_style_handshake_over_uvicorn_signs_in_with_the_subprotocol(
    wink_emulator: WinkEmulator, ws: str
) -> None:
    token = wink_emulator.issue_token()
    with (
        serve_asgi(build(wink_emulator), ws=ws) as base_url,
        connect(ws_url(base_url, "/ws"), subprotocols=offer(MARKER, token)) as socket,
    ):
        assert socket.subprotocol == MARKER
        assert json.loads(socket.recv()) == {
            "user": ";ada.lovelace",
            "offered": [MARKER],
            "error": None,
        }


@pytest.mark.slow
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
def test_a_refused_subprotocol_token_over_uvicorn_fails_the_handshake(
    wink_emulator: WinkEmulator, ws: str
) -> None:
    token = wink_emulator.issue_token()
    wink_emulator.revoke(token)
    with (
        serve_asgi(build(wink_emulator), ws=ws) as base_url,
        pytest.raises(InvalidStatus) as refused,
        connect(ws_url(base_url, "/ws"), subprotocols=offer(MARKER, token)),
    ):
        pass
    # The RFC 6750 answer where the implementation supports websocket.http.response, else 403.
    assert refused.value.response.status_code in (401, 403)


class Records(logging.Handler):
    """Keeps the messages of the records it handles."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def uvicorn_log() -> Iterator[Records]:
    """What uvicorn logs at INFO (serve with ``log_config=None``: its own config drops handlers)."""
    logger = logging.getLogger("uvicorn.error")
    records = Records()
    level = logger.level
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


@pytest.mark.slow
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
def test_uvicorn_logs_websocket_urls_without_an_access_log_but_never_the_subprotocol(
    wink_emulator: WinkEmulator, uvicorn_log: Records, ws: str
) -> None:
    app = build(wink_emulator, query_param="access_token")
    by_query, by_subprotocol = wink_emulator.issue_token(), wink_emulator.issue_token()
    with serve_asgi(app, ws=ws, access_log=False, log_config=None) as base_url:
        logging.getLogger("uvicorn.error").setLevel(logging.INFO)  # the server set WARNING
        with connect(ws_url(base_url, f"/ws?access_token={by_query}")) as socket:
            socket.recv()
        with connect(ws_url(base_url, "/ws"), subprotocols=offer(MARKER, by_subprotocol)) as socket:
            socket.recv()
    log = "\n".join(uvicorn_log.messages)
    assert '"WebSocket /ws?access_token=' in log
    assert by_query in log  # why query_param is off by default
    assert by_subprotocol not in log

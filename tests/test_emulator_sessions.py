"""The emulator's session API: ``POST /wink/v1/session`` with
Basic credentials and both URLs, single-use sessions living ``session_ttl``, ``session_calls``."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from wink_middleware.testing import SESSION_PATH, FakeClock, WinkEmulator

CLIENT = "emu-client"
SECRET = "emu-secret"
URLS = {"returnUrl": "https://app.example/in", "cancelUrl": "https://app.example/out"}


def basic(client_id: str = CLIENT, secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post(
    emulator: WinkEmulator, body: Any = URLS, authorization: str | None = None, method: str = "POST"
) -> httpx.Response:
    headers = {"Authorization": authorization or basic()}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(transport=emulator.sync_transport(), base_url="https://wink") as client:
        return client.request(method, SESSION_PATH, content=content, headers=headers)


def test_good_credentials_and_both_urls_give_a_session() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    response = post(emulator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    session_id = response.json()["sessionId"]
    assert isinstance(session_id, str) and len(session_id) >= 16
    assert emulator.use_session(session_id) == (URLS["returnUrl"], URLS["cancelUrl"])
    assert (emulator.session_calls, emulator.calls) == (1, 0)


@pytest.mark.parametrize(
    "authorization",
    [
        basic(secret="wrong"),
        basic(client_id="other-client"),
        basic(secret=SECRET + "x"),
        "Bearer " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode(),
        "Basic not base64!",
        "Basic " + base64.b64encode(f"{CLIENT}{SECRET}".encode()).decode(),
        "Basic",
    ],
)
def test_anything_but_its_own_basic_credentials_is_401_with_an_empty_body(
    authorization: str,
) -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    response = post(emulator, authorization=authorization)
    assert response.status_code == 401
    assert response.content == b""
    assert emulator.session_calls == 1  # refused calls are counted too


def test_no_authorization_header_is_401() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    with httpx.Client(transport=emulator.sync_transport(), base_url="https://wink") as client:
        response = client.post(SESSION_PATH, json=URLS)
    assert (response.status_code, response.content) == (401, b"")


@pytest.mark.parametrize(
    "body",
    [
        {"returnUrl": "https://app.example/in"},
        {"cancelUrl": "https://app.example/out"},
        {"returnUrl": "", "cancelUrl": "https://app.example/out"},
        {"returnUrl": 5, "cancelUrl": "https://app.example/out"},
        [],
        b"not json",
        b"",
    ],
)
def test_a_body_without_both_urls_is_400(body: Any) -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    response = post(emulator, body)
    assert response.status_code == 400
    assert "returnUrl" in response.json()["error"]
    assert emulator.session_calls == 1


def test_other_methods_are_405() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    response = post(emulator, method="GET")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert emulator.session_calls == 1


def test_a_session_is_single_use() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    session_id = post(emulator).json()["sessionId"]
    assert emulator.use_session(session_id) is not None
    assert emulator.use_session(session_id) is None
    assert emulator.use_session("never-issued") is None


def test_a_session_expires_after_session_ttl() -> None:
    clock = FakeClock()
    emulator = WinkEmulator(CLIENT, SECRET, clock=clock, session_ttl=60)
    early, late = (post(emulator).json()["sessionId"] for _ in range(2))
    clock.advance(59)
    assert emulator.use_session(early) is not None
    clock.advance(1)
    assert emulator.use_session(late) is None


def test_each_session_id_is_distinct() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    ids = {post(emulator).json()["sessionId"] for _ in range(20)}
    assert len(ids) == 20


def test_faults_apply_to_session_calls_and_reset_zeroes_the_count() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    emulator.fail_next(1, 503, headers={"Retry-After": "3"})
    emulator.malformed_next(1, b"{}")
    failed, malformed, ok = (post(emulator) for _ in range(3))
    assert (failed.status_code, failed.headers["retry-after"]) == (503, "3")
    assert (malformed.status_code, malformed.content) == (200, b"{}")
    assert ok.status_code == 200
    assert emulator.session_calls == 3
    emulator.reset()
    assert emulator.session_calls == 0


@pytest.mark.parametrize("ttl", [0, -1, "60", True, float("nan")])
def test_session_ttl_must_be_positive_seconds(ttl: Any) -> None:
    with pytest.raises(ValueError, match="session_ttl"):
        WinkEmulator(CLIENT, SECRET, session_ttl=ttl)


def test_over_real_http_as_a_curl_line_would() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    with emulator.serve() as url:
        response = httpx.post(url + SESSION_PATH, json=URLS, auth=(CLIENT, SECRET))
        refused = httpx.post(url + SESSION_PATH, json=URLS, auth=(CLIENT, "nope"))
    assert response.status_code == 200 and "sessionId" in response.json()
    assert (refused.status_code, refused.content) == (401, b"")
    assert emulator.session_calls == 2


def test_the_secret_never_shows_in_its_answers_or_repr() -> None:
    emulator = WinkEmulator(CLIENT, SECRET)
    answers = [post(emulator), post(emulator, authorization=basic(secret="x")), post(emulator, [])]
    for answer in answers:
        assert SECRET.encode() not in answer.content
    assert SECRET not in repr(emulator)

"""anonymous_on_invalid: a page anyone may see stays up for a stale or broken token.

On an optional path a refused (401) or malformed (400) token is anonymous, the refusal kept in
``scope["wink.error"]`` / ``environ["wink.error"]``; an outage (503) or a bad gateway (502) is still
answered, never turned into a signed-out page; protected paths are unaffected. Every test runs
through both adapters, against the shipped emulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from wink_middleware import WinkMiddleware, WinkWSGIMiddleware, get_profile
from wink_middleware.testing import WinkEmulator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# "/" and "/news*" are pages anyone may see; "/account" is protected.
PAGES = {
    "optional_paths": ["/", "/news*"],
    "cookie_name": "session",
    "anonymous_on_invalid": True,
}


def describe(user: Any, error: Any, authenticated: bool | None) -> bytes:
    """What the test apps answer: who the request is, and the refusal turned into anonymous."""
    return json.dumps(
        {
            "user": None if user is None else user.wink_tag,
            "error": None if error is None else [type(error).__name__, error.status_code],
            "authenticated": authenticated,
        }
    ).encode()


async def asgi_page(scope: Scope, receive: Receive, send: Send) -> None:
    body = describe(get_profile(scope), scope.get("wink.error"), scope["user"].is_authenticated)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def wsgi_page(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [describe(get_profile(environ), environ.get("wink.error"), None)]


Site = Callable[..., httpx.Client]


@pytest.fixture(params=["asgi", "wsgi"])
def site(request: pytest.FixtureRequest, wink_emulator: WinkEmulator) -> Iterator[Site]:
    """Builds the page app behind one adapter, with request options next to an emulator verifier."""
    clients: list[httpx.Client] = []

    def build(**options: Any) -> httpx.Client:
        client: httpx.Client
        if request.param == "asgi":
            verifier = wink_emulator.async_verifier(retries=0)
            client = TestClient(WinkMiddleware(asgi_page, verifier=verifier, **options))
        else:
            middleware = WinkWSGIMiddleware(
                wsgi_page, verifier=wink_emulator.verifier(retries=0), **options
            )
            client = httpx.Client(
                transport=httpx.WSGITransport(app=middleware), base_url="http://testserver"
            )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def revoked(wink: WinkEmulator) -> dict[str, str]:
    token = wink.issue_token()
    wink.revoke(token)
    return {"Authorization": f"Bearer {token}"}


def expired(wink: WinkEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {wink.issue_token(ttl=-60)}"}


def for_another_client(wink: WinkEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {wink.issue_token(azp='someone-else')}"}


def malformed(wink: WinkEmulator) -> dict[str, str]:
    return {"Authorization": "Bearer not.a token!"}


def oversize(wink: WinkEmulator) -> dict[str, str]:
    return {"Authorization": "Bearer " + "a" * 5000}


def stale_cookie(wink: WinkEmulator) -> dict[str, str]:
    token = wink.issue_token()
    wink.revoke(token)
    return {"Cookie": f"session={token}"}


def malformed_cookie(wink: WinkEmulator) -> dict[str, str]:
    return {"Cookie": "session=not<a>token"}


REFUSALS = [
    pytest.param(revoked, "TokenRejected", 401, id="revoked"),
    pytest.param(expired, "TokenRejected", 401, id="expired"),
    pytest.param(for_another_client, "TokenRejected", 401, id="another-client"),
    pytest.param(malformed, "InvalidRequest", 400, id="malformed"),
    pytest.param(oversize, "InvalidRequest", 400, id="oversize"),
    pytest.param(stale_cookie, "TokenRejected", 401, id="stale-cookie"),
    pytest.param(malformed_cookie, "InvalidRequest", 400, id="malformed-cookie"),
]


@pytest.mark.parametrize(("credentials", "error", "status"), REFUSALS)
def test_a_refused_or_malformed_token_on_an_optional_path_is_anonymous_with_the_reason(
    site: Site,
    wink_emulator: WinkEmulator,
    credentials: Callable[[WinkEmulator], dict[str, str]],
    error: str,
    status: int,
) -> None:
    client = site(**PAGES)
    for path in ("/", "/news/today"):
        response = client.get(path, headers=credentials(wink_emulator))
        assert response.status_code == 200
        assert response.json()["user"] is None
        assert response.json()["error"] == [error, status]
        assert response.json()["authenticated"] in (False, None)


@pytest.mark.parametrize(("credentials", "error", "status"), REFUSALS)
def test_a_protected_path_still_refuses_the_token_with_anonymous_on_invalid(
    site: Site,
    wink_emulator: WinkEmulator,
    credentials: Callable[[WinkEmulator], dict[str, str]],
    error: str,
    status: int,
) -> None:
    response = site(**PAGES).get("/account", headers=credentials(wink_emulator))
    assert response.status_code == status
    assert response.headers["www-authenticate"].startswith('Bearer realm="wink"')


def wink_down(wink: WinkEmulator) -> None:
    wink.fail_next(status=503, headers={"Retry-After": "7"})


def wink_erroring(wink: WinkEmulator) -> None:
    wink.fail_next(status=500)


def wink_dropping(wink: WinkEmulator) -> None:
    wink.drop_next()


def wink_garbled(wink: WinkEmulator) -> None:
    wink.malformed_next()


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        pytest.param(wink_down, 503, id="wink-503"),
        pytest.param(wink_erroring, 503, id="wink-500"),
        pytest.param(wink_dropping, 503, id="connection-dropped"),
        pytest.param(wink_garbled, 502, id="bad-gateway"),
    ],
)
def test_an_outage_or_a_bad_gateway_on_an_optional_path_is_never_anonymous(
    site: Site, wink_emulator: WinkEmulator, fault: Callable[[WinkEmulator], None], status: int
) -> None:
    client = site(**PAGES)
    token = wink_emulator.issue_token()
    fault(wink_emulator)
    response = client.get("/", headers={"Cookie": f"session={token}"})
    # A signed-in user must not silently see the signed-out page because Wink is unreachable.
    assert response.status_code == status
    assert response.json()["error"] == {503: "temporarily_unavailable", 502: "bad_gateway"}[status]
    # Once Wink answers again, the same cookie signs the user in.
    assert client.get("/", headers={"Cookie": f"session={token}"}).json()["user"] == ";ada.lovelace"


def test_a_valid_token_on_an_optional_path_signs_in_and_sets_no_error(
    site: Site, wink_emulator: WinkEmulator
) -> None:
    client = site(**PAGES)
    response = client.get("/", headers={"Cookie": f"session={wink_emulator.issue_token()}"})
    assert response.json() == {
        "user": ";ada.lovelace",
        "error": None,
        "authenticated": response.json()["authenticated"],
    }
    assert response.json()["authenticated"] in (True, None)


def test_no_token_on_an_optional_path_is_anonymous_without_an_error(site: Site) -> None:
    response = site(**PAGES).get("/")
    assert response.status_code == 200
    assert response.json()["user"] is None
    assert response.json()["error"] is None


def test_without_anonymous_on_invalid_a_refused_token_on_an_optional_path_is_refused(
    site: Site, wink_emulator: WinkEmulator
) -> None:
    client = site(optional_paths=["/"], cookie_name="session")
    assert client.get("/", headers=revoked(wink_emulator)).status_code == 401
    assert client.get("/", headers=malformed(wink_emulator)).status_code == 400


def test_a_stale_cookie_is_asked_about_once_then_remembered_as_refused(
    site: Site, wink_emulator: WinkEmulator
) -> None:
    client = site(**PAGES)
    headers = stale_cookie(wink_emulator)
    for _ in range(3):
        assert client.get("/", headers=headers).json()["error"] == ["TokenRejected", 401]
    # Each page view of a user with a stale cookie is not a call to Wink (negative_ttl).
    assert wink_emulator.calls == 1

"""One verifier, several apps: ``verifier=`` with each app's own request options.

Two apps behind one verifier share its cache and its single Wink client, while each keeps its own
path policy and token sources. A verifier option (one that changes how tokens are verified or
cached) next to ``verifier=`` is a ``WinkConfigError`` naming it, and so is ``config=``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from wink_middleware import (
    AsyncWinkVerifier,
    WinkConfig,
    WinkConfigError,
    WinkMiddleware,
    WinkWSGIMiddleware,
    get_profile,
)
from wink_middleware._config import WinkOptions
from wink_middleware.testing import WinkEmulator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# The API: everything protected but /health. The site: pages anyone may see, the token in a cookie.
API: WinkOptions = {"public_paths": ["/health"]}
SITE: WinkOptions = {
    "optional_paths": ["/", "/news*"],
    "cookie_name": "session",
    "anonymous_on_invalid": True,
}


def answer(profile: Any) -> bytes:
    return json.dumps({"user": None if profile is None else profile.wink_tag}).encode()


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": answer(get_profile(scope))})


def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [answer(get_profile(environ))]


def wsgi_client(app: WinkWSGIMiddleware) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")


def test_two_asgi_apps_share_one_verifier_and_its_cache(wink_emulator: WinkEmulator) -> None:
    verifier = wink_emulator.async_verifier()
    api = WinkMiddleware(asgi_app, verifier=verifier, **API)
    site = WinkMiddleware(asgi_app, verifier=verifier, **SITE)
    assert api.verifier is site.verifier is verifier
    token = wink_emulator.issue_token()
    with TestClient(api) as api_client, TestClient(site) as site_client:
        assert (
            api_client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        assert (wink_emulator.calls, verifier.stats.misses, verifier.stats.hits) == (1, 1, 0)
        page = site_client.get("/", headers={"Cookie": f"session={token}"})
        assert page.json() == {"user": ";ada.lovelace"}
        # The site's request was answered from the API's verification: no second call to Wink.
        assert (wink_emulator.calls, verifier.stats.misses, verifier.stats.hits) == (1, 1, 1)


def test_two_wsgi_apps_share_one_verifier_and_its_cache(wink_emulator: WinkEmulator) -> None:
    verifier = wink_emulator.verifier()
    api = WinkWSGIMiddleware(wsgi_app, verifier=verifier, **API)
    site = WinkWSGIMiddleware(wsgi_app, verifier=verifier, **SITE)
    assert api.verifier is site.verifier is verifier
    token = wink_emulator.issue_token()
    with wsgi_client(api) as api_client, wsgi_client(site) as site_client:
        assert (
            api_client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        assert (wink_emulator.calls, verifier.stats.misses, verifier.stats.hits) == (1, 1, 0)
        page = site_client.get("/", headers={"Cookie": f"session={token}"})
        assert page.json() == {"user": ";ada.lovelace"}
        assert (wink_emulator.calls, verifier.stats.misses, verifier.stats.hits) == (1, 1, 1)


def test_one_apps_lifespan_shutdown_leaves_the_shared_verifier_working_for_the_other(
    wink_emulator: WinkEmulator,
) -> None:
    with wink_emulator.serve() as base_url:
        # A verifier that owns its HTTP client: the first app's shutdown closes that client.
        verifier = AsyncWinkVerifier(wink_emulator.wink_config(base_url=base_url))
        api = WinkMiddleware(asgi_app, verifier=verifier, **API)
        site = WinkMiddleware(asgi_app, verifier=verifier, **SITE)
        with TestClient(site) as site_client:
            with TestClient(api) as api_client:
                token = wink_emulator.issue_token()
                assert api_client.get(
                    "/me", headers={"Authorization": f"Bearer {token}"}
                ).is_success
            fresh = {"Cookie": f"session={wink_emulator.issue_token()}"}
            assert site_client.get("/", headers=fresh).json() == {"user": ";ada.lovelace"}
        assert wink_emulator.calls == 2


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_each_app_keeps_its_own_path_policy_and_token_sources(
    wink_emulator: WinkEmulator, adapter: str
) -> None:
    if adapter == "asgi":
        verifier = wink_emulator.async_verifier()
        api: httpx.Client = TestClient(WinkMiddleware(asgi_app, verifier=verifier, **API))
        site: httpx.Client = TestClient(WinkMiddleware(asgi_app, verifier=verifier, **SITE))
    else:
        sync_verifier = wink_emulator.verifier()
        api = wsgi_client(WinkWSGIMiddleware(wsgi_app, verifier=sync_verifier, **API))
        site = wsgi_client(WinkWSGIMiddleware(wsgi_app, verifier=sync_verifier, **SITE))
    stale = wink_emulator.issue_token()
    wink_emulator.revoke(stale)
    cookie = {"Cookie": f"session={wink_emulator.issue_token()}"}
    with api, site:
        # /health is public on the API only; / is a page anyone may see on the site only.
        assert api.get("/health").status_code == 200
        assert site.get("/health").status_code == 401
        assert api.get("/").status_code == 401
        assert site.get("/").json() == {"user": None}
        # The cookie is a token source on the site only; a stale token is anonymous there only.
        assert site.get("/", headers=cookie).json() == {"user": ";ada.lovelace"}
        assert api.get("/me", headers=cookie).status_code == 401
        stale_header = {"Authorization": f"Bearer {stale}"}
        assert site.get("/news", headers=stale_header).json() == {"user": None}
        assert api.get("/me", headers=stale_header).status_code == 401


def test_request_options_next_to_verifier_leave_the_verifier_config_alone(
    wink_emulator: WinkEmulator,
) -> None:
    verifier = wink_emulator.async_verifier(cache_ttl=60, realm="shared")
    middleware = WinkMiddleware(
        asgi_app, verifier=verifier, realm="site", optional_paths=["/", "/news*"]
    )
    assert middleware.config.realm == "site"
    assert middleware.config.optional_paths == ("/", "/news*")
    assert middleware.config.cache_ttl == 60
    assert verifier.config.realm == "shared"
    assert verifier.config.optional_paths == ()
    assert WinkMiddleware(asgi_app, verifier=verifier).config is verifier.config


VERIFIER_OPTIONS = [
    {"timeout": 1.0},
    {"cache_size": 5},
    {"cache_ttl": 10},
    {"retries": 0},
    {"client_id": "another"},
    {"redis_url": "redis://127.0.0.1:6379/0"},
]


@pytest.mark.parametrize("option", VERIFIER_OPTIONS, ids=lambda o: next(iter(o)))
def test_a_verifier_option_next_to_verifier_is_a_config_error_naming_it(
    wink_emulator: WinkEmulator, option: dict[str, Any]
) -> None:
    (name,) = option
    with pytest.raises(WinkConfigError, match=f"^{name}: a verifier option"):
        WinkMiddleware(asgi_app, verifier=wink_emulator.async_verifier(), **option)
    with pytest.raises(WinkConfigError, match=f"^{name}: a verifier option"):
        WinkWSGIMiddleware(wsgi_app, verifier=wink_emulator.verifier(), **option)


def test_every_verifier_option_beside_verifier_is_named_together(
    wink_emulator: WinkEmulator,
) -> None:
    with pytest.raises(WinkConfigError, match=r"^cache_size, timeout: a verifier option"):
        WinkMiddleware(
            asgi_app,
            verifier=wink_emulator.async_verifier(),
            timeout=1.0,
            cache_size=5,
            public_paths=["/health"],
        )


def test_config_next_to_verifier_is_a_config_error(wink_emulator: WinkEmulator) -> None:
    config: WinkConfig = wink_emulator.wink_config()
    with pytest.raises(WinkConfigError, match=r"verifier= or config=, not both"):
        WinkMiddleware(asgi_app, verifier=wink_emulator.async_verifier(), config=config)
    with pytest.raises(WinkConfigError, match=r"verifier= or config=, not both"):
        WinkWSGIMiddleware(wsgi_app, verifier=wink_emulator.verifier(), config=config)


def test_the_other_adapters_verifier_twin_is_a_config_error(wink_emulator: WinkEmulator) -> None:
    with pytest.raises(WinkConfigError, match="must be a WinkVerifier"):
        WinkWSGIMiddleware(wsgi_app, verifier=wink_emulator.async_verifier())  # type: ignore[arg-type]
    with pytest.raises(WinkConfigError, match="must be a AsyncWinkVerifier"):
        WinkMiddleware(asgi_app, verifier=wink_emulator.verifier())  # type: ignore[arg-type]

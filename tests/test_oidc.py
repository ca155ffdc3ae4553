"""The emulator's sign-in (OpenID Connect, Keycloak-shaped): the protocol a Wink front end speaks,
driven in-process on the emulator's ASGI app. Tokens are checked with joserfc against the JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from tests.helpers import NOW, FakeClock
from wink_middleware import WinkProfile
from wink_middleware.testing import WinkEmulator
from wink_middleware.testing.pytest_plugin import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8765"
REALM = f"{BASE}/realms/wink"
OIDC = f"{REALM}/protocol/openid-connect"
APP = "http://localhost:3000"
RETURN_URL = f"{APP}/signed-in"
CANCEL_URL = f"{APP}/cancelled"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Pkce:
    verifier: str
    challenge: str


def pkce() -> Pkce:
    verifier = secrets.token_urlsafe(72)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 3))
    return decoded


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * 3))
    return decoded


class Browser:
    """A browser's side of the flow: one cookie jar, the emulator in-process."""

    def __init__(self, emulator: WinkEmulator) -> None:
        self.emulator = emulator
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url=BASE)

    async def session(self, return_url: str = RETURN_URL, cancel_url: str = CANCEL_URL) -> str:
        # What the app's back end does (the session route), with the emulator's credentials.
        answer = await self.http.post(
            "/wink/v1/session",
            auth=(CLIENT_ID, CLIENT_SECRET),
            json={"returnUrl": return_url, "cancelUrl": cancel_url},
        )
        assert answer.status_code == 200
        session_id: str = answer.json()["sessionId"]
        return session_id

    async def auth(self, **params: str | None) -> httpx.Response:
        query = {k: v for k, v in params.items() if v is not None}
        return await self.http.get(f"{OIDC}/auth", params=query)

    def login_params(
        self, session_id: str | None, codes: Pkce, **overrides: str | None
    ) -> dict[str, str | None]:
        params: dict[str, str | None] = {
            "client_id": CLIENT_ID,
            "redirect_uri": RETURN_URL,
            "state": "state-1",
            "response_mode": "fragment",
            "response_type": "code",
            "scope": "openid",
            "nonce": "nonce-1",
            "code_challenge": codes.challenge,
            "code_challenge_method": "S256",
            "sessionId": session_id,
        }
        params.update(overrides)
        return params

    async def sign_in_page(self, session_id: str, codes: Pkce, **overrides: str | None) -> str:
        page = await self.auth(**self.login_params(session_id, codes, **overrides))
        assert page.status_code == 200, page.text
        return page.text

    async def choose(
        self, page: str, user: str | None = None, *, cancel: bool = False
    ) -> httpx.Response:
        login = re.search(r"name='login' value='([^']+)'", page)
        assert login is not None
        action = re.search(r"action='([^']+)'", page)
        assert action is not None
        form = {"login": login[1]}
        if cancel:
            form["cancel"] = ""
        else:
            users = re.findall(r"name='user' value='([^']+)'", page)
            form["user"] = users[0] if user is None else user
        return await self.http.post(action[1], data=form)

    async def code(self, **overrides: str | None) -> tuple[str, Pkce]:
        """A code for a new session: through the sign-in page, or straight back with the SSO cookie."""
        codes = pkce()
        answer = await self.auth(**self.login_params(await self.session(), codes, **overrides))
        if answer.status_code == 200:
            answer = await self.choose(answer.text)
        assert answer.status_code == 302
        return callback(answer)["code"], codes

    async def exchange(self, the_code: str, codes: Pkce, **overrides: str) -> httpx.Response:
        form = {
            "code": the_code,
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "redirect_uri": RETURN_URL,
            "code_verifier": codes.verifier,
        }
        form.update(overrides)
        return await self.http.post(f"{OIDC}/token", data=form, headers={"origin": APP})

    async def tokens(self) -> dict[str, Any]:
        code, codes = await self.code()
        answer = await self.exchange(code, codes)
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    async def refresh(self, refresh_token: str, client_id: str = CLIENT_ID) -> httpx.Response:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
        }
        return await self.http.post(f"{OIDC}/token", data=form, headers={"origin": APP})

    async def verify(self, access_token: str) -> httpx.Response:
        body = {"ClientId": CLIENT_ID, "AccessToken": access_token, "ClientSecret": CLIENT_SECRET}
        return await self.http.post("/api/ConfidentialClient/verify-client", json=body)

    async def keys(self) -> KeySet:
        return KeySet.import_key_set((await self.http.get(f"{OIDC}/certs")).json())


def callback(answer: httpx.Response, part: str = "fragment") -> dict[str, str]:
    url = urlsplit(answer.headers["location"])
    values = parse_qs(getattr(url, part), keep_blank_values=True)
    return {k: v[0] for k, v in values.items()}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def browser(clock: FakeClock) -> AsyncIterator[Browser]:
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET, clock=clock)
    b = Browser(emulator)
    async with b.http:
        yield b


# -- discovery and keys -------------------------------------------------------------------------


async def test_discovery_names_every_endpoint_from_the_request(browser: Browser) -> None:
    answer = await browser.http.get(f"{REALM}/.well-known/openid-configuration")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["issuer"] == REALM
    assert doc["authorization_endpoint"] == f"{OIDC}/auth"
    assert doc["token_endpoint"] == f"{OIDC}/token"
    assert doc["end_session_endpoint"] == f"{OIDC}/logout"
    assert doc["jwks_uri"] == f"{OIDC}/certs"
    assert doc["check_session_iframe"] == f"{OIDC}/login-status-iframe.html"
    assert doc["code_challenge_methods_supported"] == ["S256"]


async def test_a_mounted_emulator_names_itself_with_its_root_path(clock: FakeClock) -> None:
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET, clock=clock)
    transport = httpx.ASGITransport(app=emulator, root_path="/wink")
    async with httpx.AsyncClient(transport=transport, base_url="https://demo.example:8443") as http:
        doc = (await http.get("/wink/realms/wink/.well-known/openid-configuration")).json()
    assert doc["issuer"] == "https://demo.example:8443/wink/realms/wink"
    assert (
        doc["token_endpoint"]
        == "https://demo.example:8443/wink/realms/wink/protocol/openid-connect/token"
    )


async def test_another_realm_and_an_unknown_endpoint_are_404(browser: Browser) -> None:
    other = await browser.http.get(f"{BASE}/realms/master/.well-known/openid-configuration")
    assert other.status_code == 404
    assert other.json() == {"error": "Realm does not exist"}
    assert (await browser.http.get(f"{OIDC}/userinfo-nope")).status_code == 404


async def test_a_wrong_method_is_405_with_allow(browser: Browser) -> None:
    answer = await browser.http.post(f"{OIDC}/certs")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET"


async def test_the_jwks_publishes_rs256_signing_keys_with_kid(browser: Browser) -> None:
    jwks = (await browser.http.get(f"{OIDC}/certs")).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"]


async def test_the_jwks_verifies_the_access_and_the_id_token(browser: Browser) -> None:
    tokens = await browser.tokens()
    keys = await browser.keys()
    access = jwt.decode(tokens["access_token"], keys, algorithms=["RS256"])
    id_token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"])
    assert access.header["kid"] == id_token.header["kid"] == keys.keys[0].kid
    assert access.claims["typ"] == "Bearer"
    assert id_token.claims["typ"] == "ID"


async def test_the_refresh_token_is_a_jwt_no_published_key_verifies(browser: Browser) -> None:
    tokens = await browser.tokens()
    refresh = tokens["refresh_token"]
    assert claims_of(refresh)["typ"] == "Refresh"
    assert header_of(refresh)["kid"] not in {k.kid for k in (await browser.keys()).keys}
    forged_header = (
        base64.urlsafe_b64encode(
            json.dumps({"alg": "RS256", "kid": (await browser.keys()).keys[0].kid}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    relabelled = ".".join([forged_header, *refresh.split(".")[1:]])
    with pytest.raises((BadSignatureError, ValueError)):
        jwt.decode(relabelled, await browser.keys(), algorithms=["RS256"])


async def test_rotate_signing_key_signs_with_a_new_kid_and_keeps_the_old_one(
    browser: Browser,
) -> None:
    before = await browser.tokens()
    new_kid = browser.emulator.rotate_signing_key()
    after = await browser.tokens()
    keys = await browser.keys()
    assert keys.keys[0].kid == new_kid
    assert len(keys.keys) == 2
    assert header_of(after["access_token"])["kid"] == new_kid
    assert header_of(before["access_token"])["kid"] != new_kid
    jwt.decode(before["access_token"], keys, algorithms=["RS256"])
    jwt.decode(after["access_token"], keys, algorithms=["RS256"])


# -- claims ---------------------------------------------------------------------------------------


async def test_the_access_token_carries_winks_claims_and_tokenized_pii(
    browser: Browser, clock: FakeClock
) -> None:
    tokens = await browser.tokens()
    claims = claims_of(tokens["access_token"])
    (user,) = browser.emulator.users
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + 300
    assert claims["iss"] == REALM
    assert claims["aud"] == "account"
    assert claims["sub"] == user.wink_token
    assert claims["typ"] == "Bearer"
    assert claims["azp"] == CLIENT_ID
    assert claims["sid"] == claims["session_state"] == tokens["session_state"]
    assert claims["scope"] == tokens["scope"] == "openid email profile"
    assert claims["preferred_username"] == ";ada.lovelace"
    assert claims["jti"]
    for name in ("given_name", "family_name", "email", "phone_number"):
        assert claims[name].startswith("tok_sandbox_")
    assert "Ada" not in json.dumps(claims)


async def test_the_id_token_has_the_client_as_audience_and_the_nonce(browser: Browser) -> None:
    code, codes = await browser.code(nonce="n-0S6_WzA2Mj")
    tokens = (await browser.exchange(code, codes)).json()
    claims = claims_of(tokens["id_token"])
    assert claims["typ"] == "ID"
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["sub"] == claims_of(tokens["access_token"])["sub"]


async def test_the_token_answer_has_keycloaks_fields(browser: Browser) -> None:
    code, codes = await browser.code()
    answer = await browser.exchange(code, codes)
    tokens = answer.json()
    assert set(tokens) == {
        "access_token",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "id_token",
        "token_type",
        "session_state",
        "scope",
        "not-before-policy",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 300
    assert tokens["refresh_expires_in"] == 1800
    assert answer.headers["cache-control"] == "no-store"


async def test_ttls_and_realm_are_settings(clock: FakeClock) -> None:
    emulator = WinkEmulator(
        CLIENT_ID, CLIENT_SECRET, clock=clock, realm="acme", access_ttl=5, refresh_ttl=20
    )
    browser = Browser(emulator)
    async with browser.http:
        doc = (
            await browser.http.get(f"{BASE}/realms/acme/.well-known/openid-configuration")
        ).json()
        assert doc["issuer"] == f"{BASE}/realms/acme"
        assert (await browser.http.get(f"{OIDC}/certs")).status_code == 404


async def test_verify_client_answers_a_signed_in_users_profile_until_exp(
    browser: Browser, clock: FakeClock
) -> None:
    grace = browser.emulator.add_user(first_name="Grace", last_name="Hopper")
    codes = pkce()
    page = await browser.sign_in_page(await browser.session(), codes)
    assert "Sign in as Ada Lovelace" in page
    assert "Sign in as Grace Hopper" in page
    answer = await browser.choose(page, user=grace.wink_token)
    tokens = (await browser.exchange(callback(answer)["code"], codes)).json()
    verified = await browser.verify(tokens["access_token"])
    assert verified.status_code == 200
    profile = WinkProfile.from_wink(verified.json())
    assert profile.wink_token == grace.wink_token
    assert profile.first_name == "Grace"
    assert profile.wink_tag == ";grace.hopper"
    assert verified.json()["expiryTime"] == "2027-01-15T08:05:00Z"  # exp = iat + 300
    clock.advance(300)
    assert (await browser.verify(tokens["access_token"])).status_code == 401


def test_add_user_fills_the_sample_profile_and_makes_unique_tags() -> None:
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    (ada,) = emulator.users
    assert (ada.display_name, ada.wink_tag) == ("Ada Lovelace", ";ada.lovelace")
    first = emulator.add_user(first_name="Grace", last_name="Hopper")
    second = emulator.add_user(first_name="Grace", last_name="Hopper")
    assert first.wink_tag == ";grace.hopper"
    assert second.wink_tag == ";grace.hopper.2"
    assert first.wink_token != second.wink_token
    assert first.email == "ada.lovelace@example.com"  # from the sample profile
    with pytest.raises(ValueError, match="winkToken"):
        emulator.add_user(wink_token=first.wink_token)
    with pytest.raises(ValueError, match="winkTag"):
        emulator.add_user(wink_tag=";grace.hopper")
    with pytest.raises(TypeError, match="unknown profile field"):
        emulator.add_user(nickname="Amazing Grace")
    assert emulator.users == (ada, first, second)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"access_ttl": 0}, "access_ttl"),
        ({"refresh_ttl": -1}, "refresh_ttl"),
        ({"access_ttl": True}, "access_ttl"),
        ({"realm": ""}, "realm"),
        ({"realm": "a/b"}, "realm"),
        ({"web_origins": "http://localhost:3000"}, "list of origins"),
        ({"web_origins": ["http://localhost:3000/path"]}, "web_origins"),
        ({"web_origins": ["ftp://example.com"]}, "web_origins"),
    ],
)
def test_bad_sign_in_settings_are_value_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WinkEmulator(CLIENT_ID, CLIENT_SECRET, **options)


# -- auth: the sign-in page and its errors --------------------------------------------------------


async def test_sign_in_redirects_with_code_state_session_state_and_iss(browser: Browser) -> None:
    codes = pkce()
    page = await browser.sign_in_page(await browser.session(), codes)
    assert "<button type='submit' name='cancel'>Cancel</button>" in page
    answer = await browser.choose(page)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(f"{RETURN_URL}#")
    values = callback(answer)
    assert set(values) == {"state", "session_state", "iss", "code"}
    assert values["state"] == "state-1"
    assert values["iss"] == REALM
    cookies = answer.headers.get_list("set-cookie")
    assert any(c.startswith("WINK_EMULATOR_SSO=") and "HttpOnly" in c for c in cookies)
    status = next(c for c in cookies if c.startswith("WINK_EMULATOR_SESSION="))
    assert "HttpOnly" not in status
    assert hashlib.sha256(values["session_state"].encode()).hexdigest() in status


async def test_response_mode_query_puts_the_answer_in_the_query(browser: Browser) -> None:
    codes = pkce()
    page = await browser.sign_in_page(
        await browser.session(), codes, response_mode="query", redirect_uri=f"{RETURN_URL}?tab=1"
    )
    answer = await browser.choose(page)
    values = callback(answer, "query")
    assert values["tab"] == "1"
    assert values["state"] == "state-1"
    tokens = await browser.exchange(values["code"], codes, redirect_uri=f"{RETURN_URL}?tab=1")
    assert tokens.status_code == 200


async def test_cancel_lands_on_the_sessions_cancel_url_with_access_denied(browser: Browser) -> None:
    page = await browser.sign_in_page(await browser.session(), pkce())
    answer = await browser.choose(page, cancel=True)
    assert answer.status_code == 302
    assert answer.headers["location"] == f"{CANCEL_URL}?error=access_denied&state=state-1"
    again = await browser.choose(page)
    assert again.status_code == 400  # the page's login is over


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        (
            {"code_challenge_method": None},
            "invalid_request",
            "Missing parameter: code_challenge_method",
        ),
        (
            {"code_challenge_method": "plain"},
            "invalid_request",
            "Invalid parameter: code_challenge_method",
        ),
        ({"code_challenge": None}, "invalid_request", "Missing parameter: code_challenge"),
        ({"code_challenge": "short"}, "invalid_request", "Invalid parameter: code_challenge"),
        ({"response_type": "token"}, "unsupported_response_type", None),
        ({"response_type": None}, "unsupported_response_type", None),
    ],
)
async def test_auth_errors_after_a_valid_redirect_uri_go_back_to_it(
    browser: Browser, overrides: dict[str, str | None], error: str, description: str | None
) -> None:
    session_id = await browser.session()
    answer = await browser.auth(**browser.login_params(session_id, pkce(), **overrides))
    assert answer.status_code == 302
    values = callback(answer)
    assert values["error"] == error
    assert values["state"] == "state-1"
    if description is not None:
        assert values["error_description"] == description
    # A refused request consumed nothing: the session still signs in.
    assert (await browser.auth(**browser.login_params(session_id, pkce()))).status_code == 200


async def test_an_unknown_response_mode_is_answered_in_the_query(browser: Browser) -> None:
    answer = await browser.auth(
        **browser.login_params(await browser.session(), pkce(), response_mode="form_post")
    )
    assert answer.status_code == 302
    assert callback(answer, "query")["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("overrides", "title"),
    [
        ({"client_id": "someone-else"}, "Client not found"),
        ({"client_id": None}, "Client not found"),
        ({"redirect_uri": "https://evil.example/steal"}, "Invalid parameter: redirect_uri"),
        ({"redirect_uri": "http://evil.example/steal"}, "Invalid parameter: redirect_uri"),
        ({"redirect_uri": "/relative"}, "Invalid parameter: redirect_uri"),
        ({"redirect_uri": None}, "Invalid parameter: redirect_uri"),
    ],
)
async def test_auth_errors_before_a_trusted_redirect_uri_are_an_error_page(
    browser: Browser, overrides: dict[str, str | None], title: str
) -> None:
    answer = await browser.auth(
        **browser.login_params(await browser.session(), pkce(), **overrides)
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert title in answer.text


async def test_a_redirect_uri_outside_the_sessions_origin_is_refused(clock: FakeClock) -> None:
    emulator = WinkEmulator(
        CLIENT_ID, CLIENT_SECRET, clock=clock, web_origins=["https://app.example"]
    )
    browser = Browser(emulator)
    async with browser.http:
        mine = await browser.session("https://shop.example/back", "https://shop.example/cancel")
        await browser.session("https://other.example/back", "https://other.example/cancel")
        # another live session's origin is not this session's
        stolen = await browser.auth(
            **browser.login_params(mine, pkce(), redirect_uri="https://other.example/back")
        )
        assert stolen.status_code == 400
        assert "Invalid parameter: redirect_uri" in stolen.text
        # a loopback origin is not accepted once web_origins is set
        local = await browser.auth(**browser.login_params(mine, pkce(), redirect_uri=RETURN_URL))
        assert local.status_code == 400
        # web_origins, and the session's own origin, are
        assert (
            await browser.auth(
                **browser.login_params(mine, pkce(), redirect_uri="https://shop.example/x")
            )
        ).status_code == 200
        other = await browser.session("https://shop.example/back", "https://shop.example/cancel")
        assert (
            await browser.auth(
                **browser.login_params(other, pkce(), redirect_uri="https://app.example/cb")
            )
        ).status_code == 200


@pytest.mark.parametrize("case", ["missing", "unknown", "used", "expired"])
async def test_a_missing_unknown_used_or_expired_session_is_an_error_page(
    browser: Browser, clock: FakeClock, case: str
) -> None:
    session_id: str | None = await browser.session()
    if case == "missing":
        session_id = None
    elif case == "unknown":
        session_id = "no-such-session"
    elif case == "used":
        await browser.sign_in_page(str(session_id), pkce())
    else:
        clock.advance(600)
    answer = await browser.auth(**browser.login_params(session_id, pkce()))
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert (
        "Missing session" if case == "missing" else "already used or has expired"
    ) in answer.text


async def test_a_parameter_sent_twice_is_refused(browser: Browser) -> None:
    params = browser.login_params(await browser.session(), pkce())
    query = httpx.QueryParams({k: v for k, v in params.items() if v is not None}).add(
        "state", "two"
    )
    answer = await browser.http.get(f"{OIDC}/auth", params=query)
    assert answer.status_code == 400
    assert "sent twice" in answer.text


async def test_the_sign_in_page_escapes_what_it_shows(browser: Browser) -> None:
    browser.emulator.add_user(first_name="<script>alert(1)</script>", last_name="X")
    page = await browser.sign_in_page(await browser.session(), pkce())
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_an_unknown_user_or_a_stale_page_is_refused(
    browser: Browser, clock: FakeClock
) -> None:
    page = await browser.sign_in_page(await browser.session(), pkce())
    assert (await browser.choose(page, user="nobody")).status_code == 400
    stale = await browser.sign_in_page(await browser.session(), pkce())
    clock.advance(1801)
    assert (await browser.choose(stale)).status_code == 400


# -- prompt=none and the SSO cookie ---------------------------------------------------------------


async def test_prompt_none_without_sso_is_login_required_and_needs_no_session(
    browser: Browser,
) -> None:
    answer = await browser.auth(**browser.login_params(None, pkce(), prompt="none"))
    assert answer.status_code == 302
    values = callback(answer)
    assert values["error"] == "login_required"
    assert values["state"] == "state-1"


async def test_prompt_none_never_consumes_the_session(browser: Browser) -> None:
    session_id = await browser.session()
    await browser.auth(**browser.login_params(session_id, pkce(), prompt="none"))
    assert (await browser.auth(**browser.login_params(session_id, pkce()))).status_code == 200


async def test_prompt_none_to_an_unaccepted_origin_is_an_error_page(browser: Browser) -> None:
    answer = await browser.auth(
        **browser.login_params(None, pkce(), prompt="none", redirect_uri="https://evil.example/")
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_with_the_sso_cookie_prompt_none_and_a_new_login_get_a_code_without_the_page(
    browser: Browser,
) -> None:
    first = await browser.tokens()
    codes = pkce()
    silent = await browser.auth(**browser.login_params(None, codes, prompt="none"))
    assert silent.status_code == 302
    values = callback(silent)
    assert values["session_state"] == first["session_state"]
    assert (await browser.exchange(values["code"], codes)).status_code == 200
    # An interactive login with the cookie consumes its session and skips the page.
    session_id = await browser.session()
    again = await browser.auth(**browser.login_params(session_id, codes))
    assert again.status_code == 302
    assert "code" in callback(again)
    assert (await browser.auth(**browser.login_params(session_id, codes))).status_code == 400


# -- token ----------------------------------------------------------------------------------------


async def test_a_code_is_single_use(browser: Browser) -> None:
    code, codes = await browser.code()
    assert (await browser.exchange(code, codes)).status_code == 200
    reused = await browser.exchange(code, codes)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_a_code_older_than_60_seconds_is_refused(browser: Browser, clock: FakeClock) -> None:
    code, codes = await browser.code()
    clock.advance(60)
    late = await browser.exchange(code, codes)
    assert late.status_code == 400
    assert late.json() == {"error": "invalid_grant", "error_description": "Code not valid"}


async def test_a_code_under_60_seconds_is_accepted(browser: Browser, clock: FakeClock) -> None:
    code, codes = await browser.code()
    clock.advance(59)
    assert (await browser.exchange(code, codes)).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_verifier": "x" * 64}, "PKCE verification failed: Code mismatch"),
        ({"code_verifier": ""}, "PKCE code verifier not specified"),
        ({"redirect_uri": f"{APP}/elsewhere"}, "Incorrect redirect_uri"),
        ({"code": "forged"}, "Code not valid"),
    ],
)
async def test_token_refuses_a_wrong_verifier_redirect_uri_or_code(
    browser: Browser, overrides: dict[str, str], description: str
) -> None:
    code, codes = await browser.code()
    answer = await browser.exchange(code, codes, **overrides)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": description}
    # a code is spent by a failed attempt too, as Keycloak does
    spent = (await browser.exchange(code, codes)).status_code
    assert spent == (200 if "code" in overrides else 400)


@pytest.mark.parametrize("client_id", ["someone-else", ""])
async def test_token_refuses_an_unknown_client_as_invalid_client(
    browser: Browser, client_id: str
) -> None:
    code, codes = await browser.code()
    answer = await browser.exchange(code, codes, client_id=client_id)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("grant", "error"), [("password", "unsupported_grant_type"), ("", "invalid_request")]
)
async def test_token_refuses_other_grants(browser: Browser, grant: str, error: str) -> None:
    answer = await browser.http.post(
        f"{OIDC}/token", data={"grant_type": grant, "client_id": CLIENT_ID}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == error


async def test_token_answers_cors_with_credentials_for_accepted_origins_only(
    browser: Browser,
) -> None:
    code, codes = await browser.code()
    answer = await browser.exchange(code, codes)
    assert answer.headers["access-control-allow-origin"] == APP
    assert answer.headers["access-control-allow-credentials"] == "true"
    preflight = await browser.http.options(
        f"{OIDC}/token", headers={"origin": APP, "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    evil = await browser.http.options(
        f"{OIDC}/token",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers
    refused = await browser.http.post(
        f"{OIDC}/token", data={"client_id": CLIENT_ID}, headers={"origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_refresh_gives_new_tokens_verify_client_accepts(
    browser: Browser, clock: FakeClock
) -> None:
    tokens = await browser.tokens()
    clock.advance(290)
    answer = await browser.refresh(tokens["refresh_token"])
    assert answer.status_code == 200
    fresh = answer.json()
    assert fresh["access_token"] != tokens["access_token"]
    assert claims_of(fresh["access_token"])["exp"] == int(NOW) + 290 + 300
    assert fresh["session_state"] == tokens["session_state"]
    clock.advance(20)
    assert (await browser.verify(tokens["access_token"])).status_code == 401  # expired
    assert (await browser.verify(fresh["access_token"])).status_code == 200


async def test_refresh_refuses_forged_expired_and_foreign_refresh_tokens(
    browser: Browser, clock: FakeClock
) -> None:
    tokens = await browser.tokens()
    head, body, _ = tokens["refresh_token"].split(".")
    forged = f"{head}.{body}.{base64.urlsafe_b64encode(b'x' * 64).rstrip(b'=').decode()}"
    assert (await browser.refresh(forged)).json()["error_description"] == "Invalid refresh token"
    assert (await browser.refresh(tokens["access_token"])).json()["error"] == "invalid_grant"
    assert (await browser.refresh(tokens["refresh_token"], "other")).status_code == 401
    clock.advance(1800)
    expired = await browser.refresh(tokens["refresh_token"])
    assert expired.status_code == 400
    assert expired.json() == {"error": "invalid_grant", "error_description": "Token is not active"}


# -- logout ---------------------------------------------------------------------------------------


async def test_logout_ends_the_session_for_verify_client_refresh_and_the_cookie(
    browser: Browser,
) -> None:
    tokens = await browser.tokens()
    refreshed = (await browser.refresh(tokens["refresh_token"])).json()
    assert (await browser.verify(tokens["access_token"])).status_code == 200
    answer = await browser.http.get(
        f"{OIDC}/logout",
        params={
            "post_logout_redirect_uri": f"{APP}/bye",
            "id_token_hint": tokens["id_token"],
            "client_id": CLIENT_ID,
        },
    )
    assert answer.status_code == 302
    assert answer.headers["location"] == f"{APP}/bye"
    assert any("WINK_EMULATOR_SSO=;" in c for c in answer.headers.get_list("set-cookie"))
    assert (await browser.verify(tokens["access_token"])).status_code == 401
    assert (await browser.verify(refreshed["access_token"])).status_code == 401
    after = await browser.refresh(tokens["refresh_token"])
    assert after.status_code == 400
    assert after.json() == {"error": "invalid_grant", "error_description": "Session not active"}
    # the SSO cookie is gone: the silent check says login_required again
    silent = await browser.auth(**browser.login_params(None, pkce(), prompt="none"))
    assert callback(silent)["error"] == "login_required"


async def test_logout_by_post_form_with_only_the_cookie(browser: Browser) -> None:
    tokens = await browser.tokens()
    answer = await browser.http.post(f"{OIDC}/logout", data={"client_id": CLIENT_ID})
    assert answer.status_code == 200
    assert "You are signed out" in answer.text
    assert (await browser.verify(tokens["access_token"])).status_code == 401


async def test_a_code_issued_before_logout_is_refused(browser: Browser) -> None:
    code, codes = await browser.code()
    await browser.http.get(f"{OIDC}/logout")
    answer = await browser.exchange(code, codes)
    assert answer.json() == {"error": "invalid_grant", "error_description": "Session not active"}


@pytest.mark.parametrize(
    ("params", "title"),
    [
        (
            {"post_logout_redirect_uri": "https://evil.example/", "client_id": CLIENT_ID},
            "Invalid redirect uri",
        ),
        ({"post_logout_redirect_uri": f"{APP}/bye"}, "Missing parameters: id_token_hint"),
        ({"client_id": "someone-else"}, "Invalid parameter: client_id"),
        ({"id_token_hint": "not.a.token"}, "Invalid parameter: id_token_hint"),
    ],
)
async def test_logout_errors_are_error_pages_and_end_nothing(
    browser: Browser, params: dict[str, str], title: str
) -> None:
    tokens = await browser.tokens()
    answer = await browser.http.get(f"{OIDC}/logout", params=params)
    assert answer.status_code == 400
    assert title in answer.text
    assert (await browser.verify(tokens["access_token"])).status_code == 200


async def test_logout_with_an_access_token_as_hint_is_refused(browser: Browser) -> None:
    tokens = await browser.tokens()
    answer = await browser.http.get(
        f"{OIDC}/logout", params={"id_token_hint": tokens["access_token"]}
    )
    assert answer.status_code == 400


async def test_logout_keeps_state_on_the_way_back(browser: Browser) -> None:
    tokens = await browser.tokens()
    answer = await browser.http.get(
        f"{OIDC}/logout",
        params={
            "post_logout_redirect_uri": f"{APP}/bye",
            "id_token_hint": tokens["id_token"],
            "state": "s1",
        },
    )
    assert answer.headers["location"] == f"{APP}/bye?state=s1"


# -- the browser pages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page", ["3p-cookies/step1.html", "3p-cookies/step2.html", "login-status-iframe.html"]
)
async def test_the_pages_keycloak_js_frames_are_html(browser: Browser, page: str) -> None:
    answer = await browser.http.get(f"{OIDC}/{page}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "postMessage" in answer.text


@pytest.mark.parametrize(
    ("client_id", "origin", "status"),
    [
        (CLIENT_ID, APP, 204),
        ("other", APP, 403),
        (CLIENT_ID, "https://evil.example", 403),
        (CLIENT_ID, "", 403),
    ],
)
async def test_the_status_iframes_init_checks_client_and_origin(
    browser: Browser, client_id: str, origin: str, status: int
) -> None:
    answer = await browser.http.get(
        f"{OIDC}/login-status-iframe.html/init", params={"client_id": client_id, "origin": origin}
    )
    assert answer.status_code == status


# -- the core install ------------------------------------------------------------------------------


def test_without_cryptography_tokens_still_verify_and_the_sign_in_names_the_extra() -> None:
    script = """
import sys, json, asyncio
sys.modules["cryptography"] = None
import httpx
from wink_middleware.testing import WinkEmulator
emulator = WinkEmulator("id", "secret")
verifier = emulator.verifier()
print(verifier.verify(emulator.issue_token()).first_name)
async def main():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url="http://127.0.0.1") as http:
        answer = await http.get("/realms/wink/protocol/openid-connect/certs")
        print(answer.status_code, answer.json()["error"])
asyncio.run(main())
try:
    emulator.rotate_signing_key()
except RuntimeError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "Ada"
    assert lines[1].startswith("501 ")
    assert "pip install 'wink-middleware[demo]'" in lines[1]
    assert "pip install 'wink-middleware[demo]'" in lines[2]


async def test_end_sso_session_ends_it_as_logout_does(browser: Browser) -> None:
    tokens = await browser.tokens()
    browser.emulator.end_sso_session(tokens["session_state"])
    browser.emulator.end_sso_session("no-such-session")  # nothing to end: no error
    assert (await browser.verify(tokens["access_token"])).status_code == 401
    assert (await browser.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RS256", "kid": "not-a-published-kid"},
        {"alg": "HS256"},
        {"alg": "none"},
    ],
)
async def test_logout_refuses_a_hint_no_published_key_signed(
    browser: Browser, header: dict[str, str]
) -> None:
    tokens = await browser.tokens()
    _, body, signature = tokens["id_token"].split(".")
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    answer = await browser.http.get(
        f"{OIDC}/logout", params={"id_token_hint": f"{head}.{body}.{signature}"}
    )
    assert answer.status_code == 400
    assert (await browser.verify(tokens["access_token"])).status_code == 200


async def test_a_post_logout_redirect_uri_that_is_no_url_is_refused(browser: Browser) -> None:
    answer = await browser.http.get(
        f"{OIDC}/logout",
        params={"post_logout_redirect_uri": "javascript:alert(1)", "client_id": CLIENT_ID},
    )
    assert answer.status_code == 400
    assert "Invalid redirect uri" in answer.text


async def test_logout_refuses_a_hint_whose_signature_was_altered(browser: Browser) -> None:
    tokens = await browser.tokens()
    head, body, _ = tokens["id_token"].split(".")
    forged = base64.urlsafe_b64encode(b"\0" * 256).rstrip(b"=").decode()
    answer = await browser.http.get(
        f"{OIDC}/logout", params={"id_token_hint": f"{head}.{body}.{forged}"}
    )
    assert answer.status_code == 400


@pytest.mark.parametrize("token", ["a.b", "W10.W10.eA", "é.é.é", ""])
async def test_refresh_refuses_what_is_not_a_refresh_jwt(browser: Browser, token: str) -> None:
    answer = await browser.refresh(token)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Invalid refresh token"}


def test_rotating_before_any_token_publishes_two_keys() -> None:
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    kid = emulator.rotate_signing_key()
    assert kid
    assert emulator.rotate_signing_key() != kid


async def test_token_and_logout_refuse_a_parameter_sent_twice(browser: Browser) -> None:
    twice = await browser.http.post(
        f"{OIDC}/token",
        content=b"client_id=a&client_id=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400
    assert twice.json()["error"] == "invalid_request"
    page = await browser.http.get(f"{OIDC}/logout?client_id=a&client_id=b")
    assert page.status_code == 400
    assert "sent twice" in page.text


async def test_errors_without_state_carry_none(browser: Browser) -> None:
    answer = await browser.auth(
        **browser.login_params(await browser.session(), pkce(), state=None, prompt="none")
    )
    assert callback(answer) == {"error": "login_required", "error_description": ""}
    page = await browser.sign_in_page(await browser.session(), pkce(), state=None)
    cancelled = await browser.choose(page, cancel=True)
    assert cancelled.headers["location"] == f"{CANCEL_URL}?error=access_denied"


async def test_stale_logins_and_codes_are_dropped_as_new_ones_come(
    browser: Browser, clock: FakeClock
) -> None:
    stale_page = await browser.sign_in_page(await browser.session(), pkce())
    clock.advance(1801)
    await browser.sign_in_page(await browser.session(), pkce())  # sweeps the stale login
    assert (await browser.choose(stale_page)).status_code == 400
    stale_code, codes = await browser.code()
    clock.advance(61)
    await browser.code()  # sweeps the stale code
    assert (await browser.exchange(stale_code, codes)).status_code == 400


async def test_a_session_whose_return_url_is_no_url_still_signs_in_to_an_accepted_origin(
    browser: Browser,
) -> None:
    # The session API keeps whatever URL the back end sent; its origin then counts for nothing.
    odd = await browser.session(return_url="not a url", cancel_url="neither")
    await browser.session()  # another live session, with a real origin
    page = await browser.auth(**browser.login_params(odd, pkce()))
    assert page.status_code == 200
    evil = await browser.auth(
        **browser.login_params(
            await browser.session(), pkce(), redirect_uri="https://evil.example/"
        )
    )
    assert evil.status_code == 400

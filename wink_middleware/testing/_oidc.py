"""The emulator's OpenID Connect half: Wink's sign-in, Keycloak-shaped, under ``/realms/{realm}/``.

The endpoints keycloak-js 26 (and so Wink's SDK, which wraps it) uses: discovery, the JWKS, ``auth``
(PKCE S256 required, Wink's ``sessionId`` consumed, a sign-in page standing in for Wink's biometric
step), ``token`` (code and refresh grants, CORS with credentials), ``logout``, the third-party cookie
check pages and the login-status iframe. Every decision is a plain function of an :class:`OidcRequest`
returning an :class:`~wink_middleware.testing.Answer`; the emulator's ASGI app only moves the bytes.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from wink_middleware._session_urls import Origin, UrlError, origin_of
from wink_middleware.testing._keys import SigningKeys, b64url, b64url_decode

if TYPE_CHECKING:
    from wink_middleware.testing._emulator import Answer

__all__ = [
    "CODE_TTL",
    "LOGIN_TTL",
    "SSO_COOKIE",
    "STATUS_COOKIE",
    "OidcProvider",
    "OidcRequest",
    "User",
]

#: How long an authorization code lives, in seconds (Keycloak's default).
CODE_TTL = 60.0
#: How long a sign-in page waits for its user's choice, in seconds (Keycloak's login timeout).
LOGIN_TTL = 1800.0
#: The HttpOnly cookie naming the browser's SSO session.
SSO_COOKIE = "WINK_EMULATOR_SSO"
#: The script-readable cookie the login-status iframe reads: a hash of the session id.
STATUS_COOKIE = "WINK_EMULATOR_SESSION"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})
_SCOPE = "openid email profile"
_MAX_FIELDS = 64
_JSON = ("content-type", "application/json")
_HTML = ("content-type", "text/html; charset=utf-8")
_NO_STORE = (("cache-control", "no-store"), ("pragma", "no-cache"))


@dataclass(frozen=True, slots=True)
class OidcRequest:
    """One request to the OIDC half: ``path`` is what follows ``/realms/``; ``base`` is
    ``scheme://host[:port]`` plus the app's ``root_path``, as the browser reached it."""

    method: str
    path: str
    query: str
    body: bytes
    base: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class User:
    """A user of the sign-in page: Wink's clear profile and the tokenized values in its tokens."""

    profile: Mapping[str, Any]
    tokenized: Mapping[str, str]

    @property
    def display_name(self) -> str:
        """``first last``, or the winkTag."""
        name = f"{self.profile.get('firstName') or ''} {self.profile.get('lastName') or ''}"
        return name.strip() or str(self.profile.get("winkTag") or "")


@dataclass(frozen=True, slots=True)
class _Login:
    """An interactive ``auth`` waiting on the sign-in page (its Wink session already consumed)."""

    redirect_uri: str
    state: str
    nonce: str | None
    challenge: str
    response_mode: str
    cancel_url: str
    expires: float


@dataclass(frozen=True, slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    sid: str
    created: float


@dataclass(slots=True)
class _Sso:
    user: str  # winkToken
    auth_time: int
    active: bool = True
    access_tokens: list[str] = field(default_factory=list)


class _Params:
    """Query or form parameters; a parameter sent twice is refused (as Keycloak does)."""

    def __init__(self, text: str) -> None:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
        self.values: dict[str, str] = {}
        self.duplicated: str | None = None
        for name, value in pairs:
            if name in self.values and self.duplicated is None:
                self.duplicated = name
            self.values[name] = value

    def get(self, name: str) -> str:
        return self.values.get(name, "")


class OidcProvider:
    """Wink's IdP for one emulator: users, signing keys, SSO sessions, codes, pages.

    The emulator hands it callbacks for what it owns: the clock, its Wink sessions and Verify Client's
    registry of tokens.
    """

    def __init__(
        self,
        *,
        client_id: str,
        realm: str,
        access_ttl: float,
        refresh_ttl: float,
        web_origins: frozenset[Origin] | None,
        now: Callable[[], float],
        use_session: Callable[[str], tuple[str, str] | None],
        session_origin: Callable[[str], Origin | None],
        live_origins: Callable[[], set[Origin]],
        admit: Callable[[str, Mapping[str, Any], int], None],
        revoke: Callable[[str], None],
    ) -> None:
        self.client_id = client_id
        self.realm = realm
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.web_origins = web_origins
        self._now = now
        self._use_session = use_session
        self._session_origin = session_origin
        self._live_origins = live_origins
        self._admit = admit
        self._revoke = revoke
        self.keys = SigningKeys()
        self._lock = threading.Lock()
        self.users: dict[str, User] = {}
        self._logins: dict[str, _Login] = {}
        self._codes: dict[str, _Code] = {}
        self._sso: dict[str, _Sso] = {}  # by sid (= session_state)
        self._cookies: dict[str, str] = {}  # SSO cookie value -> sid

    # -- users ----------------------------------------------------------------------------------

    def add(self, profile: Mapping[str, Any]) -> User:
        """Add a user (Wink's camelCase profile, ``winkToken`` and ``winkTag`` unique)."""

        def tokenized() -> str:
            return f"tok_sandbox_{secrets.token_hex(16)}"

        user = User(
            profile=dict(profile),
            tokenized={
                "given_name": tokenized(),
                "family_name": tokenized(),
                "email": tokenized(),
                "phone_number": tokenized(),
            },
        )
        with self._lock:
            if profile["winkToken"] in self.users:
                raise ValueError(f"a user with winkToken {profile['winkToken']!r} exists already")
            if any(u.profile["winkTag"] == profile["winkTag"] for u in self.users.values()):
                raise ValueError(f"a user with winkTag {profile['winkTag']!r} exists already")
            self.users[profile["winkToken"]] = user
        return user

    def all_users(self) -> list[User]:
        """Every user, in the order they were added."""
        with self._lock:
            return list(self.users.values())

    def tags(self) -> set[str]:
        """The winkTags in use."""
        with self._lock:
            return {str(u.profile["winkTag"]) for u in self.users.values()}

    # -- routing --------------------------------------------------------------------------------

    def answer(self, request: OidcRequest) -> Answer:
        """The answer to one request under ``/realms/``."""
        from wink_middleware.testing._emulator import Answer

        realm, _, rest = request.path.partition("/")
        if realm != self.realm:
            return _json(404, {"error": "Realm does not exist"})
        handler = _ROUTES.get(rest)
        if handler is None:
            return _json(404, {"error": "Unable to find matching target resource method"})
        methods, method = handler
        if request.method == "OPTIONS" and rest == "protocol/openid-connect/token":
            return self._preflight(request)
        if request.method not in methods:
            return Answer(405, headers=(("allow", ", ".join(methods)),))
        answer: Answer = method(self, request)
        return answer

    def issuer(self, request: OidcRequest) -> str:
        """``<base>/realms/<realm>``, from the request."""
        return f"{request.base}/realms/{self.realm}"

    # -- origins --------------------------------------------------------------------------------

    def _configured(self, origin: Origin) -> bool:
        if self.web_origins is None:
            return origin[1] in _LOOPBACK
        return origin in self.web_origins

    def accepted(self, origin: Origin) -> bool:
        """An origin ``redirect_uri``, ``post_logout_redirect_uri``, CORS and ``init`` accept."""
        return self._configured(origin) or origin in self._live_origins()

    def _origin_header(self, request: OidcRequest) -> Origin | None:
        value = request.headers.get("origin", "")
        try:
            return origin_of(value, "Origin")
        except UrlError:
            return None

    def _cors(self, request: OidcRequest) -> tuple[tuple[str, str], ...]:
        origin = self._origin_header(request)
        if origin is None or not self.accepted(origin):
            return ()
        return (
            ("access-control-allow-origin", request.headers["origin"]),
            ("access-control-allow-credentials", "true"),
            ("vary", "Origin"),
        )

    # -- discovery and keys ---------------------------------------------------------------------

    def _discovery(self, request: OidcRequest) -> Answer:
        issuer = self.issuer(request)
        endpoints = f"{issuer}/protocol/openid-connect"
        return _json(
            200,
            {
                "issuer": issuer,
                "authorization_endpoint": f"{endpoints}/auth",
                "token_endpoint": f"{endpoints}/token",
                "end_session_endpoint": f"{endpoints}/logout",
                "jwks_uri": f"{endpoints}/certs",
                "check_session_iframe": f"{endpoints}/login-status-iframe.html",
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "response_types_supported": ["code"],
                "response_modes_supported": ["query", "fragment"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": _SCOPE.split(),
                "claims_supported": [
                    "aud",
                    "sub",
                    "iss",
                    "azp",
                    "preferred_username",
                    "given_name",
                    "family_name",
                    "email",
                    "phone_number",
                ],
                "frontchannel_logout_session_supported": True,
            },
        )

    def _certs(self, request: OidcRequest) -> Answer:
        return _json(200, self.keys.jwks())

    # -- auth -----------------------------------------------------------------------------------

    def _auth(self, request: OidcRequest) -> Answer:
        params = _Params(request.query)
        if params.duplicated is not None:
            return _page(
                400, "Invalid request", f"The parameter {params.duplicated} was sent twice."
            )
        if params.get("client_id") != self.client_id:
            return _page(400, "Client not found", "This application is not registered with Wink.")
        redirect_uri = params.get("redirect_uri")
        session_id = params.get("sessionId")
        try:
            redirect_origin = origin_of(redirect_uri, "redirect_uri")
        except UrlError:
            return _page(400, "Invalid parameter: redirect_uri", "The return address is not valid.")
        interactive = params.get("prompt") != "none"
        session_origin = self._session_origin(session_id) if session_id else None
        if not (self.accepted(redirect_origin) or redirect_origin == session_origin):
            return _page(
                400, "Invalid parameter: redirect_uri", "The return address is not allowed."
            )
        state = params.get("state")
        mode = params.get("response_mode") or "fragment"
        if mode not in ("fragment", "query"):
            return _redirect(
                redirect_uri,
                "query",
                {
                    "error": "invalid_request",
                    "error_description": "Invalid parameter: response_mode",
                },
                state,
            )

        def fail(error: str, description: str) -> Answer:
            return _redirect(
                redirect_uri, mode, {"error": error, "error_description": description}, state
            )

        if params.get("response_type") != "code":
            return fail(
                "unsupported_response_type", "Client is not allowed to use this response_type"
            )
        method, challenge = params.get("code_challenge_method"), params.get("code_challenge")
        if not method:
            return fail("invalid_request", "Missing parameter: code_challenge_method")
        if method != "S256":
            return fail("invalid_request", "Invalid parameter: code_challenge_method")
        if not challenge:
            return fail("invalid_request", "Missing parameter: code_challenge")
        if not _is_challenge(challenge):
            return fail("invalid_request", "Invalid parameter: code_challenge")
        nonce = params.get("nonce") or None
        sid = self._sso_of(request)
        if not interactive:
            # keycloak-js asks on every page load; a silent check never consumes a session.
            if sid is None:
                return fail("login_required", "")
            return self._code_redirect(redirect_uri, mode, state, challenge, nonce, sid, request)
        if not session_id:
            return _page(400, "Missing session", "This sign-in did not come with a Wink session.")
        if session_origin is not None and not (
            redirect_origin == session_origin or self._configured(redirect_origin)
        ):
            return _page(
                400, "Invalid parameter: redirect_uri", "The return address is not the session's."
            )
        session = self._use_session(session_id)
        if session is None:
            return _page(
                400,
                "Session expired",
                "This Wink session was already used or has expired. Start the sign-in again.",
            )
        if sid is not None:
            return self._code_redirect(redirect_uri, mode, state, challenge, nonce, sid, request)
        login_id = secrets.token_urlsafe(24)
        with self._lock:
            now = self._now()
            for old in [k for k, v in self._logins.items() if v.expires <= now]:
                del self._logins[old]
            self._logins[login_id] = _Login(
                redirect_uri, state, nonce, challenge, mode, session[1], now + LOGIN_TTL
            )
        users = self.all_users()
        action = f"{self.issuer(request)}/login-actions/authenticate"
        return _signin_page(action, login_id, users, redirect_origin)

    def _authenticate(self, request: OidcRequest) -> Answer:
        form = _Params(request.body.decode("latin-1"))
        with self._lock:
            login = self._logins.pop(form.get("login"), None)
        if login is None or self._now() >= login.expires:
            return _page(
                400,
                "Sign-in timed out",
                "This sign-in page has expired or was already used. Start the sign-in again.",
            )
        if "cancel" in form.values:
            return _found(_with_params(login.cancel_url, "query", _cancel_params(login.state)))
        with self._lock:
            user = self.users.get(form.get("user"))
        if user is None:
            return _page(400, "Unknown user", "No such user on this emulator.")
        sid = str(uuid.uuid4())
        cookie = secrets.token_urlsafe(32)
        with self._lock:
            self._sso[sid] = _Sso(user=str(user.profile["winkToken"]), auth_time=int(self._now()))
            self._cookies[cookie] = sid
        answer = self._code_redirect(
            login.redirect_uri,
            login.response_mode,
            login.state,
            login.challenge,
            login.nonce,
            sid,
            request,
        )
        path = f"{_path_of(request.base)}/realms/{self.realm}/"
        return _with_headers(
            answer,
            (
                ("set-cookie", f"{SSO_COOKIE}={cookie}; Path={path}; HttpOnly; SameSite=Lax"),
                ("set-cookie", f"{STATUS_COOKIE}={_status_hash(sid)}; Path={path}; SameSite=Lax"),
            ),
        )

    def _sso_of(self, request: OidcRequest) -> str | None:
        cookie = _cookies(request.headers.get("cookie", "")).get(SSO_COOKIE)
        with self._lock:
            sid = self._cookies.get(cookie or "")
            sso = self._sso.get(sid or "")
            return sid if sso is not None and sso.active else None

    def _code_redirect(
        self,
        redirect_uri: str,
        mode: str,
        state: str,
        challenge: str,
        nonce: str | None,
        sid: str,
        request: OidcRequest,
    ) -> Answer:
        code = secrets.token_urlsafe(32)
        with self._lock:
            now = self._now()
            for old in [k for k, v in self._codes.items() if v.created + CODE_TTL <= now]:
                del self._codes[old]
            self._codes[code] = _Code(self.client_id, redirect_uri, challenge, nonce, sid, now)
        values = {"state": state, "session_state": sid, "iss": self.issuer(request), "code": code}
        return _found(_with_params(redirect_uri, mode, values))

    # -- token ----------------------------------------------------------------------------------

    def _preflight(self, request: OidcRequest) -> Answer:
        from wink_middleware.testing._emulator import Answer

        cors = self._cors(request)
        if not cors:
            return Answer(403)
        return Answer(
            200,
            headers=(
                *cors,
                ("access-control-allow-methods", "POST, OPTIONS"),
                ("access-control-allow-headers", "Origin, Accept, Content-Type, Authorization"),
                ("access-control-max-age", "3600"),
            ),
        )

    def _token(self, request: OidcRequest) -> Answer:
        cors = self._cors(request)
        form = _Params(request.body.decode("latin-1"))

        def error(status: int, code: str, description: str) -> Answer:
            return _json(status, {"error": code, "error_description": description}, cors)

        if form.duplicated is not None:
            return error(400, "invalid_request", f"duplicated parameter {form.duplicated}")
        if not form.get("client_id"):
            return error(401, "invalid_client", "Missing parameter: client_id")
        if form.get("client_id") != self.client_id:
            return error(401, "invalid_client", "Invalid client or Invalid client credentials")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(request, form, error, cors)
        if grant == "refresh_token":
            return self._refresh_grant(request, form, error, cors)
        if not grant:
            return error(400, "invalid_request", "Missing form parameter: grant_type")
        return error(400, "unsupported_grant_type", f"Unsupported grant_type {grant}")

    def _code_grant(
        self,
        request: OidcRequest,
        form: _Params,
        error: Callable[[int, str, str], Answer],
        cors: tuple[tuple[str, str], ...],
    ) -> Answer:
        with self._lock:
            code = self._codes.pop(form.get("code"), None)  # single use, even when refused below
        if code is None or self._now() >= code.created + CODE_TTL:
            return error(400, "invalid_grant", "Code not valid")
        if form.get("redirect_uri") != code.redirect_uri:
            return error(400, "invalid_grant", "Incorrect redirect_uri")
        verifier = form.get("code_verifier")
        if not verifier:
            return error(400, "invalid_grant", "PKCE code verifier not specified")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != code.challenge:
            return error(400, "invalid_grant", "PKCE verification failed: Code mismatch")
        return self._tokens(request, code.sid, code.nonce, error, cors)

    def _refresh_grant(
        self,
        request: OidcRequest,
        form: _Params,
        error: Callable[[int, str, str], Answer],
        cors: tuple[tuple[str, str], ...],
    ) -> Answer:
        claims = self.keys.verify_refresh(form.get("refresh_token"))
        if claims is None or claims.get("typ") != "Refresh":
            return error(400, "invalid_grant", "Invalid refresh token")
        if not isinstance(claims.get("exp"), int) or self._now() >= claims["exp"]:
            return error(400, "invalid_grant", "Token is not active")
        return self._tokens(request, str(claims.get("sid")), None, error, cors)

    def _tokens(
        self,
        request: OidcRequest,
        sid: str,
        nonce: str | None,
        error: Callable[[int, str, str], Answer],
        cors: tuple[tuple[str, str], ...],
    ) -> Answer:
        with self._lock:
            sso = self._sso.get(sid)
            user = None if sso is None else self.users.get(sso.user)
        if sso is None or not sso.active or user is None:
            return error(400, "invalid_grant", "Session not active")
        now = int(self._now())
        issuer = self.issuer(request)
        profile = user.profile
        common = {
            "iat": now,
            "iss": issuer,
            "sub": profile["winkToken"],
            "azp": self.client_id,
            "session_state": sid,
            "sid": sid,
        }
        exp = now + int(self.access_ttl)
        access = self.keys.sign(
            {
                "exp": exp,
                **common,
                "jti": str(uuid.uuid4()),
                "aud": "account",
                "typ": "Bearer",
                "scope": _SCOPE,
                "preferred_username": profile["winkTag"],
                **user.tokenized,
            }
        )
        id_claims: dict[str, Any] = {
            "exp": exp,
            **common,
            "auth_time": sso.auth_time,
            "jti": str(uuid.uuid4()),
            "aud": self.client_id,
            "typ": "ID",
            "preferred_username": profile["winkTag"],
            **user.tokenized,
        }
        if nonce is not None:
            id_claims["nonce"] = nonce
        id_token = self.keys.sign(id_claims)
        refresh = self.keys.sign_refresh(
            {
                "exp": now + int(self.refresh_ttl),
                **common,
                "jti": str(uuid.uuid4()),
                "aud": issuer,
                "typ": "Refresh",
                "scope": _SCOPE,
            }
        )
        with self._lock:
            sso.access_tokens.append(access)
        self._admit(access, profile, exp)
        return _json(
            200,
            {
                "access_token": access,
                "expires_in": int(self.access_ttl),
                "refresh_expires_in": int(self.refresh_ttl),
                "refresh_token": refresh,
                "token_type": "Bearer",
                "id_token": id_token,
                "not-before-policy": 0,
                "session_state": sid,
                "scope": _SCOPE,
            },
            (*cors, *_NO_STORE),
        )

    # -- logout ---------------------------------------------------------------------------------

    def _logout(self, request: OidcRequest) -> Answer:
        from wink_middleware.testing._emulator import Answer

        text = request.query if request.method == "GET" else request.body.decode("latin-1")
        params = _Params(text)
        if params.duplicated is not None:
            return _page(
                400, "Invalid request", f"The parameter {params.duplicated} was sent twice."
            )
        client_id, hint = params.get("client_id"), params.get("id_token_hint")
        target = params.get("post_logout_redirect_uri")
        if client_id and client_id != self.client_id:
            return _page(400, "Invalid parameter: client_id", "This application is not registered.")
        hinted_sid: str | None = None
        if hint:
            claims = self.keys.verify(hint)
            if claims is None or claims.get("typ") != "ID" or claims.get("aud") != self.client_id:
                return _page(400, "Invalid parameter: id_token_hint", "The ID token is not valid.")
            hinted_sid = str(claims.get("sid"))
        if target:
            if not (client_id or hint):
                return _page(
                    400, "Missing parameters: id_token_hint", "Say which client signs out."
                )
            try:
                accepted = self.accepted(origin_of(target, "post_logout_redirect_uri"))
            except UrlError:
                accepted = False
            if not accepted:
                return _page(
                    400, "Invalid redirect uri", "The address after sign-out is not allowed."
                )
        for sid in {hinted_sid, self._sso_of(request)} - {None}:
            self.end(str(sid))
        path = f"{_path_of(request.base)}/realms/{self.realm}/"
        expired = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        cookies = (
            ("set-cookie", f"{SSO_COOKIE}=; Path={path}; {expired}; HttpOnly; SameSite=Lax"),
            ("set-cookie", f"{STATUS_COOKIE}=; Path={path}; {expired}; SameSite=Lax"),
        )
        if target:
            state = params.get("state")
            location = _with_params(target, "query", {"state": state}) if state else target
            return Answer(302, headers=(("location", location), *cookies))
        signed_out = _page(200, "You are signed out", "You can close this page.")
        return _with_headers(signed_out, cookies)

    def end(self, sid: str) -> None:
        """End an SSO session: its refresh tokens and codes stop working, Verify Client refuses its
        access tokens."""
        with self._lock:
            sso = self._sso.get(sid)
            if sso is None:
                return
            sso.active = False
            tokens, sso.access_tokens = sso.access_tokens, []
            for cookie in [c for c, s in self._cookies.items() if s == sid]:
                del self._cookies[cookie]
        for token in tokens:
            self._revoke(token)

    # -- browser pages --------------------------------------------------------------------------

    def _step1(self, request: OidcRequest) -> Answer:
        return _static(_STEP1)

    def _step2(self, request: OidcRequest) -> Answer:
        return _static(_STEP2)

    def _status_iframe(self, request: OidcRequest) -> Answer:
        return _static(_STATUS_IFRAME.replace("{{cookie}}", STATUS_COOKIE))

    def _status_init(self, request: OidcRequest) -> Answer:
        from wink_middleware.testing._emulator import Answer

        params = _Params(request.query)
        try:
            origin_ok = self.accepted(origin_of(params.get("origin"), "origin"))
        except UrlError:
            origin_ok = False
        if params.get("client_id") != self.client_id or not origin_ok:
            return Answer(403)
        return Answer(204)


_ROUTES: dict[str, tuple[tuple[str, ...], Callable[[OidcProvider, OidcRequest], Answer]]] = {
    ".well-known/openid-configuration": (("GET",), OidcProvider._discovery),
    "protocol/openid-connect/certs": (("GET",), OidcProvider._certs),
    "protocol/openid-connect/auth": (("GET",), OidcProvider._auth),
    "login-actions/authenticate": (("POST",), OidcProvider._authenticate),
    "protocol/openid-connect/token": (("POST",), OidcProvider._token),
    "protocol/openid-connect/logout": (("GET", "POST"), OidcProvider._logout),
    "protocol/openid-connect/3p-cookies/step1.html": (("GET",), OidcProvider._step1),
    "protocol/openid-connect/3p-cookies/step2.html": (("GET",), OidcProvider._step2),
    "protocol/openid-connect/login-status-iframe.html": (("GET",), OidcProvider._status_iframe),
    "protocol/openid-connect/login-status-iframe.html/init": (("GET",), OidcProvider._status_init),
}


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _is_challenge(value: str) -> bool:
    # S256: the base64url of a SHA-256 digest, 43 characters.
    return len(value) == 43 and set(value) <= _B64URL and len(b64url_decode(value)) == 32


def _status_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _cancel_params(state: str) -> dict[str, str]:
    values = {"error": "access_denied"}
    if state:
        values["state"] = state
    return values


def _with_params(url: str, mode: str, values: Mapping[str, str]) -> str:
    encoded = urlencode(values)
    if mode == "fragment":
        return f"{url.split('#', 1)[0]}#{encoded}"
    base, hash_mark, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{encoded}"
    return f"{joined}{hash_mark}{fragment}"


def _redirect(url: str, mode: str, values: Mapping[str, str], state: str) -> Answer:
    values = dict(values)
    if state:
        values["state"] = state
    return _found(_with_params(url, mode, values))


def _found(location: str) -> Answer:
    from wink_middleware.testing._emulator import Answer

    return Answer(302, headers=(("location", location), *_NO_STORE))


def _json(
    status: int, body: Mapping[str, Any], headers: tuple[tuple[str, str], ...] = ()
) -> Answer:
    from wink_middleware.testing._emulator import Answer

    return Answer(status, json.dumps(body).encode(), (_JSON, *headers))


def _with_headers(answer: Answer, headers: tuple[tuple[str, str], ...]) -> Answer:
    from wink_middleware.testing._emulator import Answer

    return Answer(answer.status, answer.body, (*answer.headers, *headers))


def _path_of(base: str) -> str:
    # "http://host:port/root" -> "/root"
    rest = base.split("://", 1)[-1]
    slash = rest.find("/")
    return "" if slash < 0 else rest[slash:]


def _cookies(header: str) -> dict[str, str]:
    jar: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq and name not in jar:
            jar[name] = value
    return jar


def _static(body: str) -> Answer:
    from wink_middleware.testing._emulator import Answer

    return Answer(200, body.encode(), (_HTML, ("cache-control", "no-store")))


_STYLE = """
  :root { color-scheme: light; --ink: #14213d; --muted: #5c6784; --line: #e3e7f0; --brand: #4f46e5; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; padding: 24px;
         font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
         background: linear-gradient(160deg, #eef1ff 0%, #f8fafc 60%); }
  main { width: 100%; max-width: 420px; background: #fff; border: 1px solid var(--line);
         border-radius: 16px; padding: 32px; box-shadow: 0 12px 40px rgba(20, 33, 61, .08); }
  .brand { display: flex; align-items: center; gap: 10px; font-weight: 700; font-size: 18px; }
  .logo { width: 32px; height: 32px; border-radius: 9px; background: var(--brand); color: #fff;
          display: grid; place-items: center; font-weight: 800; }
  .tag { margin-left: auto; font-size: 12px; font-weight: 600; color: #92400e; background: #fef3c7;
         border-radius: 999px; padding: 2px 10px; }
  h1 { font-size: 22px; margin: 24px 0 4px; }
  p { color: var(--muted); margin: 0 0 20px; }
  form { display: grid; gap: 10px; }
  button { font: inherit; border-radius: 10px; padding: 12px 16px; cursor: pointer; text-align: left;
           border: 1px solid var(--line); background: #fff; color: var(--ink); }
  button[name=user] { display: flex; align-items: center; gap: 12px; font-weight: 600; }
  button[name=user]:hover { border-color: var(--brand); background: #f5f5ff; }
  button[name=user]::before { content: attr(data-initials); width: 36px; height: 36px; flex: none;
            border-radius: 50%; background: #e0e7ff; color: var(--brand); display: grid;
            place-items: center; font-weight: 700; }
  button[name=cancel] { text-align: center; color: var(--muted); margin-top: 8px; }
  small { display: block; margin-top: 20px; color: var(--muted); font-size: 13px; }
"""


def _shell(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · Wink emulator</title><style>{_STYLE}</style></head>"
        "<body><main><div class='brand'><span class='logo'>W</span>Wink"
        "<span class='tag'>Emulator</span></div>"
        f"{body}</main></body></html>\n"
    )


def _page(status: int, title: str, message: str) -> Answer:
    from wink_middleware.testing._emulator import Answer

    body = _shell(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>")
    return Answer(status, body.encode(), (_HTML, *_NO_STORE))


def _signin_page(action: str, login_id: str, users: list[User], origin: Origin) -> Answer:
    from wink_middleware.testing._emulator import Answer

    scheme, host, port = origin
    default = {"https": 443, "http": 80}[scheme]
    where = f"{scheme}://{host}" + ("" if port == default else f":{port}")
    buttons = "".join(
        f"<button type='submit' name='user' value='{html.escape(str(u.profile['winkToken']))}'"
        f" data-initials='{html.escape(_initials(u))}'>"
        f"Sign in as {html.escape(u.display_name)}</button>"
        for u in users
    )
    body = (
        "<h1>Sign in</h1>"
        f"<p>to continue to <strong>{html.escape(where)}</strong></p>"
        f"<form method='post' action='{html.escape(action)}'>"
        f"<input type='hidden' name='login' value='{html.escape(login_id)}'>"
        f"{buttons}<button type='submit' name='cancel'>Cancel</button></form>"
        "<small>This page stands in for Wink's face and palm recognition: pick who you are.</small>"
    )
    return Answer(200, _shell("Sign in", body).encode(), (_HTML, *_NO_STORE))


def _initials(user: User) -> str:
    words = user.display_name.lstrip(";").replace(".", " ").split()
    return "".join(w[0] for w in words[:2]).upper() or "?"


# The third-party cookie check keycloak-js runs on init: step1 sets a cookie, step2 reports whether
# it came back ("supported" / "unsupported") to the page that framed it.
_STEP1 = """<!doctype html>
<html><body><script>
  function signal(ok) { window.parent.postMessage(ok ? "supported" : "unsupported", "*"); }
  function attempt() {
    document.cookie = "WINK_EMULATOR_3P=supported; Max-Age=60; SameSite=None; Secure";
    document.cookie = "WINK_EMULATOR_3P_LEGACY=supported; Max-Age=60";
    window.location.href = "step2.html";
  }
  if (typeof document.hasStorageAccess !== "function") { attempt(); }
  else { document.hasStorageAccess().then(function (has) { has ? attempt() : signal(false); },
                                           function () { signal(false); }); }
</script></body></html>
"""
_STEP2 = """<!doctype html>
<html><body><script>
  var ok = document.cookie.indexOf("WINK_EMULATOR_3P") !== -1;
  document.cookie = "WINK_EMULATOR_3P=; Max-Age=0; SameSite=None; Secure";
  document.cookie = "WINK_EMULATOR_3P_LEGACY=; Max-Age=0";
  window.parent.postMessage(ok ? "supported" : "unsupported", "*");
</script></body></html>
"""
# keycloak-js posts "<client_id> <sid>"; the frame answers "unchanged" while the SSO session whose
# sid hashes to the status cookie lives, "changed" once it ended, "error" for a refused origin.
_STATUS_IFRAME = """<!doctype html>
<html><body><script>
  function cookie(name) {
    var parts = document.cookie.split(";");
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].trim().split("=");
      if (kv[0] === name) { return kv.slice(1).join("="); }
    }
    return "";
  }
  async function sha256(text) {
    var digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest)).map(function (b) {
      return b.toString(16).padStart(2, "0"); }).join("");
  }
  window.addEventListener("message", async function (event) {
    var data = String(event.data).split(" ");
    var clientId = data[0], sid = data[1] || "";
    var init = "login-status-iframe.html/init?client_id=" + encodeURIComponent(clientId) +
               "&origin=" + encodeURIComponent(event.origin);
    var answer = await fetch(init).then(function (r) { return r.status === 204; },
                                        function () { return false; });
    if (!answer) { event.source.postMessage("error", event.origin); return; }
    var current = cookie("{{cookie}}");
    var same = sid !== "" && current !== "" && current === await sha256(sid);
    event.source.postMessage(same ? "unchanged" : "changed", event.origin);
  });
</script></body></html>
"""

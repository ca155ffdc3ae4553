"""WinkEmulator: an in-process stand-in for Wink's Verify Client endpoint, with fault injection.

The emulator's decisions are plain, synchronous, thread-safe functions (:meth:`WinkEmulator.answer`);
the ASGI app, the async and the sync httpx transports only move bytes and wait. Verification follows
Wink's contract (``WINK_API.md``): PascalCase request body, camelCase profile on success, ``401`` with
an empty body for an unknown, expired or revoked token and for wrong client credentials, ``400`` for a
body that is not the expected JSON.

One endpoint exists only on the emulator, for tools and scripts that reach it over HTTP (the
``wink-middleware token`` command): ``POST /_emulator/tokens`` with a JSON object of
:meth:`WinkEmulator.issue_token` keywords, ``{"ttl": 60, "first_name": "Grace", "wink_token": "user-7"}``
(all optional; ``ttl`` defaults to 300 seconds), answers ``200`` with ``{"access_token": ...,
"token_type": "Bearer", "expires_in": ...}``, or ``400`` with ``{"error": ...}`` naming what is wrong.
It needs no credentials (the emulator is a local test tool) and is not counted in :attr:`~WinkEmulator.calls`.

Wink's session API (v2.0 sign-in) is emulated too: ``POST /wink/v1/session`` with HTTP Basic
credentials (else ``401``, empty body) and a JSON body holding ``returnUrl`` and ``cancelUrl``
(else ``400``) answers ``{"sessionId": ...}``. A session is single use
(:meth:`WinkEmulator.use_session`) and expires ``session_ttl`` seconds after it was made.
:attr:`~WinkEmulator.session_calls` counts every call received there, refused ones included.

Wink's sign-in itself (the OpenID Connect half a front end talks to) is served under
``/realms/{realm}/`` by :mod:`wink_middleware.testing._oidc`; its tokens are RS256 JWTs, which need
``cryptography`` (the ``[demo]`` extra). Verify Client answers them like :meth:`~WinkEmulator.issue_token`'s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from wink_middleware._config import WinkConfig
from wink_middleware._profile import WinkProfile
from wink_middleware._session_urls import Origin, UrlError, origin_of, parse_origin
from wink_middleware.testing._oidc import OidcProvider, OidcRequest

if TYPE_CHECKING:
    import httpx
    from starlette.types import Receive, Scope, Send

    from wink_middleware._clock import Clock
    from wink_middleware._engine.async_verifier import AsyncWinkVerifier
    from wink_middleware._engine.sync_verifier import WinkVerifier

__all__ = [
    "DEFAULT_BASE_URL",
    "DROP_CONNECTION_KEY",
    "PROFILE_FIELDS",
    "SAMPLE_PROFILE",
    "SESSION_PATH",
    "TOKENS_PATH",
    "VERIFY_PATH",
    "Answer",
    "WallClock",
    "WinkEmulator",
]

VERIFY_PATH = "/api/ConfidentialClient/verify-client"
#: Wink's session endpoint (Wink v2.0 sign-in).
SESSION_PATH = "/wink/v1/session"
#: The emulator's own endpoint that issues tokens over HTTP (see the module docstring).
TOKENS_PATH = "/_emulator/tokens"
#: The base URL :meth:`WinkEmulator.wink_config` points at (any host works with its transports).
DEFAULT_BASE_URL = "https://wink.emulator"
#: Scope key under which :func:`wink_middleware.testing.serve` offers a callable that closes the socket.
DROP_CONNECTION_KEY = "wink_middleware.drop_connection"

#: The sample user of :meth:`WinkEmulator.issue_token` (each token also gets a fresh ``winkToken``).
SAMPLE_PROFILE: Mapping[str, str | None] = MappingProxyType(
    {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "contactNo": "(875) 945-3854",
        "email": "ada.lovelace@example.com",
        "winkTag": ";ada.lovelace",
        "dateOfBirth": "**/**/1983",
    }
)
#: issue_token() keyword -> Wink's wire name (also the fields of the TOKENS_PATH endpoint).
PROFILE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "first_name": "firstName",
        "last_name": "lastName",
        "contact_no": "contactNo",
        "email": "email",
        "wink_tag": "winkTag",
        "wink_token": "winkToken",
        "date_of_birth": "dateOfBirth",
    }
)
_MAX_BODY = 64 * 1024
_REALM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_TTL = 366 * 86400
_TRUNCATED_PROFILE = b'{"firstName": "Ada", "lastName": "Lov'
_JSON = (("content-type", "application/json"),)


class WallClock(Protocol):
    """Where the emulator reads the time: anything with ``time()`` (``tests.helpers.FakeClock``...)."""

    def time(self) -> float:
        """Seconds since the epoch."""


class _SystemClock:
    time = staticmethod(time.time)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the emulator does with one request: wait ``delay`` seconds, then answer or drop it."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False

    def all_headers(self) -> list[tuple[str, str]]:
        """``headers`` plus ``content-length``."""
        return [*self.headers, ("content-length", str(len(self.body)))]


@dataclass(frozen=True, slots=True)
class _Issued:
    profile: Mapping[str, Any]  # camelCase, without expiryTime
    exp: int
    azp: str


@dataclass(frozen=True, slots=True)
class _Session:
    return_url: str
    cancel_url: str
    expires: float


@dataclass(slots=True)
class _Fault:
    remaining: int
    answer: Answer  # drop=True for a dropped connection


class WinkEmulator:
    """Behaves like Wink's Verify Client for tokens it issued itself.

    Use it in-process through :meth:`transport` (``httpx.AsyncClient``) or :meth:`sync_transport`
    (``httpx.Client``), mount it as an ASGI app, or run it as a real HTTP server with :meth:`serve`.
    ``clock`` (anything with ``time()``) decides when tokens expire; share it with the verifier under
    test to step over expiry without sleeping.

    Fault injection: :attr:`latency` (seconds added to every call), :meth:`fail_next`,
    :meth:`drop_next` and :meth:`malformed_next`. Faults queue up in the order they are asked for
    and apply to the next calls of either Wink endpoint (Verify Client or sessions).
    ``session_ttl`` is how long a session lives, in seconds of ``clock``.

    The sign-in (OpenID Connect, Keycloak-shaped, under ``/realms/{realm}/``): ``access_ttl`` and
    ``refresh_ttl`` are its tokens' lifetimes in seconds; ``web_origins`` (``scheme://host[:port]``
    entries) are the origins its ``redirect_uri``, ``post_logout_redirect_uri`` and CORS accept besides
    each live session's ``returnUrl`` origin (``None``: any loopback origin, on any port). The sign-in
    page offers every user of :meth:`add_user` (the sample user Ada Lovelace is there from the start).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        realm: str = "wink",
        access_ttl: float = 300,
        refresh_ttl: float = 1800,
        session_ttl: float = 600,
        web_origins: list[str] | tuple[str, ...] | None = None,
        clock: WallClock | None = None,
        latency: float = 0.0,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("WinkEmulator needs a non-empty client_id and client_secret")
        for name, value in (
            ("session_ttl", session_ttl),
            ("access_ttl", access_ttl),
            ("refresh_ttl", refresh_ttl),
        ):
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0")
        if not isinstance(realm, str) or _REALM.fullmatch(realm) is None:
            raise ValueError("realm must be 1-64 letters, digits, '.', '_' or '-'")
        origins: frozenset[Origin] | None = None
        if web_origins is not None:
            if isinstance(web_origins, str):
                raise ValueError("web_origins must be a list of origins, not one string")
            try:
                origins = frozenset(parse_origin(o, "web_origins") for o in web_origins)
            except UrlError as exc:
                raise ValueError(str(exc)) from None
        self.session_ttl = float(session_ttl)
        self.realm = realm
        self._sessions: dict[str, _Session] = {}
        self._session_calls = 0
        self.client_id = client_id
        self._secret = client_secret
        self._clock: WallClock = _SystemClock() if clock is None else clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._issued: dict[str, _Issued] = {}
        self._revoked: set[str] = set()
        self._faults: deque[_Fault] = deque()
        self._calls = 0
        self._latency = 0.0
        self.latency = latency
        self._oidc = OidcProvider(
            client_id=client_id,
            realm=realm,
            access_ttl=float(access_ttl),
            refresh_ttl=float(refresh_ttl),
            web_origins=origins,
            now=self._clock.time,
            use_session=self.use_session,
            session_origin=self._session_origin,
            live_origins=self._live_origins,
            admit=self._admit,
            revoke=self.revoke,
        )
        self.add_user()

    def __repr__(self) -> str:
        return f"WinkEmulator(client_id={self.client_id!r}, calls={self._calls})"

    # -- configuration and counters ------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds every Verify Client call waits before it is answered (or dropped)."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not seconds >= 0:
            raise ValueError("latency must be a number of seconds >= 0")
        self._latency = float(seconds)

    @property
    def calls(self) -> int:
        """How many Verify Client calls the emulator received (faulty answers included)."""
        return self._calls

    @property
    def session_calls(self) -> int:
        """How many calls the session endpoint received (refused and faulty ones included)."""
        return self._session_calls

    def reset(self) -> None:
        """Zero :attr:`calls` and :attr:`session_calls`, drop pending faults and latency. Issued
        and revoked tokens, and live sessions, stay."""
        with self._lock:
            self._calls = 0
            self._session_calls = 0
            self._faults.clear()
            self._latency = 0.0

    # -- tokens ---------------------------------------------------------------------------------

    def issue_token(
        self,
        ttl: float = 300,
        *,
        azp: str | None = None,
        extra: Mapping[str, Any] | None = None,
        **profile_fields: str | None,
    ) -> str:
        """Issue a JWT-shaped access token for a profile, valid ``ttl`` seconds from now.

        ``profile_fields`` are :class:`~wink_middleware.WinkProfile` field names (``first_name``,
        ``wink_token``, ...) over :data:`SAMPLE_PROFILE`; each call gets a fresh ``wink_token`` unless
        one is given. ``extra`` adds other keys to Wink's answer. ``azp`` (default: this emulator's
        client id) names the client the token was issued to. A negative ``ttl`` issues an expired token.
        """
        unknown = sorted(set(profile_fields) - set(PROFILE_FIELDS))
        if unknown:
            raise TypeError(
                f"unknown profile field(s): {', '.join(unknown)} (use {', '.join(PROFILE_FIELDS)})"
            )
        values: dict[str, Any] = {**SAMPLE_PROFILE, "winkToken": str(uuid.uuid4())}
        for name, value in profile_fields.items():
            values[PROFILE_FIELDS[name]] = value
        # Wink's order on the wire, then any extra keys.
        profile = {wire: values[wire] for wire in PROFILE_FIELDS.values()}
        profile.update((k, v) for k, v in (extra or {}).items() if k not in profile)
        now = self._clock.time()
        exp = int(now + ttl)
        claims = {
            "exp": exp,
            "iat": int(now),
            "jti": uuid.uuid4().hex,
            "iss": f"{DEFAULT_BASE_URL}/realms/wink",
            "aud": "account",
            "typ": "Bearer",
            "azp": self.client_id if azp is None else azp,
            "sub": profile["winkToken"],
            "preferred_username": profile["winkTag"],
        }
        signing_input = f"{_b64json({'alg': 'HS256', 'typ': 'JWT'})}.{_b64json(claims)}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        with self._lock:
            self._issued[token] = _Issued(MappingProxyType(profile), exp, claims["azp"])
        return token

    def add_user(self, **profile_fields: str | None) -> WinkProfile:
        """Add a user to the sign-in page; its profile (as Verify Client will answer it).

        The keywords are :meth:`issue_token`'s; fields not given come from :data:`SAMPLE_PROFILE`,
        with a fresh ``wink_token`` and, unless given, a ``wink_tag`` made from the name (``;grace.hopper``,
        ``;grace.hopper.2`` when taken). A ``wink_token`` or ``wink_tag`` already used is a ``ValueError``.
        """
        unknown = sorted(set(profile_fields) - set(PROFILE_FIELDS))
        if unknown:
            raise TypeError(
                f"unknown profile field(s): {', '.join(unknown)} (use {', '.join(PROFILE_FIELDS)})"
            )
        values: dict[str, Any] = {**SAMPLE_PROFILE, "winkToken": str(uuid.uuid4())}
        for name, value in profile_fields.items():
            values[PROFILE_FIELDS[name]] = value
        if "wink_tag" not in profile_fields:
            stem = (
                ".".join(
                    re.sub(r"[^a-z0-9]+", "", str(part or "").lower())
                    for part in (values["firstName"], values["lastName"])
                ).strip(".")
                or "user"
            )
            taken = self._oidc.tags()
            tag, n = f";{stem}", 1
            while tag in taken:
                n += 1
                tag = f";{stem}.{n}"
            values["winkTag"] = tag
        profile = {wire: values[wire] for wire in PROFILE_FIELDS.values()}
        self._oidc.add(profile)
        return WinkProfile.from_wink(profile)

    @property
    def users(self) -> tuple[WinkProfile, ...]:
        """The users of the sign-in page, in the order they were added."""
        return tuple(WinkProfile.from_wink(u.profile) for u in self._oidc.all_users())

    def rotate_signing_key(self) -> str:
        """Sign the sign-in's tokens with a new RS256 key from now on; the old keys stay in the JWKS.
        Returns the new key's ``kid``."""
        return self._oidc.keys.rotate()

    def end_sso_session(self, sid: str) -> None:
        """End the sign-in session ``sid`` (a token's ``sid`` claim), as ``logout`` does."""
        self._oidc.end(sid)

    def _admit(self, token: str, profile: Mapping[str, Any], exp: int) -> None:
        with self._lock:
            self._issued[token] = _Issued(MappingProxyType(dict(profile)), exp, self.client_id)

    def _session_origin(self, session_id: str) -> Origin | None:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or self._clock.time() >= session.expires:
            return None
        try:
            return origin_of(session.return_url, "returnUrl")
        except UrlError:
            return None

    def _live_origins(self) -> set[Origin]:
        with self._lock:
            now = self._clock.time()
            urls = [s.return_url for s in self._sessions.values() if s.expires > now]
        origins = set()
        for url in urls:
            try:
                origins.add(origin_of(url, "returnUrl"))
            except UrlError:
                continue
        return origins

    def revoke(self, token: str) -> None:
        """Make Verify Client refuse ``token`` from now on (as after the user signed out)."""
        with self._lock:
            self._revoked.add(token)

    # -- faults ---------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        body: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``n`` calls with ``status`` (and ``body``, ``headers``, e.g. Retry-After)."""
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code (100-599)")
        self._add_fault(n, Answer(status, body, tuple((headers or {}).items())))

    def drop_next(self, n: int = 1) -> None:
        """Drop the connection of the next ``n`` calls without answering.

        In-process transports raise ``httpx.RemoteProtocolError``; :meth:`serve` closes the socket.
        """
        self._add_fault(n, Answer(0, drop=True))

    def malformed_next(
        self,
        n: int = 1,
        body: bytes = _TRUNCATED_PROFILE,
        *,
        content_type: str = "application/json",
    ) -> None:
        """Answer the next ``n`` calls ``200`` with ``body`` instead of a profile (default: cut JSON)."""
        self._add_fault(n, Answer(200, body, (("content-type", content_type),)))

    def _add_fault(self, n: int, answer: Answer) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError("n must be a whole number >= 1")
        with self._lock:
            self._faults.append(_Fault(n, answer))

    # -- the endpoint ---------------------------------------------------------------------------

    def answer(
        self, method: str, path: str, body: bytes, authorization: str | None = None
    ) -> Answer:
        """Decide the answer to one request (shared by the ASGI app and both transports).

        ``authorization`` is the request's ``Authorization`` header, if any (the session API's
        Basic credentials).
        """
        if path == TOKENS_PATH:
            return self._mint(method, body)
        if path != VERIFY_PATH and path != SESSION_PATH:
            return Answer(404)
        with self._lock:
            if path == VERIFY_PATH:
                self._calls += 1
            else:
                self._session_calls += 1
            delay = self._latency
            if self._faults:
                fault = self._faults[0]
                fault.remaining -= 1
                if not fault.remaining:
                    self._faults.popleft()
                return _with_delay(fault.answer, delay)
        if path == SESSION_PATH:
            return _with_delay(self._session(method, body, authorization), delay)
        if method != "POST":
            return Answer(405, headers=(("allow", "POST"),), delay=delay)
        request = _parse_request(body)
        if request is None:
            return Answer(400, delay=delay)
        client_id, token, client_secret = request
        profile = self._verify(client_id, token, client_secret)
        if profile is None:
            return Answer(401, delay=delay)
        return Answer(200, json.dumps(profile).encode(), _JSON, delay=delay)

    def _session(self, method: str, body: bytes, authorization: str | None) -> Answer:
        if method != "POST":
            return Answer(405, headers=(("allow", "POST"),))
        if not self._basic_ok(authorization):
            return Answer(401)  # as Wink: an empty body
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            data = {}
        return_url, cancel_url = data.get("returnUrl"), data.get("cancelUrl")
        if not (isinstance(return_url, str) and return_url) or not (
            isinstance(cancel_url, str) and cancel_url
        ):
            return _error("send a JSON object with returnUrl and cancelUrl")
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            now = self._clock.time()
            # Expired sessions are dropped as new ones are made: the store stays small.
            for old in [k for k, v in self._sessions.items() if v.expires <= now]:
                del self._sessions[old]
            self._sessions[session_id] = _Session(return_url, cancel_url, now + self.session_ttl)
        answer = json.dumps({"sessionId": session_id}).encode()
        return Answer(200, answer, _JSON)

    def _basic_ok(self, authorization: str | None) -> bool:
        scheme, _, credentials = (authorization or "").partition(" ")
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (ValueError, binascii.Error):
            decoded = b""
        client_id, colon, secret = decoded.partition(b":")
        # Both compared in constant time, and both always: no timing oracle.
        good_id = hmac.compare_digest(client_id, self.client_id.encode())
        good_secret = hmac.compare_digest(secret, self._secret.encode())
        return scheme.lower() == "basic" and bool(colon) and good_id and good_secret

    def use_session(self, session_id: str) -> tuple[str, str] | None:
        """Consume a live session: its ``(return_url, cancel_url)``, or ``None`` when it is
        unknown, already used or expired (a session is single use, as Wink's)."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None or self._clock.time() >= session.expires:
            return None
        return session.return_url, session.cancel_url

    def _mint(self, method: str, body: bytes) -> Answer:
        if method != "POST":
            return Answer(405, headers=(("allow", "POST"),))
        try:
            data = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            return _error("send a JSON object of issue_token() fields")
        ttl = data.pop("ttl", 300)
        if (
            not isinstance(ttl, int | float)
            or isinstance(ttl, bool)
            or not -_MAX_TTL <= ttl <= _MAX_TTL
        ):
            return _error(f"ttl must be a number of seconds, at most {_MAX_TTL}")
        unknown = sorted(set(data) - set(PROFILE_FIELDS))
        if unknown:
            return _error(
                f"unknown field(s): {', '.join(unknown)} (use ttl, {', '.join(PROFILE_FIELDS)})"
            )
        if not all(value is None or isinstance(value, str) for value in data.values()):
            return _error("profile fields must be strings or null")
        token = self.issue_token(ttl, **data)
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl)}
        return Answer(200, json.dumps(answer).encode(), (*_JSON, ("cache-control", "no-store")))

    def _verify(self, client_id: str, token: str, client_secret: str) -> dict[str, Any] | None:
        # Both credentials are compared in constant time, and both always: no timing oracle.
        good_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        good_secret = hmac.compare_digest(client_secret.encode(), self._secret.encode())
        with self._lock:
            issued = self._issued.get(token)
            revoked = token in self._revoked
        if not (good_id and good_secret) or issued is None or revoked:
            return None
        if issued.azp != self.client_id or self._clock.time() >= issued.exp:
            return None
        profile = dict(issued.profile)
        profile["expiryTime"] = _iso(issued.exp)
        return profile

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The emulator as an ASGI app (http; lifespan is acknowledged; websockets are refused)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"{message['type']}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        body = await _read_body(receive)
        headers_in: dict[str, str] = {}
        for k, v in scope["headers"]:
            headers_in.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        if path.startswith("/realms/"):
            answer = self._oidc_answer(scope, path, body, headers_in, root_path)
        else:
            answer = self.answer(scope["method"], path, body, headers_in.get("authorization"))
        if answer.delay:
            await anyio.sleep(answer.delay)
        if answer.drop:
            drop = scope.get(DROP_CONNECTION_KEY)
            if drop is None:
                # Not under serve(): the server turns this into an aborted or 500 answer.
                raise ConnectionAbortedError("the Wink emulator dropped the connection")
            drop()
            # Returning before the server saw the socket close would make it try to answer (500).
            await _disconnected(receive)
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.all_headers()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _oidc_answer(
        self,
        scope: Scope,
        path: str,
        body: bytes,
        headers: dict[str, str],
        root_path: str,
    ) -> Answer:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = headers.get("host") or f"{server[0]}:{server[1]}"
        request = OidcRequest(
            method=scope["method"],
            path=path[len("/realms/") :],
            query=scope.get("query_string", b"").decode("latin-1"),
            body=body,
            base=f"{scope.get('scheme', 'http')}://{host}{root_path}",
            headers=headers,
        )
        try:
            return self._oidc.answer(request)
        except RuntimeError as exc:  # RS256 signing unavailable: name the extra
            return _error(str(exc), 501)

    # -- wiring ---------------------------------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport for ``httpx.AsyncClient`` that answers in-process (Verify Client, the
        session API and :data:`TOKENS_PATH`; the sign-in under ``/realms/`` is the ASGI app's:
        ``httpx.ASGITransport(app=emulator)`` or :meth:`serve`)."""
        from wink_middleware.testing._transport import AsyncEmulatorTransport

        return AsyncEmulatorTransport(self)

    def sync_transport(self) -> httpx.BaseTransport:
        """An httpx transport for ``httpx.Client`` that answers in-process."""
        from wink_middleware.testing._transport import SyncEmulatorTransport

        return SyncEmulatorTransport(self)

    def wink_config(self, **options: Any) -> WinkConfig:
        """A :class:`WinkConfig` with this emulator's credentials, and ``options`` over it.

        ``base_url`` defaults to :data:`DEFAULT_BASE_URL`, which :meth:`transport` and
        :meth:`sync_transport` answer whatever the host; pass the URL of :meth:`serve` for real HTTP.
        """
        options.setdefault("base_url", DEFAULT_BASE_URL)
        return WinkConfig(client_id=self.client_id, client_secret=self._secret, **options)

    def async_verifier(
        self,
        config: WinkConfig | None = None,
        *,
        clock: Clock | None = None,
        redis: Any = None,
        **options: Any,
    ) -> AsyncWinkVerifier:
        """An :class:`~wink_middleware.AsyncWinkVerifier` whose calls reach this emulator in-process.

        ``config`` defaults to :meth:`wink_config` with ``options``. Its httpx client talks to the
        emulator's in-process transport and holds no connection; with the shared tier on
        (``redis_url=`` or ``redis=``), close it (``aclose()``) to stop its listener.
        """
        import httpx

        from wink_middleware._engine.async_verifier import AsyncWinkVerifier

        config = self._config_for(config, options)
        client = httpx.AsyncClient(transport=self.transport())
        return AsyncWinkVerifier(config, client=client, clock=clock, redis=redis)

    def verifier(
        self,
        config: WinkConfig | None = None,
        *,
        clock: Clock | None = None,
        redis: Any = None,
        **options: Any,
    ) -> WinkVerifier:
        """A sync :class:`~wink_middleware.WinkVerifier` whose calls reach this emulator in-process.

        For :class:`~wink_middleware.WinkWSGIMiddleware` (``verifier=emulator.verifier()``).
        """
        import httpx

        from wink_middleware._engine.sync_verifier import WinkVerifier

        config = self._config_for(config, options)
        client = httpx.Client(transport=self.sync_transport())
        return WinkVerifier(config, client=client, clock=clock, redis=redis)

    def _config_for(self, config: WinkConfig | None, options: dict[str, Any]) -> WinkConfig:
        if config is None:
            return self.wink_config(**options)
        if options:
            raise TypeError("pass either config or options, not both")
        return config

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the emulator over real HTTP in a background thread; yield its base URL.

        ``port=0`` picks a free port. Needs ``uvicorn``. Stops the server on exit.
        """
        from wink_middleware.testing._server import serve

        with serve(self, host, port) as base_url:
            yield base_url


def _with_delay(answer: Answer, delay: float) -> Answer:
    if not delay:
        return answer
    return Answer(answer.status, answer.body, answer.headers, delay, answer.drop)


def _error(message: str, status: int = 400) -> Answer:
    return Answer(status, json.dumps({"error": message}).encode(), _JSON)


def _parse_request(body: bytes) -> tuple[str, str, str] | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    values = (data.get("ClientId"), data.get("AccessToken"), data.get("ClientSecret"))
    if not all(isinstance(v, str) for v in values):
        return None
    return values  # type: ignore[return-value]


async def _disconnected(receive: Receive) -> None:
    while True:
        if (await receive())["type"] == "http.disconnect":
            return


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= _MAX_BODY else b""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(data: Mapping[str, Any]) -> str:
    return _b64(json.dumps(data, separators=(",", ":")).encode())


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""``WinkAuthenticationMiddleware``, the Django middleware (sync and async), and what one
``settings.WINK`` builds for it and for ``WinkAuthentication``."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth import aauthenticate, authenticate
from django.core.signals import setting_changed
from django.http import HttpResponse
from django.utils.functional import SimpleLazyObject

from wink_middleware._adapters.wsgi import environ_view
from wink_middleware._config import WinkConfig, resolve_config
from wink_middleware._engine.async_verifier import AsyncWinkVerifier
from wink_middleware._engine.core import ColdToken
from wink_middleware._engine.sync_verifier import WinkVerifier
from wink_middleware._events import REQUEST, SESSION
from wink_middleware._exceptions import (
    AuthenticationFailed,
    MissingToken,
    WinkConfigError,
)
from wink_middleware._get_profile import TOKEN_KEY, VERIFIER_KEY, WSGI_ERROR_KEY, WSGI_KEY
from wink_middleware._profile import WinkProfile
from wink_middleware._routing.gate import (
    ANONYMOUS,
    CREATE_SESSION,
    PENDING,
    PREFLIGHT,
    REFUSED,
    SESSION_ANSWER,
    Outcome,
    RequestGate,
)
from wink_middleware._routing.responses import ErrorResponse, render
from wink_middleware._routing.session import SessionRoute
from wink_middleware._routing.view import RequestView

__all__ = ["WinkAuthenticationMiddleware"]

_Gate = tuple[AsyncWinkVerifier, RequestGate]


# -- what one settings.WINK builds, shared by the middleware and WinkAuthentication ---------------


class _Wink:
    """The config, request gates and verifiers of one ``settings.WINK``."""

    def __init__(self, config: WinkConfig) -> None:
        self.config = config
        self.challenge = dict(render(MissingToken(), config.realm).headers)["WWW-Authenticate"]
        self._read_cookies = config.cookie_name is not None
        self._read_query = config.query_param is not None
        self._session_path = config.session_path
        self._lock = threading.Lock()
        self._verifier: WinkVerifier | None = None
        self._session: SessionRoute | None = None
        self._gates: dict[str, RequestGate] = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gate] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def verifier(self) -> WinkVerifier:
        """The sync verifier (WSGI Django, DRF), built on first use."""
        verifier = self._verifier
        if verifier is None:
            with self._lock:
                if self._verifier is None:
                    self._verifier = WinkVerifier(self.config)
                verifier = self._verifier
        return verifier

    def session_route(self) -> SessionRoute | None:
        """The session route of this ``settings.WINK`` (one rate bucket for the process), or
        ``None`` without ``session_path``. Only the middleware answers it, never DRF."""
        if self.config.session_path is None:
            return None
        route = self._session
        if route is None:
            verifier = self.verifier
            with self._lock:
                if self._session is None:
                    self._session = SessionRoute(
                        self.config, verifier.clock, verifier.emitter(SESSION)
                    )
                route = self._session
        return route

    def gate(self, kind: str = "middleware") -> RequestGate:
        """The sync verifier's request gate: ``"middleware"`` routes by the path policy;
        ``"drf"`` (WinkAuthentication on its own) and ``"drf_quiet"`` (after the middleware passed
        the request unchecked: its ``request`` event is already out) treat every path as optional,
        as DRF does: no token is anonymous (DRF's permissions decide), a failed one is refused."""
        gate = self._gates.get(kind)
        if gate is None:
            verifier = self.verifier
            config = self.config
            if kind != "middleware":
                config = config.replace(
                    public_paths=(),
                    optional_paths=("/*",),
                    protect_preflight=True,
                    anonymous_on_invalid=False,
                )
            emit = None if kind == "drf_quiet" else verifier.emitter(REQUEST)
            session = self.session_route() if kind == "middleware" else None
            gate = self._gates.setdefault(
                kind, RequestGate(config, verifier.lookup, ColdToken, emit, session)
            )
        return gate

    def async_gate(self) -> _Gate:
        """The running event loop's verifier and its gate (an ``httpx.AsyncClient`` serves one loop
        only). Every such verifier shares the sync verifier's cache: a token verified once is known
        to all."""
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            cache = self.verifier.cache
            session = self.session_route()
            with self._lock:
                found = self._async.get(loop)
                if found is None:
                    # A verifier's client keeps its loop alive: drop those of finished loops.
                    for finished in [k for k in self._async if k.is_closed()]:
                        del self._async[finished]
                    verifier = AsyncWinkVerifier(self.config, cache=cache)
                    gate = RequestGate(
                        self.config, verifier.lookup, ColdToken, verifier.emitter(REQUEST), session
                    )
                    found = self._async[loop] = (verifier, gate)
        return found

    def view(self, request: Any) -> RequestView:
        """What routing reads of a Django request: its ``META`` is a WSGI environ under WSGI and
        built like one under ASGI, so the WSGI middleware's reading serves both."""
        return environ_view(request.META, self._read_cookies, self._read_query, self._session_path)

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()


_lock = threading.Lock()
_current: _Wink | None = None


def _wink() -> _Wink:
    """The shared state of the current ``settings.WINK``, built once (again after it changes)."""
    global _current
    wink = _current
    if wink is None:
        with _lock:
            if _current is None:
                _current = _Wink(_config())
            wink = _current
    return wink


def _config() -> WinkConfig:
    options = getattr(settings, "WINK", None)
    if isinstance(options, WinkConfig):
        return options
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise WinkConfigError("settings.WINK must be a dict of WinkConfig fields or a WinkConfig")
    return resolve_config(None, options)


def _settings_changed(*, setting: str, **_: Any) -> None:
    """``override_settings(WINK=...)`` in tests: the next request builds from the new settings."""
    global _current
    if setting == "WINK":
        with _lock:
            old, _current = _current, None
        if old is not None:
            old.close()


setting_changed.connect(_settings_changed, dispatch_uid="wink_middleware.django")


# -- the middleware --------------------------------------------------------------------------------


class WinkAuthenticationMiddleware:
    """Django middleware: verifies the bearer token of every request the path policy protects.

    Put it in ``settings.MIDDLEWARE`` after ``AuthenticationMiddleware``; options come from
    ``settings.WINK`` over ``WINK_*`` variables. Sync and async capable: under ASGI it verifies
    without blocking the event loop. A refused request never reaches the view. ``on_error``, if
    set, is called as ``on_error(request, exc)`` and may return the ``HttpResponse`` to send.
    ``remote_user=False`` leaves Django's users alone: only ``request.wink`` is set. With it, a
    verified request's ``request.user`` (and ``await request.auser()``) is the :class:`WinkBackend`
    user, looked up lazily as Django's ``AuthenticationMiddleware`` does: a view that never reads
    it costs no database query.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._wink = wink = _wink()
        config = wink.config
        self.config = config
        self._view = wink.view
        self._realm = config.realm
        self._remote_user = config.remote_user
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)
        else:
            gate = wink.gate()
            self._decide = gate.decide
            self._extract = gate.tokens.extract
            self._resolved = gate.resolved
            self._failed = gate.failed
            self._resolve = wink.verifier.resolve

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self.__acall__(request)
        request.META[VERIFIER_KEY] = self._wink.verifier  # for views: get_verifier()
        view = self._view(request)
        decided = self._decide(view)
        if type(decided) is Outcome:
            outcome = decided
            if outcome.kind is PENDING:
                try:
                    decided = self._resolved(self._resolve(outcome.miss))
                except AuthenticationFailed as exc:
                    decided = self._failed(outcome.access, exc)
            if type(decided) is Outcome:
                if decided.kind is REFUSED:
                    return self._deny(request, cast(AuthenticationFailed, decided.error))
                if decided.kind is SESSION_ANSWER or decided.kind is CREATE_SESSION:
                    return self._session(request, decided)
                self._not_admitted(request, decided)
                response = self.get_response(request)
                return self._preflight(request, response) if decided.kind is PREFLIGHT else response
        self._signed_in(request, decided)
        request.META[TOKEN_KEY] = (self._extract, view)  # read by get_access_token(), if ever
        return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        verifier, gate = self._wink.async_gate()
        request.META[VERIFIER_KEY] = verifier  # for views: get_verifier()
        view = self._view(request)
        decided = gate.decide(view)
        if type(decided) is Outcome:
            outcome = decided
            if outcome.kind is PENDING:
                try:
                    decided = gate.resolved(await verifier.resolve(outcome.miss))
                except AuthenticationFailed as exc:
                    decided = gate.failed(outcome.access, exc)
            if type(decided) is Outcome:
                if decided.kind is REFUSED:
                    return self._deny(request, cast(AuthenticationFailed, decided.error))
                if decided.kind is SESSION_ANSWER or decided.kind is CREATE_SESSION:
                    return await self._asession(request, decided, verifier, gate)
                self._not_admitted(request, decided)
                response = await self.get_response(request)
                return self._preflight(request, response) if decided.kind is PREFLIGHT else response
        self._signed_in(request, decided)
        request.META[TOKEN_KEY] = (gate.tokens.extract, view)  # read by get_access_token()
        return await self.get_response(request)

    def _session(self, request: Any, outcome: Outcome) -> Any:
        """The session route's I/O (sync): create the session it asks for, answer."""
        gate = self._wink.gate()
        command = outcome.command
        if command is None:
            return self._answer(request, cast(ErrorResponse, outcome.answer))
        try:
            session = self._wink.verifier.create_session(command.return_url, command.cancel_url)
        except AuthenticationFailed as exc:
            return self._answer(request, gate.session_failed(exc))
        return self._answer(request, gate.session_created(session))

    async def _asession(
        self, request: Any, outcome: Outcome, verifier: AsyncWinkVerifier, gate: RequestGate
    ) -> Any:
        """The session route's I/O (async): the same, with this event loop's verifier."""
        command = outcome.command
        if command is None:
            return self._answer(request, cast(ErrorResponse, outcome.answer))
        try:
            session = await verifier.create_session(command.return_url, command.cancel_url)
        except AuthenticationFailed as exc:
            return self._answer(request, gate.session_failed(exc))
        return self._answer(request, gate.session_created(session))

    @staticmethod
    def _answer(request: Any, answer: ErrorResponse) -> Any:
        return _http_response(answer, head=request.method == "HEAD")

    def _signed_in(self, request: Any, profile: WinkProfile) -> None:
        request.wink = request.META[WSGI_KEY] = profile
        if self._remote_user:
            _lazy_user(request, profile.wink_token)

    def _not_admitted(self, request: Any, outcome: Outcome) -> None:
        """Mark a request the gate let on without a user: unchecked (a public path, a preflight:
        ``request.user`` as the session made it) or anonymous."""
        if outcome.kind is not ANONYMOUS:
            request.wink = None
            request.META.setdefault(WSGI_KEY, None)
            return
        request.wink = request.META[WSGI_KEY] = None
        if outcome.error is not None:
            request.wink_error = request.META[WSGI_ERROR_KEY] = outcome.error
        if self._remote_user:
            _set_user(request, _anonymous_user())

    def _preflight(self, request: Any, response: Any) -> Any:
        """Fail-closed CORS preflight: only an answer carrying ``Access-Control-Allow-Origin`` is
        sent, without its body; any other (a method-agnostic view's content, an error page) is
        replaced by the answer a request without a token gets."""
        if not response.has_header("Access-Control-Allow-Origin"):
            return self._deny(request, MissingToken())
        # Emptied in place: the response's own closers (a file, a generator) still run.
        if response.streaming:
            response.streaming_content = _nothing() if response.is_async else iter(())
        else:
            response.content = b""
        response["Content-Length"] = "0"
        return response

    def _deny(self, request: Any, exc: AuthenticationFailed) -> Any:
        on_error = self.config.on_error
        if on_error is not None:
            response = on_error(request, exc)
            if response is not None:
                return response
        return _http_response(render(exc, self._realm), head=request.method == "HEAD")


def _set_user(request: Any, user: Any) -> None:
    request.user = user

    async def auser() -> Any:
        return user

    request.auser = auser


def _lazy_user(request: Any, wink_token: str) -> None:
    """``request.user`` and ``request.auser()`` as Django's ``AuthenticationMiddleware`` sets them:
    the user is looked up on first use (sync or async), once, and never when a view ignores it."""

    def user() -> Any:
        if not hasattr(request, "_wink_user"):
            found = authenticate(request, remote_user=wink_token)
            request._wink_user = _anonymous_user() if found is None else found
        return request._wink_user

    async def auser() -> Any:
        if not hasattr(request, "_wink_user"):
            found = await aauthenticate(request, remote_user=wink_token)
            request._wink_user = _anonymous_user() if found is None else found
        return request._wink_user

    request.user = SimpleLazyObject(user)
    request.auser = auser


def _anonymous_user() -> Any:
    from django.contrib.auth.models import AnonymousUser  # needs the app registry: imported late

    return AnonymousUser()


async def _nothing() -> Any:
    return
    yield


def _http_response(rendered: ErrorResponse, *, head: bool = False) -> Any:
    return HttpResponse(
        b"" if head else rendered.body, status=rendered.status, headers=rendered.headers
    )

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

from wink_middleware._adapters.wsgi import environ_view
from wink_middleware._config import WinkConfig, resolve_config
from wink_middleware._engine.async_verifier import AsyncWinkVerifier
from wink_middleware._engine.core import Miss
from wink_middleware._engine.sync_verifier import WinkVerifier
from wink_middleware._events import SESSION
from wink_middleware._exceptions import (
    AuthenticationFailed,
    MissingToken,
    WinkConfigError,
)
from wink_middleware._get_profile import WSGI_ERROR_KEY, WSGI_KEY
from wink_middleware._profile import WinkProfile
from wink_middleware._routing.policy import Access, PathPolicy
from wink_middleware._routing.responses import ErrorResponse, render
from wink_middleware._routing.tokens import TokenExtractor
from wink_middleware._routing.view import RequestView
from wink_middleware._session_protocol import WinkSession
from wink_middleware._session_route import CreateSession, SessionRoute

__all__ = ["WinkAuthenticationMiddleware"]

_PROTECTED = Access.PROTECTED
_PUBLIC = Access.PUBLIC
_PREFLIGHT = Access.PREFLIGHT


# -- what one settings.WINK builds, shared by the middleware and WinkAuthentication ---------------


class _Wink:
    """The config, routing and verifiers of one ``settings.WINK``."""

    def __init__(self, config: WinkConfig) -> None:
        self.config = config
        self.policy = PathPolicy(
            config.public_paths,
            config.optional_paths,
            protect_preflight=config.protect_preflight,
            anonymous_on_invalid=config.anonymous_on_invalid,
        )
        self.tokens = TokenExtractor(config)
        self.challenge = dict(render(MissingToken(), config.realm).headers)["WWW-Authenticate"]
        self._read_cookies = config.cookie_name is not None
        self._read_query = config.query_param is not None
        self._lock = threading.Lock()
        self._verifier: WinkVerifier | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncWinkVerifier] = (
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

    def async_verifier(self) -> AsyncWinkVerifier:
        """The running event loop's verifier (an ``httpx.AsyncClient`` serves one loop only).

        Every one shares the sync verifier's cache, so a token verified once is known to all.
        """
        loop = asyncio.get_running_loop()
        verifier = self._async.get(loop)
        if verifier is None:
            cache = self.verifier.cache
            with self._lock:
                verifier = self._async.get(loop)
                if verifier is None:
                    # A verifier's client keeps its loop alive: drop those of finished loops.
                    for finished in [k for k in self._async if k.is_closed()]:
                        del self._async[finished]
                    verifier = AsyncWinkVerifier(self.config, cache=cache)
                    self._async[loop] = verifier
        return verifier

    def view(self, request: Any) -> RequestView:
        """What routing reads of a Django request: its ``META`` is a WSGI environ under WSGI and
        built like one under ASGI, so the WSGI middleware's reading serves both."""
        return environ_view(request.META, self._read_cookies, self._read_query)

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
    ``remote_user=False`` leaves Django's users alone: only ``request.wink`` is set.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._wink = wink = _wink()
        config = wink.config
        self.config = config
        self._view = wink.view
        self._access = wink.policy.access
        self._extract = wink.tokens.extract
        self._realm = config.realm
        self._remote_user = config.remote_user
        self._continues_anonymous = wink.policy.continues_anonymous
        # Each middleware has its own session route (and rate bucket).
        self._session_path = config.session_path
        self._session_route = (
            None
            if config.session_path is None
            else SessionRoute(config, wink.verifier.clock, wink.verifier.emitter(SESSION))
        )
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)
        else:
            verifier = wink.verifier
            self._lookup = verifier.lookup
            self._resolve = verifier.resolve

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self.__acall__(request)
        view = self._view(request)
        if view.path == self._session_path:
            decision = self._session_decision(request, view)
            if isinstance(decision, CreateSession):
                try:
                    session = self._wink.verifier.create_session(
                        decision.return_url, decision.cancel_url
                    )
                except AuthenticationFailed as exc:
                    decision = self._session_failed(exc)
                else:
                    decision = self._session_created(session)
            if decision is not None:
                return _http_response(decision, head=request.method == "HEAD")
        access = self._access(view)
        if access is _PUBLIC or access is _PREFLIGHT:
            _unchecked(request)
            response = self.get_response(request)
            return response if access is _PUBLIC else self._preflight(request, response)
        try:
            found = self._lookup(self._extract(view))
            profile = self._resolve(found) if type(found) is Miss else cast(WinkProfile, found)
        except AuthenticationFailed as exc:
            return self._refuse(request, access, exc) or self.get_response(request)
        user = authenticate(request, remote_user=profile.wink_token) if self._remote_user else None
        self._signed_in(request, profile, user)
        return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        view = self._view(request)
        if view.path == self._session_path:
            decision = self._session_decision(request, view)
            if isinstance(decision, CreateSession):
                try:
                    session = await self._wink.async_verifier().create_session(
                        decision.return_url, decision.cancel_url
                    )
                except AuthenticationFailed as exc:
                    decision = self._session_failed(exc)
                else:
                    decision = self._session_created(session)
            if decision is not None:
                return _http_response(decision, head=request.method == "HEAD")
        access = self._access(view)
        if access is _PUBLIC or access is _PREFLIGHT:
            _unchecked(request)
            response = await self.get_response(request)
            return response if access is _PUBLIC else self._preflight(request, response)
        verifier = self._wink.async_verifier()
        try:
            found = verifier.lookup(self._extract(view))
            if type(found) is Miss:
                profile = await verifier.resolve(found)
            else:
                profile = cast(WinkProfile, found)
        except AuthenticationFailed as exc:
            return self._refuse(request, access, exc) or await self.get_response(request)
        user = None
        if self._remote_user:
            user = await aauthenticate(request, remote_user=profile.wink_token)
        self._signed_in(request, profile, user)
        return await self.get_response(request)

    def _session_decision(
        self, request: Any, view: RequestView
    ) -> ErrorResponse | CreateSession | None:
        """The session route's decision (``None``: a preflight left to the policy)."""
        route = self._session_route
        assert route is not None  # the path matched session_path, which is set
        query = request.META.get("QUERY_STRING")
        return route.decide(
            view.method, view.path, query if type(query) is str else "", preflight=view.preflight
        )

    def _session_created(self, session: WinkSession) -> ErrorResponse:
        assert self._session_route is not None
        return self._session_route.created(session)

    def _session_failed(self, exc: AuthenticationFailed) -> ErrorResponse:
        assert self._session_route is not None
        return self._session_route.failed(exc)

    def _refuse(self, request: Any, access: Access, exc: AuthenticationFailed) -> Any:
        """The denial of a failed request, or ``None`` once it is marked anonymous.

        No token on an optional path is anonymous; with ``anonymous_on_invalid`` a refused token
        there is too. An outage (5xx) never is: it would silently sign a user out.
        """
        if not self._continues_anonymous(access, exc):
            return self._deny(request, exc)
        self._anonymous(request, None if type(exc) is MissingToken else exc)
        return None

    def _signed_in(self, request: Any, profile: WinkProfile, user: Any) -> None:
        request.wink = request.META[WSGI_KEY] = profile
        if self._remote_user:
            _set_user(request, _anonymous_user() if user is None else user)

    def _anonymous(self, request: Any, error: AuthenticationFailed | None) -> None:
        request.wink = request.META[WSGI_KEY] = None
        if error is not None:
            request.wink_error = request.META[WSGI_ERROR_KEY] = error
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


def _unchecked(request: Any) -> None:
    """A path the middleware does not check: anonymous for Wink, ``request.user`` left alone."""
    request.wink = None
    request.META.setdefault(WSGI_KEY, None)


def _set_user(request: Any, user: Any) -> None:
    request.user = user

    async def auser() -> Any:
        return user

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

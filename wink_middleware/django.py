"""Django and Django REST framework: ``WinkAuthenticationMiddleware``, ``WinkBackend``,
``WinkAuthentication``.

```python
# settings.py
MIDDLEWARE = [
    ...,
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wink_middleware.django.WinkAuthenticationMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # first: passwords (the admin login) keep working
    "wink_middleware.django.WinkBackend",
]
WINK = {"public_paths": ["/health", "/admin/*"]}  # WinkConfig fields, over WINK_* variables
```

The middleware makes the decisions of :class:`~wink_middleware.WinkWSGIMiddleware` and
:class:`~wink_middleware.WinkMiddleware` with the same path policy, token rules, verifier API and
error rendering: a refused request gets the same status, ``WWW-Authenticate`` challenge, JSON body
and ``Retry-After``. It runs sync (WSGI) or async (ASGI, never blocking the event loop). A verified
request gets ``request.wink`` (the :class:`~wink_middleware.WinkProfile`; also what
``get_profile(request)`` returns) and ``request.user``, the Django user whose username is the
winkToken, found or created by :class:`WinkBackend` for this request only (no session login: a
bearer token is sent with every request). An anonymous request (a path without a token, see
``optional_paths``) gets ``request.wink = None`` and, on an optional path, ``AnonymousUser``; a
public path (and a CORS preflight) leaves ``request.user`` as the session made it.

``WinkAuthentication`` is a DRF authentication class over the same settings and verifier.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, cast

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.conf import settings
    from django.contrib.auth import aauthenticate, authenticate
    from django.core.signals import setting_changed
    from django.http import HttpResponse
except ImportError as exc:
    raise ImportError(
        "wink_middleware.django needs Django, which is not installed: pip install django"
    ) from exc
try:
    from rest_framework.exceptions import (
        APIException as _APIException,
    )
    from rest_framework.exceptions import (
        NotAuthenticated as _NotAuthenticated,
    )
except ImportError:  # DRF is optional: only WinkAuthentication needs it, and DRF calls it
    _APIException = Exception
    _NotAuthenticated = None

from wink_middleware._async_verifier import AsyncWinkVerifier
from wink_middleware._config import WinkConfig, resolve_config
from wink_middleware._engine import Miss
from wink_middleware._exceptions import (
    AuthenticationFailed,
    MissingToken,
    WinkConfigError,
    WinkUnavailable,
)
from wink_middleware._get_profile import TOKEN_KEY, VERIFIER_KEY, WSGI_ERROR_KEY, WSGI_KEY
from wink_middleware._policy import Access, PathPolicy
from wink_middleware._profile import WinkProfile
from wink_middleware._request import RequestView
from wink_middleware._responses import ErrorResponse, render
from wink_middleware._sync_verifier import WinkVerifier
from wink_middleware._tokens import TokenExtractor
from wink_middleware._wsgi import environ_view

__all__ = [
    "WinkAPIException",
    "WinkAuthentication",
    "WinkAuthenticationMiddleware",
    "WinkBackend",  # noqa: F822 (built on first access: see __getattr__)
    "exception_handler",
]

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
        access = self._access(view)
        if access is _PUBLIC or access is _PREFLIGHT:
            _unchecked(request)
            response = self.get_response(request)
            return response if access is _PUBLIC else self._preflight(request, response)
        request.META[VERIFIER_KEY] = self._wink.verifier
        try:
            token = self._extract(view)
            found = self._lookup(token)
            profile = self._resolve(found) if type(found) is Miss else cast(WinkProfile, found)
        except AuthenticationFailed as exc:
            return self._refuse(request, access, exc) or self.get_response(request)
        user = authenticate(request, remote_user=profile.wink_token) if self._remote_user else None
        self._signed_in(request, profile, user, token)
        return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        view = self._view(request)
        access = self._access(view)
        if access is _PUBLIC or access is _PREFLIGHT:
            _unchecked(request)
            response = await self.get_response(request)
            return response if access is _PUBLIC else self._preflight(request, response)
        verifier = self._wink.async_verifier()
        request.META[VERIFIER_KEY] = verifier
        try:
            token = self._extract(view)
            found = verifier.lookup(token)
            if type(found) is Miss:
                profile = await verifier.resolve(found)
            else:
                profile = cast(WinkProfile, found)
        except AuthenticationFailed as exc:
            return self._refuse(request, access, exc) or await self.get_response(request)
        user = None
        if self._remote_user:
            user = await aauthenticate(request, remote_user=profile.wink_token)
        self._signed_in(request, profile, user, token)
        return await self.get_response(request)

    def _refuse(self, request: Any, access: Access, exc: AuthenticationFailed) -> Any:
        """The denial of a failed request, or ``None`` once it is marked anonymous.

        No token on an optional path is anonymous; with ``anonymous_on_invalid`` a refused token
        there is too. An outage (5xx) never is: it would silently sign a user out.
        """
        if not self._continues_anonymous(access, exc):
            return self._deny(request, exc)
        self._anonymous(request, None if type(exc) is MissingToken else exc)
        return None

    def _signed_in(self, request: Any, profile: WinkProfile, user: Any, token: bytes) -> None:
        request.wink = request.META[WSGI_KEY] = profile
        request.META[TOKEN_KEY] = token
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


# -- the authentication backend --------------------------------------------------------------------


@functools.cache
def _backend() -> type:
    # django.contrib.auth.backends reads the user model when imported, so it needs the app
    # registry; importing wink_middleware.django must not.
    from django.contrib.auth.backends import RemoteUserBackend

    class WinkBackend(RemoteUserBackend):  # type: ignore[misc, unused-ignore]
        """Django users for Wink: ``authenticate(request, remote_user=<winkToken>)`` returns the
        user whose username is the winkToken, created on first sight.

        Put ``"wink_middleware.django.WinkBackend"`` in ``AUTHENTICATION_BACKENDS`` after
        ``"django.contrib.auth.backends.ModelBackend"`` (kept first, so that password logins, the
        admin's included, still work: this backend only answers ``remote_user``). Subclass it
        and override ``configure_user(request, user, created)`` to fill in names from
        ``request.wink``; set ``create_unknown_user = False`` to admit known users only.
        """

    WinkBackend.__module__ = __name__
    WinkBackend.__qualname__ = "WinkBackend"
    return WinkBackend


def __getattr__(name: str) -> Any:
    if name == "WinkBackend":
        return _backend()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- Django REST framework -------------------------------------------------------------------------


class WinkAPIException(_APIException):  # type: ignore[misc, unused-ignore]
    """A Wink refusal as DRF answers it: the middleware's status, body and headers.

    ``detail`` is the middleware's JSON body (``{"error": ..., "error_description": ...}``), which
    DRF's default exception handler sends as is, with ``auth_header`` as ``WWW-Authenticate`` (400
    and 401) and ``wait`` as ``Retry-After`` (503). ``error`` is the :class:`AuthenticationFailed`.
    With :func:`exception_handler`, the answer is the middleware's byte for byte.
    """

    def __init__(self, error: AuthenticationFailed, realm: str) -> None:
        rendered = render(error, realm)
        super().__init__(json.loads(rendered.body), error.error or "missing_token")
        self.status_code = rendered.status
        self.error = error
        self.rendered = rendered
        headers = dict(rendered.headers)
        self.auth_header = headers.get("WWW-Authenticate")
        self.wait = error.retry_after if isinstance(error, WinkUnavailable) else None


class WinkAuthentication:
    """Django REST framework authentication with Wink bearer tokens.

    ``authentication_classes = [WinkAuthentication]`` (or ``DEFAULT_AUTHENTICATION_CLASSES``):
    ``authenticate()`` returns ``(user, profile)``, so ``request.user`` is the :class:`WinkBackend`
    user and ``request.auth`` the :class:`~wink_middleware.WinkProfile`. When
    :class:`WinkAuthenticationMiddleware` verified the request, its answer is reused; otherwise
    (a public path, no middleware) the token is verified here, with the same settings and verifier.
    No token: ``None`` (DRF's permissions then answer 401 with the ``Bearer`` challenge). A refused
    token or an outage raises :class:`WinkAPIException`.
    """

    def authenticate(self, request: Any) -> tuple[Any, WinkProfile] | None:
        """``(user, profile)``, ``None`` without a token, or raise :class:`WinkAPIException`."""
        django_request = getattr(request, "_request", request)
        wink = _wink()
        remote_user = wink.config.remote_user
        profile = getattr(django_request, "wink", None)
        if isinstance(profile, WinkProfile):
            return (django_request.user if remote_user else profile), profile
        if getattr(django_request, "wink_error", None) is not None:
            return None  # the middleware let a refused token in anonymous (anonymous_on_invalid)
        verifier = wink.verifier
        try:
            token = wink.tokens.extract(wink.view(django_request))
            found = verifier.lookup(token)
            profile = verifier.resolve(found) if type(found) is Miss else cast(WinkProfile, found)
        except MissingToken:
            return None
        except AuthenticationFailed as exc:
            raise WinkAPIException(exc, wink.config.realm) from exc
        django_request.wink = django_request.META[WSGI_KEY] = profile
        django_request.META[TOKEN_KEY] = token
        django_request.META[VERIFIER_KEY] = verifier
        if not remote_user:
            return profile, profile
        user = authenticate(django_request, remote_user=profile.wink_token)
        return (_anonymous_user() if user is None else user), profile

    def authenticate_header(self, request: Any) -> str:
        """The ``Bearer realm="..."`` challenge: DRF answers 401 (not 403) without credentials."""
        return _wink().challenge


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF exception handler that answers Wink's refusals exactly as the middleware does.

    ``REST_FRAMEWORK = {"EXCEPTION_HANDLER": "wink_middleware.django.exception_handler"}``: a
    :class:`WinkAPIException` gets the middleware's response byte for byte (``Cache-Control:
    no-store`` included), and DRF's "not authenticated" on a view whose first authentication
    class is :class:`WinkAuthentication` becomes the middleware's ``missing_token`` 401. Anything
    else goes to DRF's own handler.
    """
    from rest_framework.views import (
        exception_handler as drf_exception_handler,
    )
    from rest_framework.views import set_rollback

    if _NotAuthenticated is not None and isinstance(exc, _NotAuthenticated):
        authenticators = getattr(context.get("request"), "authenticators", None) or ()
        if authenticators and isinstance(authenticators[0], WinkAuthentication):
            exc = WinkAPIException(MissingToken(), _wink().config.realm)
    if isinstance(exc, WinkAPIException):
        set_rollback()  # as DRF's handler does (ATOMIC_REQUESTS)
        request = context.get("request")
        return _http_response(exc.rendered, head=getattr(request, "method", None) == "HEAD")
    return drf_exception_handler(exc, context)

"""What the middlewares leave on a request, whatever the framework's request object: the verified
profile (:func:`get_profile`), the access token it was verified from (:func:`get_access_token`)
and the verifier that did it (:func:`get_verifier`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wink_middleware._exceptions import MissingToken
from wink_middleware._profile import WinkProfile

__all__ = [
    "TOKEN_KEY",
    "VERIFIER_KEY",
    "WSGI_ERROR_KEY",
    "WSGI_KEY",
    "get_access_token",
    "get_profile",
    "get_verifier",
    "require_profile",
]

#: Where WinkWSGIMiddleware puts the profile in the WSGI environ.
WSGI_KEY = "wink.profile"
#: Where it keeps the refusal it turned into anonymous (``anonymous_on_invalid``).
WSGI_ERROR_KEY = "wink.error"
#: Where WinkMiddleware puts the profile in the ASGI scope.
ASGI_KEY = "wink"
#: Where every middleware keeps how to read the verified token: scope, environ or Django's ``META``.
TOKEN_KEY = "wink.access_token"  # noqa: S105 (a key name, not a token)
#: Where every middleware puts its verifier, likewise.
VERIFIER_KEY = "wink.verifier"


def get_profile(obj: Any) -> WinkProfile | None:
    """The verified profile of a request, or ``None`` (anonymous on an optional or public path).

    Accepts an ASGI scope, a Starlette/FastAPI ``Request`` or ``WebSocket``, a WSGI environ, a
    Flask/Werkzeug request or a Django ``HttpRequest``.
    """
    if isinstance(obj, Mapping):
        found = obj.get(WSGI_KEY) if "wsgi.version" in obj or WSGI_KEY in obj else obj.get(ASGI_KEY)
    elif isinstance(getattr(obj, "META", None), Mapping):  # Django HttpRequest (ASGI's has .scope)
        found = obj.META.get(WSGI_KEY)
    elif isinstance(getattr(obj, "scope", None), Mapping):  # Starlette HTTPConnection
        found = obj.scope.get(ASGI_KEY)
    elif isinstance(getattr(obj, "environ", None), Mapping):  # Werkzeug / Flask request
        found = obj.environ.get(WSGI_KEY)
    else:
        raise TypeError(
            f"get_profile() takes an ASGI scope, a WSGI environ or a framework request, "
            f"not {type(obj).__name__}"
        )
    return found if isinstance(found, WinkProfile) else None


def require_profile(obj: Any) -> WinkProfile:
    """The verified profile of a request; raise :class:`MissingToken` if there is none.

    The strict twin of :func:`get_profile` for handlers on protected paths, where the middleware
    only lets verified requests through: the result is a :class:`WinkProfile`, never ``None``, so
    the handler type-checks without an ``assert``. Takes the same objects as :func:`get_profile`.
    It raises for an anonymous request (an optional or public path) and where the middleware never
    ran; call :func:`get_profile` where anonymous requests are expected.
    """
    profile = get_profile(obj)
    if profile is None:
        raise MissingToken()
    return profile


def get_access_token(obj: Any) -> str | None:
    """The access token this request was verified with, or ``None`` (no verified token).

    Whatever its source (the ``Authorization`` header, the cookie, the query parameter or the
    websocket subprotocol), so a logout handler can revoke exactly it:
    ``await get_verifier(request).revoke(get_access_token(request))``. Takes the same objects as
    :func:`get_profile`; ``None`` on a public path, for an anonymous request and where no
    middleware ran.
    """
    found = _carried(obj, TOKEN_KEY, "get_access_token")
    if not isinstance(found, tuple):
        return None
    # (the middleware's extractor, the request's view), kept by the middleware at admission:
    # the token is read again only here, so a request that never asks costs no copy of it.
    extract, view = found
    token: bytes = extract(view)
    return token.decode("ascii")


def get_verifier(obj: Any) -> Any:
    """The verifier of the middleware that handled this request (:class:`AsyncWinkVerifier`
    under ASGI and ASGI Django, :class:`WinkVerifier` under WSGI), e.g. to ``revoke()`` a token
    at logout; ``None`` where no middleware ran. Takes the same objects as :func:`get_profile`.
    """
    return _carried(obj, VERIFIER_KEY, "get_verifier")


def _carried(obj: Any, key: str, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    for attribute in ("META", "scope", "environ"):  # Django, Starlette, Werkzeug / Flask
        carrier = getattr(obj, attribute, None)
        if isinstance(carrier, Mapping):
            return carrier.get(key)
    raise TypeError(
        f"{name}() takes an ASGI scope, a WSGI environ or a framework request, "
        f"not {type(obj).__name__}"
    )

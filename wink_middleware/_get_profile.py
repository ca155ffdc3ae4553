"""get_profile(): the verified WinkProfile of a request, whatever the framework's request object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wink_middleware._exceptions import MissingToken
from wink_middleware._profile import WinkProfile

__all__ = ["WSGI_ERROR_KEY", "WSGI_KEY", "get_profile", "require_profile"]

#: Where WinkWSGIMiddleware puts the profile in the WSGI environ.
WSGI_KEY = "wink.profile"
#: Where it keeps the refusal it turned into anonymous (``anonymous_on_invalid``).
WSGI_ERROR_KEY = "wink.error"
#: Where WinkMiddleware puts the profile in the ASGI scope.
ASGI_KEY = "wink"


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

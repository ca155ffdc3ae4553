"""FastAPI dependencies over :class:`~wink_middleware.WinkMiddleware`: ``CurrentUser``, ``OptionalUser``,
``require()``.

```python
from fastapi import Depends, FastAPI
from wink_middleware import WinkMiddleware
from wink_middleware.fastapi import CurrentUser, OptionalUser, require

app = FastAPI()
app.add_middleware(WinkMiddleware, optional_paths=["/*"])

@app.get("/me")
async def me(user: CurrentUser) -> dict[str, str]: ...

@app.get("/admin", dependencies=[Depends(require(lambda u: u.email.endswith("@example.com")))])
async def admin() -> dict[str, str]: ...
```

The dependencies read what the middleware put in the scope and never verify a token again. Their
errors are the middleware's: the same status, RFC 6750 ``WWW-Authenticate`` challenge and JSON body
(``{"error": ..., "error_description": ...}``, never FastAPI's ``{"detail": ...}``); on a websocket
route, the denial response when the server offers ``websocket.http.response``, else a close with
1008 before the handshake is accepted. No setup line is needed: a failing dependency raises
:class:`WinkHTTPException` and makes sure the running app's exception handlers know how to render it
(an app handler of your own for :class:`WinkHTTPException` takes precedence).

In tests, skip Wink altogether: ``app.dependency_overrides[current_user] = lambda:
WinkProfile(wink_token="u1")`` (``require()`` depends on ``current_user``, so it sees that user too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

try:
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
except ImportError as exc:
    raise ImportError(
        "wink_middleware.fastapi needs FastAPI, which is not installed: pip install fastapi"
    ) from exc
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from wink_middleware._config import WinkConfig
from wink_middleware._exceptions import (
    AuthenticationFailed,
    InsufficientScope,
    MissingToken,
    WinkConfigError,
)
from wink_middleware._get_profile import ASGI_KEY
from wink_middleware._profile import WinkProfile
from wink_middleware._routing.responses import ErrorResponse, render, websocket_close_code

__all__ = [
    "AUTH_RESPONSES",
    "CurrentUser",
    "OptionalUser",
    "WinkHTTPException",
    "current_user",
    "optional_user",
    "require",
]

# WinkMiddleware puts its realm there.
_REALM_KEY = "wink.realm"
_DEFAULT_REALM = str(WinkConfig.__dataclass_fields__["realm"].default)
_HANDLERS_KEY = "starlette.exception_handlers"
# Headers that describe the JSON body: FastAPI's fallback {"detail": ...} rendering must not get them.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


class WinkHTTPException(HTTPException):
    """A failed dependency, rendered exactly as the middleware renders ``error``.

    A FastAPI ``HTTPException`` (``status_code``, ``detail`` and the ``WWW-Authenticate`` header), so
    an app-wide handler for 401 or 403 still sees it; ``error`` is the
    :class:`~wink_middleware.AuthenticationFailed` and ``response`` its ready RFC 6750 answer.
    """

    def __init__(self, error: AuthenticationFailed, realm: str) -> None:
        self.error = error
        self.response: ErrorResponse = render(error, realm)
        super().__init__(
            self.response.status,
            error.description,
            {k: v for k, v in self.response.headers if k.lower() not in _BODY_HEADERS},
        )


async def _render_denial(conn: HTTPConnection, exc: Exception) -> Response | None:
    assert isinstance(exc, WinkHTTPException)
    rendered = exc.response
    response = Response(rendered.body, rendered.status, dict(rendered.headers))
    extensions = conn.scope.get("extensions") or {}
    if isinstance(conn, WebSocket) and "websocket.http.response" not in extensions:
        await conn.close(websocket_close_code(exc.error), exc.error.description)
        return None
    # Starlette sends a Response on a websocket scope as the websocket.http.response denial.
    return response


def _deny(conn: HTTPConnection, error: AuthenticationFailed) -> WinkHTTPException:
    # The routes and ExceptionMiddleware look handlers up in this per-app table (the one
    # app.add_exception_handler fills) when the exception arrives, so registering here on the first
    # failure is enough, and a handler the app registered itself is kept.
    handlers = conn.scope.get(_HANDLERS_KEY)
    if handlers is not None:
        handlers[0].setdefault(WinkHTTPException, _render_denial)
    return WinkHTTPException(error, conn.scope.get(_REALM_KEY, _DEFAULT_REALM))


class _WinkBearer(HTTPBearer):
    """Puts the bearer scheme in the OpenAPI document (Swagger UI's Authorize button, the locks).

    It reads nothing: WinkMiddleware has already taken and verified the token, from whichever source
    it is configured for. Its ``__call__`` takes an ``HTTPConnection``, so websocket routes work too.
    """

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        return None


_bearer = _WinkBearer(
    scheme_name="WinkBearer",
    description="A Wink Login access token, verified by WinkMiddleware.",
    auto_error=False,
)


def _profile(conn: HTTPConnection) -> WinkProfile | None:
    scope = conn.scope
    if ASGI_KEY not in scope:
        raise WinkConfigError(
            f"{conn.url.path!r} was not seen by WinkMiddleware: add it to the app "
            "(app.add_middleware(WinkMiddleware, ...)) before using wink_middleware.fastapi's "
            "dependencies"
        )
    profile: WinkProfile | None = scope[ASGI_KEY]
    return profile


async def current_user(
    conn: HTTPConnection,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> WinkProfile:
    """The verified user; without one (an optional or public path), the middleware's 401.

    Raises :class:`~wink_middleware.WinkConfigError` when WinkMiddleware did not handle the request.
    """
    profile = _profile(conn)
    if profile is None:
        raise _deny(conn, MissingToken())
    return profile


async def optional_user(
    conn: HTTPConnection,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> WinkProfile | None:
    """The verified user, or ``None`` for an anonymous request on an optional or public path.

    Raises :class:`~wink_middleware.WinkConfigError` when WinkMiddleware did not handle the request.
    """
    return _profile(conn)


_ERROR_BODY: dict[str, Any] = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"},
            },
            "required": ["error"],
        }
    }
}

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed token (`invalid_request`)", "content": _ERROR_BODY},
    401: {
        "description": "No token (`missing_token`), or Wink refused it (`invalid_token`)",
        "content": _ERROR_BODY,
    },
    403: {
        "description": "`require(...)` refused the user (`insufficient_scope`)",
        "content": _ERROR_BODY,
    },
    503: {"description": "Wink unavailable (`temporarily_unavailable`)", "content": _ERROR_BODY},
}
"""The middleware's answers for the OpenAPI document: ``@app.get(..., responses=AUTH_RESPONSES)``
(or ``APIRouter(responses=...)``), so the docs show a protected route's 401, 403 and 503."""

CurrentUser = Annotated[WinkProfile, Depends(current_user)]
"""A route parameter ``user: CurrentUser`` gets the verified :class:`~wink_middleware.WinkProfile`."""

OptionalUser = Annotated[WinkProfile | None, Depends(optional_user)]
"""A route parameter ``user: OptionalUser`` gets the profile, or ``None`` when anonymous."""


def require(
    predicate: Callable[[WinkProfile], bool],
    description: str = "the user is not allowed to do this",
) -> Callable[..., Awaitable[WinkProfile]]:
    """A dependency that answers 403 ``insufficient_scope`` unless ``predicate(user)`` is true.

    Use it as ``dependencies=[Depends(require(...))]`` or
    ``user: Annotated[WinkProfile, Depends(require(...))]``; without a user it answers like
    :func:`current_user`. ``description`` becomes the answer's ``error_description``.
    """
    if not callable(predicate):
        raise TypeError("require() takes a function of the WinkProfile that returns a bool")
    if not description.isascii() or not description.isprintable():
        # It goes into the WWW-Authenticate header.
        raise ValueError("require()'s description must be printable ASCII")

    async def dependency(conn: HTTPConnection, user: CurrentUser) -> WinkProfile:
        if not predicate(user):
            raise _deny(conn, InsufficientScope(description))
        return user

    name = getattr(predicate, "__name__", "predicate")
    dependency.__name__ = dependency.__qualname__ = f"require({name})"
    return dependency

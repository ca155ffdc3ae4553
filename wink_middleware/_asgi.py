"""WinkMiddleware: pure ASGI middleware (http, websocket, lifespan) that verifies Wink bearer tokens."""

from __future__ import annotations

from typing import Unpack

from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wink_middleware._adapter import Adapter
from wink_middleware._async_verifier import AsyncWinkVerifier
from wink_middleware._config import WinkConfig, WinkOptions
from wink_middleware._engine import Miss
from wink_middleware._exceptions import AuthenticationFailed, MissingToken
from wink_middleware._policy import Access
from wink_middleware._responses import render, websocket_close_code

__all__ = ["WinkMiddleware"]

_PROTECTED = Access.PROTECTED
_PUBLIC = Access.PUBLIC
_AUTHENTICATED = ("authenticated",)


class WinkMiddleware(Adapter[AsyncWinkVerifier]):
    """Protects an ASGI app with Wink Login.

    ``WinkMiddleware(app, config=WinkConfig(...))``, or the config's fields as keyword options
    (read over ``WinkConfig.from_env()``), or ``verifier=AsyncWinkVerifier(...)`` to share or inject one.
    On success the scope gets ``"wink"`` and ``"user"`` (the :class:`WinkProfile`) and ``"auth"``
    (``AuthCredentials(["authenticated"])``); on failure the app is not called and the client gets
    the RFC 6750 answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: WinkConfig | None = None,
        verifier: AsyncWinkVerifier | None = None,
        **options: Unpack[WinkOptions],
    ) -> None:
        super().__init__(config, verifier, options, AsyncWinkVerifier)
        self.app = app
        # A cache hit needs no coroutine: the engine's lookup answers it, and only a miss awaits
        # the verifier (0.15-0.2 µs a request).
        self._lookup = self.verifier._core.lookup_bytes
        self._resolve = self.verifier._resolve
        self._bearer = self._tokens.bearer_bytes
        self._realm = self.config.realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            if scope_type == "lifespan":
                send = self._closing_at_shutdown(send)
            await self.app(scope, receive, send)
            return

        # For integrations that answer in the middleware's name (wink_middleware.fastapi).
        scope["wink.realm"] = self._realm
        if self._all_protected:
            access = _PROTECTED
        else:
            path = scope["path"]
            root_path = scope.get("root_path")
            if root_path and path.startswith(root_path):
                path = path[len(root_path) :] or "/"
            access = self._policy.access(path)
            if access is _PUBLIC:
                _anonymous(scope)
                await self.app(scope, receive, send)
                return

        authorization: list[bytes] = []
        cookies: list[str] = []
        read_cookies = self._read_cookies
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization.append(value)
            elif read_cookies and name == b"cookie":
                cookies.append(value.decode("latin-1"))
        if (
            self._preflight_passes
            and scope_type == "http"
            and scope["method"] == "OPTIONS"
            and _is_preflight(scope)
        ):
            await self.app(scope, receive, send)
            return

        try:
            if len(authorization) == 1:
                token = self._bearer(authorization[0])
            else:
                query = scope.get("query_string", b"").decode("latin-1") if self._read_query else ""
                token = self._tokens.extract(
                    [v.decode("latin-1") for v in authorization], cookies, query
                ).encode("latin-1")
            profile = self._lookup(token)
            if type(profile) is Miss:
                profile = await self._resolve(profile)
        except MissingToken as exc:
            if access is _PROTECTED:
                await self._deny(scope, receive, send, exc)
                return
            scope["wink"] = None
            scope["user"] = UnauthenticatedUser()
            scope["auth"] = AuthCredentials()
            await self.app(scope, receive, send)
            return
        except AuthenticationFailed as exc:
            await self._deny(scope, receive, send, exc)
            return
        scope["wink"] = scope["user"] = profile
        scope["auth"] = AuthCredentials(_AUTHENTICATED)
        await self.app(scope, receive, send)

    async def _deny(
        self, scope: Scope, receive: Receive, send: Send, exc: AuthenticationFailed
    ) -> None:
        on_error = self.config.on_error
        if on_error is not None:
            response = on_error(HTTPConnection(scope, receive), exc)
            if response is not None:
                await response(scope, receive, send)
                return
        rendered = render(exc, self.config.realm)
        if scope["type"] == "http":
            prefix = "http"
        elif "websocket.http.response" in (scope.get("extensions") or {}):
            prefix = "websocket.http"
        else:
            # Close before accepting: the server answers the handshake with 403.
            await send(
                {
                    "type": "websocket.close",
                    "code": websocket_close_code(exc),
                    "reason": exc.description,
                }
            )
            return
        await send(
            {
                "type": f"{prefix}.response.start",
                "status": rendered.status,
                "headers": rendered.asgi_headers,
            }
        )
        await send({"type": f"{prefix}.response.body", "body": rendered.body})

    def _closing_at_shutdown(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.verifier.aclose()
            await send(message)

        return lifespan_send

    async def aclose(self) -> None:
        """Close the verifier's HTTP client (also done when the app's lifespan shuts down)."""
        await self.verifier.aclose()


def _anonymous(scope: Scope) -> None:
    # setdefault: an outer authentication middleware's user is kept on a path we do not check.
    scope.setdefault("wink", None)
    scope.setdefault("user", UnauthenticatedUser())
    scope.setdefault("auth", AuthCredentials())


def _is_preflight(scope: Scope) -> bool:
    origin = request_method = False
    for name, _ in scope["headers"]:
        if name == b"origin":
            origin = True
        elif name == b"access-control-request-method":
            request_method = True
    return origin and request_method

"""WinkMiddleware: pure ASGI middleware (http, websocket, lifespan) that verifies Wink bearer tokens."""

from __future__ import annotations

import asyncio
from typing import Any, Unpack, cast

from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wink_middleware._adapters.common import Adapter
from wink_middleware._config import WinkConfig, WinkOptions
from wink_middleware._engine.async_verifier import AsyncWinkVerifier
from wink_middleware._exceptions import AuthenticationFailed, MissingToken, WinkConfigError
from wink_middleware._get_profile import TOKEN_KEY, VERIFIER_KEY
from wink_middleware._logging import logger
from wink_middleware._routing.gate import (
    ANONYMOUS,
    CREATE_SESSION,
    PENDING,
    PREFLIGHT,
    PUBLIC,
    SESSION_ANSWER,
    Outcome,
)
from wink_middleware._routing.responses import render, websocket_close_code
from wink_middleware._routing.view import RequestView

__all__ = ["WinkMiddleware"]


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
        try:
            super().__init__(config, verifier, options, AsyncWinkVerifier)
        except WinkConfigError as error:
            if not _server_running():
                raise
            # Built by the server's first ASGI call: Starlette and FastAPI build their middleware
            # stack on the lifespan startup, where an exception reads to uvicorn (--lifespan
            # auto) as "no lifespan support": it would serve, then answer every request with a
            # 500. Kept instead, to fail the startup (see _Misconfigured).
            self.__class__ = _Misconfigured
            self.app = app
            self._error = str(error)
            return
        self.app = app
        # Only a miss goes through resolve() (awaited on the async twin).
        self._resolve = self.verifier.resolve
        self._realm = self.config.realm
        self._marker = self.config.websocket_subprotocol or ""
        # No cookie, query or subprotocol source: a request other than OPTIONS needs only its
        # path and Authorization headers.
        self._plain = not (self._read_cookies or self._read_query or self._read_subprotocols)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            if scope_type == "lifespan":
                send = self._closing_at_shutdown(send)
            await self.app(scope, receive, send)
            return

        # For integrations that answer in the middleware's name (wink_middleware.fastapi), and
        # for handlers (get_verifier(), e.g. to revoke at logout).
        scope["wink.realm"] = self._realm
        scope[VERIFIER_KEY] = self.verifier
        # The root_path is stripped here alone: routing matches paths as the app sees them.
        path = scope["path"]
        root_path = scope.get("root_path")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        method = scope.get("method", "GET")
        if self._plain and method != "OPTIONS" and path != self._session_path:
            # The common request: only the path and Authorization matter (read inline: saves a
            # call on every request).
            view = RequestView(
                path,
                method,
                [value for name, value in scope["headers"] if name == b"authorization"],
            )
        else:
            view = self._view(scope, path, method)
        decided = self._decide(view)
        if type(decided) is Outcome:
            outcome = decided
            if outcome.kind is PENDING:
                try:
                    decided = self._resolved(await self._resolve(outcome.miss))
                except AuthenticationFailed as exc:
                    decided = self._failed(outcome.access, exc)
            if type(decided) is Outcome:
                await self._not_admitted(decided, view, scope, receive, send)
                return
        if view.subprotocols:
            _drop_token(scope, self._marker)
        scope["wink"] = scope["user"] = decided
        scope[TOKEN_KEY] = (self._extract, view)  # read by get_access_token(), if ever
        scope["auth"] = AuthCredentials(_AUTHENTICATED)
        await self.app(scope, receive, send)

    async def _not_admitted(
        self, outcome: Outcome, view: RequestView, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The I/O of a request the gate did not admit: pass it on unchecked or anonymous, or deny."""
        kind = outcome.kind
        if kind is PUBLIC:
            _anonymous(scope)
            await self.app(scope, receive, send)
        elif kind is PREFLIGHT:
            await self._preflight(scope, receive, send)
        elif kind is SESSION_ANSWER or kind is CREATE_SESSION:
            await self._session(outcome, send)
        elif kind is ANONYMOUS:
            if view.subprotocols:
                _drop_token(scope, self._marker)
            _anonymous(scope, replace=True)
            if outcome.error is not None:
                scope["wink.error"] = outcome.error  # anonymous_on_invalid: the page can say why
            await self.app(scope, receive, send)
        else:
            await self._deny(scope, receive, send, cast(AuthenticationFailed, outcome.error))

    async def _session(self, outcome: Outcome, send: Send) -> None:
        """The session route's I/O: create the session it asks for, send its answer."""
        answer = outcome.answer
        command = outcome.command
        if command is not None:
            try:
                session = await self.verifier.create_session(command.return_url, command.cancel_url)
            except AuthenticationFailed as exc:
                answer = self._gate.session_failed(exc)
            else:
                answer = self._gate.session_created(session)
        assert answer is not None
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.asgi_headers}
        )
        await send({"type": "http.response.body", "body": answer.body})

    def _view(self, scope: Scope, path: str, method: str) -> RequestView:
        """What routing reads of this request, in one pass over its headers."""
        authorization = []
        cookies: list[str] = []
        origin = request_method = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization.append(value)
            elif name == b"cookie":
                cookies.append(value.decode("latin-1"))
            elif name == b"origin":
                origin = True
            elif name == b"access-control-request-method":
                request_method = True
        view = RequestView(path, method, authorization)
        view.cors(origin, request_method)
        if self._read_cookies:
            view.cookies = cookies
        if self._read_query or path == self._session_path:
            view.query = scope.get("query_string", b"").decode("latin-1")
            view.websocket = scope["type"] == "websocket"
        if self._read_subprotocols and scope["type"] == "websocket":
            view.subprotocols = scope.get("subprotocols") or None
        return view

    async def _preflight(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a CORS preflight on anonymous, fail-closed: only a CORS answer goes back.

        A method-agnostic handler (a plain ASGI app, a Django function view) would otherwise serve
        its protected content to anyone who adds ``Origin`` and ``Access-Control-Request-Method``.
        So an answer carrying ``Access-Control-Allow-Origin`` is sent without its body, and any
        other is replaced by the answer a request without a token gets.
        """
        _anonymous(scope)
        answered = False

        async def preflight_send(message: Message) -> None:
            nonlocal answered
            if answered or message["type"] != "http.response.start":
                return  # the body, trailers, anything after the answer: dropped
            answered = True
            headers = message.get("headers") or []
            if any(name.lower() == b"access-control-allow-origin" for name, _ in headers):
                kept = [(n, v) for n, v in headers if n.lower() != b"content-length"]
                kept.append((b"content-length", b"0"))
                await send(
                    {"type": "http.response.start", "status": message["status"], "headers": kept}
                )
                await send({"type": "http.response.body", "body": b""})
            else:
                await self._deny(scope, receive, send, MissingToken())

        try:
            await self.app(scope, receive, preflight_send)
        except Exception:
            # An app that expects every request to carry a user may fail on an anonymous one:
            # that is the token-less answer too, not a 500.
            if answered:
                raise
            logger.info("the app raised on an anonymous CORS preflight: answered 401")
            await self._deny(scope, receive, send, MissingToken())

    async def _deny(
        self, scope: Scope, receive: Receive, send: Send, exc: AuthenticationFailed
    ) -> None:
        if scope["type"] == "websocket":
            # Take the handshake's websocket.connect first: a server whose app answers before it
            # logs "ASGI callable returned without completing handshake" as an ERROR.
            await receive()
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


def _drop_token(scope: Scope, marker: str) -> None:
    """Take the token entry (the one after ``marker``) out of the offered subprotocols: the app
    must not see, log or echo it, refused or not."""
    offered: list[str] = scope["subprotocols"]
    if marker in offered:
        at = offered.index(marker)
        scope["subprotocols"] = [*offered[: at + 1], *offered[at + 2 :]]


def _anonymous(scope: Scope, *, replace: bool = False) -> None:
    """Mark the request anonymous. Without ``replace`` (a path we do not check), an outer
    authentication middleware's user is kept."""
    if replace:
        scope["wink"] = None
        scope["user"] = UnauthenticatedUser()
        scope["auth"] = AuthCredentials()
    else:
        scope.setdefault("wink", None)
        scope.setdefault("user", UnauthenticatedUser())
        scope.setdefault("auth", AuthCredentials())


def _server_running() -> bool:
    """Whether this runs inside an event loop (a server's first ASGI call), not at import."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Misconfigured(WinkMiddleware):
    """A :class:`WinkMiddleware` whose configuration failed while a server was already running.

    It fails the lifespan startup with the :class:`~wink_middleware.WinkConfigError` (uvicorn
    logs it and exits, also under ``--lifespan auto``) and answers no request: without a
    lifespan, each request raises the error (the server logs it).
    """

    _error: str

    @property
    def config(self) -> Any:  # type: ignore[override]
        raise WinkConfigError(self._error)

    @property
    def verifier(self) -> Any:  # type: ignore[override]
        raise WinkConfigError(self._error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            raise WinkConfigError(self._error)
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send(
                {"type": "lifespan.startup.failed", "message": f"WinkConfigError: {self._error}"}
            )

    async def aclose(self) -> None:
        return None

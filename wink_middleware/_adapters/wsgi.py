"""WinkWSGIMiddleware: WSGI middleware (PEP 3333) that verifies Wink bearer tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Unpack, cast

from wink_middleware._adapters.common import Adapter
from wink_middleware._config import WinkConfig, WinkOptions
from wink_middleware._engine.sync_verifier import WinkVerifier
from wink_middleware._exceptions import AuthenticationFailed, MissingToken
from wink_middleware._get_profile import TOKEN_KEY, VERIFIER_KEY, WSGI_ERROR_KEY, WSGI_KEY
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
from wink_middleware._routing.responses import render
from wink_middleware._routing.view import RequestView

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["WinkWSGIMiddleware", "environ_view"]


# What an Authorization value a server did not give as text becomes: a malformed token (400).
_UNREADABLE = b"Bearer \x7f"


class WinkWSGIMiddleware(Adapter[WinkVerifier]):
    """Protects a WSGI app (Flask, Django, any PEP 3333 app) with Wink Login.

    ``WinkWSGIMiddleware(app, config=WinkConfig(...))``, or the config's fields as keyword options
    (read over ``WinkConfig.from_env()``), or ``verifier=WinkVerifier(...)`` to share or inject one.
    On success the environ gets ``"wink.profile"`` (the :class:`WinkProfile`) and, with
    ``remote_user``, ``"REMOTE_USER"`` (its winkToken); on an optional path without a token,
    ``"wink.profile"`` is ``None``. On failure the app is not called and the client gets the
    RFC 6750 answer. The request body is never read. Safe under threaded servers.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        config: WinkConfig | None = None,
        verifier: WinkVerifier | None = None,
        **options: Unpack[WinkOptions],
    ) -> None:
        super().__init__(config, verifier, options, WinkVerifier)
        self.app = app
        # Only a miss goes through resolve() (awaited on the async twin).
        self._resolve = self.verifier.resolve
        self._remote_user = self.config.remote_user

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        view = environ_view(environ, self._read_cookies, self._read_query, self._session_path)
        decided = self._decide(view)
        if type(decided) is Outcome:
            outcome = decided
            if outcome.kind is PENDING:
                try:
                    decided = self._resolved(self._resolve(outcome.miss))
                except AuthenticationFailed as exc:
                    decided = self._failed(outcome.access, exc)
            if type(decided) is Outcome:
                return self._not_admitted(decided, environ, start_response)
        environ[WSGI_KEY] = decided
        environ[TOKEN_KEY] = (self._extract, view)  # read by get_access_token(), if ever
        # Set only where the app is called: a denied request's environ stays as small as before.
        environ[VERIFIER_KEY] = self.verifier  # for handlers: get_verifier()
        if self._remote_user:
            environ["REMOTE_USER"] = decided.wink_token
        return self.app(environ, start_response)

    def _not_admitted(
        self, outcome: Outcome, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The I/O of a request the gate did not admit: pass it on unchecked or anonymous, or deny."""
        kind = outcome.kind
        if kind is PUBLIC:
            environ[VERIFIER_KEY] = self.verifier
            return self.app(environ, start_response)
        if kind is PREFLIGHT:
            return self._preflight(environ, start_response)
        if kind is SESSION_ANSWER or kind is CREATE_SESSION:
            return self._session(outcome, environ, start_response)
        if kind is ANONYMOUS:
            environ[WSGI_KEY] = None
            if outcome.error is not None:
                environ[WSGI_ERROR_KEY] = (
                    outcome.error
                )  # anonymous_on_invalid: the page can say why
            environ[VERIFIER_KEY] = self.verifier
            return self.app(environ, start_response)
        return self._deny(environ, start_response, cast(AuthenticationFailed, outcome.error))

    def _session(
        self, outcome: Outcome, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The session route's I/O: create the session it asks for, send its answer."""
        answer = outcome.answer
        command = outcome.command
        if command is not None:
            try:
                session = self.verifier.create_session(command.return_url, command.cancel_url)
            except AuthenticationFailed as exc:
                answer = self._gate.session_failed(exc)
            else:
                answer = self._gate.session_created(session)
        assert answer is not None
        start_response(_status_line(answer.status), list(answer.headers))
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [answer.body]

    def _preflight(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Pass a CORS preflight on anonymous, fail-closed: only a CORS answer goes back.

        A method-agnostic view (a Django function view) would otherwise serve its protected content
        to anyone who adds ``Origin`` and ``Access-Control-Request-Method``. So an answer carrying
        ``Access-Control-Allow-Origin`` is sent without its body, and any other is replaced by the
        answer a request without a token gets.
        """
        environ.setdefault(WSGI_KEY, None)
        answer: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> Callable[[bytes], object]:
            answer[:] = [(status, headers)]
            return _discard

        try:
            result = self.app(environ, capture)
            try:
                # The app may answer lazily (a generator calls start_response on its first step).
                for _ in result:
                    if answer:
                        break
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            # An app that expects every request to carry a user may fail on an anonymous one:
            # that is the token-less answer too, not a 500.
            logger.info("the app raised on an anonymous CORS preflight: answered 401")
            answer.clear()
        if answer:
            status, headers = answer[0]
            if any(name.lower() == "access-control-allow-origin" for name, _ in headers):
                kept = [(n, v) for n, v in headers if n.lower() != "content-length"]
                start_response(status, [*kept, ("Content-Length", "0")])
                return []
        return self._deny(environ, start_response, MissingToken())

    def _deny(
        self, environ: WSGIEnvironment, start_response: StartResponse, exc: AuthenticationFailed
    ) -> Iterable[bytes]:
        on_error = self.config.on_error
        if on_error is not None:
            response = on_error(environ, exc)
            if response is not None:
                result: Iterable[bytes] = response(environ, start_response)
                return result
        rendered = render(exc, self.config.realm)
        start_response(_status_line(rendered.status), list(rendered.headers))
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [rendered.body]

    def close(self) -> None:
        """Close the verifier's HTTP client (call it when the server shuts down)."""
        self.verifier.close()


def environ_view(
    environ: Mapping[str, Any],
    read_cookies: bool,
    read_query: bool,
    session_path: str | None = None,
) -> RequestView:
    """What routing reads of a WSGI environ (or Django's ``request.META``), in PEP 3333 text and
    the token as latin-1 bytes. Cookies and the query are read only when configured (the query
    also on ``session_path``, the session route's)."""
    path = environ.get("PATH_INFO") or "/"
    if type(path) is not str:
        path = "/"
    elif not path.isascii():
        path = _decode_path(path)
    method = environ.get("REQUEST_METHOD") or "GET"
    value = environ.get("HTTP_AUTHORIZATION")
    if value is None:
        authorization = []
    elif type(value) is str and value.isascii():
        authorization = [value.encode("ascii")]
    else:
        authorization = [_header_bytes(value)]
    view = RequestView(path, method, authorization)
    if method == "OPTIONS":
        view.cors("HTTP_ORIGIN" in environ, "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ)
    if read_cookies:
        cookie = environ.get("HTTP_COOKIE")
        view.cookies = [cookie] if type(cookie) is str else None
    if read_query or path == session_path:
        query = environ.get("QUERY_STRING")
        view.query = query if type(query) is str else ""
    return view


def _discard(_data: bytes) -> None:
    return None


def _header_bytes(value: object) -> bytes:
    """A PEP 3333 header value (latin-1 text) back in the bytes it came as."""
    if type(value) is not str:
        return _UNREADABLE
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # a lone surrogate or a character no server should send
        return _UNREADABLE


def _decode_path(path: str) -> str:
    # PEP 3333 carries the raw path bytes as latin-1; ASGI paths (and the configured patterns)
    # are UTF-8 text, so decode the same way to match the same way.
    try:
        return path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return path


_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


def _status_line(status: int) -> str:
    return _STATUS_LINES.get(status) or f"{status} Error"

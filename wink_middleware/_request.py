"""RequestView: what routing reads of one request, filled in one pass by an adapter."""

from __future__ import annotations

__all__ = ["RequestView"]


class RequestView:
    """The parts of a request the path policy and the token extractor decide on.

    ``path`` is without ``root_path`` (WSGI: ``PATH_INFO`` as UTF-8 text); ``authorization`` holds
    every Authorization header value as bytes; ``cookies`` every Cookie header value as text, and
    ``query`` the query string as text, each filled only when that token source is configured;
    ``subprotocols`` the websocket subprotocols offered, when that source is configured.
    """

    __slots__ = ("authorization", "cookies", "method", "path", "preflight", "query", "subprotocols")

    def __init__(
        self,
        path: str,
        method: str,
        authorization: list[bytes],
        *,
        origin: bool = False,
        request_method: bool = False,
        cookies: list[str] | None = None,
        query: str = "",
        subprotocols: list[str] | None = None,
    ) -> None:
        self.path = path
        self.method = method
        self.authorization = authorization
        self.cookies = cookies
        self.query = query
        self.subprotocols = subprotocols
        #: A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method.
        self.preflight = method == "OPTIONS" and origin and request_method

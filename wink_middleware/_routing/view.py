"""RequestView: what routing reads of one request, filled in one pass by an adapter."""

from __future__ import annotations

__all__ = ["RequestView"]


class RequestView:
    """The parts of a request the path policy and the token extractor decide on.

    ``path`` is without ``root_path`` (WSGI: ``PATH_INFO`` as UTF-8 text); ``authorization`` holds
    every Authorization header value as bytes. The adapter sets the rest only when it applies:
    ``preflight`` (see :meth:`cors`), ``cookies`` (every Cookie header value, as text) when
    ``cookie_name`` is configured, ``query`` (the query string, as text) with ``query_param`` and
    on the session path, ``subprotocols`` (offered by a websocket handshake) with
    ``websocket_subprotocol``, and ``websocket`` (a websocket handshake) on the session path.
    """

    # Class-level defaults rather than __slots__: a plain request sets three attributes, which
    # keeps building a view about 0.2 µs cheaper on every request.
    preflight = False
    cookies: list[str] | None = None
    query = ""
    subprotocols: list[str] | None = None
    websocket = False

    def __init__(self, path: str, method: str, authorization: list[bytes]) -> None:
        self.path = path
        self.method = method
        self.authorization = authorization

    def cors(self, origin: bool, request_method: bool) -> None:
        """Record the CORS headers of an ``OPTIONS`` request: a preflight carries both."""
        self.preflight = self.method == "OPTIONS" and origin and request_method

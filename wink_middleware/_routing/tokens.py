"""Pull the bearer token out of a request: Authorization header, then cookie, subprotocol, query.

Rules (RFC 6750): no credentials or another scheme is *missing*; ``Bearer`` with an empty, oversize or
ill-formed credential, or several Authorization headers, is an *invalid request*. The length and
b64token rule is :func:`~wink_middleware._token_rule.check_token`, the one every source and
``verify()`` use.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from wink_middleware._config import WinkConfig
from wink_middleware._exceptions import InvalidRequest, MissingToken
from wink_middleware._routing.view import RequestView
from wink_middleware._token_rule import check_token

__all__ = ["TokenExtractor"]


class TokenExtractor:
    """Extracts the token of a :class:`RequestView` according to a :class:`WinkConfig`."""

    __slots__ = ("cookie_name", "max_length", "query_param", "subprotocol")

    def __init__(self, config: WinkConfig) -> None:
        self.max_length = config.max_token_length
        self.cookie_name = config.cookie_name
        self.query_param = config.query_param
        self.subprotocol = config.websocket_subprotocol

    def extract(self, view: RequestView) -> bytes:
        """The token, or raise :class:`MissingToken` / :class:`InvalidRequest`.

        The Authorization header's credential is checked for length only: its b64token syntax is
        checked by the verifier on a cache miss (a hit proves it, since only checked tokens are
        cached), which saves a regex over the whole token on every cached request.
        """
        authorization = view.authorization
        if len(authorization) == 1:
            value = authorization[0]
            # The common shape, `Bearer <token>`, is cut here without decoding (bearer() is the
            # whole rule; this saves it a call on every request). Anything else in the credential
            # (two merged headers' comma too) fails the b64token rule on the cache miss: a 400.
            if value[:7].lower() == b"bearer ":
                credential = value[7:].strip(b" ")
                if credential and len(credential) <= self.max_length:
                    return credential
            return self.bearer(value)
        if authorization:
            raise InvalidRequest("more than one Authorization header was sent")
        if view.cookies:
            token = self._from_cookies(view.cookies)
            if token is not None:
                return token
        if view.subprotocols:
            token = self._from_subprotocols(view.subprotocols)
            if token is not None:
                return token
        if view.query:
            token = self._from_query(view.query)
            if token is not None:
                return token
        raise MissingToken()

    def bearer(self, value: bytes) -> bytes:
        """The credential of one ``Authorization`` value, in bytes as it came."""
        # The common shape, `Bearer <token>`, is cut without decoding.
        if value[:7].lower() == b"bearer ":
            credential = value[7:].strip(b" ")
            if credential and len(credential) <= self.max_length and b"," not in credential:
                return credential
        scheme, _, credential = value.strip(b" \t").partition(b" ")
        if scheme.lower() != b"bearer":
            if b"," in value and _names_bearer(value):
                raise InvalidRequest("the Authorization header holds more than one value")
            raise MissingToken()
        credential = credential.strip(b" ")
        if b"," in credential and _names_bearer(credential):
            # A WSGI server joins repeated headers with ", ": a bearer token cannot hold a comma.
            raise InvalidRequest("the Authorization header holds more than one value")
        return check_token(credential, self.max_length)

    def _from_cookies(self, cookies: list[str]) -> bytes | None:
        found: bytes | None = None
        for header in cookies:
            for part in header.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep and name.strip() == self.cookie_name:
                    if found is not None:
                        raise InvalidRequest(
                            f"the {self.cookie_name} cookie was sent more than once"
                        )
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    found = self._checked(value, f"{self.cookie_name} cookie")
        return found

    def _from_subprotocols(self, offered: list[str]) -> bytes | None:
        # `Sec-WebSocket-Protocol: wink.bearer, <token>`: the token is the entry after the marker.
        try:
            at = offered.index(self.subprotocol)  # type: ignore[arg-type]
        except ValueError:
            return None
        if at + 1 >= len(offered):
            raise InvalidRequest(f"the {self.subprotocol} subprotocol carries no token")
        return self._checked(offered[at + 1], f"{self.subprotocol} subprotocol token")

    def _from_query(self, query_string: str) -> bytes | None:
        values = [
            v for k, v in parse_qsl(query_string, keep_blank_values=True) if k == self.query_param
        ]
        if not values:
            return None
        if len(values) > 1:
            raise InvalidRequest(f"the {self.query_param} query parameter was sent more than once")
        return self._checked(values[0], f"{self.query_param} query parameter")

    def _checked(self, value: str, what: str) -> bytes:
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidRequest(f"the {what} is malformed") from None
        return check_token(raw, self.max_length, what)


def _names_bearer(value: bytes) -> bool:
    """Whether one of the comma-separated parts of ``value`` is a Bearer credential."""
    return any(
        part.strip(b" \t").partition(b" ")[0].lower() == b"bearer" for part in value.split(b",")
    )

"""The one exception tree of wink_middleware.

```
WinkError
 ├── WinkConfigError          bad or missing configuration (raised at construction, never per request)
 └── AuthenticationFailed     base of everything a request can fail with
      ├── MissingToken        401, no error attribute (RFC 6750 §3.1)
      ├── InvalidRequest      400, error="invalid_request"
      ├── TokenRejected       401, error="invalid_token"
      ├── WinkUnavailable     503, error="temporarily_unavailable", has .retry_after
      ├── WinkBadResponse     502, error="bad_gateway"
      │    └── WinkCredentialsRejected  502, Wink refused this client's own id/secret (sessions)
      ├── InsufficientScope   403, error="insufficient_scope" (raised by integrations, e.g. require())
      └── RateLimited         429, error="too_many_requests", has .retry_after (the session route)
```

Every message is safe to log and to send to a client: none ever holds a token or the client secret.
Lower-level errors (httpx's, json's) are caught at the edge of the package and re-raised as one of these,
chained with ``from`` so a debugger still sees the cause.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "InsufficientScope",
    "InvalidRequest",
    "MissingToken",
    "RateLimited",
    "TokenRejected",
    "WinkBadResponse",
    "WinkConfigError",
    "WinkCredentialsRejected",
    "WinkError",
    "WinkUnavailable",
]


class WinkError(Exception):
    """Root of every exception raised by wink_middleware."""


class WinkConfigError(WinkError, ValueError):
    """The configuration is missing or invalid. Raised when a config, verifier or middleware is built."""


class AuthenticationFailed(WinkError):
    """A request could not be authenticated. Carries the HTTP answer to give the client."""

    status_code: int = 401
    error: str | None = None

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class MissingToken(AuthenticationFailed):
    """No bearer token was sent (RFC 6750 §3.1: the answer carries no error code)."""

    status_code = 401
    error = None

    def __init__(self, description: str = "a bearer token is required") -> None:
        super().__init__(description)


class InvalidRequest(AuthenticationFailed):
    """The token was sent in a malformed way: empty, too long, ill-formed or more than once."""

    status_code = 400
    error = "invalid_request"


class TokenRejected(AuthenticationFailed):
    """The token is definitively not valid: Wink said no, it expired, or it was issued to another client."""

    status_code = 401
    error = "invalid_token"


class WinkUnavailable(AuthenticationFailed):
    """Wink could not be asked (timeout, connection error, 408, 429 or 5xx). Says nothing of the token."""

    status_code = 503
    error = "temporarily_unavailable"

    def __init__(self, description: str, *, retry_after: int = 5) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class WinkBadResponse(AuthenticationFailed):
    """Wink answered, but not with anything usable (not JSON, not a profile, an unexpected status)."""

    status_code = 502
    error = "bad_gateway"


class InsufficientScope(AuthenticationFailed):
    """The user is verified but may not do this (RFC 6750 §3.1). Raised by integrations (require())."""

    status_code = 403
    error = "insufficient_scope"


class WinkCredentialsRejected(WinkBadResponse):
    """Wink refused this client's own credentials (401/403 to a session request): the client id,
    the secret or the environment is wrong. For the front end it is Wink failing (502)."""


class RateLimited(AuthenticationFailed):
    """More sessions were asked for than ``session_rate`` allows: try again after ``retry_after``."""

    status_code = 429
    error = "too_many_requests"

    def __init__(self, description: str, *, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = retry_after

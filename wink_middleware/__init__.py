"""wink_middleware: protect any ASGI or WSGI application with Wink Login.

The front end signs the user in with Wink's SDK and sends ``Authorization: Bearer <token>``; the
middleware verifies the token with Wink's Verify Client endpoint, caches the profile no longer than
the token lives, and hands it to your handlers (:func:`get_profile`).
"""

from wink_middleware._adapters.asgi import WinkMiddleware
from wink_middleware._adapters.wsgi import WinkWSGIMiddleware
from wink_middleware._clock import Clock, SystemClock
from wink_middleware._config import WinkConfig
from wink_middleware._engine.async_verifier import AsyncWinkVerifier
from wink_middleware._engine.cache import ProfileCache
from wink_middleware._engine.core import ColdToken, Miss
from wink_middleware._engine.stats import VerifierStats
from wink_middleware._engine.sync_verifier import WinkVerifier
from wink_middleware._events import Observer, WinkEvent
from wink_middleware._exceptions import (
    AuthenticationFailed,
    InsufficientScope,
    InvalidRequest,
    MissingToken,
    RateLimited,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkCredentialsRejected,
    WinkError,
    WinkUnavailable,
)
from wink_middleware._get_profile import (
    get_access_token,
    get_profile,
    get_verifier,
    require_profile,
)
from wink_middleware._profile import WinkProfile
from wink_middleware._session import WinkSession
from wink_middleware._version import __version__

__all__ = [
    "AsyncWinkVerifier",
    "AuthenticationFailed",
    "Clock",
    "ColdToken",
    "InsufficientScope",
    "InvalidRequest",
    "Miss",
    "MissingToken",
    "Observer",
    "ProfileCache",
    "RateLimited",
    "SystemClock",
    "TokenRejected",
    "VerifierStats",
    "WinkBadResponse",
    "WinkConfig",
    "WinkConfigError",
    "WinkCredentialsRejected",
    "WinkError",
    "WinkEvent",
    "WinkMiddleware",
    "WinkProfile",
    "WinkSession",
    "WinkUnavailable",
    "WinkVerifier",
    "WinkWSGIMiddleware",
    "__version__",
    "get_access_token",
    "get_profile",
    "get_verifier",
    "require_profile",
]

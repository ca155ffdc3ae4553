"""Sans-IO Wink session protocol: build the ``POST /wink/v1/session`` request, classify its answer.

The twin of :mod:`wink_middleware._protocol` for Wink's v2.0 sign-in: the back end asks Wink, with
the client secret in HTTP Basic, for a single-use ``sessionId`` the front-end SDK needs before it
can start a login. Nothing here does I/O; both verifiers call these functions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from wink_middleware._engine.protocol import MAX_BODY_BYTES, parse_retry_after, request_headers
from wink_middleware._exceptions import (
    WinkBadResponse,
    WinkCredentialsRejected,
    WinkUnavailable,
)

__all__ = [
    "MAX_SESSION_ID_BYTES",
    "SESSION_ID_KEYS",
    "SESSION_PATH",
    "classify_session_response",
    "session_body",
    "session_headers",
]

#: Wink's session endpoint, under ``base_url``.
SESSION_PATH = "/wink/v1/session"
#: The keys Wink's own front-end kits read the id from; the first present wins.
SESSION_ID_KEYS = ("sessionId", "SessionId", "session_id", "id")
#: A longer session id is not one: a bad response.
MAX_SESSION_ID_BYTES = 1024
_UNAVAILABLE_STATUSES = frozenset({408, 429})


def session_headers(client_id: str, client_secret: str) -> dict[str, str]:
    """Headers of a session request: Verify Client's, plus ``Authorization: Basic id:secret``."""
    credentials = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
    return {**request_headers(), "Authorization": f"Basic {credentials}"}


def session_body(return_url: str, cancel_url: str) -> bytes:
    """The JSON body of a session request."""
    return json.dumps(
        {"returnUrl": return_url, "cancelUrl": cancel_url}, separators=(",", ":")
    ).encode()


def classify_session_response(status: int, headers: Mapping[str, str], body: bytes | None) -> str:
    """Wink's session id, or raise the matching :class:`AuthenticationFailed`.

    ``body`` is ``None`` when it was not read (a non-2xx answer, or one longer than
    ``MAX_BODY_BYTES``). 401 and 403 mean Wink refused our own credentials
    (:class:`WinkCredentialsRejected`); 408, 429 and 5xx are transient (:class:`WinkUnavailable`);
    any other status, or a 2xx without a usable id, is a :class:`WinkBadResponse`. Messages never
    hold Wink's body.
    """
    if 200 <= status < 300:
        if body is None or len(body) > MAX_BODY_BYTES:
            raise WinkBadResponse(f"Wink's session answer is longer than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise WinkBadResponse(
                f"Wink answered {status} to the session request with a body that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise WinkBadResponse("Wink's session answer is not a JSON object")
        for key in SESSION_ID_KEYS:
            if key in data:
                value = data[key]
                if (
                    not isinstance(value, str)
                    or not value.strip()
                    or len(value.encode("utf-8", "surrogatepass")) > MAX_SESSION_ID_BYTES
                ):
                    raise WinkBadResponse(
                        f"Wink's session answer holds no usable session id under {key!r}"
                    )
                return value
        raise WinkBadResponse("Wink's session answer holds no session id")
    if status in (401, 403):
        raise WinkCredentialsRejected(
            f"Wink refused this client's credentials (status {status}) when asked for a session"
        )
    if status in _UNAVAILABLE_STATUSES or 500 <= status < 600:
        raise WinkUnavailable(
            f"Wink is temporarily unavailable (status {status})",
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    raise WinkBadResponse(f"Wink answered the session request with status {status}")

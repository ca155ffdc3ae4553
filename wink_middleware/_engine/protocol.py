"""Sans-IO Wink protocol: build the Verify Client request, classify its answer, read JWT claims.

Nothing here does I/O or knows about asyncio or threads: the async and the sync verifier both call
these functions and differ only in how bytes travel.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from wink_middleware._exceptions import (
    TokenRejected,
    WinkBadResponse,
    WinkUnavailable,
)
from wink_middleware._logging import fields, logger
from wink_middleware._profile import WinkProfile
from wink_middleware._version import __version__

__all__ = [
    "MAX_BODY_BYTES",
    "classify_response",
    "fingerprint",
    "is_identity",
    "request_body",
    "request_headers",
    "unverified_claims",
]


#: Wink's answer is read up to this many bytes; a longer 2xx body is a bad response.
MAX_BODY_BYTES = 64 * 1024
USER_AGENT = f"wink-middleware/{__version__}"
#: Definitive answers about the token: negative-cached.
REJECTED_STATUSES = frozenset({400, 401, 403, 404})
#: Transient answers: retried, never cached.
_UNAVAILABLE_STATUSES = frozenset({408, 429})
_RETRY_AFTER_MAX = 300
DEFAULT_RETRY_AFTER = 5


def fingerprint(raw: bytes, digest: bytes | None = None) -> str:
    """The loggable form of a token: the first 8 hex digits of its sha256 (``digest``, when the
    caller already has it, is not computed again)."""
    return (hashlib.sha256(raw).digest() if digest is None else digest)[:4].hex()


def request_headers() -> dict[str, str]:
    """Headers sent with every Verify Client call (built once per verifier)."""
    return {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # A profile is tiny; an uncompressed answer keeps the 64 KiB cap a cap on memory too.
        "Accept-Encoding": "identity",
    }


def request_body(client_id: str, client_secret: str, token: str) -> bytes:
    """The JSON body of Verify Client: credentials travel in it, PascalCase keys, exactly so."""
    return json.dumps(
        {"ClientId": client_id, "AccessToken": token, "ClientSecret": client_secret},
        separators=(",", ":"),
    ).encode()


def is_identity(headers: Mapping[str, str]) -> bool:
    """Whether an answer's body is sent as is (no ``Content-Encoding``, or ``identity``)."""
    encoding = headers.get("content-encoding")
    return encoding is None or encoding.strip().lower() in ("", "identity")


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes | None, fp: str
) -> WinkProfile:
    """Turn Wink's answer into a profile, or raise the matching :class:`AuthenticationFailed`.

    ``body`` is ``None`` when it was not read (non-2xx answers are judged by their status alone) and
    is at most ``MAX_BODY_BYTES + 1`` bytes long when it was: one byte more means "too long".
    """
    if 200 <= status < 300:
        if not is_identity(headers):
            raise WinkBadResponse("Wink's answer is content-encoded although identity was asked")
        if body is None or len(body) > MAX_BODY_BYTES:
            raise WinkBadResponse(f"Wink's answer is longer than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise WinkBadResponse(f"Wink answered {status} with a body that is not JSON") from None
        return WinkProfile.from_wink(data)
    if status in REJECTED_STATUSES:
        if status == 403:
            logger.warning(
                "Wink answered 403 for token %s: this can be Wink's gateway firewall rather than "
                "the token (check the User-Agent and the server's address are allowed)",
                fp,
                extra=fields(fp, "rejected"),
            )
        else:
            logger.info(
                "Wink rejected token %s with status %d", fp, status, extra=fields(fp, "rejected")
            )
        raise TokenRejected("the access token was rejected by Wink")
    if status in _UNAVAILABLE_STATUSES or 500 <= status < 600:
        logger.warning(
            "Wink is unavailable: status %d for token %s",
            status,
            fp,
            extra=fields(fp, "unavailable"),
        )
        raise WinkUnavailable(
            f"Wink is temporarily unavailable (status {status})",
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    logger.error(
        "Wink answered an unexpected status %d for token %s",
        status,
        fp,
        extra=fields(fp, "bad_response"),
    )
    raise WinkBadResponse(f"Wink answered an unexpected status {status}")


def parse_retry_after(value: str | None) -> int:
    """Wink's ``Retry-After`` in whole seconds (1..300), or the default when absent or a date."""
    if value is not None and value.strip().isdigit():
        return max(1, min(int(value.strip()), _RETRY_AFTER_MAX))
    return DEFAULT_RETRY_AFTER


def unverified_claims(token: bytes) -> dict[str, Any] | None:
    """The JWT payload of ``token`` *without verifying it*, or ``None`` if it is not a JWT.

    Used only to reject early (expired, another client) and to bound cache lifetimes: a token is
    never accepted on these claims.
    """
    parts = token.split(b".")
    if len(parts) != 3 or not parts[1]:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def claim_exp(claims: Mapping[str, Any] | None) -> float | None:
    """The ``exp`` claim as epoch seconds, if it is a usable number."""
    if claims is None:
        return None
    exp: object = claims.get("exp")
    if type(exp) is int:
        # JSON integers are unbounded: 10**400 does not fit a float. Any exp beyond the float range
        # lies far in the future, which is what it says.
        try:
            return float(exp)
        except OverflowError:
            return math.inf if exp > 0 else -math.inf
    if type(exp) is float and not math.isnan(exp):
        return exp
    return None


def precheck(
    claims: Mapping[str, Any] | None, client_id: str, now: float, leeway: float
) -> TokenRejected | None:
    """Reject locally a JWT that has expired or was issued to another client; else ``None``."""
    if claims is None:
        return None
    exp = claim_exp(claims)
    if exp is not None and exp <= now + leeway:
        return TokenRejected("the access token has expired")
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        return TokenRejected("the access token was issued for another client")
    return None

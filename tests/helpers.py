"""Shared test helpers: a controllable clock, JWT-shaped tokens and Wink profile bodies."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from wink_middleware.testing import FakeClock

__all__ = [
    "BASE_URL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "NOW",
    "VERIFY_URL",
    "FakeClock",
    "make_token",
    "profile_json",
]

CLIENT_ID = "test-client"
CLIENT_SECRET = "s3cr3t-never-printed"
BASE_URL = "https://wink.test"
VERIFY_URL = f"{BASE_URL}/api/ConfidentialClient/verify-client"
NOW = 1_800_000_000.0  # a fixed wall-clock instant (2027-01-15)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_token(
    *,
    exp: float | None = None,
    ttl: float = 300.0,
    now: float = NOW,
    azp: str | None = CLIENT_ID,
    sub: str = "4b15e1bc-d098-4555-bd12-4e904775a413",
    padding: int = 0,
    **claims: Any,
) -> str:
    """A JWT-shaped token (unsigned: the middleware never trusts its claims)."""
    payload: dict[str, Any] = {"iat": int(now), "sub": sub, **claims}
    payload["exp"] = exp if exp is not None else int(now + ttl)
    if azp is not None:
        payload["azp"] = azp
    if padding:
        payload["pad"] = "x" * padding
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(payload)}.c2lnbmF0dXJl"


def profile_json(**overrides: Any) -> dict[str, Any]:
    """Wink's Verify Client answer, as in its docs."""
    data: dict[str, Any] = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "contactNo": "(875) 945-3854",
        "email": "ada@example.com",
        "winkTag": ";ada",
        "winkToken": "4b15e1bc-d098-4555-bd12-4e904775a413",
        "dateOfBirth": "**/**/1983",
        "expiryTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 300)),
    }
    data.update(overrides)
    return data

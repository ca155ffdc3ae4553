"""The emulator's signing keys: RS256 for access and ID tokens (published), HS512 for refresh tokens
(never published, as Keycloak's).

RS256 needs ``cryptography`` (the ``[demo]`` extra); nothing imports it until a key is first needed,
so the core install still issues and verifies :meth:`~wink_middleware.testing.WinkEmulator.issue_token`
tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["EXTRA_HINT", "SigningKeys", "b64url", "b64url_decode", "decode_jwt"]

#: What the error says when RS256 signing is unavailable.
EXTRA_HINT = (
    "the emulator's sign-in (OpenID Connect) signs RS256 tokens with cryptography, which is not "
    "installed: pip install 'wink-middleware[demo]'"
)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url; ``ValueError`` when it is not that."""
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes] | None:
    """``(header, claims, signing_input, signature)`` of a compact JWS, or ``None``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _compact(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    def part(data: Mapping[str, Any]) -> str:
        return b64url(json.dumps(data, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}"


class SigningKeys:
    """The RS256 keys (the newest signs; all stay in the JWKS) and the unpublished refresh key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[tuple[str, RSAPrivateKey]] = []
        self._refresh_key = secrets.token_bytes(64)

    @staticmethod
    def _modules() -> Any:
        try:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ImportError:
            raise RuntimeError(EXTRA_HINT) from None
        return hashes, padding, rsa

    def _current(self) -> tuple[str, RSAPrivateKey]:
        with self._lock:
            if not self._keys:
                self._keys.append(self._new_key())
            return self._keys[-1]

    def _new_key(self) -> tuple[str, RSAPrivateKey]:
        _, _, rsa = self._modules()
        return secrets.token_urlsafe(16), rsa.generate_private_key(65537, 2048)

    def rotate(self) -> str:
        """Sign with a new key from now on (the old ones stay published); its ``kid``."""
        key = self._new_key()
        with self._lock:
            if not self._keys:
                self._keys.append(self._new_key())
            self._keys.append(key)
        return key[0]

    def jwks(self) -> dict[str, Any]:
        """The JWKS: every RS256 key, newest first, ``use: sig``, with its ``kid``."""
        self._current()
        with self._lock:
            keys = list(reversed(self._keys))
        published = []
        for kid, key in keys:
            numbers = key.public_key().public_numbers()
            published.append(
                {
                    "kid": kid,
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                    "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
                }
            )
        return {"keys": published}

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWS of ``claims`` under the current key (header ``kid``)."""
        hashes, padding, _ = self._modules()
        kid, key = self._current()
        signing_input = _compact({"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
        signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of an RS256 token one of these keys signed, else ``None``."""
        decoded = decode_jwt(token)
        if decoded is None:
            return None
        header, claims, signing_input, signature = decoded
        with self._lock:
            key = next((k for kid, k in self._keys if kid == header.get("kid")), None)
        if key is None or header.get("alg") != "RS256":
            return None
        hashes, padding, _ = self._modules()
        from cryptography.exceptions import InvalidSignature

        try:
            key.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None
        return claims

    def sign_refresh(self, claims: Mapping[str, Any]) -> str:
        """An HS512 JWS of ``claims`` under the unpublished refresh key."""
        signing_input = _compact({"alg": "HS512", "typ": "JWT", "kid": "refresh"}, claims)
        signature = hmac.new(self._refresh_key, signing_input.encode(), hashlib.sha512).digest()
        return f"{signing_input}.{b64url(signature)}"

    def verify_refresh(self, token: str) -> dict[str, Any] | None:
        """The claims of a refresh token these keys signed, else ``None``."""
        decoded = decode_jwt(token)
        if decoded is None:
            return None
        header, claims, signing_input, signature = decoded
        expected = hmac.new(self._refresh_key, signing_input, hashlib.sha512).digest()
        if header.get("alg") != "HS512" or not hmac.compare_digest(signature, expected):
            return None
        return claims

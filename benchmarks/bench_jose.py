"""Which JOSE library the pre-filter uses: ``python -m benchmarks.bench_jose``.

Prints the best-of-rounds microseconds of one RS256 verification (2048-bit key, a Keycloak-sized
access token) with each library found: joserfc and PyJWT, each with its key parsed once (as the
pre-filter does once per JWKS fetch), never per token. Run it in a virtualenv that holds both
(PyJWT is not a dependency of the package) to compare them on one machine in one run.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import timeit
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    """base64url without padding (this script needs nothing of the package: a scratch venv runs it)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def best_us(fn: Callable[[], object], number: int, rounds: int = 5) -> float:
    """Microseconds per call of ``fn``, the best of ``rounds`` runs of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def token_and_jwk() -> tuple[str, dict[str, Any]]:
    """An RS256 token shaped like Wink's access tokens, and the public JWK that verifies it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = {"alg": "RS256", "typ": "JWT", "kid": "bench"}
    claims = {
        "exp": 4_000_000_000,
        "iat": 1_700_000_000,
        "jti": "3f1c0a52-4d1b-4a39-9a3e-0c5d1c9e7b21",
        "iss": "https://auth.winkapis.com/realms/wink",
        "aud": "account",
        "sub": "c0ffee00-1234-4bcd-8ef0-0123456789ab",
        "typ": "Bearer",
        "azp": "my-client",
        "session_state": "5d0e5c5e-7d0c-4b4e-9d4a-2f9a3f2b1c0d",
        "scope": "openid email profile",
        "preferred_username": ";ada.lovelace",
        "given_name": "tok_sandbox_0123456789abcdef",
        "family_name": "tok_sandbox_fedcba9876543210",
        "email": "tok_sandbox_00112233445566778899",
    }

    def part(data: dict[str, Any]) -> str:
        return b64url(json.dumps(data, separators=(",", ":")).encode())

    signing_input = f"{part(header)}.{part(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "kid": "bench",
        "alg": "RS256",
        "use": "sig",
        "n": b64url(numbers.n.to_bytes(256, "big")),
        "e": b64url(numbers.e.to_bytes(3, "big")),
    }
    return f"{signing_input}.{b64url(signature)}", jwk


def rows(number: int = 2_000) -> list[tuple[str, float]]:
    """(library and version, microseconds per RS256 verification) for each library found."""
    token, jwk = token_and_jwk()
    found: list[tuple[str, float]] = []
    try:
        from joserfc import jws
        from joserfc.jwk import RSAKey
    except ImportError:
        pass
    else:
        key = RSAKey.import_key(jwk)
        registry = jws.JWSRegistry(algorithms=["RS256"])

        def joserfc_verify() -> None:
            jws.deserialize_compact(token, key, algorithms=["RS256"], registry=registry)

        joserfc_verify()
        found.append(
            (f"joserfc {importlib.metadata.version('joserfc')}", best_us(joserfc_verify, number))
        )
    try:
        import jwt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        public = jwt.PyJWK(jwk).key
        options = {"verify_exp": False, "verify_aud": False}

        def pyjwt_verify() -> None:
            jwt.decode(token, public, algorithms=["RS256"], options=options)

        pyjwt_verify()
        found.append(
            (f"PyJWT {importlib.metadata.version('PyJWT')}", best_us(pyjwt_verify, number))
        )
    return found


def main() -> None:
    """Print the table."""
    for name, micros in rows():
        print(f"{name:<20} {micros:8.1f} us per RS256 verify")


if __name__ == "__main__":
    main()

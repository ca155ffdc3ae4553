"""A realm for the signature pre-filter's tests: the emulator, with its key set made to misbehave.

:class:`Realm` is an ASGI app that hands every request to a :class:`WinkEmulator` except the key
set (``/realms/wink/protocol/openid-connect/certs``), which it answers as ``mode`` says: the
emulator's own JWKS, a key set of the test's own keys, or a fault. It counts the key-set requests.
It also drives the emulator's sign-in to get real access tokens (:func:`sign_in`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jws
from joserfc.jwk import Key

from wink_middleware.testing import WinkEmulator

__all__ = ["CERTS", "MODES", "Realm", "sign", "sign_in"]

CERTS = "/realms/wink/protocol/openid-connect/certs"
OIDC = "/realms/wink/protocol/openid-connect"
APP = "http://localhost:3000"
RETURN_URL = f"{APP}/signed-in"
#: The faults a key set can have.
MODES = ("500", "html", "huge", "empty", "garbage", "hang", "down")


class Realm:
    """The emulator behind a key set whose answer the test chooses (``mode``)."""

    def __init__(self, emulator: WinkEmulator) -> None:
        self.emulator = emulator
        self.mode = "emulator"
        self.fetches = 0
        #: The key set served in mode ``"own"``.
        self.own: dict[str, Any] = {"keys": []}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != CERTS or self.mode == "emulator":
            if scope["type"] == "http" and scope["path"] == CERTS:
                self.fetches += 1
            await self.emulator(scope, receive, send)
            return
        self.fetches += 1
        mode = self.mode
        if mode == "down":
            raise ConnectionRefusedError("the realm is down")
        if mode == "hang":
            await asyncio.sleep(3600)
        status, kind, body = {
            "500": (500, "text/plain", b"oops"),
            "html": (200, "text/html", b"<html><body>Sign in</body></html>"),
            "huge": (200, "application/json", b'{"keys": [' + b" " * 10_000_000 + b"]}"),
            "empty": (200, "application/json", b'{"keys": []}'),
            "garbage": (200, "application/json", b'{"keys": [{"kty": "RSA", "kid": "x"}, 7]}'),
            "own": (200, "application/json", json.dumps(self.own).encode()),
        }[mode]
        headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: dict[str, Any], claims: dict[str, Any], key: Key | bytes | None) -> str:
    """A compact JWS of ``claims`` under ``header`` (its ``alg``) with ``key`` (bytes: an HMAC
    secret; ``None``: no signature, for ``alg: none``)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return f"{signing_input}."
    if isinstance(key, bytes):
        # By hand: joserfc refuses a public key as an HMAC secret, which is the attack here.
        mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
    model = jws.JWSRegistry.algorithms[header["alg"]]
    return f"{signing_input}.{_b64(model.sign(signing_input.encode(), key))}"


async def sign_in(http: httpx.AsyncClient, client_id: str, client_secret: str) -> dict[str, Any]:
    """Sign Ada in through the emulator's OIDC flow (``http`` reaches it); Keycloak's tokens."""
    answer = await http.post(
        "/wink/v1/session",
        auth=(client_id, client_secret),
        json={"returnUrl": RETURN_URL, "cancelUrl": f"{APP}/cancelled"},
    )
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    params = {
        "client_id": client_id,
        "redirect_uri": RETURN_URL,
        "state": "s",
        "response_mode": "query",
        "response_type": "code",
        "scope": "openid",
        "nonce": "n",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "sessionId": answer.json()["sessionId"],
    }
    page = await http.get(f"{OIDC}/auth", params=params)
    if page.status_code == 200:
        login = re.search(r"name='login' value='([^']+)'", page.text)
        action = re.search(r"action='([^']+)'", page.text)
        user = re.search(r"name='user' value='([^']+)'", page.text)
        assert login and action and user, page.text
        page = await http.post(action[1], data={"login": login[1], "user": user[1]})
    assert page.status_code == 302, page.text
    code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
    tokens = await http.post(
        f"{OIDC}/token",
        data={
            "code": code,
            "grant_type": "authorization_code",
            "client_id": client_id,
            "redirect_uri": RETURN_URL,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    result: dict[str, Any] = tokens.json()
    return result

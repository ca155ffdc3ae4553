"""The signature pre-filter (``jwks_url``): forged tokens are refused before any call to Wink.

Against the emulator's own JWKS (its RS256 tokens, ``rotate_signing_key()``), and against a key set
of the test's own keys (RSA, EC, Ed25519) where a claim must be signed by a published key. The
key set's faults (down, hanging, 500, HTML, 10 MB, empty) never fail a request.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tests.jwks_realm import CERTS, MODES, Realm, sign, sign_in
from tests.servers import serve_asgi
from wink_middleware import (
    AsyncWinkVerifier,
    TokenRejected,
    WinkConfig,
    WinkConfigError,
    WinkEvent,
    WinkVerifier,
)
from wink_middleware.testing import FakeClock, WinkEmulator
from wink_middleware.testing.pytest_plugin import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8765"
JWKS_URL = f"{BASE}{CERTS}"
ISSUER = f"{BASE}/realms/wink"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Events:
    """An observer that keeps every event."""

    def __init__(self) -> None:
        self.seen: list[WinkEvent] = []

    def on_event(self, event: WinkEvent) -> None:
        self.seen.append(event)

    def fetches(self) -> list[str | None]:
        return [e.outcome for e in self.seen if e.name == "jwks_fetch"]


class Setup:
    """An async verifier with the pre-filter, the realm it fetches from, and its clock."""

    def __init__(self, **options: Any) -> None:
        self.clock = FakeClock()
        self.emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET, clock=self.clock)
        self.realm = Realm(self.emulator)
        self.events = Events()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.realm), base_url=BASE)
        values: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "base_url": BASE,
            "jwks_url": JWKS_URL,
            "retries": 0,
            "observers": [self.events],
        }
        values.update(options)
        self.config = WinkConfig(**values)
        self.verifier = AsyncWinkVerifier(self.config, client=self.http, clock=self.clock)

    async def access_token(self) -> str:
        tokens = await sign_in(self.http, CLIENT_ID, CLIENT_SECRET)
        token: str = tokens["access_token"]
        return token

    async def refused(self, token: str) -> str:
        """The pre-filter's refusal of ``token``; asserts Wink was not asked."""
        calls = self.emulator.calls
        with pytest.raises(TokenRejected) as caught:
            await self.verifier.verify(token)
        assert self.emulator.calls == calls, "the token reached Verify Client"
        return caught.value.description


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    made = Setup()
    yield made
    await made.http.aclose()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import base64

    head, payload = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in token.split(".")[:2])
    return head, payload


# -- configuration ---------------------------------------------------------------------------


def test_the_pre_filter_options_come_from_the_environment() -> None:
    config = WinkConfig.from_env(
        {
            "WINK_CLIENT_ID": "c",
            "WINK_CLIENT_SECRET": "s",
            "WINK_JWKS_URL": JWKS_URL,
            "WINK_ISSUER": ISSUER,
            "WINK_JWKS_COOLDOWN": "2.5",
            "WINK_JWKS_TTL": "60",
        }
    )
    assert (config.jwks_url, config.issuer) == (JWKS_URL, ISSUER)
    assert (config.jwks_cooldown, config.jwks_ttl) == (2.5, 60.0)
    assert (WinkConfig(client_id="c", client_secret="s").jwks_url, config.replace().jwks_ttl) == (
        None,
        60.0,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"jwks_url": "ftp://realm/certs"}, "jwks_url must be an http:// or https:// URL"),
        ({"jwks_url": "https://realm/ certs"}, "jwks_url must be"),
        ({"jwks_url": 7}, "jwks_url must be"),
        ({"issuer": ""}, "issuer must be a non-empty string"),
        ({"jwks_ttl": 0}, "jwks_ttl must be > 0"),
        ({"jwks_cooldown": -1}, "jwks_cooldown must be a finite number >= 0"),
    ],
)
def test_bad_pre_filter_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(WinkConfigError, match=message):
        WinkConfig(client_id="c", client_secret="s", **options)


def test_jwks_url_without_the_jwt_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "joserfc", None)
    with pytest.raises(WinkConfigError, match=r"wink-middleware\[jwt\]"):
        WinkConfig(client_id="c", client_secret="s", jwks_url=JWKS_URL)


# -- the emulator's tokens -------------------------------------------------------------------


async def test_tokens_the_realm_signed_pass_to_verify_client(setup: Setup) -> None:
    assert setup.verifier.health()["jwks"] == "unknown"
    token = await setup.access_token()
    profile = await setup.verifier.verify(token)
    assert profile.first_name == "Ada"
    assert setup.emulator.calls == 1
    assert setup.realm.fetches == 1
    assert setup.verifier.health()["jwks"] == "up"
    assert setup.events.fetches() == ["ok"]
    assert setup.verifier.stats.signature_rejections == 0
    # A hit never reaches the pre-filter, nor Wink.
    assert await setup.verifier.verify(token) == profile
    assert (setup.emulator.calls, setup.realm.fetches) == (1, 1)


async def test_health_is_off_without_jwks_url() -> None:
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    assert emulator.async_verifier().health()["jwks"] == "off"
    assert emulator.verifier().health()["jwks"] == "off"


async def test_forged_tokens_are_refused_with_no_call_to_wink(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = await sign_in(setup.http, CLIENT_ID, CLIENT_SECRET)
    real = tokens["access_token"]
    header, claims = parts(real)
    kid = header["kid"]
    head, payload, signature = real.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    other = RSAKey.generate_key(2048)
    public_pem = RSAKey.import_key((await setup.http.get(CERTS)).json()["keys"][0]).as_pem(
        private=False
    )
    forged = {
        "flipped signature byte": f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}",
        "re-signed with another key": sign({"alg": "RS256", "kid": kid}, claims, other),
        "alg none": sign({"alg": "none", "kid": kid}, claims, None),
        "HS256 with the public key": sign({"alg": "HS256", "kid": kid}, claims, public_pem),
        "no kid": sign({"alg": "RS256"}, claims, other),
        "unknown kid": sign({"alg": "RS256", "kid": "not-the-realms"}, claims, other),
        "refresh token": tokens["refresh_token"],
        "not a JWS": "a" * 40,
    }
    caplog.set_level(logging.INFO, logger="wink_middleware")
    reasons = {name: await setup.refused(token) for name, token in forged.items()}
    assert reasons == {
        "flipped signature byte": "the token's signature does not verify",
        "re-signed with another key": "the token's signature does not verify",
        "alg none": "the token's signing algorithm is not allowed",
        "HS256 with the public key": "the token's signing algorithm is not allowed",
        "no kid": "the token names no signing key",
        "unknown kid": "the token's signing key is not one of the realm's",
        "refresh token": "the token's signing algorithm is not allowed",
        "not a JWS": "the token is not a signed JWT",
    }
    assert setup.emulator.calls == 0
    assert setup.verifier.stats.signature_rejections == len(forged)
    # Each was logged by its fingerprint, never the token itself.
    logged = [r for r in caplog.records if "signature pre-filter" in r.getMessage()]
    assert len(logged) == len(forged)
    assert not any(token in caplog.text for token in forged.values())
    # Refusals are remembered like Wink's, except an unknown kid: a rotation must get through.
    before = setup.verifier.stats.negative_hits
    for token in forged.values():
        with pytest.raises(TokenRejected):
            await setup.verifier.verify(token)
    assert setup.verifier.stats.negative_hits - before == len(forged) - 1
    assert setup.verifier.stats.signature_rejections == len(forged) + 1
    assert setup.emulator.calls == 0
    # The real token still passes.
    assert (await setup.verifier.verify(real)).first_name == "Ada"


async def test_a_token_from_another_issuer_is_refused() -> None:
    made = Setup(issuer="https://auth.winkapis.com/realms/wink")
    token = await made.access_token()
    assert parts(token)[1]["iss"] == ISSUER
    assert await made.refused(token) == "the token was issued by another issuer"
    right = Setup(issuer=ISSUER)
    assert (await right.verifier.verify(await right.access_token())).first_name == "Ada"
    await made.http.aclose()
    await right.http.aclose()


async def test_a_rotated_key_is_accepted_after_at_most_one_fetch(setup: Setup) -> None:
    await setup.verifier.verify(await setup.access_token())
    assert setup.realm.fetches == 1
    setup.clock.advance(setup.config.jwks_cooldown)
    new_kid = setup.emulator.rotate_signing_key()
    token = await setup.access_token()
    assert parts(token)[0]["kid"] == new_kid
    assert (await setup.verifier.verify(token)).first_name == "Ada"
    assert setup.realm.fetches == 2


async def test_within_the_cooldown_a_new_kid_is_refused_then_accepted(setup: Setup) -> None:
    await setup.verifier.verify(await setup.access_token())
    setup.emulator.rotate_signing_key()
    token = await setup.access_token()
    setup.clock.advance(setup.config.jwks_cooldown / 2)
    assert await setup.refused(token) == "the token's signing key is not one of the realm's"
    assert setup.realm.fetches == 1
    setup.clock.advance(setup.config.jwks_cooldown / 2)
    assert (await setup.verifier.verify(token)).first_name == "Ada"
    assert setup.realm.fetches == 2


async def test_random_kids_fetch_at_most_once_per_cooldown(setup: Setup) -> None:
    await setup.verifier.verify(await setup.access_token())
    _, claims = parts(await setup.access_token())
    other = RSAKey.generate_key(2048)
    template = sign({"alg": "RS256", "kid": "x"}, claims, other).split(".")
    rng = random.Random(21)
    step = 0.01
    count = 10_000
    for _ in range(count):
        kid = f"{rng.getrandbits(128):032x}"
        token = sign({"alg": "RS256", "kid": kid}, {"jti": kid, **claims}, None) + template[2]
        with pytest.raises(TokenRejected):
            await setup.verifier.verify(token)
        setup.clock.advance(step)
    duration = count * step
    assert setup.realm.fetches - 1 <= math.ceil(duration / setup.config.jwks_cooldown) + 1
    assert setup.emulator.calls == 1
    assert setup.verifier.stats.signature_rejections == count


async def test_the_keys_are_fetched_again_after_jwks_ttl() -> None:
    made = Setup(jwks_ttl=60, jwks_cooldown=1)
    token = await made.access_token()
    await made.verifier.verify(token)
    made.clock.advance(30)
    forged = sign({"alg": "RS256", "kid": parts(token)[0]["kid"]}, {}, RSAKey.generate_key(2048))
    await made.refused(forged)
    assert made.realm.fetches == 1
    made.clock.advance(30)
    await made.refused(forged + "x")
    assert made.realm.fetches == 2
    await made.http.aclose()


async def test_concurrent_misses_share_one_fetch(setup: Setup) -> None:
    import asyncio

    tokens = [await setup.access_token() for _ in range(5)]
    profiles = await asyncio.gather(*(setup.verifier.verify(t) for t in tokens))
    assert {p.first_name for p in profiles} == {"Ada"}
    assert setup.realm.fetches == 1


# -- the test's own keys: RSA, EC, Ed25519, and claims under a published key -----------------


async def test_claims_signed_by_a_published_key_are_judged(setup: Setup) -> None:
    rsa, ec, ed = (
        RSAKey.generate_key(2048),
        ECKey.generate_key("P-256"),
        OKPKey.generate_key("Ed25519"),
    )
    enc = RSAKey.generate_key(2048)
    published = []
    for kid, key, alg in (("rsa", rsa, "RS256"), ("ec", ec, "ES256"), ("ed", ed, None)):
        entry = key.as_dict(private=False)
        entry.update(kid=kid, use="sig")
        if alg is not None:
            entry["alg"] = alg
        published.append(entry)
    published.append({**enc.as_dict(private=False), "kid": "enc", "use": "enc"})
    setup.realm.own = {"keys": published}
    setup.realm.mode = "own"
    claims = {"iss": ISSUER, "typ": "Bearer", "azp": CLIENT_ID, "exp": setup.clock.time() + 300}
    assert await setup.refused(
        sign({"alg": "RS256", "kid": "rsa"}, {**claims, "typ": "Refresh"}, rsa)
    ) == ("a refresh token is not an access token")
    assert await setup.refused(sign({"alg": "RS384", "kid": "rsa"}, claims, rsa)) == (
        "the token's algorithm does not match its signing key"
    )
    assert await setup.refused(sign({"alg": "ES256", "kid": "rsa"}, claims, ec)) == (
        "the token's algorithm does not match its signing key"
    )
    assert await setup.refused(sign({"alg": "RS256", "kid": "enc"}, claims, enc)) == (
        "the token's signing key is not one of the realm's"
    )
    # Signed by a published key with acceptable claims: Verify Client decides (it knows none).
    for header, key in (
        ({"alg": "RS256", "kid": "rsa"}, rsa),
        ({"alg": "ES256", "kid": "ec"}, ec),
        ({"alg": "EdDSA", "kid": "ed"}, ed),
    ):
        calls = setup.emulator.calls
        with pytest.raises(TokenRejected, match="Wink"):
            await setup.verifier.verify(sign(header, claims, key))
        assert setup.emulator.calls == calls + 1
    assert setup.verifier.stats.signature_rejections == 4


# -- the key set's faults ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_broken_key_set_never_fails_a_request_and_recovers(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    made = Setup(timeout=0.3)
    caplog.set_level(logging.INFO, logger="wink_middleware")
    made.realm.mode = mode
    token = await made.access_token()
    forged = sign({"alg": "RS256", "kid": "nobody"}, parts(token)[1], None) + "abc"
    assert (await made.verifier.verify(token)).first_name == "Ada"
    assert made.verifier.health()["jwks"] == "down"
    assert made.events.fetches() == ["error"]
    # Verify Client decides meanwhile, and the key set is not asked again within the cooldown.
    with pytest.raises(TokenRejected):
        await made.verifier.verify(forged)
    assert made.emulator.calls == 2
    assert made.realm.fetches == 1
    assert "the signature pre-filter is off" in caplog.text
    made.realm.mode = "emulator"
    made.clock.advance(made.config.jwks_cooldown)
    assert (await made.verifier.verify(await made.access_token())).first_name == "Ada"
    assert made.verifier.health()["jwks"] == "up"
    assert "the signature pre-filter is back" in caplog.text
    assert made.events.fetches() == ["error", "ok"]
    await made.refused(forged + "d")
    await made.http.aclose()


# -- the sync twin, over real HTTP -------------------------------------------------------------


def test_the_sync_twin_refuses_forged_tokens_and_survives_a_dead_realm() -> None:
    import asyncio

    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    realm = Realm(emulator)
    with serve_asgi(realm) as url:

        async def tokens() -> list[str]:
            async with httpx.AsyncClient(base_url=url) as http:
                return [
                    (await sign_in(http, CLIENT_ID, CLIENT_SECRET))["access_token"]
                    for _ in range(8)
                ]

        real = asyncio.run(tokens())
        config = WinkConfig(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=url,
            jwks_url=f"{url}{CERTS}",
            retries=0,
        )
        with WinkVerifier(config) as verifier:
            import threading

            barrier = threading.Barrier(4)
            results: list[str] = []

            def run(token: str) -> None:
                barrier.wait()
                results.append(verifier.verify(token).first_name)

            threads = [threading.Thread(target=run, args=(t,)) for t in real[:4]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert results == ["Ada"] * 4
            assert realm.fetches == 1
            assert verifier.health()["jwks"] == "up"
            calls = emulator.calls
            forged = sign(
                {"alg": "RS256", "kid": parts(real[4])[0]["kid"]}, parts(real[4])[1], None
            )
            with pytest.raises(TokenRejected, match="signature does not verify"):
                verifier.verify(forged + "abcd")
            assert emulator.calls == calls
        # A realm nobody answers: Verify Client decides.
        dead = config.replace(jwks_url="http://127.0.0.1:9/certs", timeout=0.5)
        with WinkVerifier(dead) as verifier:
            assert verifier.verify(real[5]).first_name == "Ada"
            assert verifier.health()["jwks"] == "down"


_FORKED = """
import os, sys
from wink_middleware import TokenRejected, WinkConfig, WinkVerifier
url, real, later, forged = sys.argv[1:5]
config = WinkConfig(client_id=sys.argv[5], client_secret=sys.argv[6], base_url=url,
                    jwks_url=url + sys.argv[7], retries=0)
verifier = WinkVerifier(config)
assert verifier.verify(real).first_name == "Ada"
pid = os.fork()
if pid == 0:
    try:
        verifier.verify(forged)
    except TokenRejected as exc:
        ok = "signature" in exc.description
    else:
        ok = False
    ok = ok and verifier.verify(later).first_name == "Ada"
    ok = ok and verifier.stats.jwks_fetches == 1 and verifier.health()["jwks"] == "up"
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.slow
def test_the_sync_twin_works_in_a_forked_child() -> None:
    import asyncio
    import subprocess
    import sys

    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    realm = Realm(emulator)
    with serve_asgi(realm) as url:

        async def tokens() -> list[str]:
            async with httpx.AsyncClient(base_url=url) as http:
                return [
                    (await sign_in(http, CLIENT_ID, CLIENT_SECRET))["access_token"]
                    for _ in range(2)
                ]

        real, later = asyncio.run(tokens())
        header, claims = parts(real)
        forged = sign(header, claims, None) + "abcd"
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _FORKED,
                url,
                real,
                later,
                forged,
                CLIENT_ID,
                CLIENT_SECRET,
                CERTS,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        # The parent fetched once; the child used the keys it inherited.
        assert realm.fetches == 1
        assert emulator.calls == 2

"""The signature pre-filter's decisions (``jwks_url``), free of I/O: shared by both verifiers.

Wink's tokens are Keycloak JWTs signed with the realm's published keys. On a cache miss, before any
call to Wink, :class:`PreFilter` refuses a token those keys did not sign; it never *accepts* one
(Verify Client still decides). :class:`KeySet` is one fetched JWKS, parsed once per fetch;
:class:`PreFilter` decides when to fetch (lazily, ``jwks_ttl``, an unknown ``kid`` at most once per
``jwks_cooldown``) and judges each token. A key set that cannot be fetched or used turns the whole
pre-filter off until the next fetch: it can cost a call to Wink, never a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import import_key
from joserfc.util import urlsafe_b64decode

from wink_middleware._clock import Clock
from wink_middleware._engine.stats import VerifierStats
from wink_middleware._events import JWKS_FETCH, WinkEvent
from wink_middleware._exceptions import TokenRejected
from wink_middleware._logging import fields, logger

__all__ = ["ALGORITHMS", "JwksError", "KeySet", "PreFilter", "Screening"]

#: The only algorithms a token may name: asymmetric ones (never ``none`` or ``HS*``, whose "key"
#: would be the public key itself).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
# Which algorithms each key type can verify.
_FAMILIES: Mapping[str, frozenset[str]] = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256"}),
    "EC": frozenset({"ES256", "ES384"}),
    "OKP": frozenset({"EdDSA"}),
}
# The algorithm models, read once from the registry's table: get_alg() would warn on every call for
# EdDSA (RFC 9864 renames it), which Keycloak still names its Ed25519 keys' signatures.
_ALG_MODELS = {name: jws.JWSRegistry.algorithms[name] for name in ALGORITHMS}
# What a malformed token, key or signature can raise inside the JOSE library.
# (binascii.Error is a ValueError.)
_BAD_INPUT = (JoseError, ValueError, TypeError, KeyError, IndexError, AttributeError)

NOT_JWS = "the token is not a signed JWT"
BAD_ALG = "the token's signing algorithm is not allowed"
NO_KID = "the token names no signing key"
UNKNOWN_KID = "the token's signing key is not one of the realm's"
WRONG_KEY = "the token's algorithm does not match its signing key"
BAD_SIGNATURE = "the token's signature does not verify"
REFRESH = "a refresh token is not an access token"
WRONG_ISSUER = "the token was issued by another issuer"


class JwksError(ValueError):
    """A fetched key set that cannot be used; the message never holds the body."""


class _Key(NamedTuple):
    key: Any
    algorithms: frozenset[str]


class KeySet:
    """The signing keys of one fetched JWKS, by ``kid``: parsed once, used for every token."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, tuple[_Key, ...]]) -> None:
        self._keys = dict(keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, kid: str) -> tuple[_Key, ...]:
        """The keys published under ``kid`` (empty when none)."""
        return self._keys.get(kid, ())

    @classmethod
    def parse(cls, body: bytes | None) -> KeySet:
        """The usable signing keys of a JWKS document; :class:`JwksError` when it holds none.

        Kept: keys with a ``kid``, ``use`` of ``sig`` or none, a key type whose algorithms are
        allowed, and, when the key names an ``alg``, an allowed one (the only one it verifies).
        """
        if body is None:
            raise JwksError("the key set was not read (an encoded or over-long answer)")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise JwksError("the key set is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JwksError("the key set has no 'keys' list")
        keys: dict[str, list[_Key]] = {}
        for entry in entries:
            parsed = _signing_key(entry)
            if parsed is not None:
                keys.setdefault(entry["kid"], []).append(parsed)
        if not keys:
            raise JwksError("the key set holds no usable signing key")
        return cls({kid: tuple(found) for kid, found in keys.items()})


def _signing_key(entry: object) -> _Key | None:
    if not isinstance(entry, dict):
        return None
    kid, use, kty, alg = (entry.get(name) for name in ("kid", "use", "kty", "alg"))
    if not isinstance(kid, str) or not kid or use not in (None, "sig") or not isinstance(kty, str):
        return None
    family = _FAMILIES.get(kty)
    if family is None or (alg is not None and alg not in family):
        return None
    try:
        key = import_key(entry)
    except _BAD_INPUT:
        return None
    return _Key(key, family if alg is None else frozenset({alg}))


class Screening(NamedTuple):
    """A token as the pre-filter reads it: its parsed compact JWS (``None`` when it is not one)."""

    jws: Any
    header: Mapping[str, Any]

    @property
    def kid(self) -> str | None:
        """The ``kid`` the header names, if it is a non-empty string."""
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) and kid else None


def screening(raw: bytes) -> Screening:
    """Parse ``raw`` as a compact JWS, without verifying it; never raises."""
    try:
        token = jws.extract_compact(raw)
        header = token.headers()
    except _BAD_INPUT:
        return Screening(None, {})
    if not isinstance(header, dict):  # pragma: no cover - joserfc only returns objects
        return Screening(None, {})
    return Screening(token, header)


def verdict(
    screened: Screening, claims: Mapping[str, Any] | None, keys: KeySet, issuer: str | None
) -> str | None:
    """Why these keys refuse the token, or ``None`` when they do not (Verify Client decides)."""
    if screened.jws is None:
        return NOT_JWS
    alg = screened.header.get("alg")
    if not isinstance(alg, str) or alg not in _ALG_MODELS:
        return BAD_ALG
    kid = screened.kid
    if kid is None:
        return NO_KID
    candidates = keys.get(kid)
    if not candidates:
        return UNKNOWN_KID
    model = _ALG_MODELS[alg]
    usable = [k.key for k in candidates if alg in k.algorithms]
    if not usable:
        return WRONG_KEY
    segments = screened.jws.segments
    signing_input = segments["header"] + b"." + segments["payload"]
    for key in usable:
        try:
            model.check_key(key)
            if model.verify(signing_input, urlsafe_b64decode(segments["signature"]), key):
                break
        except _BAD_INPUT:
            continue
    else:
        return BAD_SIGNATURE
    # The signature holds, so the claims are the realm's: judge them.
    if claims is not None and claims.get("typ") == "Refresh":
        return REFRESH
    if issuer is not None and (claims is None or claims.get("iss") != issuer):
        return WRONG_ISSUER
    return None


class PreFilter:
    """The pre-filter's state (the realm's keys, when to fetch them) and its verdict on a token.

    Both twins drive it the same way: :meth:`needs_fetch` for the token's ``kid``; if so, one fetch
    (:meth:`begin_fetch`, then :meth:`fetched` or :meth:`fetch_failed`); then :meth:`check`.
    ``remember`` negative-caches a refusal by the token's cache key.
    """

    def __init__(
        self,
        *,
        issuer: str | None,
        ttl: float,
        cooldown: float,
        clock: Clock,
        stats: VerifierStats,
        remember: Callable[[bytes, TokenRejected], None],
        emit: Callable[[WinkEvent], None] | None,
    ) -> None:
        self.issuer = issuer
        self.ttl = ttl
        self.cooldown = cooldown
        self._clock = clock
        self._stats = stats
        self._remember = remember
        self._emit = emit
        self.keys: KeySet | None = None
        self._state = "unknown"
        self._fetched_at = 0.0
        self._attempted_at: float | None = None

    @property
    def state(self) -> str:
        """``"unknown"`` (never fetched), ``"up"`` or ``"down"`` (the last fetch failed)."""
        return self._state

    def needs_fetch(self, kid: str | None) -> bool:
        """Whether to fetch the keys now, for a token naming ``kid``.

        Never within ``jwks_cooldown`` of the last attempt (the cooldown wins over the TTL); else
        when there are no usable keys, they are older than ``jwks_ttl``, or ``kid`` is not among them.
        """
        now = self._clock.monotonic()
        if self._attempted_at is not None and now - self._attempted_at < self.cooldown:
            return False
        keys = self.keys
        if keys is None or now - self._fetched_at >= self.ttl:
            return True
        return kid is not None and kid not in keys

    def begin_fetch(self) -> float:
        """Start a fetch: count it and return when it started."""
        self._attempted_at = started = self._clock.monotonic()
        self._stats.add("jwks_fetches")
        return started

    def fetched(self, status: int, body: bytes | None, started: float) -> None:
        """Take a fetch's answer: the new keys (keys that disappeared are dropped), or a failure."""
        if status != 200:
            self.fetch_failed(f"the key set answered HTTP {status}", started)
            return
        try:
            keys = KeySet.parse(body)
        except JwksError as exc:
            self.fetch_failed(str(exc), started)
            return
        self.keys = keys
        self._fetched_at = self._clock.monotonic()
        if self._state == "down":
            logger.info(
                "the signature pre-filter is back: %d signing key(s) fetched",
                len(keys),
                extra=fields(None, "jwks_up"),
            )
        self._state = "up"
        self._fetch_event("ok", started)

    def fetch_failed(self, reason: str, started: float) -> None:
        """A fetch failed: skip the whole pre-filter until a fetch after the cooldown succeeds."""
        self.keys = None
        if self._state != "down":
            logger.warning(
                "the signature pre-filter is off: %s (Verify Client decides; retried in %g s)",
                reason,
                self.cooldown,
                extra=fields(None, "jwks_down"),
            )
        self._state = "down"
        self._fetch_event("error", started)

    def _fetch_event(self, outcome: str, started: float) -> None:
        if self._emit is not None:
            self._emit(
                WinkEvent(JWKS_FETCH, outcome=outcome, duration_s=self._clock.monotonic() - started)
            )

    def check(
        self, screened: Screening, claims: Mapping[str, Any] | None, key: bytes, fp: str
    ) -> None:
        """Raise a fresh :class:`TokenRejected` when the keys refuse the token; else return.

        Without usable keys nothing is refused. Every refusal is counted and logged with the
        fingerprint, and remembered like Wink's, except an unknown ``kid``: a real token under a
        freshly rotated key is accepted as soon as the keys are fetched again.
        """
        keys = self.keys
        if keys is None:
            return
        reason = verdict(screened, claims, keys, self.issuer)
        if reason is None:
            return
        self._stats.add("signature_rejections")
        logger.info(
            "token %s refused by the signature pre-filter: %s",
            fp,
            reason,
            extra=fields(fp, "rejected"),
        )
        rejection = TokenRejected(reason)
        if reason != UNKNOWN_KID:
            self._remember(key, rejection)
        raise rejection

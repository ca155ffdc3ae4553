"""Sans-IO protocol of the shared tier: key derivation, Redis names, envelopes, messages.

Nothing here does I/O or imports ``redis``; the module is imported only when the tier is on, so it
may import ``cryptography`` at the top.

Keys. One master key ``K`` (``redis_secret``, else HKDF-SHA256 of ``client_secret``) gives
``k_lookup`` and ``k_enc`` by HKDF-SHA256 with the infos ``wink-middleware/v1/lookup`` and
``wink-middleware/v1/enc`` (no salt). A token is named by ``d = HMAC-SHA256(k_lookup, token)``.

Names. ``{p}`` is ``redis_prefix`` + the first 8 hex digits of ``sha256(client_id)`` + ``":"``; an
entry lives at ``{p}e:{d}``, its fleet lease at ``{p}l:{d}``, with ``{d}`` the unpadded base64url of
the digest. Revocations and invalidations travel on ``{p}inv``, fill/fail wake-ups on ``{p}fill``,
as ``b"<kind>:{d}"``: never a token.

Envelope (the value at ``{p}e:{d}``), byte for byte::

    0x01 | nonce (12 bytes) | AES-256-GCM(HMAC-SHA256(k_enc, token), plaintext, aad)
    aad = b"wink/v1|" + kind + b"|" + redis_key          kind in pos, neg, revoked

The kind is not stored in clear: :meth:`SharedKeys.open` tries the three kinds' ``aad`` (``pos``
first, the common case; a failed tag check costs about a microsecond). So an entry is bound to its
token, its Redis key and its kind; moving it to another key or relabelling its kind fails the tag,
and the plaintext's ``"k"`` must repeat the kind. The plaintext is compact JSON::

    {"k": kind, "p": profile (Wink's camelCase, no clientSecret) or null, "d": description
     (neg and revoked only), "f": fresh_until, "u": usable_until}

with epoch seconds, since hosts share no monotonic clock. Any value that does not open and parse
into a valid :class:`SharedEntry` is an :class:`IntegrityError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import secrets
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wink_middleware._exceptions import WinkBadResponse
from wink_middleware._profile import WinkProfile
from wink_middleware._shared.entry import EntryKind, SharedEntry

__all__ = [
    "RELEASE_SCRIPT",
    "EntryKind",
    "IntegrityError",
    "MessageKind",
    "SharedEntry",
    "SharedKeys",
    "decode_message",
    "encode_message",
    "lease_value",
    "lock_ttl",
    "ttl_ms",
]

MessageKind = Literal["fill", "fail", "inv", "rev"]

#: Compare-and-delete of a lease: only its holder (who knows the random value) releases it.
#: It reads one key, so it runs unchanged on Redis Cluster.
RELEASE_SCRIPT: Final = (
    'if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) '
    "else return 0 end"
)

_VERSION: Final = 1
_HEADER: Final = bytes([_VERSION])
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_KINDS: Final[tuple[EntryKind, ...]] = ("pos", "neg", "revoked")
_MESSAGE_KINDS: Final[dict[bytes, MessageKind]] = {
    b"fill": "fill",
    b"fail": "fail",
    b"inv": "inv",
    b"rev": "rev",
}
_NAME_CHARS: Final = 43  # unpadded base64url of 32 bytes
_LOCK_TTL_MAX: Final = 30.0
_SHA256_BLOCK: Final = 64


class IntegrityError(Exception):
    """A shared entry that does not open: tampered, another key or token, garbage, unknown version.

    Internal to the tier (a miss, never shown to users); the message holds no key material.
    """


class SharedKeys:
    """The keys and Redis names of one client's shared tier.

    Built once per verifier. ``repr`` shows only the prefix: the keys never reach a log.
    """

    __slots__ = ("_inner", "_k_enc", "_outer", "channel", "fill_channel", "prefix")

    def __init__(self, client_id: str, master: bytes, redis_prefix: str) -> None:
        #: ``redis_prefix`` + 8 hex digits of ``sha256(client_id)`` + ``":"``: all names start so.
        self.prefix: str = redis_prefix + hashlib.sha256(client_id.encode()).hexdigest()[:8] + ":"
        #: Invalidations and revocations (``inv`` and ``rev`` messages).
        self.channel: str = self.prefix + "inv"
        #: Wake-ups of lease followers (``fill`` and ``fail`` messages).
        self.fill_channel: str = self.prefix + "fill"
        k_lookup = _hkdf(master, b"wink-middleware/v1/lookup")
        self._k_enc = _hkdf(master, b"wink-middleware/v1/enc")
        # HMAC (RFC 2104) with its two padded-key blocks hashed once: a copy per call costs half
        # of hmac.digest(), whose OpenSSL 3 context setup dominates for token-sized inputs.
        padded = k_lookup.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    @classmethod
    def from_secrets(
        cls, client_id: str, client_secret: str, redis_secret: str | None, redis_prefix: str
    ) -> SharedKeys:
        """The keys from the configuration: ``K`` is ``redis_secret`` (UTF-8) when given, else
        HKDF-SHA256 of ``client_secret``. The caller has checked ``redis_secret`` is >= 32 bytes.
        """
        if redis_secret is not None:
            master = redis_secret.encode()
        else:
            master = _hkdf(client_secret.encode(), b"wink-middleware/v1/master")
        return cls(client_id, master, redis_prefix)

    def __repr__(self) -> str:
        return f"SharedKeys(prefix={self.prefix!r})"

    def lookup_digest(self, raw_token: bytes) -> bytes:
        """``HMAC-SHA256(k_lookup, token)``: the 32 bytes that name a token in Redis."""
        inner = self._inner.copy()
        inner.update(raw_token)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    @staticmethod
    def name(d: bytes) -> str:
        """The ``{d}`` of keys and messages: unpadded base64url of the digest."""
        return _name(d)

    def entry_key(self, d: bytes) -> str:
        """``{p}e:{d}``: where the token's envelope lives."""
        return self.prefix + "e:" + _name(d)

    def lease_key(self, d: bytes) -> str:
        """``{p}l:{d}``: the fleet lease of the token's verification."""
        return self.prefix + "l:" + _name(d)

    def seal(self, raw_token: bytes, key: str, entry: SharedEntry) -> bytes:
        """The envelope of ``entry`` for the Redis key ``key``; only ``raw_token`` opens it."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead(raw_token).encrypt(nonce, encode_entry(entry), _aad(entry.kind, key))
        return _HEADER + nonce + sealed

    def open(self, raw_token: bytes, key: str, value: bytes) -> SharedEntry:
        """The entry sealed in ``value`` for ``raw_token`` at ``key``.

        Raises :class:`IntegrityError` for anything else, and only that.
        """
        if not isinstance(value, bytes | bytearray | memoryview):
            raise IntegrityError("the shared entry is not bytes")
        value = bytes(value)
        if len(value) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise IntegrityError("the shared entry is too short")
        if value[0] != _VERSION:
            raise IntegrityError("the shared entry has an unknown version")
        nonce = value[1 : 1 + _NONCE_BYTES]
        sealed = value[1 + _NONCE_BYTES :]
        aead = self._aead(raw_token)
        for kind in _KINDS:
            try:
                plaintext = aead.decrypt(nonce, sealed, _aad(kind, key))
            except InvalidTag:
                continue
            return decode_entry(kind, plaintext)
        raise IntegrityError("the shared entry does not authenticate")

    def _aead(self, raw_token: bytes) -> AESGCM:
        return AESGCM(hmac.digest(self._k_enc, raw_token, "sha256"))


def encode_entry(entry: SharedEntry) -> bytes:
    """The envelope's plaintext: compact JSON, never pickle, no ``clientSecret``."""
    data: dict[str, Any] = {"k": entry.kind, "p": None}
    if entry.profile is not None:
        profile = entry.profile.to_wink()
        profile.pop("clientSecret", None)
        data["p"] = profile
    else:
        data["d"] = entry.description
    data["f"] = float(entry.fresh_until)
    data["u"] = float(entry.usable_until)
    # NaN stays allowed: a profile's extra fields may hold what Wink's JSON held; sealing a
    # profile that from_wink accepted never fails. The instants are finite (SharedEntry checks).
    return json.dumps(data, separators=(",", ":")).encode()


def decode_entry(kind: EntryKind, plaintext: bytes) -> SharedEntry:
    """Parse an authenticated plaintext whose ``aad`` said ``kind``; :class:`IntegrityError` if unusable."""
    try:
        data = json.loads(plaintext)
    except (ValueError, RecursionError):
        raise IntegrityError("the shared entry is not JSON") from None
    if not isinstance(data, dict):
        raise IntegrityError("the shared entry is not a JSON object")
    expected = {"k", "p", "f", "u"} if kind == "pos" else {"k", "p", "d", "f", "u"}
    if data.keys() != expected or data["k"] != kind:
        raise IntegrityError("the shared entry has unexpected fields or another kind")
    description = data.get("d", "")
    profile = None
    if kind == "pos":
        try:
            profile = WinkProfile.from_wink(data["p"])
        except WinkBadResponse:
            raise IntegrityError("the shared entry's profile is unusable") from None
    elif data["p"] is not None:
        raise IntegrityError("the shared entry holds a profile for a rejection")
    try:
        return SharedEntry(kind, profile, description, _epoch(data["f"]), _epoch(data["u"]))
    except ValueError:
        raise IntegrityError("the shared entry's fields are invalid") from None


def encode_message(kind: MessageKind, d: bytes) -> bytes:
    """A pub/sub payload naming a digest (``b"inv:{d}"``), never a token."""
    return kind.encode() + b":" + _name(d).encode()


def decode_message(data: bytes | str) -> tuple[MessageKind, bytes] | None:
    """The kind and digest of a pub/sub payload, or ``None`` if it is malformed. Never raises."""
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            return None
    if not isinstance(data, bytes):
        return None
    head, sep, name = data.partition(b":")
    kind = _MESSAGE_KINDS.get(head)
    if kind is None or not sep or len(name) != _NAME_CHARS:
        return None
    try:
        d = base64.urlsafe_b64decode(name + b"=")
    except (binascii.Error, ValueError):
        return None
    # Only the canonical spelling: '+', '/' or stray low bits would name the same digest twice.
    if _name(d).encode() != name:
        return None
    return kind, d


def lease_value() -> str:
    """A fresh random lease value: the holder's proof for :data:`RELEASE_SCRIPT`."""
    return secrets.token_urlsafe(16)


def lock_ttl(timeout: float, retries: int) -> float:
    """How long a fleet lease lives, in seconds: one full verification plus a second, at most 30."""
    return min(_LOCK_TTL_MAX, timeout * (retries + 1) + 1)


def ttl_ms(until: float, now: float) -> int | None:
    """The Redis ``PX`` for an entry usable until ``until``; ``None`` (write nothing) if it is over."""
    remaining = until - now
    if not math.isfinite(remaining):
        return None
    # Rounded down, so Redis never keeps an entry past its usable_until.
    ms = int(remaining * 1000)
    return ms if ms > 0 else None


def _hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def _aad(kind: str, key: str) -> bytes:
    return b"wink/v1|" + kind.encode() + b"|" + key.encode()


def _name(d: bytes) -> str:
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def _epoch(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IntegrityError("the shared entry's instants are not numbers")
    try:
        return float(value)
    except OverflowError:
        raise IntegrityError("the shared entry's instants are out of range") from None

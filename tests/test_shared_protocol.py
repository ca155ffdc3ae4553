"""The shared tier's sans-IO protocol: keys, names, envelopes, messages, lease maths.

The envelope is rebuilt here from its specification (``_spec_envelope``, after the layout in the
docstring of ``_shared/envelope.py``), so the wire format is pinned independently of the module's
own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import CLIENT_ID, CLIENT_SECRET, NOW, make_token, profile_json
from wink_middleware._profile import WinkProfile
from wink_middleware._shared.envelope import (
    RELEASE_SCRIPT,
    EntryKind,
    IntegrityError,
    MessageKind,
    SharedEntry,
    SharedKeys,
    decode_message,
    encode_entry,
    encode_message,
    lease_value,
    lock_ttl,
    ttl_ms,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REDIS_SECRET = "r" * 32
MASTER = b"m" * 32
TOKEN = make_token().encode()
OTHER_TOKEN = make_token(sub="someone-else").encode()
PROFILE = WinkProfile.from_wink(profile_json(extraField={"nested": [1, 2]}))
KEYS = SharedKeys(CLIENT_ID, MASTER, "wink:")
KEY = KEYS.entry_key(KEYS.lookup_digest(TOKEN))
KINDS: list[EntryKind] = ["pos", "neg", "revoked"]
MESSAGE_KINDS: list[MessageKind] = ["fill", "fail", "inv", "rev"]


def hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def spec_envelope(master: bytes, raw: bytes, key: str, kind: bytes, plaintext: bytes) -> bytes:
    """``0x01 | nonce | AES-256-GCM(HMAC-SHA256(k_enc, token), plaintext, aad)``, as specified."""
    k_enc = hkdf(master, b"wink-middleware/v1/enc")
    nonce = os.urandom(12)
    aad = b"wink/v1|" + kind + b"|" + key.encode()
    return (
        b"\x01" + nonce + AESGCM(hmac.digest(k_enc, raw, "sha256")).encrypt(nonce, plaintext, aad)
    )


def entry(
    kind: EntryKind = "pos", fresh: float = NOW + 60, usable: float = NOW + 300
) -> SharedEntry:
    if kind == "pos":
        return SharedEntry("pos", PROFILE, "", fresh, usable)
    return SharedEntry(kind, None, f"{kind} by Wink", fresh, usable)


def forms_of(secret: bytes) -> list[bytes]:
    """A value as it could appear in Redis: raw, and its sha256 as hex, base64 and base64url."""
    digest = hashlib.sha256(secret).digest()
    return [
        secret,
        digest,
        digest.hex().encode(),
        base64.b64encode(digest).rstrip(b"="),
        base64.urlsafe_b64encode(digest).rstrip(b"="),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_an_entry_round_trips(kind: EntryKind) -> None:
    original = entry(kind)
    assert KEYS.open(TOKEN, KEY, KEYS.seal(TOKEN, KEY, original)) == original


def test_a_profile_round_trips_with_its_extra_fields_and_expiry() -> None:
    opened = KEYS.open(TOKEN, KEY, KEYS.seal(TOKEN, KEY, entry("pos")))
    assert opened.profile is not None
    assert opened.profile.extra == {"extraField": {"nested": [1, 2]}}
    assert opened.profile.expiry_time == PROFILE.expiry_time
    assert opened.profile.to_wink() == PROFILE.to_wink()


def test_the_client_secret_is_never_sealed() -> None:
    profile = WinkProfile(wink_token="user-1", extra={"clientSecret": CLIENT_SECRET})
    sealed = SharedEntry("pos", profile, "", NOW, NOW + 1)
    assert CLIENT_SECRET.encode() not in encode_entry(sealed)
    opened = KEYS.open(TOKEN, KEY, KEYS.seal(TOKEN, KEY, sealed))
    assert opened.profile is not None
    assert "clientSecret" not in opened.profile.extra


def test_each_seal_uses_a_fresh_nonce() -> None:
    assert KEYS.seal(TOKEN, KEY, entry()) != KEYS.seal(TOKEN, KEY, entry())


def test_an_envelope_built_from_the_design_opens() -> None:
    plaintext = b'{"k":"neg","p":null,"d":"rejected","f":1.5,"u":2}'
    value = spec_envelope(MASTER, TOKEN, KEY, b"neg", plaintext)
    assert KEYS.open(TOKEN, KEY, value) == SharedEntry("neg", None, "rejected", 1.5, 2.0)


@pytest.mark.parametrize("kind", KINDS)
def test_tampering_with_any_byte_is_an_integrity_error(kind: EntryKind) -> None:
    value = KEYS.seal(TOKEN, KEY, entry(kind))
    for index in range(len(value)):
        tampered = bytearray(value)
        tampered[index] ^= 0x01
        with pytest.raises(IntegrityError):
            KEYS.open(TOKEN, KEY, bytes(tampered))


def test_another_users_envelope_does_not_open_under_my_token() -> None:
    value = KEYS.seal(TOKEN, KEY, entry())
    other_key = KEYS.entry_key(KEYS.lookup_digest(OTHER_TOKEN))
    for key in (KEY, other_key):
        with pytest.raises(IntegrityError):
            KEYS.open(OTHER_TOKEN, key, value)


def test_an_envelope_moved_to_another_key_does_not_open() -> None:
    value = KEYS.seal(TOKEN, KEY, entry())
    d = KEYS.lookup_digest(TOKEN)
    for key in (KEYS.lease_key(d), KEY + "x", "other:" + KEY):
        with pytest.raises(IntegrityError):
            KEYS.open(TOKEN, key, value)


def test_an_envelope_under_another_master_key_does_not_open() -> None:
    other = SharedKeys(CLIENT_ID, b"n" * 32, "wink:")
    with pytest.raises(IntegrityError):
        other.open(TOKEN, KEY, KEYS.seal(TOKEN, KEY, entry()))


def test_a_relabelled_kind_does_not_open() -> None:
    plaintext = encode_entry(entry("revoked"))
    with pytest.raises(IntegrityError):
        KEYS.open(TOKEN, KEY, spec_envelope(MASTER, TOKEN, KEY, b"neg", plaintext))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01", id="version-only"),
        pytest.param(b"\x01" + bytes(27), id="shorter-than-nonce-and-tag"),
        pytest.param(b"\x01" + bytes(28), id="empty-ciphertext"),
        pytest.param(os.urandom(200), id="random"),
        pytest.param(b"\x02" + KEYS.seal(TOKEN, KEY, entry())[1:], id="unknown-version"),
        pytest.param(b"\x00" + KEYS.seal(TOKEN, KEY, entry())[1:], id="version-zero"),
        pytest.param(KEYS.seal(TOKEN, KEY, entry())[:-1], id="truncated"),
        pytest.param(KEYS.seal(TOKEN, KEY, entry()) + b"\x00", id="extended"),
        pytest.param(b'{"k":"pos"}', id="plain-json"),
        pytest.param("\x01" * 40, id="str-not-bytes"),
    ],
)
def test_garbage_is_an_integrity_error(value: Any) -> None:
    with pytest.raises(IntegrityError):
        KEYS.open(TOKEN, KEY, value)


POS = {"k": "pos", "p": profile_json(), "f": 1.0, "u": 2.0}
NEG = {"k": "neg", "p": None, "d": "no", "f": 1.0, "u": 2.0}


@pytest.mark.parametrize(
    ("kind", "plaintext"),
    [
        pytest.param(b"pos", b"not json", id="not-json"),
        pytest.param(b"pos", b"\xff\xfe", id="not-utf8"),
        pytest.param(b"pos", b"[" * 100_000, id="too-deep"),
        pytest.param(b"pos", b"[1, 2]", id="a-list"),
        pytest.param(b"pos", {**POS, "k": "neg"}, id="kind-differs-from-aad"),
        pytest.param(b"pos", {**POS, "x": 1}, id="unknown-field"),
        pytest.param(b"pos", {**POS, "d": "x"}, id="description-on-pos"),
        pytest.param(b"pos", {k: v for k, v in POS.items() if k != "u"}, id="missing-u"),
        pytest.param(b"pos", {**POS, "p": None}, id="pos-without-profile"),
        pytest.param(b"pos", {**POS, "p": profile_json(winkToken="")}, id="profile-refused"),
        pytest.param(b"pos", {**POS, "p": "a string"}, id="profile-a-string"),
        pytest.param(b"neg", {**NEG, "p": profile_json()}, id="neg-with-profile"),
        pytest.param(b"neg", {k: v for k, v in NEG.items() if k != "d"}, id="neg-without-d"),
        pytest.param(b"neg", {**NEG, "d": 3}, id="description-not-a-string"),
        pytest.param(b"neg", {**NEG, "f": "1"}, id="fresh-a-string"),
        pytest.param(b"neg", {**NEG, "u": True}, id="usable-a-boolean"),
        pytest.param(b"neg", {**NEG, "u": None}, id="usable-null"),
        pytest.param(b"neg", {**NEG, "f": 3.0}, id="usable-before-fresh"),
        pytest.param(b"neg", b'{"k":"neg","p":null,"d":"","f":NaN,"u":2}', id="nan"),
        pytest.param(b"neg", b'{"k":"neg","p":null,"d":"","f":1,"u":Infinity}', id="infinity"),
        pytest.param(b"neg", b'{"k":"neg","p":null,"d":"","f":1,"u":1e999}', id="overflowing"),
        pytest.param(
            b"neg", b'{"k":"neg","p":null,"d":"","f":1,"u":1' + b"0" * 400 + b"}", id="huge-int"
        ),
        pytest.param(b"other", {**NEG, "k": "other"}, id="unknown-kind"),
    ],
)
def test_an_authentic_but_unusable_plaintext_is_an_integrity_error(
    kind: bytes, plaintext: bytes | dict[str, Any]
) -> None:
    data = plaintext if isinstance(plaintext, bytes) else json.dumps(plaintext).encode()
    with pytest.raises(IntegrityError) as caught:
        KEYS.open(TOKEN, KEY, spec_envelope(MASTER, TOKEN, KEY, kind, data))
    assert caught.value.__cause__ is None
    assert TOKEN.decode() not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_the_sealed_value_holds_no_token_nor_hash_of_it(kind: EntryKind) -> None:
    plaintext = encode_entry(entry(kind))
    value = KEYS.seal(TOKEN, KEY, entry(kind))
    for form in forms_of(TOKEN):
        assert form not in plaintext
        assert form not in value


def test_names_hold_no_token_nor_hash_of_it() -> None:
    d = KEYS.lookup_digest(TOKEN)
    names = [KEYS.entry_key(d), KEYS.lease_key(d), KEYS.name(d), KEYS.channel, KEYS.fill_channel]
    names += [encode_message(kind, d).decode() for kind in MESSAGE_KINDS]
    for name in names:
        for form in forms_of(TOKEN):
            assert form.decode("latin-1") not in name


def test_names_follow_the_design() -> None:
    d = KEYS.lookup_digest(TOKEN)
    p = "wink:" + hashlib.sha256(CLIENT_ID.encode()).hexdigest()[:8] + ":"
    name = base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    assert KEYS.prefix == p
    assert (KEYS.channel, KEYS.fill_channel) == (p + "inv", p + "fill")
    assert (KEYS.entry_key(d), KEYS.lease_key(d)) == (p + "e:" + name, p + "l:" + name)
    assert (KEYS.name(d), len(name)) == (name, 43)


def test_two_client_ids_share_no_name() -> None:
    a = SharedKeys.from_secrets("client-a", CLIENT_SECRET, None, "wink:")
    b = SharedKeys.from_secrets("client-b", CLIENT_SECRET, None, "wink:")
    d = a.lookup_digest(TOKEN)
    assert a.prefix != b.prefix
    assert not a.entry_key(d).startswith(b.prefix)
    assert {a.channel, a.fill_channel}.isdisjoint({b.channel, b.fill_channel})
    with pytest.raises(IntegrityError):
        b.open(TOKEN, b.entry_key(d), a.seal(TOKEN, a.entry_key(d), entry()))


def test_the_redis_prefix_leads_every_name() -> None:
    keys = SharedKeys(CLIENT_ID, MASTER, "app1:")
    assert keys.prefix.startswith("app1:")
    assert keys.prefix != KEYS.prefix


@pytest.mark.parametrize("length", [0, 1, 55, 63, 64, 65, 1024, 5000])
def test_the_lookup_digest_is_hmac_sha256_under_k_lookup(length: int) -> None:
    raw = os.urandom(length)
    k_lookup = hkdf(MASTER, b"wink-middleware/v1/lookup")
    assert KEYS.lookup_digest(raw) == hmac.digest(k_lookup, raw, "sha256")


def test_the_lookup_digest_is_stable_and_per_token() -> None:
    assert KEYS.lookup_digest(TOKEN) == KEYS.lookup_digest(TOKEN)
    assert KEYS.lookup_digest(TOKEN) != KEYS.lookup_digest(OTHER_TOKEN)


def test_the_master_key_is_the_redis_secret_when_given() -> None:
    keys = SharedKeys.from_secrets(CLIENT_ID, CLIENT_SECRET, REDIS_SECRET, "wink:")
    same = SharedKeys(CLIENT_ID, REDIS_SECRET.encode(), "wink:")
    assert keys.lookup_digest(TOKEN) == same.lookup_digest(TOKEN)


def test_the_master_key_is_derived_from_the_client_secret_otherwise() -> None:
    keys = SharedKeys.from_secrets(CLIENT_ID, CLIENT_SECRET, None, "wink:")
    master = hkdf(CLIENT_SECRET.encode(), b"wink-middleware/v1/master")
    assert keys.lookup_digest(TOKEN) == SharedKeys(CLIENT_ID, master, "wink:").lookup_digest(TOKEN)


def test_a_redis_secret_and_the_derived_master_give_different_keys() -> None:
    derived = SharedKeys.from_secrets(CLIENT_ID, CLIENT_SECRET, None, "wink:")
    given_secret = SharedKeys.from_secrets(CLIENT_ID, CLIENT_SECRET, REDIS_SECRET, "wink:")
    assert derived.prefix == given_secret.prefix
    assert derived.lookup_digest(TOKEN) != given_secret.lookup_digest(TOKEN)
    with pytest.raises(IntegrityError):
        given_secret.open(TOKEN, KEY, derived.seal(TOKEN, KEY, entry()))


def test_the_keys_repr_shows_no_key_material() -> None:
    keys = SharedKeys.from_secrets(CLIENT_ID, CLIENT_SECRET, REDIS_SECRET, "wink:")
    text = repr(keys)
    assert text == f"SharedKeys(prefix={keys.prefix!r})"
    assert CLIENT_SECRET not in text
    assert REDIS_SECRET not in text
    assert not hasattr(keys, "__dict__")


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_a_message_round_trips(kind: MessageKind) -> None:
    d = KEYS.lookup_digest(TOKEN)
    message = encode_message(kind, d)
    assert message == kind.encode() + b":" + KEYS.name(d).encode()
    assert decode_message(message) == (kind, d)
    assert decode_message(message.decode()) == (kind, d)


NAME = KEYS.name(KEYS.lookup_digest(TOKEN)).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b":",
        b"inv",
        b"inv:",
        b"inv" + NAME,
        b"nope:" + NAME,
        b"INV:" + NAME,
        b"inv:" + NAME[:-1],
        b"inv:" + NAME + b"A",
        b"inv:" + NAME + b"=",
        b"inv:" + NAME[:-1] + b"B",  # non-zero padding bits: a second spelling of one digest
        b"inv:" + NAME[:-2] + b"+/",
        b"inv:" + NAME[:-1] + b"!",
        b"inv:" + b"\xff" * 43,
        "inv:" + "é" * 43,
        "\udcff",
        1,
        None,
    ],
)
def test_a_malformed_message_decodes_to_none(data: Any) -> None:
    assert decode_message(data) is None


@SETTINGS
@given(data=st.one_of(st.binary(max_size=80), st.text(max_size=80)))
def test_decoding_a_message_never_raises(data: bytes | str) -> None:
    decoded = decode_message(data)
    if decoded is not None:
        assert encode_message(*decoded) == (data if isinstance(data, bytes) else data.encode())


@SETTINGS
@given(
    value=st.one_of(
        st.binary(max_size=300),
        st.binary(min_size=28, max_size=300).map(lambda b: b"\x01" + b),
    ),
    token=st.sampled_from([TOKEN, OTHER_TOKEN, b""]),
)
def test_opening_arbitrary_bytes_raises_only_integrity_error(value: bytes, token: bytes) -> None:
    with pytest.raises(IntegrityError):
        KEYS.open(token, KEY, value)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@SETTINGS
@given(
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    fresh=st.floats(min_value=-1e12, max_value=1e12),
    life=st.floats(min_value=0, max_value=1e9),
)
def test_any_profile_wink_gave_round_trips(
    extra: dict[str, Any], fresh: float, life: float
) -> None:
    profile = WinkProfile.from_wink({**extra, **profile_json()})
    original = SharedEntry("pos", profile, "", fresh, fresh + life)
    opened = KEYS.open(TOKEN, KEY, KEYS.seal(TOKEN, KEY, original))
    assert opened.profile is not None
    assert opened.profile.to_wink() == profile.to_wink()
    assert (opened.fresh_until, opened.usable_until) == (fresh, fresh + life)


@pytest.mark.parametrize(
    ("kind", "profile", "description", "fresh", "usable"),
    [
        pytest.param("other", None, "", 1.0, 2.0, id="unknown-kind"),
        pytest.param("pos", None, "", 1.0, 2.0, id="pos-without-profile"),
        pytest.param("neg", PROFILE, "", 1.0, 2.0, id="neg-with-profile"),
        pytest.param("neg", None, None, 1.0, 2.0, id="description-none"),
        pytest.param("neg", None, "", 2.0, 1.0, id="usable-before-fresh"),
        pytest.param("neg", None, "", math.nan, 1.0, id="nan"),
        pytest.param("neg", None, "", 1.0, math.inf, id="infinite"),
        pytest.param("neg", None, "", True, 2.0, id="boolean"),
        pytest.param("neg", None, "", "1", 2.0, id="string"),
    ],
)
def test_an_invalid_entry_cannot_be_built(
    kind: Any, profile: Any, description: Any, fresh: Any, usable: Any
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        SharedEntry(kind, profile, description, fresh, usable)


def test_lease_values_are_random() -> None:
    values = {lease_value() for _ in range(100)}
    assert len(values) == 100
    assert all(len(value) >= 20 for value in values)


def test_the_release_script_compares_and_deletes_one_key() -> None:
    assert RELEASE_SCRIPT == (
        'if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) '
        "else return 0 end"
    )


@pytest.mark.parametrize(
    ("timeout", "retries", "expected"),
    [(2.0, 2, 7.0), (0.5, 0, 1.5), (5.0, 1, 11.0), (10.0, 2, 30.0), (100.0, 0, 30.0)],
)
def test_the_lock_ttl_covers_a_whole_verification_and_is_capped(
    timeout: float, retries: int, expected: float
) -> None:
    assert lock_ttl(timeout, retries) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (1.5, 1500),
        (300.0, 300_000),
        (0.0019, 1),
        (0.0009, None),
        (0.0, None),
        (-5.0, None),
        (math.inf, None),
        (math.nan, None),
    ],
)
def test_ttl_ms_rounds_down_and_refuses_what_is_over(
    remaining: float, expected: int | None
) -> None:
    assert ttl_ms(NOW + remaining, NOW) == expected

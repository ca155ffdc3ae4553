"""WinkProfile: tolerant parsing of Wink's profile, identity helpers and a privacy-safe repr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.authentication import BaseUser

from tests.helpers import profile_json
from wink_middleware import WinkBadResponse, WinkProfile, WinkWSGIMiddleware
from wink_middleware.testing import WinkEmulator


def test_from_wink_maps_camel_case_to_snake_case() -> None:
    profile = WinkProfile.from_wink(profile_json())
    assert profile.first_name == "Ada"
    assert profile.last_name == "Lovelace"
    assert profile.contact_no == "(875) 945-3854"
    assert profile.email == "ada@example.com"
    assert profile.wink_tag == ";ada"
    assert profile.wink_token == "4b15e1bc-d098-4555-bd12-4e904775a413"
    assert profile.date_of_birth == "**/**/1983"
    assert profile.expiry_time == datetime(2027, 1, 15, 8, 5, tzinfo=UTC)


def test_identity_helpers_return_the_wink_token() -> None:
    profile = WinkProfile.from_wink(profile_json())
    assert profile.user_id == profile.identity == profile.wink_token
    assert profile.is_authenticated is True
    assert isinstance(profile, BaseUser)


def test_display_name_falls_back_to_wink_tag() -> None:
    assert WinkProfile.from_wink(profile_json()).display_name == "Ada Lovelace"
    assert WinkProfile.from_wink(profile_json(lastName=None)).display_name == "Ada"
    nameless = profile_json(firstName=None, lastName="")
    assert WinkProfile.from_wink(nameless).display_name == ";ada"


def test_null_strings_become_empty_except_date_of_birth() -> None:
    profile = WinkProfile.from_wink(
        profile_json(firstName=None, email=None, contactNo=None, winkTag=None, dateOfBirth=None)
    )
    assert (profile.first_name, profile.email, profile.contact_no, profile.wink_tag) == ("",) * 4
    assert profile.date_of_birth is None


def test_unknown_keys_are_kept_in_extra_and_client_secret_dropped() -> None:
    profile = WinkProfile.from_wink(profile_json(clientSecret="leak", locale="en", score=3))
    assert dict(profile.extra) == {"locale": "en", "score": 3}
    assert "clientSecret" not in profile.extra
    with pytest.raises(TypeError):
        profile.extra["x"] = 1  # type: ignore[index]


def test_profile_is_frozen_and_hashable() -> None:
    profile = WinkProfile.from_wink(profile_json())
    with pytest.raises(AttributeError):
        profile.email = "x"  # type: ignore[misc]
    assert hash(profile) == hash(WinkProfile.from_wink(profile_json()))
    assert profile == WinkProfile.from_wink(profile_json())


def test_repr_shows_no_personal_data() -> None:
    profile = WinkProfile.from_wink(profile_json())
    text = repr(profile)
    assert text == "WinkProfile(wink_token='4b15e1bc-d098-4555-bd12-4e904775a413', wink_tag=';ada')"
    for private in ("Ada", "Lovelace", "945-3854", "ada@example.com", "1983"):
        assert private not in text
    assert str(profile) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-03-22T17:43:22Z", datetime(2023, 3, 22, 17, 43, 22, tzinfo=UTC)),
        ("2023-03-22T19:43:22+02:00", datetime(2023, 3, 22, 17, 43, 22, tzinfo=UTC)),
        ("2023-03-22T17:43:22.5Z", datetime(2023, 3, 22, 17, 43, 22, 500000, tzinfo=UTC)),
        ("2023-03-22T17:43:22.1234567Z", datetime(2023, 3, 22, 17, 43, 22, 123456, tzinfo=UTC)),
        ("2023-03-22T17:43:22", datetime(2023, 3, 22, 17, 43, 22, tzinfo=UTC)),
        (1679507002, datetime(2023, 3, 22, 17, 43, 22, tzinfo=UTC)),
        (1679507002.25, datetime(2023, 3, 22, 17, 43, 22, 250000, tzinfo=UTC)),
        (1679507002000, datetime(2023, 3, 22, 17, 43, 22, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_expiry_time_forms(raw: object, expected: datetime | None) -> None:
    profile = WinkProfile.from_wink(profile_json(expiryTime=raw))
    assert profile.expiry_time == expected
    if expected is not None:
        assert profile.expiry_time is not None and profile.expiry_time.tzinfo is UTC


@pytest.mark.parametrize("raw", ["tomorrow", True, [1], {"t": 1}, float("inf"), 10**30])
def test_unusable_expiry_time_is_a_bad_response(raw: object) -> None:
    with pytest.raises(WinkBadResponse, match="expiryTime"):
        WinkProfile.from_wink(profile_json(expiryTime=raw))


@pytest.mark.parametrize(
    "raw",
    [2**1024, -(2**1024), 10**400, "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"],
    ids=["2**1024", "-2**1024", "10**400", "past-max-in-utc", "before-min-in-utc"],
)
def test_an_expiry_time_beyond_the_float_or_datetime_range_is_a_bad_response_not_a_500(
    raw: object,
) -> None:
    # Wink's JSON may hold any integer: float() of 2**1024 overflowed out of the parser.
    with pytest.raises(WinkBadResponse, match="out-of-range 'expiryTime'"):
        WinkProfile.from_wink(profile_json(expiryTime=raw))


def test_an_expiry_time_of_2_to_the_1024_from_wink_is_a_502_through_the_middleware() -> None:
    emulator = WinkEmulator("client", "s3cret")
    token = emulator.issue_token()
    body = json.dumps(profile_json(expiryTime=2**1024)).encode()
    emulator.malformed_next(body=body)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"reached"]

    middleware = WinkWSGIMiddleware(app, verifier=emulator.verifier())
    with httpx.Client(
        transport=httpx.WSGITransport(middleware), base_url="http://api.test"
    ) as client:
        answer = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 502
    assert answer.json()["error"] == "bad_gateway"
    assert emulator.calls == 1


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing_wink_token_is_a_bad_response(token: str | None) -> None:
    with pytest.raises(WinkBadResponse, match="winkToken"):
        WinkProfile.from_wink(profile_json(winkToken=token))


@pytest.mark.parametrize(
    "overrides",
    [{"firstName": 5}, {"email": ["a"]}, {"winkToken": 123}, {"dateOfBirth": 1983}],
)
def test_wrong_types_are_a_bad_response(overrides: dict[str, Any]) -> None:
    with pytest.raises(WinkBadResponse, match="where a string was expected"):
        WinkProfile.from_wink(profile_json(**overrides))


@pytest.mark.parametrize("data", [[profile_json()], "profile", 42, None, True])
def test_non_object_json_is_a_bad_response(data: object) -> None:
    with pytest.raises(WinkBadResponse, match="profile object"):
        WinkProfile.from_wink(data)


def test_to_wink_round_trips() -> None:
    data = profile_json(locale="en")
    profile = WinkProfile.from_wink(data)
    assert profile.to_wink() == data
    assert WinkProfile.from_wink(profile.to_wink()) == profile


def test_to_wink_without_expiry() -> None:
    assert WinkProfile(wink_token="u").to_wink()["expiryTime"] is None

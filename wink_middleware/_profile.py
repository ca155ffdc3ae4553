"""WinkProfile: the verified user, parsed tolerantly from Wink's Verify Client answer."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from starlette.authentication import BaseUser

from wink_middleware._exceptions import WinkBadResponse

__all__ = ["WinkProfile"]

# wire name -> field name, for the string fields ("null" becomes "").
_STRING_FIELDS: tuple[tuple[str, str], ...] = (
    ("firstName", "first_name"),
    ("lastName", "last_name"),
    ("contactNo", "contact_no"),
    ("email", "email"),
    ("winkTag", "wink_tag"),
    ("winkToken", "wink_token"),
)
_KNOWN_KEYS = frozenset({wire for wire, _ in _STRING_FIELDS} | {"dateOfBirth", "expiryTime"})
# Never kept, never logged: Wink's SDK type lists it in the profile object.
_DROPPED_KEYS = frozenset({"clientSecret"})
_EMPTY: Mapping[str, Any] = MappingProxyType({})
# Epoch numbers above this are milliseconds (1e11 seconds is the year 5138).
_MILLISECONDS_THRESHOLD = 1e11


@dataclass(frozen=True, slots=True, eq=True)
class WinkProfile(BaseUser):
    """The user Wink verified. Also a Starlette ``BaseUser``, so ``request.user`` works.

    ``repr`` shows only ``wink_token`` and ``wink_tag``: no personal data reaches logs by accident.
    """

    wink_token: str
    first_name: str = ""
    last_name: str = ""
    contact_no: str = ""
    email: str = ""
    wink_tag: str = ""
    date_of_birth: str | None = None
    expiry_time: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.extra, MappingProxyType):
            object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def __repr__(self) -> str:
        return f"WinkProfile(wink_token={self.wink_token!r}, wink_tag={self.wink_tag!r})"

    @property
    def is_authenticated(self) -> bool:
        """Always ``True``: a profile exists only for a verified token."""
        return True

    @property
    def display_name(self) -> str:
        """``"first last"``, or the WinkTag when Wink sent no name."""
        return f"{self.first_name} {self.last_name}".strip() or self.wink_tag

    @property
    def identity(self) -> str:
        """The stable per-client user ID (the winkToken)."""
        return self.wink_token

    @property
    def user_id(self) -> str:
        """The stable per-client user ID (the winkToken): map it to your own user record."""
        return self.wink_token

    @classmethod
    def from_wink(cls, data: object) -> WinkProfile:
        """Parse Wink's JSON profile (already decoded). Raises :class:`WinkBadResponse` if unusable.

        Unknown keys are kept in ``extra`` (``clientSecret`` is always dropped); ``null`` strings
        become ``""`` except ``dateOfBirth``, which stays ``None``.
        """
        if not isinstance(data, dict):
            raise WinkBadResponse(
                f"Wink answered with a JSON {_json_type(data)} where a profile object was expected"
            )
        values: dict[str, Any] = {}
        for wire, name in _STRING_FIELDS:
            value = data.get(wire)
            if value is None:
                value = ""
            elif not isinstance(value, str):
                raise WinkBadResponse(
                    f"Wink's profile has a {_json_type(value)} in {wire!r} where a string was expected"
                )
            values[name] = value
        if not values["wink_token"].strip():
            raise WinkBadResponse("Wink's profile has no winkToken, so it names no user")
        birth = data.get("dateOfBirth")
        if birth is not None and not isinstance(birth, str):
            raise WinkBadResponse(
                f"Wink's profile has a {_json_type(birth)} in 'dateOfBirth' where a string was expected"
            )
        values["date_of_birth"] = birth
        values["expiry_time"] = parse_expiry(data.get("expiryTime"))
        extra = {k: v for k, v in data.items() if k not in _KNOWN_KEYS and k not in _DROPPED_KEYS}
        return cls(**values, extra=MappingProxyType(extra) if extra else _EMPTY)

    def to_wink(self) -> dict[str, Any]:
        """The profile as Wink's camelCase JSON object (``expiryTime`` as ISO-8601 UTC)."""
        data: dict[str, Any] = dict(self.extra)
        for wire, name in _STRING_FIELDS:
            data[wire] = getattr(self, name)
        data["dateOfBirth"] = self.date_of_birth
        data["expiryTime"] = (
            None
            if self.expiry_time is None
            else self.expiry_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
        )
        return data


def parse_expiry(value: object) -> datetime | None:
    """Parse Wink's ``expiryTime`` into an aware UTC datetime.

    Accepts ISO-8601 (``Z``, an offset, fractional seconds, or no zone, taken as UTC), epoch seconds
    or epoch milliseconds as numbers, and ``null`` / ``""`` (no expiry). Anything else is a
    :class:`WinkBadResponse`.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise WinkBadResponse("Wink's profile has a boolean in 'expiryTime'")
    if isinstance(value, int | float):
        try:
            # float() of an int beyond the float range (2**1024 and up) raises OverflowError too.
            seconds = float(value)
            if not math.isfinite(seconds):
                raise WinkBadResponse("Wink's profile has a non-finite 'expiryTime'")
            if abs(seconds) >= _MILLISECONDS_THRESHOLD:
                seconds /= 1000.0
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise WinkBadResponse("Wink's profile has an out-of-range 'expiryTime'") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise WinkBadResponse(
                "Wink's profile has an 'expiryTime' that is not ISO-8601"
            ) from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past datetime.max in UTC
            raise WinkBadResponse("Wink's profile has an out-of-range 'expiryTime'") from None
    raise WinkBadResponse(f"Wink's profile has a {_json_type(value)} in 'expiryTime'")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__

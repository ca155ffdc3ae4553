"""SharedEntry: one verification answer as the fleet shares it (the shared tier).

Apart from the envelope code so that the engine, which builds and reads entries, needs no crypto.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from wink_middleware._profile import WinkProfile

__all__ = ["EntryKind", "SharedEntry"]

EntryKind = Literal["pos", "neg", "revoked"]
_KINDS: Final[tuple[EntryKind, ...]] = ("pos", "neg", "revoked")


@dataclass(frozen=True, slots=True)
class SharedEntry:
    """One verification answer as the fleet shares it.

    ``profile`` is set exactly for ``pos``; ``description`` is the rejection's message for ``neg``
    and ``revoked``. Both instants are finite epoch seconds with ``usable_until >= fresh_until``;
    anything else is a :class:`ValueError`.
    """

    kind: EntryKind
    profile: WinkProfile | None
    description: str
    fresh_until: float
    usable_until: float

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown entry kind {self.kind!r}")
        if (self.profile is not None) != (self.kind == "pos"):
            raise ValueError("a profile goes with a 'pos' entry, and only with one")
        if not isinstance(self.description, str):
            raise ValueError("the description is not a string")
        for value in (self.fresh_until, self.usable_until):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("the entry's instants are not numbers")
            if not math.isfinite(value):
                raise ValueError("the entry's instants are not finite")
        if self.usable_until < self.fresh_until:
            raise ValueError("usable_until is before fresh_until")

"""WinkSession: a single-use Wink sign-in session, as ``create_session`` returns it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["WinkSession", "session_fingerprint"]


@dataclass(frozen=True, slots=True)
class WinkSession:
    """A single-use Wink sign-in session: hand ``session_id`` to the front end's ``winkLogin``.

    ``return_url`` and ``cancel_url`` are where Wink sends the user after signing in or cancelling.
    ``repr`` shows only a fingerprint of the id (the first 8 hex of its sha256).
    """

    session_id: str = field(repr=False)
    return_url: str
    cancel_url: str

    @property
    def fingerprint(self) -> str:
        """The loggable form of the session id."""
        return session_fingerprint(self.session_id)

    def __repr__(self) -> str:
        return (
            f"WinkSession(session_id=<sha256 {self.fingerprint}>, "
            f"return_url={self.return_url!r}, cancel_url={self.cancel_url!r})"
        )


def session_fingerprint(session_id: str) -> str:
    """The first 8 hex digits of the sha256 of a session id."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]

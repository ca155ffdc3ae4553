"""The package's logger: every record carries ``wink_fingerprint`` and ``wink_outcome``.

Structured-logging setups (a JSON formatter) can rely on both attributes being present; they are
``None`` where a line is about no token. A token appears only as its fingerprint.
"""

from __future__ import annotations

import logging

__all__ = ["fields", "logger"]

logger = logging.getLogger("wink_middleware")


class _Fields(logging.Filter):
    """Gives every record of the package's logger the two structured fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "wink_fingerprint"):
            record.wink_fingerprint = None
        if not hasattr(record, "wink_outcome"):
            record.wink_outcome = None
        return True


logger.addFilter(_Fields())


def fields(fingerprint: str | None, outcome: str | None) -> dict[str, str | None]:
    """The ``extra=`` of a log call about one token."""
    return {"wink_fingerprint": fingerprint, "wink_outcome": outcome}

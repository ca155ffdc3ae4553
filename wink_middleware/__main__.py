"""``python -m wink_middleware``: the ``wink-middleware`` console script."""

from __future__ import annotations

import sys

from wink_middleware._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

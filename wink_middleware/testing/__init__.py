"""Testing kit: :class:`WinkEmulator`, a stand-in for Wink's Verify Client and session API, and a
pytest plugin.

```python
from wink_middleware.testing import WinkEmulator

emulator = WinkEmulator(client_id="test-client", client_secret="test-secret")
token = emulator.issue_token(ttl=60, first_name="Grace")
verifier = emulator.async_verifier()          # AsyncWinkVerifier wired in-process
with emulator.serve() as base_url: ...        # or a real HTTP server on 127.0.0.1
```

With the package installed, pytest gets the ``wink_emulator``, ``wink_config`` and ``wink_token``
fixtures (see :mod:`wink_middleware.testing.pytest_plugin`).
"""

from __future__ import annotations

from pathlib import Path

from wink_middleware.testing._clock import FakeClock
from wink_middleware.testing._emulator import (
    SAMPLE_PROFILE,
    SESSION_PATH,
    TOKENS_PATH,
    VERIFY_PATH,
    Answer,
    WallClock,
    WinkEmulator,
)
from wink_middleware.testing._server import serve

#: keycloak-js 26 (Apache-2.0, its licence beside it), the library Wink's SDK wraps, as an ES module:
#: serve it to a test page (``import Keycloak from "/keycloak.js"``) to sign in against the emulator.
KEYCLOAK_JS = Path(__file__).parent / "static" / "keycloak.js"

__all__ = [
    "KEYCLOAK_JS",
    "SAMPLE_PROFILE",
    "SESSION_PATH",
    "TOKENS_PATH",
    "VERIFY_PATH",
    "Answer",
    "FakeClock",
    "WallClock",
    "WinkEmulator",
    "serve",
]

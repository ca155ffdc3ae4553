"""pytest plugin (entry point ``wink_middleware``): fixtures that put a Wink emulator in your tests.

```python
def test_profile(wink_emulator, wink_token):
    app = WinkMiddleware(my_app, verifier=wink_emulator.async_verifier())
    ...  # send Authorization: Bearer <wink_token>, get the sample user
```

Fixtures (all function-scoped):

- ``wink_emulator``: a fresh :class:`~wink_middleware.testing.WinkEmulator` with client id
  :data:`CLIENT_ID` and secret :data:`CLIENT_SECRET`;
- ``wink_config``: a :class:`~wink_middleware.WinkConfig` with those credentials, for the emulator;
- ``wink_token``: a token for the sample user, valid five minutes.

Disable the plugin with ``-p no:wink_middleware``.
"""

from __future__ import annotations

import pytest

from wink_middleware._config import WinkConfig
from wink_middleware.testing._emulator import WinkEmulator

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "wink_config", "wink_emulator", "wink_token"]

#: The client id of the ``wink_emulator`` fixture.
CLIENT_ID = "test-client"
#: The secret of the ``wink_emulator`` fixture (a test value, not a real secret).
CLIENT_SECRET = "test-secret"  # noqa: S105


@pytest.fixture
def wink_emulator() -> WinkEmulator:
    """A fresh Wink emulator (client id ``test-client``) for this test."""
    return WinkEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def wink_config(wink_emulator: WinkEmulator) -> WinkConfig:
    """A WinkConfig with the emulator's credentials (wire it with ``wink_emulator.async_verifier``)."""
    return wink_emulator.wink_config()


@pytest.fixture
def wink_token(wink_emulator: WinkEmulator) -> str:
    """An access token for the emulator's sample user, valid five minutes."""
    return wink_emulator.issue_token()

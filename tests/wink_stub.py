"""A scripted stand-in for Wink's Verify Client, as an httpx.MockTransport (for engine-level tests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.helpers import BASE_URL, CLIENT_ID, CLIENT_SECRET, FakeClock, profile_json
from wink_middleware import AsyncWinkVerifier, WinkConfig

Reply = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


class WinkStub:
    """Answers each call with the next scripted reply (the last one repeats); records the requests."""

    def __init__(self, *replies: Reply, delay: float = 0.0) -> None:
        self.replies: list[Reply] = list(replies) or [httpx.Response(200, json=profile_json())]
        self.requests: list[httpx.Request] = []
        self.delay = delay

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


def config(**options: Any) -> WinkConfig:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": BASE_URL,
        "retries": 0,
    }
    values.update(options)
    return WinkConfig(**values)


def verifier(stub: WinkStub, clock: FakeClock | None = None, **options: Any) -> AsyncWinkVerifier:
    return AsyncWinkVerifier(config(**options), client=stub.client(), clock=clock or FakeClock())

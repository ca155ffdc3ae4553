"""The shared tier on one Redis, a Redis Cluster, Sentinel, or a client you build yourself.

Each function wraps an ASGI app; the Redis clients connect lazily, on the first request that needs
them, so building the app never fails because Redis is unreachable. Run the first against the local
Wink emulator and a local Redis (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    export WINK_REDIS_URL=redis://127.0.0.1:6379/0
    uvicorn examples.fleet_setups:app --port 8001 --workers 4        # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8001/me
"""

from __future__ import annotations

from redis.asyncio import RedisCluster
from redis.asyncio.sentinel import Sentinel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from wink_middleware import AsyncWinkVerifier, WinkConfig, WinkMiddleware, require_profile


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"user_id": require_profile(request).user_id})


# One Redis: WINK_REDIS_URL (redis://, rediss:// for TLS, unix://) turns the tier on.
app = WinkMiddleware(Starlette(routes=[Route("/me", me)]))


def on_a_cluster(app: ASGIApp) -> WinkMiddleware:
    # Any one node; the client finds the others. Same as WINK_REDIS_CLUSTER=1 + WINK_REDIS_URL.
    return WinkMiddleware(app, redis_url="rediss://wink:s3cret@node-1:6379", redis_cluster=True)


def on_sentinel(app: ASGIApp, config: WinkConfig) -> WinkMiddleware:
    nodes = [("sentinel-1", 26379), ("sentinel-2", 26379), ("sentinel-3", 26379)]
    sentinel = Sentinel(nodes, socket_timeout=0.25)  # type: ignore[no-untyped-call, unused-ignore]
    # A client you own: set its timeouts (redis_timeout applies to clients the tier builds).
    redis = sentinel.master_for(
        "wink", socket_timeout=0.25, socket_connect_timeout=0.25, username="wink", password="s3cret"
    )
    return WinkMiddleware(app, verifier=AsyncWinkVerifier(config, redis=redis))


def with_your_own_client(app: ASGIApp, config: WinkConfig) -> WinkMiddleware:
    # For mTLS, IAM tokens or anything a URL cannot say. The verifier never closes it.
    redis = RedisCluster(host="node-1", port=6379, socket_timeout=0.25, ssl=True)
    return WinkMiddleware(app, verifier=AsyncWinkVerifier(config, redis=redis))

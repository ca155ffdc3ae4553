"""Plain ASGI: no framework, the profile read from the scope.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    uvicorn examples.plain_asgi:app --port 8001               # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8001/
"""

from __future__ import annotations

import json

from starlette.types import Receive, Scope, Send

from wink_middleware import WinkMiddleware, get_access_token, get_verifier, require_profile


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        # Answer the lifespan protocol: the middleware closes its HTTP client at shutdown.
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    profile = require_profile(scope)  # every path is protected
    answer: dict[str, object] = {"hello": profile.display_name, "user_id": profile.user_id}
    if scope["path"] == "/logout" and scope["method"] == "POST":
        # The token this request was verified with, refused from now on.
        everywhere = await get_verifier(scope).revoke(get_access_token(scope))
        answer = {"signed_out": True, "every_worker": everywhere}
    body = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Configured by WINK_* environment variables.
app = WinkMiddleware(hello)

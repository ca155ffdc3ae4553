"""A websocket endpoint: the handshake carries the token, verified before the socket is accepted.

Browsers cannot set headers on a websocket, so the token may also come as ``?access_token=...``
(``query_param``, off by default because URLs get logged: run uvicorn with ``--no-access-log``).
Other clients send ``Authorization: Bearer <token>`` as usual. A refused handshake gets the RFC 6750
answer (401) where the server supports it, else the socket is closed with code 1008.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    pip install websockets
    uvicorn examples.websocket_app:app --port 8000 --no-access-log   # terminal 2
    python -m websockets "ws://127.0.0.1:8000/ws?access_token=<token>"
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from wink_middleware import WinkMiddleware, get_profile


async def echo(websocket: WebSocket) -> None:
    profile = get_profile(websocket)
    assert profile is not None  # the middleware refused the handshake otherwise
    await websocket.accept()
    await websocket.send_json({"hello": profile.display_name})
    async for text in websocket.iter_text():
        await websocket.send_text(f"{profile.wink_tag}: {text}")


app = Starlette(
    routes=[WebSocketRoute("/ws", echo)],
    middleware=[Middleware(WinkMiddleware, query_param="access_token")],
)

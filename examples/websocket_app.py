"""A websocket endpoint: the handshake carries the token, verified before the socket is accepted.

Browsers cannot set headers on a websocket, so a page sends the token as a subprotocol:
``new WebSocket(url, ["wink.bearer", token])`` (``websocket_subprotocol``). The middleware takes the
token entry out of ``scope["subprotocols"]`` before the app runs, and the app accepts with
``wink.bearer``, as the browser requires. Unlike ``?access_token=...`` the token is not in the URL,
which servers log (uvicorn logs every websocket URL, even with ``--no-access-log``). Other clients
send ``Authorization: Bearer <token>`` as usual. A refused handshake gets the RFC 6750 answer (401)
where the server supports it, else the socket is closed with code 1008.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    pip install websockets
    uvicorn examples.websocket_app:app --port 8001            # terminal 2
    python -c "from websockets.sync.client import connect; \\
        ws = connect('ws://127.0.0.1:8001/ws', subprotocols=['wink.bearer', '<token>']); print(ws.recv())"
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from wink_middleware import WinkMiddleware, require_profile

SUBPROTOCOL = "wink.bearer"


async def echo(websocket: WebSocket) -> None:
    profile = require_profile(websocket)  # the middleware refused the handshake otherwise
    # A browser that offered subprotocols drops a connection that accepts none of them.
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    await websocket.send_json({"hello": profile.display_name})
    async for text in websocket.iter_text():
        await websocket.send_text(f"{profile.wink_tag}: {text}")


app = Starlette(
    routes=[WebSocketRoute("/ws", echo)],
    middleware=[Middleware(WinkMiddleware, websocket_subprotocol=SUBPROTOCOL)],
)

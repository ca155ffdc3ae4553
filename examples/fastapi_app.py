"""FastAPI: ``CurrentUser``, ``OptionalUser`` and ``require()`` from ``wink_middleware.fastapi``.

The middleware verifies any token sent (a bad one is refused with its RFC 6750 answer) and lets
requests without one through; each route's dependency then decides. The docs at /docs get an
"Authorize" button for the token.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    uvicorn examples.fastapi_app:app --port 8001              # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8001/me
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request

from wink_middleware import WinkMiddleware, WinkProfile, get_access_token, get_verifier
from wink_middleware.fastapi import AUTH_RESPONSES, CurrentUser, OptionalUser, require

app = FastAPI(title="wink_middleware FastAPI example")
# Options over WINK_* environment variables; every path optional: the routes decide.
app.add_middleware(WinkMiddleware, optional_paths=["/*"])


@app.get("/me", responses=AUTH_RESPONSES)  # the OpenAPI document shows the 401, 403, 503
async def me(user: CurrentUser) -> dict[str, str]:
    return {"user_id": user.user_id, "name": user.display_name, "email": user.email}


@app.post("/logout", responses=AUTH_RESPONSES)
async def logout(request: Request, user: CurrentUser) -> dict[str, bool]:
    # The token this request was verified with, refused from now on (by every worker, with the
    # shared tier).
    everywhere = await get_verifier(request).revoke(get_access_token(request))
    return {"signed_out": True, "every_worker": everywhere}


@app.get("/")
async def index(user: OptionalUser) -> dict[str, str]:
    return {"hello": "anyone" if user is None else user.display_name}


def is_staff(user: WinkProfile) -> bool:
    return user.email.endswith("@example.com")


@app.get(
    "/staff", dependencies=[Depends(require(is_staff, "staff only"))], responses=AUTH_RESPONSES
)
async def staff() -> dict[str, bool]:
    return {"staff": True}

"""FastAPI: a dependency that returns the Wink profile, or answers 401.

The middleware verifies any token sent (a bad one is refused with its RFC 6750 answer) but lets
requests without one through; the ``wink_user`` dependency then decides per route. ``HTTPBearer``
only adds the "Authorize" button to the OpenAPI docs at /docs.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    uvicorn examples.fastapi_app:app --port 8000              # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8000/me
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wink_middleware import WinkMiddleware, WinkProfile, get_profile

bearer = HTTPBearer(auto_error=False, description="a Wink Login access token")


async def wink_user(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> WinkProfile:
    """The verified user, or 401 when the request carried no token."""
    profile = get_profile(request)
    if profile is None:
        raise HTTPException(
            status_code=401,
            detail="a bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="wink"'},
        )
    return profile


User = Annotated[WinkProfile, Depends(wink_user)]

app = FastAPI(title="wink_middleware FastAPI example")
app.add_middleware(WinkMiddleware, optional_paths=["/*"])


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "anyone"}


@app.get("/me")
async def me(user: User) -> dict[str, str]:
    return {"user_id": user.user_id, "name": user.display_name, "email": user.email}

"""Pages anyone may see: the home page greets a signed-in user, and a stale cookie is no error page.

The front end keeps the Wink token in the ``wink_session`` cookie (``cookie_name``). ``/`` is an
optional path: without a cookie it is the signed-out page. With ``anonymous_on_invalid``, an expired,
revoked or garbled cookie is anonymous too, the refusal kept in ``scope["wink.error"]``, so the page
says "your session expired" instead of answering 401. An outage at Wink is still a 503: it never
silently signs a user out. ``/account`` is protected as usual.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    pip install jinja2
    uvicorn examples.pages_app:app --port 8001                # terminal 2
    curl --cookie "wink_session=<token>" http://127.0.0.1:8001/
"""

from __future__ import annotations

from jinja2 import DictLoader, Environment, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from wink_middleware import WinkMiddleware, get_profile, require_profile

TEMPLATES = Environment(
    loader=DictLoader(
        {
            "home.html": """<!doctype html>
<title>Home</title>
{% if profile %}
<p>Hello, {{ profile.display_name }}! <a href="/account">Your account</a></p>
{% elif expired %}
<p>Your session expired, sign in again.</p>
<p><a href="/sign-in">Sign in</a></p>
{% else %}
<p><a href="/sign-in">Sign in</a></p>
{% endif %}
""",
            "account.html": """<!doctype html>
<title>Your account</title>
<p>{{ profile.display_name }} ({{ profile.email }})</p>
""",
        }
    ),
    autoescape=select_autoescape(default=True),
)


async def home(request: Request) -> HTMLResponse:
    # /sign-in stands for the page that runs Wink's front-end SDK and sets the cookie.
    page = TEMPLATES.get_template("home.html").render(
        profile=get_profile(request), expired="wink.error" in request.scope
    )
    return HTMLResponse(page)


async def account(request: Request) -> HTMLResponse:
    page = TEMPLATES.get_template("account.html").render(profile=require_profile(request))
    return HTMLResponse(page)


app = Starlette(
    routes=[Route("/", home), Route("/account", account)],
    # Options over WINK_* environment variables (WinkConfig.from_env()).
    middleware=[
        Middleware(
            WinkMiddleware,
            optional_paths=["/"],
            cookie_name="wink_session",
            anonymous_on_invalid=True,
        )
    ],
)

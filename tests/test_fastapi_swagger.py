"""Swagger UI in headless Chromium: the WinkBearer scheme's Authorize button takes a token issued by the
emulator, and "Execute" on a CurrentUser route then answers 200 (401 ``missing_token`` before).

The app is served by uvicorn on 127.0.0.1; Swagger UI's assets are self-hosted (FastAPI's recipe:
``docs_url=None``, ``get_swagger_ui_html`` and ``StaticFiles``) from the ``fastapi-offline`` package,
since the browser may reach nothing but 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from tests.chromium import CHROMIUM, Chromium, launch
from tests.servers import serve_asgi
from wink_middleware import WinkMiddleware
from wink_middleware.fastapi import CurrentUser
from wink_middleware.testing import WinkEmulator

_ASSETS_SPEC = importlib.util.find_spec("fastapi_offline")
SWAGGER_ASSETS = (
    None
    if _ASSETS_SPEC is None or _ASSETS_SPEC.origin is None
    else Path(_ASSETS_SPEC.origin).parent / "static"
)
OPERATION = "#operations-default-me_me_get"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (scripts/install installs it as root)"
    ),
    pytest.mark.skipif(
        SWAGGER_ASSETS is None,
        reason="Swagger UI's assets come from fastapi-offline: pip install fastapi-offline",
    ),
]


def swagger_app(emulator: WinkEmulator) -> FastAPI:
    assert SWAGGER_ASSETS is not None
    app = FastAPI(title="Swagger UI test", docs_url=None, redoc_url=None)
    app.mount("/swagger", StaticFiles(directory=SWAGGER_ASSETS), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Swagger UI test",
            swagger_js_url="/swagger/swagger-ui-bundle.js",
            swagger_css_url="/swagger/swagger-ui.css",
            swagger_favicon_url="/swagger/favicon.png",
        )

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"name": user.display_name, "tag": user.wink_tag}

    app.add_middleware(
        WinkMiddleware,
        verifier=emulator.async_verifier(
            public_paths=["/docs", "/openapi.json", "/swagger/*"], optional_paths=["/*"]
        ),
    )
    return app


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    with launch(tmp_path) as chromium:
        yield chromium


def q(selector: str) -> str:
    return f"document.querySelector({json.dumps(selector)})"


def click(browser: Chromium, selector: str) -> None:
    browser.wait_for(f"!!{q(selector)}")
    browser.evaluate(f"{q(selector)}.click()")


def execute(browser: Chromium, status: str) -> str:
    """Press Execute; wait for the live response with ``status``; return its body as shown."""
    live = f"{OPERATION} .live-responses-table .response"
    if browser.evaluate(f"!!{q(OPERATION + ' .btn-clear')}"):
        click(browser, f"{OPERATION} .btn-clear")
        browser.wait_for(f"!{q(live)}")
    click(browser, f"{OPERATION} .btn.execute")
    # The status cell reads "401" then "Undocumented": its first text node is the code.
    browser.wait_for(
        f"{q(live + ' .response-col_status')}?.firstChild.nodeValue === {json.dumps(status)}"
    )
    body: str = browser.evaluate(f"{q(live + ' .highlight-code pre')}.textContent")
    return body


def test_swagger_ui_authorize_then_execute_a_current_user_route(
    browser: Chromium, wink_emulator: WinkEmulator, tmp_path: Path
) -> None:
    token = wink_emulator.issue_token(first_name="Grace")
    with serve_asgi(swagger_app(wink_emulator)) as url:
        browser.open(f"{url}/docs")
        browser.wait_for(f"!!{q(OPERATION)}")
        # The route is marked as needing the WinkBearer scheme: it shows the (open) lock.
        assert browser.evaluate(f"{q(OPERATION + ' .authorization__btn')}.ariaLabel") == (
            "authorization button unlocked"
        )

        click(browser, f"{OPERATION} .opblock-summary-control")
        click(browser, f"{OPERATION} .try-out__btn")
        refused = json.loads(execute(browser, "401"))
        assert refused == {
            "error": "missing_token",
            "error_description": "a bearer token is required",
        }

        click(browser, ".btn.authorize")
        browser.wait_for(f"!!{q('#auth-bearer-value')}")
        browser.evaluate(f"{q('#auth-bearer-value')}.focus()")
        browser.send("Input.insertText", {"text": token}, session=True)  # as a paste does
        click(browser, "button[aria-label='Apply credentials']")
        click(browser, ".auth-btn-wrapper .btn-done")
        browser.wait_for(f"!!{q('.btn.authorize.locked')}")
        assert browser.evaluate(f"{q(OPERATION + ' .authorization__btn')}.ariaLabel") == (
            "authorization button locked"
        )

        answer = json.loads(execute(browser, "200"))
        assert answer == {"name": "Grace Lovelace", "tag": ";ada.lovelace"}
        curl = browser.evaluate(f"{q(OPERATION + ' .curl-command')}.textContent")
        assert f"Authorization: Bearer {token}" in curl
        browser.screenshot(tmp_path / "swagger-ui.png")
    assert browser.page_errors() == []
    assert wink_emulator.calls == 1

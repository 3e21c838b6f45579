"""``/docs`` and ``/redoc`` render in a real Chromium with no request leaving 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api._docs import ASSETS, CONTENT_SECURITY_POLICY, STATIC_URL
from tests.api._api_server import LiveServer
from tests.browser._chromium import browser_page


@pytest.fixture
def docs_server(bare_server: LiveServer) -> LiveServer:
    return bare_server


def reply_csp(server: LiveServer, page: str) -> str:
    return httpx.get(server.url + page, timeout=10).headers.get("content-security-policy", "")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets(docs_server: LiveServer, page: str) -> None:
    html = httpx.get(docs_server.url + page, timeout=10).text
    assert STATIC_URL in html
    assert reply_csp(docs_server, page) == CONTENT_SECURITY_POLICY
    # The defaults point at jsDelivr, fastapi.tiangolo.com and Google Fonts.
    for outside in ("cdn.jsdelivr.net", "fastapi.tiangolo.com", "fonts.googleapis.com"):
        assert outside not in html


def test_assets_are_served(docs_server: LiveServer) -> None:
    for name in ASSETS:
        reply = httpx.get(f"{docs_server.url}{STATIC_URL}/{name}", timeout=10)
        assert reply.status_code == 200, name
        assert len(reply.content) > 1000, name


def test_swagger_ui_renders_offline(docs_server: LiveServer, tmp_path: Path) -> None:
    with browser_page() as (page, external):
        page.goto(docs_server.url + "/docs")
        # Operations are listed only once the bundle ran and fetched /openapi.json.
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert page.locator(".swagger-ui .opblock").count() > 10
        assert "DataSafe Ledger API" in page.locator(".swagger-ui .info .title").inner_text()
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    assert external.urls == []


def test_redoc_renders_offline(docs_server: LiveServer, tmp_path: Path) -> None:
    with browser_page() as (page, external):
        page.goto(docs_server.url + "/redoc")
        page.wait_for_selector("h1", timeout=30_000)
        assert "DataSafe Ledger API" in page.locator("h1").first.inner_text()
        page.wait_for_selector("[role=menuitem], .menu-content li", timeout=30_000)
        page.screenshot(path=str(tmp_path / "redoc.png"), full_page=False)
    assert external.urls == []

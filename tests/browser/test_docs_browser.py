"""/docs renders its operations in Chromium with nothing but the app's own files (no CDN)."""

from __future__ import annotations

from playwright.async_api import Page

from tests.browser.conftest import Portal, screenshot


async def test_docs_render_offline(portal: Portal, page: Page) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(f"{portal.base_url}/docs")
    await page.wait_for_selector(".opblock-summary-path", timeout=60_000)
    paths = await page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/payments" in [p.replace("\u200b", "") for p in paths]
    await screenshot(page, "docs")
    assert requested and all(url.startswith(portal.base_url) for url in requested), requested

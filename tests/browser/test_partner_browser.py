"""A partner page on another origin uses the API from the browser: same site works, another site gets an explained 401."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from config import ROOT
from routes.cors import PARTNER_DOCS
from tests.browser.conftest import Portal, coupon_shown, open_portal, screenshot
from tests.conftest import TEST_PASSWORD, free_port


@pytest.fixture
def partner_port() -> int:
    """The port the partner's static server listens on."""
    return free_port()


@pytest.fixture
def portal_env(partner_port: int) -> dict[str, str]:
    """The partner's origins, same site (127.0.0.1) and another site (localhost), are both allowed by CORS."""
    return {"CORS_ORIGINS": f"http://127.0.0.1:{partner_port},http://localhost:{partner_port}"}


@pytest.fixture
def partner_site(portal: Portal, partner_port: int, tmp_path: Path) -> Iterator[int]:
    """The portal's own files served by a plain static server on another port, pointed at the API's origin."""
    root = tmp_path / "partner"
    shutil.copytree(ROOT / "static" / "portal", root / "portal")
    index = root / "portal" / "index.html"
    index.write_text(index.read_text().replace('content=""', f'content="{portal.base_url}"', 1))
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", partner_port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield partner_port
    finally:
        server.shutdown()
        server.server_close()


async def _log_in(page: Page, portal: Portal, url: str) -> None:
    await open_portal(page, url)
    await page.get_by_label("Correo electrónico").fill(portal.email)
    await page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    await page.get_by_role("button", name="Ingresar").click()


async def test_partner_page_on_the_same_site_logs_in_pays_and_logs_out(portal: Portal, partner_site: int, page: Page) -> None:
    api_calls: list[tuple[str, str, str | None]] = []
    page.on("request", lambda r: api_calls.append((r.method, r.url, r.headers.get("x-csrf-token"))) if "/api/v1/" in r.url else None)
    await _log_in(page, portal, f"http://127.0.0.1:{partner_site}/portal/index.html#login")
    await page.wait_for_selector("#coupon-form")
    assert page.url.startswith(f"http://127.0.0.1:{partner_site}/")

    await page.locator(f"tr[data-invoice='{portal.invoice_numbers[0]}']").get_by_role("checkbox").check()
    await page.get_by_role("button", name="Generar cupón con las seleccionadas").click()
    assert re.fullmatch(r"\d{16}", await coupon_shown(page))  # a drawn 16-digit reference, its barcode loaded
    await page.get_by_role("button", name="Pagar").click()
    await expect(page.locator("#payment-result [data-status]")).to_have_attribute("data-status", "approved")
    await screenshot(page, "partner-paid")

    coupon_post = next(c for c in api_calls if c[0] == "POST" and c[1].endswith("/api/v1/coupons"))
    assert coupon_post[1].startswith(portal.base_url) and coupon_post[2]  # cross-origin, with the CSRF token

    # The same key twice is one charge, and partner JavaScript can read the headers that say so.
    replay = await page.evaluate(
        """async ([api, number]) => {
            const get = (path) => fetch(api + path, {credentials: 'include'}).then(r => r.json());
            const csrf = (await get('/api/v1/auth/csrf')).csrf_token;
            const post = (path, body, headers) => fetch(api + path, {method: 'POST', credentials: 'include',
              headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf, ...headers}, body: JSON.stringify(body)});
            const invoice = (await get('/api/v1/me/invoices?limit=200')).items.find(i => i.number === number);
            const coupon = await (await post('/api/v1/coupons', {invoice_ids: [invoice.id]})).json();
            const pay = () => post('/api/v1/payments', {coupon_reference: coupon.reference, card_token: 'tok_approved'},
                                   {'Idempotency-Key': 'partner-key-1'});
            const first = await pay();
            const second = await pay();
            return {statuses: [first.status, second.status], replayed: second.headers.get('Idempotent-Replayed'),
                    same: (await first.json()).id === (await second.json()).id,
                    limit: second.headers.get('RateLimit-Limit')};
        }""",
        [portal.base_url, portal.invoice_numbers[1]],
    )
    assert replay == {"statuses": [201, 201], "replayed": "true", "same": True, "limit": "30"}, replay
    await page.get_by_role("button", name="Cerrar sesión").click()
    await expect(page.locator("#flash")).to_have_text("Cerraste sesión.")
    status = await page.evaluate("api => fetch(api + '/api/v1/auth/me', {credentials: 'include'}).then(r => r.status)", portal.base_url)
    assert status == 401


async def test_partner_page_on_another_site_gets_an_explained_401(portal: Portal, partner_site: int, page: Page) -> None:
    await _log_in(page, portal, f"http://localhost:{partner_site}/portal/index.html#login")
    error = page.locator("#error")
    await expect(error).to_contain_text(f"from http://localhost:{partner_site} carried no session cookie")
    await expect(error).to_contain_text(PARTNER_DOCS)
    await screenshot(page, "partner-cross-site-401")

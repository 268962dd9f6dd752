"""Browser fixtures: the real app served by hypercorn, seeded data, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from clients.sql_client import SqlClient
from config import ROOT
from controllers import tenant_controller
from tests.conftest import TEST_PASSWORD, TestDatabase, free_port
from tests.factories import make_contract, make_customer, make_customer_user, make_invoice
from tests.served_app import served_app

# The system Chromium (apt package `chromium`): Playwright's own browser downloads are not possible here.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
LOOPBACK = {"127.0.0.1", "localhost", None}


@dataclass
class Portal:
    """A served app with one customer login, its unpaid invoices, and a contract open for quick-pay."""

    base_url: str
    var_dir: Path
    email: str
    contract_number: str
    invoice_numbers: list[str]
    quickpay_contract: str
    register_national_id: str
    register_contract: str
    database_url: str
    schema: str | None
    env: dict[str, str] = field(default_factory=dict)


def require_chromium() -> str:
    """The Chromium path; a missing browser is a failure with the fix, never a skip."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
            "(.ci/run does) or set CHROMIUM_PATH. Browser tests are never skipped.",
            pytrace=False,
        )
    return CHROMIUM


async def seed(database_url: str, schema: str | None) -> dict[str, object]:
    """A customer with a login and two unpaid invoices, a quick-pay debtor, and a customer with no login yet."""
    due = date.today() + timedelta(days=20)
    sql = SqlClient(database_url, schema=schema)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            customer = await make_customer(session, tenant, name="Juana Pérez Gómez")
            contract = await make_contract(session, customer)
            invoices = [
                await make_invoice(session, contract, period="2026-10", total="85000", due_on=due),
                await make_invoice(session, contract, period="2026-09", total="1520", due_on=due),
            ]
            await make_invoice(session, contract, period="2026-08", total="70000", status="paid", due_on=due)
            user = await make_customer_user(session, customer, email="juana@example.com", password=TEST_PASSWORD)
            walk_in = await make_customer(session, tenant, name="Pedro Ramírez Soto")
            walk_in_contract = await make_contract(session, walk_in)
            await make_invoice(session, walk_in_contract, period="2026-10", total="43210", due_on=due)
            newcomer = await make_customer(session, tenant, name="Lucía Gómez Prada")
            newcomer_contract = await make_contract(session, newcomer)
            await session.commit()
            return {
                "email": user.email,
                "contract_number": contract.contract_number,
                "invoice_numbers": [i.number for i in invoices],
                "quickpay_contract": walk_in_contract.contract_number,
                "register_national_id": newcomer.national_id,
                "register_contract": newcomer_contract.contract_number,
            }
    finally:
        await sql.dispose()


# The in-process worker writes the emails (.eml under VAR_DIR/mail, no SMTP_HOST) within a fraction of a second.
WORKER_ENV = {"WORKER_IN_PROCESS": "true", "NOTIFY_POLL_SECONDS": "0.2", "SMTP_HOST": ""}


@pytest.fixture
def portal_env() -> dict[str, str]:
    """Override in a test module to add settings to the served app."""
    return {}


@pytest.fixture
async def portal(
    database_url: str, test_database: TestDatabase, tmp_path: Path, portal_env: dict[str, str]
) -> AsyncIterator[Portal]:
    """The real app served on a free loopback port with seeded data."""
    data = await seed(database_url, test_database.schema)
    var_dir = tmp_path / "var"
    port = free_port()
    # Emails link to this very server, so a test can follow them.
    env = {**WORKER_ENV, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **portal_env}
    async with served_app(
        database_url=database_url, schema=test_database.schema, var_dir=var_dir, env=env, port=port
    ) as base_url:
        yield Portal(
            base_url=base_url, var_dir=var_dir, env=env, database_url=database_url, schema=test_database.schema, **data
        )  # type: ignore[arg-type]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless system Chromium."""
    executable = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


class OffsiteRequests(list[str]):
    """Every request the page made to a host other than loopback (the portal must make none)."""


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A phone-sized Spanish (Colombia) browser context that records requests leaving loopback."""
    context = await browser.new_context(locale="es-CO", viewport=PHONE, accept_downloads=True)
    context.set_default_timeout(15_000)
    offsite = OffsiteRequests()
    context.on("request", lambda r: offsite.append(r.url) if urlsplit(r.url).hostname not in LOOPBACK else None)
    context.offsite = offsite  # type: ignore[attr-defined]
    try:
        yield context
    finally:
        await context.close()
    assert not [u for u in offsite if not u.startswith(("data:", "blob:"))], offsite


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    """One page of the context."""
    return await context.new_page()


async def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot under var/screenshots/ (a CI artifact, never committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def open_portal(page: Page, url: str) -> None:
    """Load a portal page and wait until its script has finished the first render."""
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]")


async def coupon_shown(page: Page) -> str:
    """Wait until the coupon view has its reference and a loaded barcode, and return the reference.

    The barcode image arrives after the view renders and pushes the payment form down when it does,
    so a click aimed before it loads can land on the wrong radio button.
    """
    await expect(page.locator("#coupon-reference")).not_to_be_empty()
    barcode = page.locator(".barcode img")
    await expect(barcode).to_be_visible()
    await page.wait_for_function("() => { const img = document.querySelector('.barcode img'); return img && img.complete && img.naturalWidth > 0; }")
    return await page.locator("#coupon-reference").inner_text()


async def log_in(page: Page, portal: Portal, password: str = TEST_PASSWORD) -> None:
    """Log in through the form and wait for the invoices page."""
    await open_portal(page, f"{portal.base_url}/portal/#login")
    await page.get_by_label("Correo electrónico").fill(portal.email)
    await page.get_by_label("Contraseña").fill(password)
    await page.get_by_role("button", name="Ingresar").click()
    await page.wait_for_selector("#coupon-form")

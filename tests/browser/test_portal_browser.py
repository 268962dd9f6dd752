"""The customer portal in Chromium against the served app: every flow a customer uses, on a phone-sized screen."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import Portal, log_in, open_portal, screenshot


async def test_log_in_see_invoices_pay_one_and_see_it_paid(portal: Portal, page: Page) -> None:
    await log_in(page, portal)
    first, second = portal.invoice_numbers
    row = page.locator(f"tr[data-invoice='{first}']")
    # Colombian pesos formatted by Intl for es-CO (the tenant's country): "$ 85.000", "$ 1.520".
    await expect(row).to_contain_text("$\u00a085.000")
    await expect(page.locator(f"tr[data-invoice='{second}']")).to_contain_text("$\u00a01.520")
    await expect(row).to_contain_text("Pendiente")
    await screenshot(page, "portal-invoices")

    await row.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Generar cupón con las seleccionadas").click()
    await expect(page.locator("#coupon-reference")).not_to_be_empty()
    await expect(page.locator("#coupon-amount")).to_contain_text("85.000")
    barcode = page.locator(".barcode img")
    await expect(barcode).to_be_visible()
    assert await barcode.evaluate("img => img.complete && img.naturalWidth > 0")
    await screenshot(page, "portal-coupon")

    await page.get_by_label("Aprobada (tok_approved)").check()
    await page.get_by_role("button", name="Pagar").click()
    await expect(page.locator("#payment-result [data-status]")).to_have_attribute("data-status", "approved")
    await expect(page.locator("#coupon-status")).to_have_text("Pagada")
    await screenshot(page, "portal-paid")

    await page.get_by_role("link", name="Mis facturas").click()
    await expect(page.locator(f"tr[data-invoice='{first}']")).to_contain_text("Pagada")
    await expect(page.locator(f"tr[data-invoice='{second}']")).to_contain_text("Pendiente")

    await page.get_by_role("link", name="Movimientos").click()
    await expect(page.locator("#transactions tr[data-kind='payment_approved']")).to_contain_text("85.000")
    await screenshot(page, "portal-transactions")

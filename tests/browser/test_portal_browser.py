"""The customer portal in Chromium against the served app: every flow a customer uses, on a phone-sized screen."""

from __future__ import annotations

import asyncio
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from clients.sql_client import SqlClient
from models.payment_model import Coupon, Payment
from tests.browser.conftest import PHONE, Portal, coupon_shown, log_in, open_portal, screenshot
from tests.conftest import TEST_PASSWORD


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
    await coupon_shown(page)
    await expect(page.locator("#coupon-amount")).to_contain_text("85.000")
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


async def _payments_for(portal: Portal, reference: str) -> list[str]:
    """The statuses of every payment recorded for a coupon, oldest first."""
    sql = SqlClient(portal.database_url, schema=portal.schema)
    try:
        async with sql.session_scope() as session:
            rows = await session.scalars(
                select(Payment.status).join(Coupon, Coupon.id == Payment.coupon_id)
                .where(Coupon.reference == reference).order_by(Payment.id)
            )
            return list(rows)
    finally:
        await sql.dispose()


async def test_quick_pay_without_login_declined_then_double_click_charges_once(portal: Portal, page: Page) -> None:
    posts: list[str | None] = []
    page.on("request", lambda r: posts.append(r.headers.get("idempotency-key")) if r.method == "POST" and r.url.endswith("/api/v1/payments") else None)
    await open_portal(page, f"{portal.base_url}/portal/#quickpay")
    await page.get_by_label("Número de contrato").fill(portal.quickpay_contract)
    await page.get_by_role("button", name="Consultar").click()
    await expect(page.locator("#total-due")).to_have_text("$\u00a043.210")
    await expect(page.locator("#lookup-result")).to_contain_text("P**")  # the holder's name arrives masked
    await screenshot(page, "portal-quickpay")
    await page.get_by_role("button", name="Generar cupón para pagar").click()
    reference = await coupon_shown(page)

    await page.get_by_label("Rechazada (tok_declined)").check()
    await page.get_by_role("button", name="Pagar").click()
    await expect(page.locator("#payment-result")).to_contain_text("Pago rechazado.")
    await expect(page.locator("#payment-result [data-status]")).to_have_attribute("data-status", "declined")
    await screenshot(page, "portal-declined")

    await page.get_by_label("Aprobada (tok_approved)").check()
    await page.get_by_role("button", name="Pagar").dblclick()
    await expect(page.locator("#payment-result [data-status]")).to_have_attribute("data-status", "approved")

    assert len(posts) == 2, posts  # one request per attempt: the double click sent one
    assert posts[0] and posts[1] and posts[0] != posts[1]  # a fresh key for each attempt
    assert await _payments_for(portal, reference) == ["declined", "approved"]


async def test_register_log_in_and_log_out(portal: Portal, page: Page) -> None:
    await open_portal(page, f"{portal.base_url}/portal/#register")
    await page.get_by_label("Nombre completo").fill("Lucía Gómez Prada")
    await page.get_by_label("Correo electrónico").fill("lucia@example.com")
    await page.get_by_label("Contraseña").fill("una clave bien larga")
    await page.get_by_label("Tipo de documento").select_option("cc")
    await page.get_by_label("Número de documento").fill(portal.register_national_id)
    await page.get_by_label("Número de contrato").fill(portal.register_contract)
    await screenshot(page, "portal-register")
    await page.get_by_role("button", name="Registrarme").click()
    await expect(page.locator("#flash")).to_have_text("Cuenta creada. Ya puedes ingresar.")

    await page.get_by_label("Correo electrónico").fill("lucia@example.com")
    await page.get_by_label("Contraseña").fill("una clave bien larga")
    await page.get_by_role("button", name="Ingresar").click()
    await expect(page.locator("#view")).to_contain_text(portal.register_contract)
    await expect(page.locator("#view")).to_contain_text("No tienes facturas.")

    await page.get_by_role("button", name="Cerrar sesión").click()
    await expect(page.locator("#flash")).to_have_text("Cerraste sesión.")
    status = await page.evaluate("fetch('/api/v1/auth/me').then(r => r.status)")
    assert status == 401


async def test_keyboard_only_login_and_every_control_labelled(portal: Portal, page: Page) -> None:
    await open_portal(page, f"{portal.base_url}/portal/#login")
    await page.keyboard.press("Tab")  # the skip link comes first
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.get_by_label("Correo electrónico").focus()
    await page.keyboard.type(portal.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(TEST_PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#coupon-form")
    for route in ("invoices", "pqrs", "account", "quickpay"):
        await page.goto(f"{portal.base_url}/portal/#{route}")
        await page.wait_for_selector("body[data-ready=true]")
        await page.wait_for_selector("#view h2")
        unlabelled = await page.evaluate(
            "[...document.querySelectorAll('input, select, textarea')]"
            ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name || e.id)"
        )
        assert unlabelled == [], (route, unlabelled)


async def test_notifications_after_a_payment_and_marking_one_read(portal: Portal, page: Page) -> None:
    await log_in(page, portal)
    await page.locator(f"tr[data-invoice='{portal.invoice_numbers[1]}']").get_by_role("checkbox").check()
    await page.get_by_role("button", name="Generar cupón con las seleccionadas").click()
    await page.get_by_role("button", name="Pagar").click()
    await expect(page.locator("#payment-result [data-status]")).to_have_attribute("data-status", "approved")

    await page.get_by_role("link", name="Notificaciones").click()
    unread = page.locator("#notifications li.unread")
    await expect(unread.first).to_be_visible()
    before = await unread.count()
    await screenshot(page, "portal-notifications")
    await unread.first.get_by_role("button", name="Marcar como leída").click()
    await expect(page.locator("#notifications li.unread")).to_have_count(before - 1)
    await expect(page.locator("#notifications li.read")).to_have_count(1)


async def test_file_and_follow_a_pqr(portal: Portal, page: Page) -> None:
    await log_in(page, portal)
    await page.get_by_role("link", name="PQR").click()
    await page.get_by_label("Tipo").select_option("claim")
    await page.get_by_label("Contrato (opcional)").select_option(label=portal.contract_number)
    await page.get_by_label("Asunto").fill("Cobro duplicado")
    await page.get_by_label("Descripción").fill("Me cobraron dos veces el mes de octubre.")
    await page.get_by_role("button", name="Radicar").click()
    await expect(page.locator("#pqr-status")).to_have_text("Radicada")
    await expect(page.locator("#pqr-answer")).to_have_text("Sin respuesta aún")
    await expect(page.locator("#flash")).to_contain_text("PQR radicada:")
    await screenshot(page, "portal-pqr")
    await page.get_by_role("link", name="PQR").last.click()
    await expect(page.locator("#pqrs")).to_contain_text("Cobro duplicado")


async def test_change_password_then_log_in_with_it(portal: Portal, page: Page) -> None:
    await log_in(page, portal)
    await page.get_by_role("link", name="Mi cuenta").click()
    await page.get_by_label("Contraseña actual").fill(TEST_PASSWORD)
    await page.get_by_label("Nueva contraseña").fill("otra clave muy segura")
    await screenshot(page, "portal-account")
    await page.get_by_role("button", name="Cambiar contraseña").click()
    await expect(page.locator("#flash")).to_have_text("Contraseña cambiada.")
    await page.get_by_role("button", name="Cerrar sesión").click()
    # The logout re-renders the page when its request returns; typing before that would be wiped.
    await expect(page.locator("#flash")).to_have_text("Cerraste sesión.")
    await log_in(page, portal, password="otra clave muy segura")


async def _wait_for_eml(mail_dir: Path, containing: bytes) -> Path:
    """The .eml the app's worker writes with `containing` in it (other flows of the module send mail too);
    polls within a generous bound (not a timing assertion)."""
    for _ in range(600):
        for found in sorted(mail_dir.glob("*.eml")):
            if containing in found.read_bytes():
                return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no email was written under {mail_dir}")


async def test_password_reset_from_the_emailed_link(portal: Portal, page: Page) -> None:
    await open_portal(page, f"{portal.base_url}/portal/#login")
    await page.get_by_role("link", name="¿Olvidaste tu contraseña?").click()
    await page.get_by_label("Correo electrónico").fill(portal.email)
    await page.get_by_role("button", name="Enviarme un enlace").click()
    await expect(page.locator("#flash")).to_contain_text("te enviamos un enlace")

    eml = await _wait_for_eml(portal.var_dir / "mail", b"password_reset")
    message = BytesParser(policy=policy.default).parse(eml.open("rb"))
    assert message["To"] == portal.email
    text = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(http://\S+/reset-password\?token=\S+)", text)
    assert link, text
    assert link.group(1).startswith(f"{portal.base_url}/reset-password?token=")

    await open_portal(page, link.group(1))
    await page.get_by_label("Nueva contraseña").fill("clave nueva desde correo")
    await screenshot(page, "portal-reset")
    await page.get_by_role("button", name="Guardar contraseña").click()
    await expect(page.locator("#flash")).to_have_text("Contraseña actualizada. Ya puedes ingresar.")
    assert page.url == f"{portal.base_url}/portal/#login"  # the spent token leaves the address bar
    await log_in(page, portal, password="clave nueva desde correo")


async def test_english_and_portuguese_by_browser_language(portal: Portal, browser: Browser) -> None:
    for locale, heading, money in (("en-US", "My invoices", "COP"), ("pt-BR", "Minhas faturas", "COP")):
        context = await browser.new_context(locale=locale, viewport=PHONE)
        try:
            page = await context.new_page()
            await open_portal(page, f"{portal.base_url}/portal/#login")
            await page.locator("#f-email").fill(portal.email)
            await page.locator("#f-password").fill(TEST_PASSWORD)
            await page.locator("#login-form button").click()
            await expect(page.locator("#view-title")).to_have_text(heading)
            assert await page.evaluate("document.documentElement.lang") == locale[:2]
            await expect(page.locator(f"tr[data-invoice='{portal.invoice_numbers[0]}']")).to_contain_text("85")
            await screenshot(page, f"portal-invoices-{locale[:2]}")
        finally:
            await context.close()


async def test_change_my_details_and_confirm_a_new_email_from_its_link(portal: Portal, page: Page) -> None:
    await log_in(page, portal)
    await page.get_by_role("link", name="Mi cuenta").click()
    await page.get_by_label("Teléfono").fill("+57 300 555 0101")
    await page.get_by_label("Solo factura electrónica (sin papel)").check()
    await page.get_by_label("Correo electrónico").fill("nuevo.correo@example.com")
    await screenshot(page, "portal-profile")
    await page.get_by_role("button", name="Guardar mis datos").click()
    await expect(page.locator("#flash")).to_have_text("Te enviamos un enlace para confirmar nuevo.correo@example.com")
    await expect(page.locator("#pending-email")).to_contain_text("nuevo.correo@example.com")

    # The link arrives by email at the new address (the outbox keeps no copy of it once sent).
    eml = await _wait_for_eml(portal.var_dir / "mail", b"email_change")
    message = BytesParser(policy=policy.default).parse(eml.open("rb"))
    assert message["To"] == "nuevo.correo@example.com"
    text = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(http://\S+/portal/\?confirm_email=\S+)", text)
    assert link, text
    await open_portal(page, f"{link.group(1)}#login")
    await expect(page.locator("#flash")).to_have_text("Correo confirmado. Úsalo para ingresar.")
    assert "confirm_email" not in page.url  # the spent token leaves the address bar
    await page.get_by_role("button", name="Cerrar sesión").click()
    await expect(page.locator("#flash")).to_have_text("Cerraste sesión.")
    await page.get_by_label("Correo electrónico").fill("nuevo.correo@example.com")
    await page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    await page.get_by_role("button", name="Ingresar").click()
    await expect(page.locator("#view-title")).to_have_text("Mis facturas")

"""Coupon controller: invoice selection rules, amounts and fee, expiry, supersession, barcode, sweeps and reminders."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway
from controllers import coupon_controller, payment_controller, sequence_controller
from controllers.errors import Conflict, DomainValidationError, NotFound
from domain.caller import Caller
from domain.coupon_codes import coupon_fields, luhn_is_valid, make_reference
from models.billing_model import Invoice
from models.notification_model import Notification
from models.payment_model import Coupon, CouponInvoice, IdempotencyKey, LedgerEntry
from models.tenant_model import Tenant
from tests.factories import make_customer, make_customer_user, make_invoice
from tests.payment_builders import BEFORE_DUE, coupon_status, make_coupon, make_debtor

STAFF = Caller(user_id=None, role="operator")
ANONYMOUS = Caller()


async def test_coupon_for_a_contract_holds_its_unpaid_invoices(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"))
    view = await make_coupon(session, tenant, debtor)
    coupon = view.coupon
    assert coupon.amount == Decimal(97000)
    assert coupon.invoices_total == Decimal(97000)
    assert coupon.channel_fee == Decimal(0)
    assert coupon.status == "active"
    assert [v.invoice_id for v in view.invoices] == [i.id for i in debtor.invoices]
    assert [v.period for v in view.invoices] == ["2026-10", "2026-09"]
    assert view.holder_name == "Juana Pérez Gómez"


async def test_reference_is_numeric_with_luhn_and_barcode_decodes(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    assert coupon.reference.isdigit() and luhn_is_valid(coupon.reference)
    gln, reference, amount, due_on = coupon_fields(coupon.barcode_element_string)
    assert (gln, reference, amount, due_on) == ("7709998000018", coupon.reference, Decimal(85000), date(2026, 11, 16))
    assert coupon.barcode_human_readable == f"(415)7709998000018(8020){coupon.reference}(3900)85000(96)20261116"


async def test_counting_references_around_real_ones_finds_nothing(session: AsyncSession, tenant: Tenant) -> None:
    references = [(await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon.reference for _ in range(3)]
    assert len(set(references)) == 3
    assert all(len(r) == 16 and r[0] != "0" and luhn_is_valid(r) for r in references)
    # An attacker who holds one slip counts 10 000 valid references around it.
    body = int(references[0][:-1])
    guesses = [make_reference(n, width=15) for n in range(body - 5000, body + 5001) if n != body]
    assert len(guesses) == 10_000
    found = 0
    for start in range(0, len(guesses), 1000):  # well under every database's parameter limit
        chunk = guesses[start : start + 1000]
        found += await session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.tenant_id == tenant.id, Coupon.reference.in_(chunk))
        ) or 0
    assert found == 0


async def test_a_taken_reference_is_drawn_again(
    session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon.reference
    draws = iter([taken, taken, "4000000000000002"])
    monkeypatch.setattr(sequence_controller, "random_reference", lambda: next(draws))
    second = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon.reference
    assert second == "4000000000000002"


async def test_old_sequential_references_keep_working(session: AsyncSession, tenant: Tenant) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    await session.execute(update(Coupon).where(Coupon.id == coupon.id).values(reference="000000000026"))
    await session.commit()
    found = await coupon_controller.find_coupon(session=session, tenant_id=tenant.id, caller=STAFF, reference="000000000026")
    assert found.id == coupon.id


async def test_expiry_is_the_end_of_the_earliest_due_day_in_the_tenant_zone(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 16))
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    # 23:59:59 in Bogotá (UTC-5) is 04:59:59 UTC the next day.
    assert coupon.expires_at == datetime(2026, 11, 17, 4, 59, 59, tzinfo=UTC)
    assert coupon.due_on == date(2026, 11, 16)


async def test_an_overdue_invoice_gives_now_plus_the_validity_hours(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 1), status="overdue")
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    coupon = (await make_coupon(session, tenant, debtor, now=now)).coupon
    assert coupon.expires_at == now + timedelta(hours=72)
    assert coupon.due_on == date(2026, 11, 23)


async def test_a_past_due_date_counts_as_overdue_before_the_sweep(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 1))
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    coupon = (await make_coupon(session, tenant, debtor, now=now)).coupon
    assert coupon.expires_at == now + timedelta(hours=72)


async def test_channel_fee_is_added_and_shown(session: AsyncSession, tenant: Tenant) -> None:
    await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(channel_fee=Decimal(2500)))
    await session.commit()
    await session.refresh(tenant)
    debtor = await make_debtor(session, tenant)
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    assert (coupon.invoices_total, coupon.channel_fee, coupon.amount) == (Decimal(85000), Decimal(2500), Decimal(87500))
    assert coupon_fields(coupon.barcode_element_string)[2] == Decimal(87500)


async def test_a_new_coupon_cancels_the_older_active_one(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    old = (await make_coupon(session, tenant, debtor)).coupon.reference
    new = (await make_coupon(session, tenant, debtor)).coupon.reference
    assert await coupon_status(session, old) == "cancelled"
    assert await coupon_status(session, new) == "active"
    reason = await session.scalar(select(Coupon.cancel_reason).where(Coupon.reference == old))
    assert reason == "superseded"


async def test_a_coupon_being_paid_blocks_a_new_one(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    old = (await make_coupon(session, tenant, debtor)).coupon
    await session.execute(update(Coupon).where(Coupon.id == old.id).values(status="processing"))
    await session.commit()
    with pytest.raises(Conflict) as err:
        await make_coupon(session, tenant, debtor)
    assert err.value.code == "payment_in_progress"
    assert await session.scalar(select(func.count()).select_from(Coupon)) == 1


async def test_payment_cart_spans_contracts_of_one_customer(session: AsyncSession, tenant: Tenant) -> None:
    first = await make_debtor(session, tenant, amounts=("85000",), due_on=date(2026, 11, 20))
    second = await make_debtor(session, tenant, amounts=("30000",), due_on=date(2026, 11, 16), customer=first.customer)
    user = await make_customer_user(session, first.customer)
    await session.commit()
    caller = Caller(user_id=user.id, role="customer", customer_id=first.customer.id)
    view = await coupon_controller.create_coupon(
        session=session, tenant=tenant, caller=caller, invoice_ids=[first.invoices[0].id, second.invoices[0].id], now=BEFORE_DUE
    )
    assert view.coupon.amount == Decimal(115000)
    assert view.coupon.due_on == date(2026, 11, 16)
    assert sorted(v.contract_number for v in view.invoices) == sorted(
        [first.contract.contract_number, second.contract.contract_number]
    )
    entry = await session.scalar(select(LedgerEntry).where(LedgerEntry.coupon_id == view.coupon.id))
    assert entry is not None and entry.kind == "coupon_created" and entry.amount == Decimal(115000)
    assert entry.contract_numbers == sorted([first.contract.contract_number, second.contract.contract_number])


async def test_invoices_of_different_customers_are_refused(session: AsyncSession, tenant: Tenant) -> None:
    one = await make_debtor(session, tenant)
    other = await make_debtor(session, tenant, name="Pedro Ruiz")
    with pytest.raises(DomainValidationError) as err:
        await coupon_controller.create_coupon(
            session=session, tenant=tenant, caller=STAFF, invoice_ids=[one.invoices[0].id, other.invoices[0].id], now=BEFORE_DUE
        )
    assert err.value.code == "mixed_customers"


async def test_a_customer_cannot_use_someone_elses_invoice(session: AsyncSession, tenant: Tenant) -> None:
    mine = await make_debtor(session, tenant)
    theirs = await make_debtor(session, tenant, name="Pedro Ruiz")
    user = await make_customer_user(session, mine.customer)
    await session.commit()
    caller = Caller(user_id=user.id, role="customer", customer_id=mine.customer.id)
    with pytest.raises(NotFound) as err:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=caller, invoice_ids=[theirs.invoices[0].id])
    assert err.value.code == "invoice_not_found"
    with pytest.raises(NotFound) as err:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=caller, contract_number=theirs.contract.contract_number)
    assert err.value.code == "nothing_due"


async def test_another_tenants_invoice_is_not_found(session: AsyncSession, tenant: Tenant) -> None:
    other_tenant = Tenant(code="chile", name="Eléctrica Sur", country="CL", currency="CLP", timezone="America/Santiago", gln="7809998000014")
    session.add(other_tenant)
    await session.flush()
    foreign = await make_debtor(session, other_tenant)
    with pytest.raises(NotFound):
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=STAFF, invoice_ids=[foreign.invoices[0].id])


async def test_paid_or_void_invoices_cannot_go_on_a_coupon(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, status="paid")
    with pytest.raises(DomainValidationError) as err:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=STAFF, invoice_ids=[debtor.invoices[0].id])
    assert err.value.code == "invoice_not_payable"
    assert err.value.errors[0].field == "invoice_ids.0"
    with pytest.raises(NotFound) as nothing:
        await make_coupon(session, tenant, debtor)
    assert nothing.value.code == "nothing_due"


async def test_anonymous_quick_pay_goes_by_contract_number_only(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    with pytest.raises(DomainValidationError) as err:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=ANONYMOUS, invoice_ids=[debtor.invoices[0].id])
    assert err.value.code == "contract_number_required"
    view = await make_coupon(session, tenant, debtor, caller=ANONYMOUS)
    assert view.holder_name == "J*** P*** G***"
    assert view.coupon.created_by is None


async def test_unknown_contract_is_nothing_due(session: AsyncSession, tenant: Tenant) -> None:
    with pytest.raises(NotFound) as err:
        await coupon_controller.create_coupon(session=session, tenant=tenant, caller=ANONYMOUS, contract_number="999999")
    assert err.value.code == "nothing_due"


async def test_coupon_created_is_queued_for_the_customer(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    user = await make_customer_user(session, debtor.customer)
    await session.commit()
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    note = await session.scalar(select(Notification).where(Notification.dedupe_key == f"coupon_created:{coupon.id}"))
    assert note is not None
    assert note.event == "coupon_created"
    assert note.recipient == debtor.customer.email
    assert note.user_id == user.id
    assert note.payload["coupon_reference"] == coupon.reference
    assert note.payload["amount"] == "85000"
    assert note.payload["invoice_numbers"] == [debtor.invoices[0].number]
    assert note.payload["customer_name"] == "Juana Pérez Gómez"


async def test_get_coupon_visibility(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    reference = (await make_coupon(session, tenant, debtor)).coupon.reference
    stranger = await make_customer(session, tenant)
    await session.commit()
    anonymous = await coupon_controller.get_coupon(session=session, tenant=tenant, caller=ANONYMOUS, reference=reference, now=BEFORE_DUE)
    assert anonymous.holder_name == "J*** P*** G***"
    staff = await coupon_controller.get_coupon(session=session, tenant=tenant, caller=STAFF, reference=reference, now=BEFORE_DUE)
    assert staff.holder_name == "Juana Pérez Gómez"
    owner = Caller(user_id=1, role="customer", customer_id=debtor.customer.id)
    assert (await coupon_controller.get_coupon(session=session, tenant=tenant, caller=owner, reference=reference)).coupon.reference == reference
    with pytest.raises(NotFound):
        await coupon_controller.get_coupon(
            session=session, tenant=tenant, caller=Caller(user_id=2, role="customer", customer_id=stranger.id), reference=reference
        )
    with pytest.raises(NotFound):
        await coupon_controller.get_coupon(session=session, tenant=tenant, caller=STAFF, reference="not-a-number")


async def test_an_active_coupon_past_expiry_reads_as_expired(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    later = coupon.expires_at + timedelta(seconds=1)
    view = await coupon_controller.get_coupon(session=session, tenant=tenant, caller=STAFF, reference=coupon.reference, now=later)
    assert view.status == "expired"


async def test_expire_coupons_moves_only_past_active_ones_and_queues_emails(session: AsyncSession, tenant: Tenant) -> None:
    due_soon = await make_debtor(session, tenant, due_on=date(2026, 11, 10))
    due_later = await make_debtor(session, tenant, due_on=date(2026, 11, 30))
    soon = (await make_coupon(session, tenant, due_soon)).coupon
    later = (await make_coupon(session, tenant, due_later)).coupon
    now = datetime(2026, 11, 12, tzinfo=UTC)
    assert await coupon_controller.expire_coupons(session=session, now=now) == 1
    assert await coupon_status(session, soon.reference) == "expired"
    assert await coupon_status(session, later.reference) == "active"
    note = await session.scalar(select(Notification).where(Notification.dedupe_key == f"coupon_expired:{soon.id}"))
    assert note is not None and note.payload["coupon_reference"] == soon.reference
    assert await coupon_controller.expire_coupons(session=session, now=now) == 0


async def test_expire_coupons_purges_idempotency_keys_older_than_48_hours(session: AsyncSession, tenant: Tenant) -> None:
    now = datetime(2026, 11, 12, tzinfo=UTC)
    for age, key in ((timedelta(hours=49), "old"), (timedelta(hours=25), "young")):
        session.add(IdempotencyKey(tenant_id=tenant.id, scope="anonymous", key=key, request_hash="x" * 64, created_at=now - age))
    await session.commit()
    await coupon_controller.expire_coupons(session=session, now=now)
    assert list((await session.scalars(select(IdempotencyKey.key))).all()) == ["young"]


async def test_expiry_reminders_are_queued_once_within_24_hours(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 16))
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    two_days_before = coupon.expires_at - timedelta(hours=48)
    assert await coupon_controller.queue_expiry_reminders(session=session, now=two_days_before) == 0
    in_window = coupon.expires_at - timedelta(hours=10)
    assert await coupon_controller.queue_expiry_reminders(session=session, now=in_window) == 1
    assert await coupon_controller.queue_expiry_reminders(session=session, now=in_window + timedelta(hours=1)) == 0
    note = await session.scalar(select(Notification).where(Notification.dedupe_key == f"coupon_expiring:{coupon.id}"))
    assert note is not None and note.event == "coupon_expiring"


async def test_no_reminder_for_a_coupon_made_inside_the_window(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 1), status="overdue")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(coupon_validity_hours=12))
    await session.commit()
    await session.refresh(tenant)
    await make_coupon(session, tenant, debtor, now=now)
    assert await coupon_controller.queue_expiry_reminders(session=session, now=now + timedelta(hours=1)) == 0


async def test_coupon_pdf_and_svg_render(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    reference = (await make_coupon(session, tenant, debtor)).coupon.reference
    svg = await coupon_controller.coupon_barcode_svg(session=session, tenant=tenant, caller=ANONYMOUS, reference=reference)
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    pdf = await coupon_controller.coupon_pdf(session=session, tenant=tenant, caller=ANONYMOUS, reference=reference)
    assert pdf.startswith(b"%PDF")
    links = await session.scalar(select(func.count()).select_from(CouponInvoice))
    assert links == 1


async def test_no_reminder_while_an_invoice_on_the_coupon_is_disputed(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, due_on=date(2026, 11, 16))
    coupon = (await make_coupon(session, tenant, debtor)).coupon
    coupon_id, in_window = coupon.id, coupon.expires_at - timedelta(hours=10)
    invoice_ids = list((await session.scalars(select(CouponInvoice.invoice_id).where(CouponInvoice.coupon_id == coupon_id))).all())
    await session.execute(update(Invoice).where(Invoice.id.in_(invoice_ids)).values(disputed=True))
    await session.commit()
    assert await coupon_controller.queue_expiry_reminders(session=session, now=in_window) == 0
    await session.execute(update(Invoice).where(Invoice.id.in_(invoice_ids)).values(disputed=False))
    await session.commit()
    assert await coupon_controller.queue_expiry_reminders(session=session, now=in_window) == 1


async def _notes(session: AsyncSession, event: str) -> list[dict[str, object]]:
    return list((await session.scalars(select(Notification.payload).where(Notification.event == event).order_by(Notification.id))).all())


async def test_quick_pay_never_cancels_the_customers_coupon_and_it_stays_payable(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"))
    owner = Caller(user_id=(await make_customer_user(session, debtor.customer)).id, role="customer", customer_id=debtor.customer.id)
    await session.commit()
    mine = (await make_coupon(session, tenant, debtor, caller=owner)).coupon
    quick = (await make_coupon(session, tenant, debtor, caller=ANONYMOUS)).coupon
    assert (mine.creator_kind, quick.creator_kind) == ("customer", "anonymous")
    assert await coupon_status(session, mine.reference) == "active"
    assert await coupon_status(session, quick.reference) == "active"
    paid = await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=owner, gateway=SandboxGateway(webhook_secret="s"),
        coupon_reference=mine.reference, card_token="tok_approved", idempotency_key="mine-1", now=BEFORE_DUE,
    )
    assert paid.payment.status == "approved"
    assert await coupon_status(session, mine.reference) == "paid"


async def test_quick_pay_never_cancels_a_staff_coupon(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    staff = (await make_coupon(session, tenant, debtor, caller=STAFF)).coupon
    await make_coupon(session, tenant, debtor, caller=ANONYMOUS)
    assert staff.creator_kind == "staff"
    assert await coupon_status(session, staff.reference) == "active"


async def test_quick_pay_twice_for_the_same_invoices_reuses_its_coupon(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant, amounts=("85000", "12000"))
    first = await make_coupon(session, tenant, debtor, caller=ANONYMOUS)
    again = await make_coupon(session, tenant, debtor, caller=ANONYMOUS)
    assert again.coupon.reference == first.coupon.reference
    assert [v.invoice_id for v in again.invoices] == [i.id for i in debtor.invoices]
    assert again.holder_name == "J*** P*** G***"
    assert await session.scalar(select(func.count()).select_from(Coupon)) == 1
    assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 1
    assert len(await _notes(session, "coupon_created")) == 1


async def test_quick_pay_for_a_changed_set_makes_its_own_alongside(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    first = (await make_coupon(session, tenant, debtor, caller=ANONYMOUS)).coupon.reference
    # A new invoice on the contract: the old quick-pay coupon no longer pays exactly what is due.
    await make_invoice(session, debtor.contract, period="2026-11", total=Decimal(30000), due_on=date(2026, 12, 16))
    await session.commit()
    second = await make_coupon(session, tenant, debtor, caller=ANONYMOUS)
    assert second.coupon.reference != first and second.coupon.amount == Decimal(115000)
    assert await coupon_status(session, first) == "active"
    # An expired identical coupon is not handed out again either.
    later = second.coupon.expires_at + timedelta(seconds=1)
    third = await make_coupon(session, tenant, debtor, caller=ANONYMOUS, now=later)
    assert third.coupon.reference not in {first, second.coupon.reference}


async def test_a_customer_coupon_still_supersedes_older_ones(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    owner = Caller(user_id=(await make_customer_user(session, debtor.customer)).id, role="customer", customer_id=debtor.customer.id)
    await session.commit()
    old = (await make_coupon(session, tenant, debtor, caller=owner)).coupon.reference
    quick = (await make_coupon(session, tenant, debtor, caller=ANONYMOUS)).coupon.reference
    new = (await make_coupon(session, tenant, debtor, caller=owner)).coupon.reference
    assert [await coupon_status(session, r) for r in (old, quick, new)] == ["cancelled", "cancelled", "active"]


async def test_the_coupon_email_says_who_created_it(session: AsyncSession, tenant: Tenant) -> None:
    debtor = await make_debtor(session, tenant)
    owner = Caller(user_id=(await make_customer_user(session, debtor.customer)).id, role="customer", customer_id=debtor.customer.id)
    await session.commit()
    for caller in (owner, STAFF, ANONYMOUS):
        await make_coupon(session, tenant, debtor, caller=caller)
    notes = await _notes(session, "coupon_created")
    assert [(n["created_by"], n["contract_numbers"]) for n in notes] == [
        (kind, [debtor.contract.contract_number]) for kind in ("customer", "staff", "anonymous")
    ]

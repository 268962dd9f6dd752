"""Bank collection files: a generated Asobancaria 2001 file settles once, bad totals are refused whole, every outcome."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.payment_client import SandboxGateway
from controllers import collection_controller, collection_file_controller, payment_controller, report_controller
from controllers.errors import DomainValidationError
from domain.asobancaria import generate
from domain.caller import Caller
from models.billing_model import Invoice
from models.collection_file_model import CollectionFile, CollectionFileDetail
from models.payment_model import CollectionReceipt, Coupon, LedgerEntry, Payment, PaymentAllocation
from models.tenant_model import Tenant
from tests.payment_builders import BEFORE_DUE, coupon_status, fresh, make_coupon, make_debtor

DAY = BEFORE_DUE.date()
NOW = BEFORE_DUE + timedelta(hours=1)


def bank_file(tenant: Tenant, payments: list[tuple[str, str]], *, modifier: str = "A", lot_size: int = 5000, day: date = DAY) -> bytes:
    rows = [(reference, Decimal(amount), day) for reference, amount in payments]
    return generate(rows, service_code=tenant.gln, modifier=modifier, lot_size=lot_size).encode("ascii")


async def process(session: AsyncSession, tenant: Tenant, content: bytes, key_id: int | None = None) -> collection_file_controller.FileOutcome:
    return await collection_file_controller.process_file(session=session, tenant=tenant, content=content, bank_key_id=key_id, now=NOW)


async def count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def day_start(tenant: Tenant) -> datetime:
    return datetime.combine(DAY, datetime.min.time(), tzinfo=ZoneInfo(tenant.timezone))


async def test_a_generated_file_settles_its_coupons_once_also_when_uploaded_twice(session: AsyncSession, tenant: Tenant) -> None:
    debtors = [await make_debtor(session, tenant, name=f"Cliente {n}", amounts=(str(50000 + n),)) for n in range(3)]
    coupons = [(await make_coupon(session, tenant, d)).coupon for d in debtors]
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Bancolombia")
    content = bank_file(tenant, [(c.reference, str(c.amount)) for c in coupons], lot_size=2)

    first = await process(session, tenant, content, key.id)
    assert first.created
    record = first.file
    assert (record.status, record.detail_count, record.applied_count, record.exception_count) == ("reconciled", 3, 3, 0)
    assert record.total == record.applied_total == Decimal(150003)
    assert (record.bank_code, record.biller_nit, record.collection_date) == ("007", "8909002860", DAY)
    for debtor, coupon in zip(debtors, coupons, strict=True):
        assert await coupon_status(session, coupon.reference) == "paid"
        invoice = await fresh(session, Invoice, debtor.invoices[0].id)
        assert (invoice.status, invoice.amount_due, invoice.paid_at) == ("paid", 0, day_start(tenant))  # type: ignore[attr-defined]
    payments = (await session.scalars(select(Payment).order_by(Payment.id))).all()
    assert [(p.coupon_id, p.channel, p.status, p.amount, p.bank_api_key_id) for p in payments] == [
        (c.id, "bank", "approved", c.amount, key.id) for c in coupons
    ]
    receipts = (await session.scalars(select(CollectionReceipt).order_by(CollectionReceipt.id))).all()
    assert [(r.reference, r.payment_id, r.collection_file_id) for r in receipts] == [
        (c.reference, p.id, record.id) for c, p in zip(coupons, payments, strict=True)
    ]
    assert await count(session, PaymentAllocation) == 3
    assert await session.scalar(select(func.count()).where(LedgerEntry.kind == "payment_approved")) == 3

    again = await process(session, tenant, content, key.id)
    assert not again.created and again.file.id == record.id
    assert (await count(session, Payment), await count(session, CollectionFile), await count(session, CollectionFileDetail)) == (3, 1, 3)

    # The same collections in another file (another modifier, so other bytes): duplicates, nothing moves.
    other = await process(session, tenant, bank_file(tenant, [(c.reference, str(c.amount)) for c in coupons], modifier="B"))
    assert other.created and other.file.id != record.id
    assert (other.file.status, other.file.applied_count, other.file.exception_count) == ("reconciled", 0, 0)
    view = await collection_file_controller.reconciliation(session=session, tenant=tenant, file_id=other.file.id)
    assert view.counts["duplicate"] == 3 and view.amounts["duplicate"] == Decimal(150003) and view.exceptions == []
    assert await count(session, Payment) == 3


async def test_a_corrupted_control_total_rejects_the_whole_file_with_its_lines(session: AsyncSession, tenant: Tenant) -> None:
    coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant))).coupon
    lines = bank_file(tenant, [(coupon.reference, "85000")]).decode().split("\r\n")
    assert [line[:2] for line in lines[:-1]] == ["01", "05", "06", "08", "09"]
    # The lot control (line 4) and the file control (line 5) each claim one peso more than the detail.
    lines[3] = lines[3][:11] + "000000000008500100" + lines[3][29:]
    lines[4] = lines[4][:11] + "000000000008500100" + lines[4][29:]
    with pytest.raises(DomainValidationError) as err:
        await process(session, tenant, "\r\n".join(lines).encode())
    assert err.value.code == "control_total_mismatch"
    assert err.value.extra["lines"] == [4, 5]
    assert [(e.field, e.code) for e in err.value.errors] == [("line 4", "lot_total_mismatch"), ("line 5", "file_total_mismatch")]
    assert await coupon_status(session, coupon.reference) == "active"
    assert (await count(session, CollectionFile), await count(session, Payment)) == (0, 0)


async def test_a_malformed_file_or_another_billers_lot_is_refused(session: AsyncSession, tenant: Tenant) -> None:
    good = bank_file(tenant, [("123455", "100")]).decode().split("\r\n")
    short = list(good)
    short[2] = short[2][:150]
    with pytest.raises(DomainValidationError) as err:
        await process(session, tenant, "\r\n".join(short).encode())
    assert err.value.code == "invalid_collection_file" and err.value.extra["lines"] == [3, 4, 5]
    assert err.value.errors[0].code == "record_length"
    elsewhere = generate([("123455", Decimal(100), DAY)], service_code="7709998000001").encode()
    with pytest.raises(DomainValidationError) as err:
        await process(session, tenant, elsewhere)
    assert [(e.field, e.code) for e in err.value.errors] == [("line 2", "wrong_biller")]
    with pytest.raises(DomainValidationError) as err:
        await process(session, tenant, bank_file(tenant, [("123455", "100")], day=DAY + timedelta(days=2)))
    assert [(e.field, e.code) for e in err.value.errors] == [("line 1", "collection_date_in_future")]
    assert await count(session, CollectionFile) == 0


async def test_each_reconciliation_outcome(session: AsyncSession, tenant: Tenant) -> None:
    def coupon_of(view: object) -> Coupon:
        return view.coupon  # type: ignore[attr-defined, no-any-return]

    applied = coupon_of(await make_coupon(session, tenant, await make_debtor(session, tenant, name="A")))
    wrong_amount = coupon_of(await make_coupon(session, tenant, await make_debtor(session, tenant, name="B")))
    expired = coupon_of(await make_coupon(session, tenant, await make_debtor(session, tenant, name="C")))
    await session.execute(update(Coupon).where(Coupon.id == expired.id).values(status="expired", expires_at=day_start(tenant) - timedelta(hours=1)))
    await session.commit()
    by_card = coupon_of(await make_coupon(session, tenant, await make_debtor(session, tenant, name="D")))
    await payment_controller.pay_coupon(
        session=session, tenant=tenant, caller=Caller(), gateway=SandboxGateway(webhook_secret="s"),
        coupon_reference=by_card.reference, card_token="tok_approved", idempotency_key="k", now=BEFORE_DUE,
    )
    via_api = coupon_of(await make_coupon(session, tenant, await make_debtor(session, tenant, name="E")))
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Davivienda")
    await collection_controller.record_collection(session=session, bank_key=key, reference=via_api.reference, amount=Decimal(85000), paid_at=BEFORE_DUE, now=NOW)
    superseded_debtor = await make_debtor(session, tenant, name="F")
    superseded = coupon_of(await make_coupon(session, tenant, superseded_debtor))
    await make_coupon(session, tenant, superseded_debtor)  # a newer coupon cancels it
    invoice_debtor = await make_debtor(session, tenant, name="G", amounts=("42000",))
    invoice_reference = invoice_debtor.invoices[0].payment_reference
    assert invoice_reference
    content = bank_file(tenant, [
        (applied.reference, "85000"),         # line 3
        (wrong_amount.reference, "80000"),    # line 4
        (expired.reference, "85000"),         # line 5
        (by_card.reference, "85000"),         # line 6
        (via_api.reference, "85000"),         # line 7
        (superseded.reference, "85000"),      # line 8
        ("999999999999", "1000"),             # line 9
        (applied.reference, "85000"),         # line 10: twice in the file
        (invoice_reference, "42000"),         # line 11: an invoice's own reference
    ])
    outcome = await process(session, tenant, content)
    details = (await session.scalars(select(CollectionFileDetail).order_by(CollectionFileDetail.line))).all()
    assert [(d.line, d.outcome, d.expected_amount) for d in details] == [
        (3, "applied", None),
        (4, "amount_mismatch", Decimal(85000)),
        (5, "expired_coupon", None),
        (6, "already_paid", None),
        (7, "duplicate", None),
        (8, "not_payable", None),
        (9, "unknown_reference", None),
        (10, "duplicate", None),
        (11, "applied", None),
    ]
    assert details[0].payment_id is not None and details[-1].payment_id is not None
    assert (outcome.file.status, outcome.file.applied_count, outcome.file.exception_count) == ("with_exceptions", 2, 5)
    assert outcome.file.applied_total == Decimal(127000)
    assert await coupon_status(session, applied.reference) == "paid"
    assert await coupon_status(session, wrong_amount.reference) == "active"
    assert await coupon_status(session, expired.reference) == "expired"
    invoice = await fresh(session, Invoice, invoice_debtor.invoices[0].id)
    assert invoice.status == "paid"  # type: ignore[attr-defined]
    receipt = await session.scalar(select(CollectionReceipt).where(CollectionReceipt.reference == invoice_reference))
    assert receipt is not None and receipt.collection_file_id == outcome.file.id and receipt.bank_api_key_id is None
    view = await collection_file_controller.reconciliation(session=session, tenant=tenant, file_id=outcome.file.id)
    assert view.counts == {
        "applied": 2, "duplicate": 2, "unknown_reference": 1, "amount_mismatch": 1, "expired_coupon": 1, "already_paid": 1, "not_payable": 1,
    }
    assert view.amounts["unknown_reference"] == Decimal(1000) and view.amounts["amount_mismatch"] == Decimal(80000)
    assert [d.line for d in view.exceptions] == [4, 5, 6, 8, 9]
    # The bank's API repeating a collection the file applied gets the file's receipt back.
    repeat = await collection_controller.record_collection(
        session=session, bank_key=key, reference=applied.reference, amount=Decimal(85000), paid_at=BEFORE_DUE, now=NOW
    )
    assert not repeat.created and repeat.receipt.collection_file_id == outcome.file.id


async def test_the_collections_report_shows_bank_files_as_their_own_channel(session: AsyncSession, tenant: Tenant) -> None:
    by_file = [(await make_coupon(session, tenant, await make_debtor(session, tenant, name=f"F{n}"))).coupon for n in range(2)]
    by_api = (await make_coupon(session, tenant, await make_debtor(session, tenant, name="API", amounts=("1234",)))).coupon
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Popular")
    await collection_controller.record_collection(session=session, bank_key=key, reference=by_api.reference, amount=by_api.amount, paid_at=BEFORE_DUE, now=NOW)
    await process(session, tenant, bank_file(tenant, [(c.reference, str(c.amount)) for c in by_file]), key.id)
    rows = await report_controller.collections(session=session, tenant=tenant, date_from=DAY, date_to=DAY)
    assert {(r.day, r.channel): (r.payments, r.amount) for r in rows} == {
        (DAY, "bank_api"): (1, Decimal(1234)),
        (DAY, "bank_file"): (2, Decimal(170000)),
    }

"""PQR controller: deadlines over the tenant's holidays, gap-free radicados, transitions, disputes, outbox, scoping."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from quart import Quart
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller, holiday_controller, pqr_controller
from controllers.errors import BadInput, Conflict, DomainValidationError, Forbidden, NotFound
from controllers.pqr_controller import TRANSITIONS, PqrFilters
from domain.country_packs import country_pack
from domain.notification_templates import render_email
from models.account_model import Contract, Customer
from models.billing_model import Invoice
from models.notification_model import Notification
from models.pqr_model import PQR_STATUSES, Pqr
from models.tenant_model import Tenant
from models.user_model import User
from tests.factories import make_contract, make_customer, make_customer_user, make_invoice

BOGOTA = ZoneInfo("America/Bogota")


def bogota(year: int, month: int, day: int, hour: int = 10) -> datetime:
    """A moment in the demo tenant's time zone."""
    return datetime(year, month, day, hour, tzinfo=BOGOTA)


@dataclass
class Account:
    """A customer with a login, a contract and an invoice."""

    customer: Customer
    user: User
    contract: Contract
    invoice: Invoice


@dataclass
class World:
    """Two customers and an operator of the default tenant, with Colombia's holidays loaded."""

    tenant: Tenant
    mine: Account
    other: Account
    operator: User


async def make_account(session: AsyncSession, tenant: Tenant) -> Account:
    """A customer, its login, a contract and an invoice."""
    customer = await make_customer(session, tenant)
    user = await make_customer_user(session, customer)
    contract = await make_contract(session, customer)
    invoice = await make_invoice(session, contract)
    return Account(customer=customer, user=user, contract=contract, invoice=invoice)


async def make_staff(session: AsyncSession, tenant: Tenant, role: str = "operator") -> User:
    """A staff login of the tenant."""
    return await auth_controller.create_user(
        session=session, tenant=tenant, email=f"{role}-{uuid.uuid4().hex[:8]}@example.com", password="correct horse battery",
        role=role, full_name="Óscar Operador", rounds=4, commit=False,
    )


@pytest.fixture
async def world(session: AsyncSession, tenant: Tenant) -> World:
    for year in (2026, 2027):
        await holiday_controller.add_holidays(session=session, tenant_id=tenant.id, holidays=country_pack("CO").holidays(year))
    built = World(
        tenant=tenant,
        mine=await make_account(session, tenant),
        other=await make_account(session, tenant),
        operator=await make_staff(session, tenant),
    )
    await session.commit()
    return built


async def file(session: AsyncSession, world: World, **kwargs: object) -> pqr_controller.PqrView:
    """File a PQR as the first customer, with sensible defaults."""
    fields: dict[str, object] = {
        "pqr_type": "petition",
        "subject": "Lectura del medidor",
        "description": "Solicito revisión de la lectura de octubre.",
        "now": bogota(2026, 11, 23),
    }
    fields.update(kwargs)
    user = fields.pop("user", world.mine.user)
    return await pqr_controller.file_pqr(session=session, tenant=world.tenant, user=user, **fields)  # type: ignore[arg-type]


# --- deadlines over the tenant's holiday table ---------------------------------------------------


@pytest.mark.parametrize(
    ("filed", "due_on", "radicado_date"),
    [
        # Wed 11 Mar 2026: the 15 days span two weekends and San José (Mon 23 Mar), and Holy
        # Thursday and Friday (2-3 Apr) push the last days past Easter.
        (bogota(2026, 3, 11), date(2026, 4, 6), "20260311"),
        # Filed on a Saturday: day 1 is Monday 9 Feb.
        (bogota(2026, 2, 7), date(2026, 2, 27), "20260207"),
        # Filed on a holiday (Mon 12 Jan, Reyes Magos): day 1 is Tuesday 13 Jan.
        (bogota(2026, 1, 12), date(2026, 2, 2), "20260112"),
        # 21:00 on Friday 17 Jul in Bogotá is already Saturday in UTC: the tenant's date counts.
        # Monday 20 Jul (Independencia) and Friday 7 Aug (Boyacá) are skipped.
        (bogota(2026, 7, 17, 21), date(2026, 8, 11), "20260717"),
        # Across the year end: Christmas, New Year and Reyes Magos 2027 (Mon 11 Jan).
        (bogota(2026, 12, 18), date(2027, 1, 13), "20261218"),
    ],
)
async def test_due_date_is_15_business_days_after_filing_in_the_tenant_calendar(
    session: AsyncSession, world: World, filed: datetime, due_on: date, radicado_date: str
) -> None:
    view = await file(session, world, now=filed)
    assert view.pqr.due_on == due_on
    assert view.pqr.filing_number == f"PQR-{radicado_date}-00001"
    stored = await session.scalar(select(Pqr.due_on).where(Pqr.id == view.pqr.id))
    assert stored == due_on


async def test_the_deadline_follows_the_tenants_own_holiday_table(session: AsyncSession, world: World) -> None:
    tenant_id = world.tenant.id
    before = await file(session, world, now=bogota(2026, 3, 11))
    assert before.pqr.due_on == date(2026, 4, 6)
    # A local holiday the tenant adds (a regional feast day) moves later deadlines by one business day.
    await holiday_controller.add_holidays(session=session, tenant_id=tenant_id, holidays=[(date(2026, 3, 25), "Fiesta local")])
    await session.commit()
    after = await file(session, world, now=bogota(2026, 3, 11))
    assert after.pqr.due_on == date(2026, 4, 7)


async def test_a_tenant_without_holidays_only_skips_weekends(session: AsyncSession, world: World) -> None:
    other_tenant = Tenant(code="sin-festivos", name="Otra E.S.P.", country="CO", currency="COP",
                          timezone="America/Bogota", gln="7709998000025")
    session.add(other_tenant)
    await session.flush()
    account = await make_account(session, other_tenant)
    await session.commit()
    view = await pqr_controller.file_pqr(
        session=session, tenant=other_tenant, user=account.user, pqr_type="complaint", subject="Corte",
        description="Sin servicio.", now=bogota(2026, 3, 11),
    )
    assert view.pqr.due_on == date(2026, 4, 1)
    assert view.pqr.filing_number == "PQR-20260311-00001"  # each tenant has its own counter


async def test_days_left_and_overdue_count_business_days_from_the_tenants_today(
    session: AsyncSession, world: World
) -> None:
    view = await file(session, world, now=bogota(2026, 3, 11))
    pqr_id = view.pqr.id
    assert (view.overdue, view.days_left) == (False, 15)
    # Friday 20 Mar: left are 24-27 Mar, 30-31 Mar, 1 Apr and 6 Apr (San José and Holy Week skipped).
    on_friday = await pqr_controller.get_pqr(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, now=bogota(2026, 3, 20)
    )
    assert (on_friday.overdue, on_friday.days_left) == (False, 8)
    due_day = await pqr_controller.get_pqr(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, now=bogota(2026, 4, 6, 23)
    )
    assert (due_day.overdue, due_day.days_left) == (False, 0)
    late = await pqr_controller.get_pqr(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, now=bogota(2026, 4, 7)
    )
    assert (late.overdue, late.days_left) == (True, 0)


# --- radicados ---------------------------------------------------------------------------------------


async def test_radicados_are_unique_and_gap_free_under_20_concurrent_filings(app: Quart, world: World) -> None:
    sql = app.extensions["cuponera"].sql

    async def one(n: int) -> str:
        async with sql.session(write=True) as own_session:
            view = await pqr_controller.file_pqr(
                session=own_session, tenant=world.tenant, user=world.mine.user, pqr_type="petition",
                subject=f"Solicitud {n}", description="Concurrente.", now=bogota(2026, 11, 23),
            )
            return view.pqr.filing_number

    numbers = await asyncio.gather(*(one(n) for n in range(20)))
    assert sorted(numbers) == [f"PQR-20261123-{n:05d}" for n in range(1, 21)]
    async with sql.session() as check:
        stored = (await check.scalars(select(Pqr.filing_number).where(Pqr.tenant_id == world.tenant.id))).all()
        filed_events = await check.scalar(select(func.count(Notification.id)).where(Notification.event == "pqr_filed"))
    assert sorted(stored) == sorted(numbers)
    assert filed_events == 20


async def test_the_counter_does_not_reset_with_the_date(session: AsyncSession, world: World) -> None:
    first = await file(session, world, now=bogota(2026, 11, 23))
    second = await file(session, world, now=bogota(2026, 11, 24))
    assert (first.pqr.filing_number, second.pqr.filing_number) == ("PQR-20261123-00001", "PQR-20261124-00002")


async def test_a_refused_filing_uses_no_number(session: AsyncSession, world: World) -> None:
    with pytest.raises(NotFound):
        await file(session, world, invoice_id=world.other.invoice.id)
    view = await file(session, world)
    assert view.pqr.filing_number == "PQR-20261123-00001"


# --- the transition table ----------------------------------------------------------------------------


async def put_in_status(session: AsyncSession, pqr_id: int, status: str) -> None:
    """Force a PQR into a status (with an answer where the status needs one)."""
    values: dict[str, object] = {"status": status}
    if status in {"answered", "closed"}:
        values["answer"] = "Respuesta previa."
    await session.execute(update(Pqr).where(Pqr.id == pqr_id).values(**values))
    await session.commit()


@pytest.mark.parametrize("target", PQR_STATUSES)
@pytest.mark.parametrize("source", PQR_STATUSES)
async def test_transition_table(session: AsyncSession, world: World, source: str, target: str) -> None:
    pqr_id = (await file(session, world)).pqr.id
    await put_in_status(session, pqr_id, source)
    answer = "Revisamos la lectura y es correcta." if target == "answered" else None
    call = pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status=target, answer=answer,
        now=bogota(2026, 11, 25),
    )
    if target in TRANSITIONS[source]:
        view = await call
        assert view.pqr.status == target
        assert await session.scalar(select(Pqr.status).where(Pqr.id == pqr_id)) == target
    else:
        with pytest.raises(Conflict) as caught:
            await call
        assert caught.value.code == "invalid_transition"
        assert caught.value.extra == {"current_status": source, "allowed": list(TRANSITIONS[source])}
        assert await session.scalar(select(Pqr.status).where(Pqr.id == pqr_id)) == source


def test_the_transition_table_is_the_documented_one() -> None:
    assert TRANSITIONS == {
        "filed": ("in_progress", "answered"),
        "in_progress": ("answered",),
        "answered": ("closed",),
        "closed": (),
    }


async def test_answering_records_who_when_and_what(session: AsyncSession, world: World) -> None:
    pqr_id = (await file(session, world)).pqr.id
    await pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="in_progress"
    )
    answered_at = bogota(2026, 11, 30, 15)
    view = await pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="answered",
        answer="  La lectura fue verificada en terreno.  ", now=answered_at,
    )
    assert view.pqr.answer == "La lectura fue verificada en terreno."
    assert (view.overdue, view.days_left) == (False, None)
    row = (await session.execute(select(Pqr.answer, Pqr.answered_at, Pqr.answered_by).where(Pqr.id == pqr_id))).one()
    assert tuple(row) == ("La lectura fue verificada en terreno.", answered_at, world.operator.id)
    closed = await pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="closed",
        now=bogota(2026, 12, 1),
    )
    assert closed.pqr.closed_at == bogota(2026, 12, 1)


@pytest.mark.parametrize("answer", [None, "", "   "])
async def test_answering_needs_the_answer_text(session: AsyncSession, world: World, answer: str | None) -> None:
    pqr_id = (await file(session, world)).pqr.id
    with pytest.raises(DomainValidationError) as caught:
        await pqr_controller.change_status(
            session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="answered", answer=answer
        )
    assert caught.value.code == "answer_required"
    assert [e.field for e in caught.value.errors] == ["answer"]


async def test_an_answer_comes_only_with_the_move_to_answered(session: AsyncSession, world: World) -> None:
    pqr_id = (await file(session, world)).pqr.id
    with pytest.raises(DomainValidationError) as caught:
        await pqr_controller.change_status(
            session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="in_progress",
            answer="Respuesta anticipada",
        )
    assert caught.value.code == "answer_not_expected"


async def test_of_two_concurrent_answers_one_wins(app: Quart, session: AsyncSession, world: World) -> None:
    pqr_id = (await file(session, world)).pqr.id
    sql = app.extensions["cuponera"].sql

    async def answer(text: str) -> str:
        async with sql.session(write=True) as own_session:
            try:
                await pqr_controller.change_status(
                    session=own_session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id,
                    status="answered", answer=text,
                )
            except Conflict as exc:
                return exc.code
            return "ok"

    outcomes = await asyncio.gather(answer("Primera respuesta"), answer("Segunda respuesta"))
    assert sorted(outcomes) == ["invalid_transition", "ok"]
    async with sql.session() as check:
        answered = await check.scalar(
            select(func.count(Notification.id)).where(Notification.event == "pqr_answered")
        )
    assert answered == 1


async def test_staff_cannot_move_another_tenants_pqr(session: AsyncSession, world: World) -> None:
    pqr_id = (await file(session, world)).pqr.id
    elsewhere = Tenant(code="otra", name="Otra", country="CO", currency="COP", timezone="America/Bogota",
                       gln="7709998000025")
    session.add(elsewhere)
    await session.flush()
    foreign_operator = await make_staff(session, elsewhere)
    await session.commit()
    with pytest.raises(NotFound):
        await pqr_controller.change_status(
            session=session, tenant=elsewhere, user=foreign_operator, pqr_id=pqr_id, status="in_progress"
        )
    with pytest.raises(NotFound):
        await pqr_controller.get_pqr(session=session, tenant=elsewhere, user=foreign_operator, pqr_id=pqr_id)
    page = await pqr_controller.list_pqrs(
        session=session, tenant=elsewhere, user=foreign_operator, filters=PqrFilters()
    )
    assert page.items == []


# --- disputed invoices -------------------------------------------------------------------------------


async def disputed(session: AsyncSession, invoice_id: int) -> bool:
    """The invoice's dispute flag as stored."""
    value = await session.scalar(select(Invoice.disputed).where(Invoice.id == invoice_id))
    assert value is not None
    return value


async def answer(session: AsyncSession, world: World, pqr_id: int) -> None:
    """Answer a PQR as the operator."""
    await pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="answered",
        answer="Se reliquidó la factura.",
    )


@pytest.mark.parametrize("pqr_type", ["claim", "appeal"])
async def test_a_claim_on_an_invoice_disputes_it_until_answered(
    session: AsyncSession, world: World, pqr_type: str
) -> None:
    invoice_id = world.mine.invoice.id
    view = await file(session, world, pqr_type=pqr_type, invoice_id=invoice_id)
    assert view.pqr.contract_id == world.mine.contract.id  # taken from the invoice
    assert await disputed(session, invoice_id) is True
    await pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=view.pqr.id, status="in_progress"
    )
    assert await disputed(session, invoice_id) is True
    await answer(session, world, view.pqr.id)
    assert await disputed(session, invoice_id) is False


@pytest.mark.parametrize("pqr_type", ["petition", "complaint"])
async def test_petitions_and_complaints_do_not_dispute_the_invoice(
    session: AsyncSession, world: World, pqr_type: str
) -> None:
    await file(session, world, pqr_type=pqr_type, invoice_id=world.mine.invoice.id)
    assert await disputed(session, world.mine.invoice.id) is False


async def test_the_dispute_lasts_while_any_claim_on_the_invoice_is_open(session: AsyncSession, world: World) -> None:
    invoice_id = world.mine.invoice.id
    first = (await file(session, world, pqr_type="claim", invoice_id=invoice_id)).pqr.id
    second = (await file(session, world, pqr_type="appeal", invoice_id=invoice_id)).pqr.id
    await answer(session, world, first)
    assert await disputed(session, invoice_id) is True
    await answer(session, world, second)
    assert await disputed(session, invoice_id) is False


# --- outbox ----------------------------------------------------------------------------------------------


async def outbox(session: AsyncSession, event: str) -> list[Notification]:
    """Queued notifications of one event."""
    return list((await session.scalars(select(Notification).where(Notification.event == event))).all())


async def test_filing_and_answering_queue_notifications_for_the_customer(session: AsyncSession, world: World) -> None:
    filed_at = bogota(2026, 11, 23, 9)
    view = await file(session, world, pqr_type="claim", invoice_id=world.mine.invoice.id, now=filed_at)
    pqr_id, number = view.pqr.id, view.pqr.filing_number
    [filed] = await outbox(session, "pqr_filed")
    assert (filed.dedupe_key, filed.recipient, filed.locale, filed.user_id, filed.customer_id, filed.status) == (
        f"pqr_filed:{pqr_id}", world.mine.customer.email, "es", world.mine.user.id, world.mine.customer.id, "pending"
    )
    assert filed.payload == {
        "customer_name": world.mine.customer.name,
        "tenant_name": world.tenant.name,
        "pqr_id": pqr_id,
        "filing_number": number,
        "pqr_type": "claim",
        "filed_at": "2026-11-23T14:00:00+00:00",
        "due_date": "2026-12-15",
    }
    assert await outbox(session, "pqr_answered") == []

    await pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="answered",
        answer="Ajustamos el consumo facturado.", now=bogota(2026, 11, 30, 16),
    )
    [answered] = await outbox(session, "pqr_answered")
    assert (answered.dedupe_key, answered.recipient, answered.user_id) == (
        f"pqr_answered:{pqr_id}", world.mine.customer.email, world.mine.user.id
    )
    assert answered.payload == {
        "customer_name": world.mine.customer.name,
        "tenant_name": world.tenant.name,
        "pqr_id": pqr_id,
        "filing_number": number,
        "pqr_type": "claim",
        "answered_at": "2026-11-30T21:00:00+00:00",
        "answer": "Ajustamos el consumo facturado.",
    }
    # The payloads fit the email templates the dispatcher will render.
    for message in (filed, answered):
        email = render_email(message.event, message.locale, message.payload, currency="COP", timezone="America/Bogota",
                             public_base_url="https://portal.example")
        assert number in email.text
        assert f"https://portal.example/portal/#/pqrs/{pqr_id}" in email.text


async def test_moves_other_than_answering_queue_nothing(session: AsyncSession, world: World) -> None:
    pqr_id = (await file(session, world)).pqr.id
    await pqr_controller.change_status(
        session=session, tenant=world.tenant, user=world.operator, pqr_id=pqr_id, status="in_progress"
    )
    assert [n.event for n in (await session.scalars(select(Notification))).all()] == ["pqr_filed"]


# --- who may file and see what -------------------------------------------------------------------------


async def test_a_customer_may_only_name_its_own_contract_and_invoice(session: AsyncSession, world: World) -> None:
    with pytest.raises(NotFound) as contract:
        await file(session, world, contract_id=world.other.contract.id)
    assert contract.value.code == "contract_not_found"
    with pytest.raises(NotFound) as invoice:
        await file(session, world, pqr_type="claim", invoice_id=world.other.invoice.id)
    assert invoice.value.code == "invoice_not_found"
    with pytest.raises(NotFound) as customer:
        await file(session, world, customer_id=world.other.customer.id)
    assert customer.value.code == "customer_not_found"
    assert await disputed(session, world.other.invoice.id) is False
    assert await session.scalar(select(func.count(Pqr.id))) == 0


async def test_the_invoice_must_belong_to_the_named_contract(session: AsyncSession, world: World) -> None:
    second_contract = await make_contract(session, world.mine.customer)
    await session.commit()
    with pytest.raises(DomainValidationError) as caught:
        await file(session, world, contract_id=second_contract.id, invoice_id=world.mine.invoice.id)
    assert caught.value.code == "invoice_not_in_contract"
    view = await file(session, world, contract_id=world.mine.contract.id, invoice_id=world.mine.invoice.id)
    assert (view.pqr.contract_id, view.pqr.invoice_id) == (world.mine.contract.id, world.mine.invoice.id)


async def test_staff_file_at_the_counter_for_a_named_customer(session: AsyncSession, world: World) -> None:
    with pytest.raises(DomainValidationError) as caught:
        await file(session, world, user=world.operator)
    assert caught.value.code == "customer_id_required"
    view = await file(session, world, user=world.operator, customer_id=world.other.customer.id)
    assert (view.pqr.customer_id, view.pqr.user_id) == (world.other.customer.id, world.operator.id)
    [filed] = await outbox(session, "pqr_filed")
    assert (filed.recipient, filed.user_id) == (world.other.customer.email, world.other.user.id)


async def test_a_customer_login_without_a_customer_record_is_refused(session: AsyncSession, world: World) -> None:
    orphan = await auth_controller.create_user(
        session=session, tenant=world.tenant, email="huerfano@example.com", password="correct horse battery",
        role="customer", rounds=4, commit=False,
    )
    await session.commit()
    with pytest.raises(Forbidden) as caught:
        await file(session, world, user=orphan)
    assert caught.value.code == "no_customer_record"


async def test_customers_see_only_their_own_pqrs(session: AsyncSession, world: World) -> None:
    mine = (await file(session, world)).pqr.id
    theirs = (await file(session, world, user=world.other.user)).pqr.id
    seen = await pqr_controller.get_pqr(session=session, tenant=world.tenant, user=world.mine.user, pqr_id=mine)
    assert seen.pqr.id == mine
    with pytest.raises(NotFound):
        await pqr_controller.get_pqr(session=session, tenant=world.tenant, user=world.mine.user, pqr_id=theirs)
    # A filter naming someone else's customer id still cannot widen the customer's view.
    page = await pqr_controller.list_pqrs(
        session=session, tenant=world.tenant, user=world.mine.user,
        filters=PqrFilters(customer_id=world.other.customer.id),
    )
    assert page.items == []
    own_page = await pqr_controller.list_pqrs(session=session, tenant=world.tenant, user=world.mine.user, filters=PqrFilters())
    assert [v.pqr.id for v in own_page.items] == [mine]
    staff_page = await pqr_controller.list_pqrs(session=session, tenant=world.tenant, user=world.operator, filters=PqrFilters())
    assert sorted(v.pqr.id for v in staff_page.items) == sorted([mine, theirs])


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("subject", "   ", "empty"),
        ("description", "", "empty"),
        ("description", "con \x00 nulo", "invalid"),
        ("subject", "😀" * 101, "too_long"),
    ],
)
async def test_text_is_checked(session: AsyncSession, world: World, field: str, value: str, code: str) -> None:
    with pytest.raises(DomainValidationError) as caught:
        await file(session, world, **{field: value})
    assert [(e.field, e.code) for e in caught.value.errors] == [(field, code)]


# --- the operators' list ----------------------------------------------------------------------------------


async def test_list_filters(session: AsyncSession, world: World) -> None:
    early = (await file(session, world, now=bogota(2026, 3, 11))).pqr.id  # due 6 Apr
    later = (await file(session, world, pqr_type="claim", invoice_id=world.mine.invoice.id,
                        now=bogota(2026, 3, 20))).pqr.id  # due 15 Apr
    answered_one = (await file(session, world, user=world.other.user, pqr_type="complaint",
                               now=bogota(2026, 3, 2))).pqr.id
    await answer(session, world, answered_one)
    tenant, operator = world.tenant, world.operator

    async def ids(now: datetime | None = None, sort: str = "due_on", **filters: object) -> list[int]:
        page = await pqr_controller.list_pqrs(
            session=session, tenant=tenant, user=operator, filters=PqrFilters(**filters), sort=sort,  # type: ignore[arg-type]
            now=now or bogota(2026, 3, 25),
        )
        return [v.pqr.id for v in page.items]

    assert await ids() == [answered_one, early, later]
    assert await ids(sort="-filed_at") == [later, early, answered_one]
    assert await ids(sort="filing_number") == [answered_one, early, later]  # the date leads the radicado
    assert await ids(status="filed") == [early, later]
    assert await ids(type="claim") == [later]
    assert await ids(contract_id=world.mine.contract.id) == [later]
    assert await ids(contract_number=world.mine.contract.contract_number) == [later]
    assert await ids(customer_id=world.other.customer.id) == [answered_one]
    # On 7 Apr the first is late; the answered one never is, though its date has passed.
    assert await ids(now=bogota(2026, 4, 7), overdue=True) == [early]
    assert await ids(now=bogota(2026, 4, 7), overdue=False) == [answered_one, later]
    # Overdue-soon, counted in business days from Wed 25 Mar: 3 reach Mon 30 Mar, 6 reach Mon 6 Apr.
    assert await ids(due_within_days=3) == []
    assert await ids(due_within_days=6) == [early]
    assert await ids(due_within_days=15) == [early, later]
    assert await ids(now=bogota(2026, 4, 7), due_within_days=0) == [early]  # the late one stays listed


async def test_list_pages_through_with_the_cursor(session: AsyncSession, world: World) -> None:
    created = [(await file(session, world)).pqr.id for _ in range(5)]
    seen: list[int] = []
    cursor = None
    while True:
        page = await pqr_controller.list_pqrs(
            session=session, tenant=world.tenant, user=world.operator, filters=PqrFilters(), limit=2, cursor=cursor
        )
        seen += [v.pqr.id for v in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == created  # same due date, so the id breaks the tie


async def test_a_cursor_from_another_sort_is_a_400(session: AsyncSession, world: World) -> None:
    for _ in range(3):
        await file(session, world)
    page = await pqr_controller.list_pqrs(
        session=session, tenant=world.tenant, user=world.operator, filters=PqrFilters(), sort="filing_number", limit=1
    )
    assert page.next_cursor is not None
    with pytest.raises(BadInput) as caught:
        await pqr_controller.list_pqrs(
            session=session, tenant=world.tenant, user=world.operator, filters=PqrFilters(), sort="due_on",
            cursor=page.next_cursor,
        )
    assert caught.value.code == "invalid_cursor"

"""PQRs: filing with a gap-free radicado and a business-day deadline, operator handling, and the customer view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, not_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from controllers import holiday_controller, outbox_controller, sequence_controller
from controllers.account_common import tenant_today
from controllers.errors import BadInput, Conflict, DomainValidationError, FieldError, Forbidden, NotFound
from controllers.pagination import Page, SortKey, decode_cursor, paginate
from domain.business_days import add_business_days, is_business_day
from models.account_model import Contract, Customer
from models.base_model import utcnow
from models.billing_model import Invoice
from models.pqr_model import (
    ANSWER_MAX,
    DESCRIPTION_MAX,
    DISPUTING_TYPES,
    OPEN_STATUSES,
    PQR_TYPES,
    SUBJECT_MAX,
    Pqr,
)
from models.tenant_model import Tenant
from models.user_model import User

# One counter per tenant that never resets, so a radicado is never reused even across days.
SEQUENCE_NAME = "pqr"

# Where a PQR may go from each status. An answer is final: a customer who disagrees files an appeal.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "filed": ("in_progress", "answered"),
    "in_progress": ("answered",),
    "answered": ("closed",),
    "closed": (),
}

SORTS: dict[str, tuple[Any, bool]] = {
    "due_on": (Pqr.due_on, False),
    "-due_on": (Pqr.due_on, True),
    "filed_at": (Pqr.filed_at, False),
    "-filed_at": (Pqr.filed_at, True),
    "filing_number": (Pqr.filing_number, False),
    "-filing_number": (Pqr.filing_number, True),
}
_CURSOR_TYPES = {"due_on": date, "filed_at": datetime, "filing_number": str}


@dataclass(frozen=True)
class PqrView:
    """A PQR and where it stands against its deadline, seen from the tenant's today."""

    pqr: Pqr
    overdue: bool
    # Business days after today up to the due date (0 when due today or late); None once answered.
    days_left: int | None


@dataclass(frozen=True)
class PqrFilters:
    """Operator list filters; every one is optional."""

    status: str | None = None
    type: str | None = None
    overdue: bool | None = None
    due_within_days: int | None = None
    contract_id: int | None = None
    contract_number: str | None = None
    customer_id: int | None = None


def format_filing_number(filed_on: date, number: int) -> str:
    """The radicado: `PQR-<local filing date YYYYMMDD>-<tenant counter, at least 5 digits>`."""
    return f"PQR-{filed_on:%Y%m%d}-{number:05d}"


def business_days_left(today: date, due_on: date, holidays: frozenset[date]) -> int:
    """Business days after `today` up to and including `due_on`; 0 when it is due today or past."""
    count = 0
    current = today
    while current < due_on:
        current += timedelta(days=1)
        if is_business_day(current, holidays):
            count += 1
    return count


def _view(pqr: Pqr, *, today: date, holidays: frozenset[date]) -> PqrView:
    if pqr.status not in OPEN_STATUSES:
        return PqrView(pqr=pqr, overdue=False, days_left=None)
    return PqrView(pqr=pqr, overdue=pqr.due_on < today, days_left=business_days_left(today, pqr.due_on, holidays))


def _customer_scope(user: User) -> int | None:
    """The customer a login is limited to, or None for staff (the whole tenant)."""
    if user.role != "customer":
        return None
    if user.customer_id is None:
        raise Forbidden("This login is not linked to a customer record.", code="no_customer_record")
    return user.customer_id


def _clean_text(field: str, value: str, max_chars: int, *, nvarchar: bool = False) -> str:
    """Trim, and refuse empty text, NUL characters and text over `max_chars` characters."""
    text = value.strip()
    if not text:
        raise DomainValidationError(f"{field} must not be empty.", errors=[FieldError(field, "must not be empty", "empty")])
    if "\x00" in text:
        raise DomainValidationError(
            f"{field} contains a NUL character.", errors=[FieldError(field, "must not contain NUL characters", "invalid")]
        )
    # An NVARCHAR(n) column on SQL Server counts UTF-16 code units: an emoji takes two of them.
    length = len(text.encode("utf-16-le")) // 2 if nvarchar else len(text)
    if length > max_chars:
        raise DomainValidationError(
            f"{field} is longer than {max_chars} characters.",
            errors=[FieldError(field, f"at most {max_chars} characters", "too_long")],
        )
    return text


async def _notify(
    session: AsyncSession, *, tenant: Tenant, customer: Customer, event: str, pqr_id: int, payload: dict[str, Any]
) -> None:
    message = await outbox_controller.message_to_customer(
        session=session, tenant=tenant, customer=customer, event=event, dedupe_key=f"{event}:{pqr_id}", payload={"pqr_id": pqr_id, **payload}
    )
    await outbox_controller.enqueue(session=session, message=message)


async def file_pqr(
    *,
    session: AsyncSession,
    tenant: Tenant,
    user: User,
    pqr_type: str,
    subject: str,
    description: str,
    customer_id: int | None = None,
    contract_id: int | None = None,
    invoice_id: int | None = None,
    now: datetime | None = None,
) -> PqrView:
    """File a PQR for the customer (or, by staff at the counter, for `customer_id`) and commit.

    A claim or appeal on an invoice puts the invoice in dispute in the same transaction.
    """
    if pqr_type not in PQR_TYPES:
        raise DomainValidationError("Unknown PQR type.", errors=[FieldError("type", "unknown PQR type", "invalid")])
    subject = _clean_text("subject", subject, SUBJECT_MAX, nvarchar=True)
    description = _clean_text("description", description, DESCRIPTION_MAX)
    own = _customer_scope(user)
    if own is not None:
        if customer_id is not None and customer_id != own:
            raise NotFound("No such customer.", code="customer_not_found")
        customer_id = own
    elif customer_id is None:
        raise DomainValidationError(
            "Staff filing a PQR on a customer's behalf must name the customer.",
            code="customer_id_required",
            errors=[FieldError("customer_id", "required when staff file a PQR", "customer_id_required")],
        )
    customer = await session.scalar(select(Customer).where(Customer.id == customer_id, Customer.tenant_id == tenant.id))
    if customer is None:
        raise NotFound("No such customer.", code="customer_not_found")

    if contract_id is not None:
        contract = await session.scalar(
            select(Contract.id).where(
                Contract.id == contract_id, Contract.tenant_id == tenant.id, Contract.customer_id == customer.id
            )
        )
        if contract is None:
            raise NotFound("No such contract.", code="contract_not_found")
    if invoice_id is not None:
        invoice_contract = await session.scalar(
            select(Invoice.contract_id).where(
                Invoice.id == invoice_id, Invoice.tenant_id == tenant.id, Invoice.customer_id == customer.id
            )
        )
        if invoice_contract is None:
            raise NotFound("No such invoice.", code="invoice_not_found")
        if contract_id is not None and invoice_contract != contract_id:
            raise DomainValidationError(
                "The invoice belongs to another of your contracts.",
                code="invoice_not_in_contract",
                errors=[FieldError("invoice_id", "not an invoice of contract_id", "invoice_not_in_contract")],
            )
        # An invoice names its contract, so the PQR shows up under that contract's filter too.
        contract_id = invoice_contract

    now = (now or utcnow()).astimezone(UTC)
    filed_on = tenant_today(tenant, now)
    holidays = await holiday_controller.holidays_after(session=session, tenant_id=tenant.id, start=filed_on)
    # The tenant's term (its country pack's default: Colombia's Ley 1755 de 2015 gives 15 business days).
    due_on = add_business_days(filed_on, tenant.pqr_answer_business_days, holidays)

    if invoice_id is not None and pqr_type in DISPUTING_TYPES:
        await session.execute(
            update(Invoice)
            .where(Invoice.id == invoice_id, Invoice.tenant_id == tenant.id)
            .values(disputed=True)
            .execution_options(synchronize_session=False)
        )
    # Last before the insert: concurrent filers queue on the counter's row lock until we commit.
    number = await sequence_controller.reserve(session=session, tenant_id=tenant.id, name=SEQUENCE_NAME)
    pqr = Pqr(
        tenant_id=tenant.id,
        filing_number=format_filing_number(filed_on, number),
        customer_id=customer.id,
        user_id=user.id,
        contract_id=contract_id,
        invoice_id=invoice_id,
        type=pqr_type,
        subject=subject,
        description=description,
        status="filed",
        filed_at=now,
        due_on=due_on,
        updated_at=now,
    )
    session.add(pqr)
    await session.flush()
    await _notify(
        session,
        tenant=tenant,
        customer=customer,
        event="pqr_filed",
        pqr_id=pqr.id,
        payload={
            "filing_number": pqr.filing_number,
            "pqr_type": pqr_type,
            "filed_at": now.isoformat(),
            "due_date": due_on.isoformat(),
        },
    )
    await session.commit()
    return _view(pqr, today=filed_on, holidays=holidays)


def _invalid_transition(current: str, requested: str) -> Conflict:
    allowed = list(TRANSITIONS[current])
    return Conflict(
        f"A PQR that is {current} cannot move to {requested}; allowed: {', '.join(allowed) or 'none'}.",
        code="invalid_transition",
        extra={"current_status": current, "allowed": allowed},
    )


async def _settle_dispute(session: AsyncSession, tenant_id: int, invoice_id: int) -> None:
    """Lift the invoice's dispute, unless another claim or appeal on it is still open."""
    # Clearing first takes the invoice's row lock, so two answers on one invoice queue here and
    # the second one's check below sees the first one's committed status.
    lift = (
        update(Invoice)
        .where(Invoice.id == invoice_id, Invoice.tenant_id == tenant_id)
        .execution_options(synchronize_session=False)
    )
    await session.execute(lift.values(disputed=False))
    still_open = await session.scalar(
        select(func.count(Pqr.id)).where(
            Pqr.tenant_id == tenant_id,
            Pqr.invoice_id == invoice_id,
            Pqr.type.in_(DISPUTING_TYPES),
            Pqr.status.in_(OPEN_STATUSES),
        )
    )
    if still_open:
        await session.execute(lift.values(disputed=True))


async def change_status(
    *,
    session: AsyncSession,
    tenant: Tenant,
    user: User,
    pqr_id: int,
    status: str,
    answer: str | None = None,
    now: datetime | None = None,
) -> PqrView:
    """Move a PQR along TRANSITIONS (staff only); answering needs the answer text. Commits.

    The UPDATE is conditional on the status we read, so of two concurrent moves only one wins;
    the other gets the same 409 as any illegal transition.
    """
    pqr = await session.scalar(select(Pqr).where(Pqr.id == pqr_id, Pqr.tenant_id == tenant.id))
    if pqr is None:
        raise NotFound("No such PQR.", code="pqr_not_found")
    current = pqr.status
    if status not in TRANSITIONS.get(current, ()):
        raise _invalid_transition(current, status)
    now = (now or utcnow()).astimezone(UTC)
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == "answered":
        if answer is None or not answer.strip():
            raise DomainValidationError(
                "Write the answer to mark a PQR answered.",
                code="answer_required",
                errors=[FieldError("answer", "required to answer", "answer_required")],
            )
        values.update(answer=_clean_text("answer", answer, ANSWER_MAX), answered_at=now, answered_by=user.id)
    elif answer is not None:
        raise DomainValidationError(
            "An answer is written only when moving a PQR to answered.",
            code="answer_not_expected",
            errors=[FieldError("answer", "only with status answered", "answer_not_expected")],
        )
    if status == "closed":
        values["closed_at"] = now

    result = await session.execute(
        update(Pqr)
        .where(Pqr.id == pqr_id, Pqr.tenant_id == tenant.id, Pqr.status == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        fresh = await session.scalar(select(Pqr.status).where(Pqr.id == pqr_id))
        raise _invalid_transition(fresh or current, status)

    if status == "answered":
        if pqr.invoice_id is not None and pqr.type in DISPUTING_TYPES:
            await _settle_dispute(session, tenant.id, pqr.invoice_id)
        customer = await session.scalar(select(Customer).where(Customer.id == pqr.customer_id))
        assert customer is not None
        await _notify(
            session,
            tenant=tenant,
            customer=customer,
            event="pqr_answered",
            pqr_id=pqr_id,
            payload={
                "filing_number": pqr.filing_number,
                "pqr_type": pqr.type,
                "answered_at": now.isoformat(),
                "answer": values["answer"],
            },
        )
    today = tenant_today(tenant, now)
    holidays = await holiday_controller.holidays_between(
        session=session, tenant_id=tenant.id, start=today, end=max(today, pqr.due_on)
    )
    await session.commit()
    for key, value in values.items():
        set_committed_value(pqr, key, value)
    return _view(pqr, today=today, holidays=holidays)


async def get_pqr(
    *, session: AsyncSession, tenant: Tenant, user: User, pqr_id: int, now: datetime | None = None
) -> PqrView:
    """One PQR: any of the tenant's for staff, only its own for a customer (404 otherwise)."""
    stmt = select(Pqr).where(Pqr.id == pqr_id, Pqr.tenant_id == tenant.id)
    own = _customer_scope(user)
    if own is not None:
        stmt = stmt.where(Pqr.customer_id == own)
    pqr = await session.scalar(stmt)
    if pqr is None:
        raise NotFound("No such PQR.", code="pqr_not_found")
    today = tenant_today(tenant, now)
    holidays = await holiday_controller.holidays_between(
        session=session, tenant_id=tenant.id, start=today, end=max(today, pqr.due_on)
    )
    return _view(pqr, today=today, holidays=holidays)


def _check_cursor(cursor: str, sort: str) -> None:
    """A cursor from another sort (or forged) must be a 400, not a type error in the database."""
    first, last = decode_cursor(cursor, 2)
    if not isinstance(first, _CURSOR_TYPES[sort.lstrip("-")]) or not isinstance(last, int) or isinstance(last, bool):
        raise BadInput("The cursor is not valid for this list.", code="invalid_cursor")


async def list_pqrs(
    *,
    session: AsyncSession,
    tenant: Tenant,
    user: User,
    filters: PqrFilters,
    sort: str = "due_on",
    limit: int = 50,
    cursor: str | None = None,
    now: datetime | None = None,
) -> Page[PqrView]:
    """A page of PQRs in an explicit order (default: nearest deadline first); customers see only theirs."""
    if sort not in SORTS:
        raise BadInput(f"Sort by one of {', '.join(SORTS)}.", code="invalid_sort")
    if cursor:
        _check_cursor(cursor, sort)
    today = tenant_today(tenant, now)
    stmt = select(Pqr).where(Pqr.tenant_id == tenant.id)
    own = _customer_scope(user)
    if own is not None:
        stmt = stmt.where(Pqr.customer_id == own)
    if filters.customer_id is not None:
        stmt = stmt.where(Pqr.customer_id == filters.customer_id)
    if filters.status is not None:
        stmt = stmt.where(Pqr.status == filters.status)
    if filters.type is not None:
        stmt = stmt.where(Pqr.type == filters.type)
    late = and_(Pqr.status.in_(OPEN_STATUSES), Pqr.due_on < today)
    if filters.overdue is True:
        stmt = stmt.where(late)
    elif filters.overdue is False:
        stmt = stmt.where(not_(late))
    if filters.due_within_days is not None:
        holidays = await holiday_controller.holidays_after(session=session, tenant_id=tenant.id, start=today)
        horizon = add_business_days(today, filters.due_within_days, holidays)
        stmt = stmt.where(Pqr.status.in_(OPEN_STATUSES), Pqr.due_on <= horizon)
    if filters.contract_id is not None:
        stmt = stmt.where(Pqr.contract_id == filters.contract_id)
    if filters.contract_number is not None:
        stmt = stmt.where(
            Pqr.contract_id.in_(
                select(Contract.id).where(
                    Contract.tenant_id == tenant.id, Contract.contract_number == filters.contract_number.strip()
                )
            )
        )
    column, descending = SORTS[sort]
    page = await paginate(
        session, stmt, keys=[SortKey(column, descending), SortKey(Pqr.id)], limit=limit, cursor=cursor
    )
    open_due = [p.due_on for p in page.items if p.status in OPEN_STATUSES]
    holidays: frozenset[date] = frozenset()
    if open_due:
        holidays = await holiday_controller.holidays_between(
            session=session, tenant_id=tenant.id, start=today, end=max(today, *open_due)
        )
    return Page(items=[_view(p, today=today, holidays=holidays) for p in page.items], next_cursor=page.next_cursor)

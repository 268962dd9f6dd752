"""Helpers shared by the account controllers: national ID errors, unique-value commits and dependent checks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers.errors import Conflict, DomainValidationError, FieldError
from domain.national_id import InvalidNationalId, NationalId, normalize_national_id
from models.base_model import utcnow
from models.tenant_model import Tenant


def validated_national_id(id_type: str, raw: str, *, field: str = "national_id") -> NationalId:
    """Normalise a national ID; an invalid one is a 422 `invalid_national_id` naming the field."""
    try:
        return normalize_national_id(id_type, raw)
    except InvalidNationalId as exc:
        raise DomainValidationError(
            f"The national ID is not a valid {id_type.upper()}: {exc.reason}.",
            code="invalid_national_id",
            errors=[FieldError(field, f"not a valid {id_type.upper()} ({exc.reason})", "invalid_national_id")],
        ) from exc


def to_scale(value: Decimal, places: int) -> Decimal:
    """A decimal at its column's scale, so what a response shows equals what the database returns later."""
    return value.quantize(Decimal(1).scaleb(-places))


def tenant_today(tenant: Tenant, now: datetime | None = None) -> date:
    """The date where the tenant is at `now` (default: this instant); periods and due dates are local to the utility."""
    return (now or utcnow()).astimezone(ZoneInfo(tenant.timezone)).date()


def unique_conflict(*, code: str, field: str, detail: str) -> Conflict:
    """A 409 for a duplicate value, naming the field."""
    return Conflict(detail, code=code, errors=[FieldError(field, "already in use", code)])


async def commit_or_conflict(session: AsyncSession, conflict: Conflict) -> None:
    """Commit; a unique violation that slipped past the pre-check (a concurrent insert) becomes `conflict`."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise conflict from exc


async def ensure_no_dependents(session: AsyncSession, what: str, checks: Mapping[str, Select[Any]]) -> None:
    """A 409 `has_dependents` naming every kind of row that still points at the record."""
    found = [name for name, stmt in checks.items() if await session.scalar(stmt.limit(1)) is not None]
    if found:
        raise Conflict(
            f"The {what} still has {', '.join(found)}; it cannot be deleted.",
            code="has_dependents",
            extra={"dependents": found},
        )


async def delete_and_commit(session: AsyncSession, row: object, what: str) -> None:
    """Delete a row; a reference from another area's table (checked by the database) is also `has_dependents`."""
    await session.delete(row)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(
            f"Other records still refer to the {what}; it cannot be deleted.",
            code="has_dependents",
            extra={"dependents": ["other records"]},
        ) from exc

"""Tenant lookups: which utility company a request belongs to."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import holiday_controller
from controllers.account_common import tenant_today
from controllers.errors import Conflict, DomainValidationError, FieldError, NotFound
from domain.country_packs import UnknownCountry, country_pack
from domain.coupon_codes import gln_is_valid
from domain.money import round_money
from domain.national_id import InvalidNationalId, normalize_national_id
from models.tenant_model import Tenant


async def resolve_public_tenant(*, session: AsyncSession, code: str | None) -> Tenant:
    """The tenant named by a public request's header, or the default tenant when none is named."""
    if code:
        tenant = await session.scalar(select(Tenant).where(Tenant.code == code.strip()))
        if tenant is None:
            raise NotFound("No tenant has that code.", code="tenant_not_found")
        return tenant
    return await default_tenant(session=session)


async def default_tenant(*, session: AsyncSession) -> Tenant:
    """The install's default tenant (created by the first migration)."""
    tenant = await session.scalar(
        select(Tenant).where(Tenant.is_default == true()).order_by(Tenant.id).limit(1)
    )
    if tenant is None:
        raise NotFound(
            "This install has no default tenant; send X-Tenant-ID.", code="tenant_not_found"
        )
    return tenant


async def get_tenant_by_code(*, session: AsyncSession, code: str) -> Tenant:
    """A tenant by its code; NotFound otherwise."""
    tenant = await session.scalar(select(Tenant).where(Tenant.code == code))
    if tenant is None:
        raise NotFound(f"No tenant has the code {code!r}.", code="tenant_not_found")
    return tenant


def detached_copy(tenant: Tenant) -> Tenant:
    """A Tenant that belongs to no session: safe to share between requests (no rollback can expire it)."""
    return Tenant(**{column.key: getattr(tenant, column.key) for column in Tenant.__table__.columns})


@dataclass
class TenantCache:
    """Tenants by id and the default tenant, per process, for at most `ttl_seconds`.

    An admin changes its tenant's settings through the API (PATCH /api/v1/tenant): the process that
    served it forgets its copies at once (`clear`), every other process within `ttl_seconds`. Sessions are not cached here: the
    session check (version, status, role) reads the user row on every request.
    """

    ttl_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _by_key: dict[object, tuple[float, Tenant]] = field(default_factory=dict)

    def _get(self, key: object) -> Tenant | None:
        found = self._by_key.get(key)
        if found is None or found[0] <= self.clock():
            return None
        return found[1]

    def _put(self, key: object, tenant: Tenant) -> Tenant:
        copy = detached_copy(tenant)
        self._by_key[key] = (self.clock() + self.ttl_seconds, copy)
        return copy

    def clear(self) -> None:
        """Forget every cached tenant (after a change to one)."""
        self._by_key.clear()

    def kept(self, *, tenant_id: int | None = None, code: str | None = None) -> Tenant | None:
        """The kept copy by id, else by public code (None: the default tenant), if there is one; no query."""
        if tenant_id is not None:
            return self._get(tenant_id)
        return self._get(("code", code.strip()) if code else ("default",))

    async def by_id(self, *, session: AsyncSession, tenant_id: int) -> Tenant | None:
        """The tenant with this id, or None."""
        cached = self._get(tenant_id)
        if cached is not None:
            return cached
        tenant = await session.get(Tenant, tenant_id)
        return self._put(tenant_id, tenant) if tenant is not None else None

    async def public(self, *, session: AsyncSession, code: str | None) -> Tenant:
        """`resolve_public_tenant`, cached: by code, else the default tenant."""
        key = ("code", code.strip()) if code else ("default",)
        cached = self._get(key)
        if cached is not None:
            return cached
        return self._put(key, await resolve_public_tenant(session=session, code=code))


# What an admin may change on its own tenant (PATCH /api/v1/tenant); the rest (code, country, currency,
# time zone) would change the meaning of rows already written, so it is fixed at creation.
EDITABLE_SETTINGS = frozenset({
    "name", "legal_id", "address", "gln", "locale", "payment_terms_days", "coupon_validity_hours",
    "channel_fee", "sender_name", "reply_to", "pqr_answer_business_days",
    "suspension_after_days", "suspension_min_amount", "suspension_notice_days", "reconnection_fee",
    "reconnection_deadline_hours", "agreement_self_service", "agreement_max_instalments",
    "agreement_min_down_payment_percent", "agreement_monthly_rate", "agreement_missed_to_break",
})
# Settings that are amounts in the tenant's currency.
MONEY_SETTINGS = ("channel_fee", "suspension_min_amount", "reconnection_fee")


def _checked_legal_id(country: str, legal_id: str) -> str:
    """The company tax id in its country's display form (NIT, RUT, CNPJ); empty stays empty."""
    if not legal_id.strip():
        return ""
    pack = country_pack(country)
    try:
        return normalize_national_id(pack.tax_id_type, legal_id).display
    except InvalidNationalId as exc:
        raise DomainValidationError(
            f"The legal id is not a valid {pack.tax_id_label}.",
            code="invalid_legal_id",
            errors=[FieldError("legal_id", f"not a valid {pack.tax_id_label}: {exc}", "invalid_legal_id")],
        ) from None


def _checked_gln(gln: str) -> str:
    if not gln_is_valid(gln):
        raise DomainValidationError(
            "The GLN must be 13 digits ending in its GS1 check digit.",
            code="invalid_gln",
            errors=[FieldError("gln", "not a valid GLN", "invalid_gln")],
        )
    return gln


async def create_tenant(
    *, session: AsyncSession, code: str, name: str, country: str, gln: str, legal_id: str = "", address: str = ""
) -> Tenant:
    """A new tenant with its country pack's defaults and this year's and next year's holidays; commits."""
    try:
        pack = country_pack(country)
    except UnknownCountry as exc:
        raise DomainValidationError(
            str(exc), code="unknown_country", errors=[FieldError("country", str(exc), "unknown_country")]
        ) from None
    tenant = Tenant(
        code=code,
        name=name,
        country=pack.country,
        currency=pack.currency,
        timezone=pack.timezone,
        locale=pack.locale,
        gln=_checked_gln(gln),
        legal_id=_checked_legal_id(pack.country, legal_id),
        address=address,
        pqr_answer_business_days=pack.pqr_answer_business_days,
    )
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"A tenant with the code {code!r} exists.", code="tenant_code_taken") from None
    year = tenant_today(tenant).year
    for each in (year, year + 1):
        await holiday_controller.add_holidays(session=session, tenant_id=tenant.id, holidays=pack.holidays(each))
    await session.commit()
    return tenant


async def update_settings(*, session: AsyncSession, tenant_id: int, changes: Mapping[str, Any]) -> Tenant:
    """Change the tenant's editable settings (one transaction); unknown keys are a programming error."""
    unknown = set(changes) - EDITABLE_SETTINGS
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    tenant = await session.get(Tenant, tenant_id, populate_existing=True)
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    values = dict(changes)
    if "gln" in values:
        values["gln"] = _checked_gln(values["gln"])
    if "legal_id" in values:
        values["legal_id"] = _checked_legal_id(tenant.country, values["legal_id"])
    for name in MONEY_SETTINGS:
        if name in values and round_money(values[name], tenant.currency) != values[name]:
            raise DomainValidationError(
                f"The {name.replace('_', ' ')} has more decimals than {tenant.currency} has.",
                code="invalid_amount",
                errors=[FieldError(name, f"more decimals than {tenant.currency} has", "invalid_amount")],
            )
    for key, value in values.items():
        setattr(tenant, key, value)
    await session.commit()
    return tenant

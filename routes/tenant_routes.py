"""The tenant: its public profile (which a frontend needs to format money and dates) and its admin's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import validate_request, validate_response

from controllers import tenant_controller
from domain.money import round_money
from models.tenant_model import Tenant
from routes.common import (
    MoneyStr,
    PatchModel,
    db,
    problems,
    request_tenant,
    require_principal,
    role_required,
    tenant_cache,
)
from routes.fields import RATE_PLACES, Address, DecimalStr, Email, Money, Name, ascii_code, plain_decimal, single_line
from routes.vocabulary import Currency, Locale

bp = Blueprint("tenant", __name__, url_prefix="/api/v1")


class TenantOut(BaseModel):
    """A tenant's public profile."""

    code: str
    name: str
    country: str
    currency: Currency
    timezone: str
    locale: Locale
    gln: str


class TenantSettingsOut(TenantOut):
    """Everything an admin configures: billing terms, the sender of emails and the PQR answer term."""

    legal_id: str
    address: str
    payment_terms_days: int
    coupon_validity_hours: int
    channel_fee: MoneyStr
    sender_name: str
    reply_to: str | None
    pqr_answer_business_days: int
    suspension_after_days: int = Field(description="Days the oldest unpaid, undisputed invoice may be past due before a suspension order.")
    suspension_min_amount: MoneyStr = Field(description="The least past-due debt that orders a suspension.")
    suspension_notice_days: int = Field(description="Days between the customer's notice and the earliest suspension.")
    reconnection_fee: MoneyStr
    reconnection_deadline_hours: int = Field(description="Hours to reconnect once the arrears are paid.")
    agreement_self_service: bool = Field(description="Customers may sign a payment agreement for their own contract.")
    agreement_max_instalments: int = Field(description="The most monthly instalments of any payment agreement.")
    agreement_min_down_payment_percent: DecimalStr = Field(description="The least down payment, in percent of the debt.")
    agreement_monthly_rate: DecimalStr = Field(
        description="Simple monthly financing in percent: a customer's agreements get it, an operator's default to it."
    )
    agreement_missed_to_break: int = Field(description="Overdue instalments that break a payment agreement.")
    created_at: datetime


class TenantSettingsPatch(PatchModel):
    """Fields to change; absent ones stay. `reply_to` may be null (no Reply-To header)."""

    # A field that is not editable (currency, country, code) is refused, not silently ignored.
    model_config = ConfigDict(extra="forbid")
    nullable_fields = frozenset({"reply_to"})

    name: Name | None = None
    legal_id: ascii_code(40, min_length=0) | None = Field(None, description="NIT, RUT or CNPJ, as the country's.")  # type: ignore[valid-type]
    address: Address | None = None
    gln: ascii_code(13, min_length=13) | None = Field(None, description="13 digits with the GS1 check digit.")  # type: ignore[valid-type]
    locale: Locale | None = None
    payment_terms_days: int | None = Field(None, ge=0, le=120)
    coupon_validity_hours: int | None = Field(None, ge=1, le=24 * 90)
    channel_fee: Money | None = None
    sender_name: single_line(200, min_length=0) | None = None  # type: ignore[valid-type]
    reply_to: Email | None = None
    pqr_answer_business_days: int | None = Field(None, ge=1, le=90)
    suspension_after_days: int | None = Field(None, ge=1, le=3650)
    suspension_min_amount: Money | None = None
    suspension_notice_days: int | None = Field(None, ge=0, le=90)
    reconnection_fee: Money | None = None
    reconnection_deadline_hours: int | None = Field(None, ge=1, le=24 * 90)
    agreement_self_service: bool | None = None
    agreement_max_instalments: int | None = Field(None, ge=1, le=120)
    agreement_min_down_payment_percent: Annotated[DecimalStr, Field(ge=0, lt=100, decimal_places=RATE_PLACES)] | None = None
    agreement_monthly_rate: Annotated[DecimalStr, Field(ge=0, le=100, decimal_places=RATE_PLACES)] | None = None
    agreement_missed_to_break: int | None = Field(None, ge=1, le=12)


def tenant_out(tenant: Tenant) -> TenantOut:
    """Serialise a tenant's public profile."""
    return TenantOut.model_validate(tenant, from_attributes=True)


def settings_out(tenant: Tenant) -> TenantSettingsOut:
    """Serialise a tenant's settings for its admins."""
    settings = TenantSettingsOut.model_validate(tenant, from_attributes=True)
    # Stored with the column's scale ("0.00"); shown in the currency's own units ("0" pesos).
    for name in tenant_controller.MONEY_SETTINGS:
        setattr(settings, name, round_money(getattr(tenant, name), tenant.currency))
    for name in ("agreement_min_down_payment_percent", "agreement_monthly_rate"):
        setattr(settings, name, plain_decimal(getattr(tenant, name)))
    return settings


@bp.get("/tenant")
@validate_response(TenantOut, 200)
@problems(404)
async def get_tenant() -> TenantOut:
    """The current tenant's public profile (name, country, currency, time zone, locale, GLN)."""
    return tenant_out(await request_tenant())


@bp.get("/tenant/settings")
@role_required("admin")
@validate_response(TenantSettingsOut, 200)
@problems(401, 403)
async def get_tenant_settings() -> TenantSettingsOut:
    """The admin's own tenant with every setting."""
    return settings_out((await require_principal()).tenant)


@bp.patch("/tenant")
@role_required("admin")
@validate_request(TenantSettingsPatch)
@validate_response(TenantSettingsOut, 200)
@problems(401, 403, 422)
async def update_tenant(data: TenantSettingsPatch) -> TenantSettingsOut:
    """Change the admin's own tenant: name, legal id, address, GLN, terms, fees, sender, Reply-To, PQR term, suspension rules."""
    tenant = await tenant_controller.update_settings(
        session=db(), tenant_id=(await require_principal()).tenant.id, changes=data.changes()
    )
    tenant_cache().clear()
    return settings_out(tenant)


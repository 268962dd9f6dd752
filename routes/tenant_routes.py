"""The tenant's public profile, which a frontend needs to format money and dates."""

from __future__ import annotations

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import validate_response

from models.tenant_model import Tenant
from routes.common import problems, request_tenant
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


def tenant_out(tenant: Tenant) -> TenantOut:
    """Serialise a tenant's public profile."""
    return TenantOut.model_validate(tenant, from_attributes=True)


@bp.get("/tenant")
@validate_response(TenantOut, 200)
@problems(404)
async def get_tenant() -> TenantOut:
    """The current tenant's public profile (name, country, currency, time zone, locale, GLN)."""
    return tenant_out(await request_tenant())

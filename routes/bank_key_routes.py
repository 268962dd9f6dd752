"""Banks' API keys (admin): create one (shown once), list them by prefix, revoke one."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_request, validate_response

from controllers import collection_controller
from models.payment_model import BankApiKey
from routes.common import db, problems, require_principal, role_required
from routes.fields import single_line

bp = Blueprint("bank_keys", __name__, url_prefix="/api/v1/bank-keys")


class BankKeyIn(BaseModel):
    """Which bank the key is for (shown to operators)."""

    name: single_line(100)  # type: ignore[valid-type]


class BankKeyOut(BaseModel):
    """A bank key as stored: its first characters to recognise it, never the key."""

    id: int
    name: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class BankKeyCreated(BankKeyOut):
    """The new key, with the secret the bank sends as `Authorization: Bearer <key>`: shown this once."""

    key: str = Field(description="Store it now: only its SHA-256 is kept, it cannot be shown again.")


class BankKeyList(BaseModel):
    """The tenant's keys, newest first."""

    items: list[BankKeyOut]


def key_out(key: BankApiKey) -> BankKeyOut:
    """Serialise a key without its secret."""
    return BankKeyOut.model_validate(key, from_attributes=True)


@bp.get("")
@role_required("admin")
@validate_response(BankKeyList, 200)
@problems(401, 403)
async def list_bank_keys() -> BankKeyList:
    """The tenant's bank keys, revoked ones included."""
    tenant = (await require_principal()).tenant
    return BankKeyList(items=[key_out(k) for k in await collection_controller.list_bank_keys(session=db(), tenant=tenant)])


@bp.post("")
@role_required("admin")
@validate_request(BankKeyIn)
@validate_response(BankKeyCreated, 201)
@problems(401, 403, 422)
async def create_bank_key(data: BankKeyIn) -> tuple[BankKeyCreated, int, dict[str, str]]:
    """Create a key for a bank's `POST /collections` and `POST /collection-files` (as `create-bank-key` does)."""
    tenant = (await require_principal()).tenant
    key, raw_key = await collection_controller.create_bank_key(session=db(), tenant=tenant, name=data.name)
    return BankKeyCreated(**key_out(key).model_dump(), key=raw_key), 201, {"Cache-Control": "no-store"}


@bp.post("/<int:key_id>/revoke")
@role_required("admin")
@validate_response(BankKeyOut, 200)
@problems(401, 403, 404, 409)
async def revoke_bank_key(key_id: int) -> BankKeyOut:
    """Revoke a key at once (a bank that lost it, or left): its next request is a 401. A revoked key stays listed."""
    tenant = (await require_principal()).tenant
    return key_out(await collection_controller.revoke_bank_key(session=db(), tenant=tenant, key_id=key_id))

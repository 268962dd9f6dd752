"""Bank collection route: a bank reports a coupon paid at its counter, authenticated by a per-tenant API key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from quart import Blueprint, request
from quart_schema import document_headers, validate_request, validate_response

from controllers import collection_controller
from controllers.collection_controller import CollectionOutcome
from domain.money import round_money
from routes.common import MoneyStr, db, problems
from routes.fields import BusinessDateTime, Money
from routes.security import csrf_exempt
from routes.vocabulary import Currency

bp = Blueprint("collections", __name__, url_prefix="/api/v1/collections")


class CollectionIn(BaseModel):
    """The coupon reference scanned at the counter, the amount collected and when."""

    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30, pattern=r"^[0-9]+$")]
    amount: Money = Field(gt=0)
    paid_at: BusinessDateTime


class BankAuthHeaders(BaseModel):
    """`Bearer <api key>` from `create-bank-key`."""

    authorization: str = Field(alias="Authorization")


class CollectionOut(BaseModel):
    """The receipt of an applied collection; a repeated report returns the same receipt with 200."""

    id: int
    reference: str
    amount: MoneyStr
    currency: Currency
    paid_at: datetime
    payment_id: int
    received_at: datetime


def collection_out(outcome: CollectionOutcome) -> CollectionOut:
    """Serialise a receipt."""
    receipt = outcome.receipt
    return CollectionOut(
        id=receipt.id,
        reference=receipt.reference,
        amount=round_money(receipt.amount, outcome.currency),
        currency=outcome.currency,
        paid_at=receipt.paid_at,
        payment_id=receipt.payment_id,
        received_at=receipt.received_at,
    )


@bp.post("")
@csrf_exempt
@document_headers(BankAuthHeaders)
@validate_request(CollectionIn)
@validate_response(CollectionOut, 201)
@validate_response(CollectionOut, 200)
@problems(401, 404, 409, 410)
async def record_collection(data: CollectionIn) -> tuple[CollectionOut, int]:
    """Record a coupon paid at a bank; idempotent on the reference."""
    session = db()
    bank_key = await collection_controller.authenticate_bank(session=session, authorization=request.headers.get("Authorization"))
    outcome = await collection_controller.record_collection(
        session=session, bank_key=bank_key, reference=data.reference, amount=data.amount, paid_at=data.paid_at
    )
    return collection_out(outcome), 201 if outcome.created else 200

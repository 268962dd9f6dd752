"""The card payment gateway: a Protocol a real gateway implements, the deterministic sandbox, and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from domain.payment_webhook import (
    SIGNATURE_HEADER,
    SIGNATURE_VERSION,
    TIMESTAMP_HEADER,
    WEBHOOK_TOLERANCE_SECONDS,
)

ChargeStatus = Literal["approved", "declined", "pending"]
RefundStatus = Literal["approved", "declined"]



@dataclass(frozen=True)
class ChargeResult:
    """What the gateway answered: the outcome, its own reference, and why a card was declined."""

    status: ChargeStatus
    gateway_reference: str
    decline_code: str | None = None


@dataclass(frozen=True)
class RefundResult:
    """What the gateway answered to a refund: the outcome, its refund reference, and why it was refused."""

    status: RefundStatus
    gateway_reference: str
    decline_code: str | None = None


class PaymentGateway(Protocol):
    """What the payment controller needs from a card gateway; production swaps in a real one."""

    async def charge(
        self, *, amount: Decimal, currency: str, card_token: str, merchant_reference: str
    ) -> ChargeResult:
        """Charge a tokenised card once; `merchant_reference` (our payment id) comes back in webhooks."""
        ...

    async def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, merchant_reference: str
    ) -> RefundResult:
        """Give back part or all of an earlier charge; `merchant_reference` (our refund id) makes a retry a no-op."""
        ...


# The sandbox's test cards: token → (status, decline code).
SANDBOX_TOKENS: dict[str, tuple[ChargeStatus, str | None]] = {
    "tok_approved": ("approved", None),
    "tok_declined": ("declined", "card_declined"),
    "tok_insufficient_funds": ("declined", "insufficient_funds"),
    "tok_pending": ("pending", None),
}


class SandboxGateway:
    """A gateway that decides by test card token and settles `tok_pending` later through a signed webhook."""

    def __init__(self, *, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret

    async def charge(
        self, *, amount: Decimal, currency: str, card_token: str, merchant_reference: str
    ) -> ChargeResult:
        """Answer at once from the token; any unknown token is declined like a real gateway's bad card."""
        status, decline_code = SANDBOX_TOKENS.get(card_token, ("declined", "invalid_card_token"))
        return ChargeResult(status=status, gateway_reference=f"sbx_{uuid.uuid4().hex}", decline_code=decline_code)

    async def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, merchant_reference: str
    ) -> RefundResult:
        """Approve a positive refund of one of its own charges (`sbx_…`) at once; anything else is declined."""
        if not charge_reference.startswith("sbx_") or amount <= 0:
            return RefundResult(status="declined", gateway_reference="", decline_code="refund_not_possible")
        # Deterministic per refund, as a real gateway deduplicates on the merchant reference.
        digest = hashlib.sha256(f"{charge_reference}:{merchant_reference}".encode()).hexdigest()[:32]
        return RefundResult(status="approved", gateway_reference=f"sbx_rf_{digest}")

    def settlement_webhook(
        self,
        *,
        gateway_reference: str,
        merchant_reference: str,
        status: Literal["approved", "declined"],
        decline_code: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and signed headers the sandbox would POST to /api/v1/payments/webhook."""
        body = json.dumps(
            {
                "type": "payment.settled",
                "gateway_reference": gateway_reference,
                "merchant_reference": merchant_reference,
                "status": status,
                "decline_code": decline_code,
            },
            separators=(",", ":"),
        ).encode()
        return body, signed_headers(self.webhook_secret, body, timestamp=timestamp)


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value: `v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>`."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Timestamp and signature headers for a webhook body."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign_webhook(secret, ts, body), "Content-Type": "application/json"}


def verify_webhook(
    secret: str,
    *,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
) -> bool:
    """True when the signature matches and the timestamp is within `tolerance` seconds of `now`."""
    if not timestamp_header or not signature_header or not timestamp_header.isascii():
        return False
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign_webhook(secret, timestamp, body)
    # Several comma-separated signatures are accepted, so a secret can be rotated without downtime.
    candidates = [part.strip() for part in signature_header.split(",")]
    return any(hmac.compare_digest(expected.encode(), c.encode()) for c in candidates if c.isascii())

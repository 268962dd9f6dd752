"""The sandbox gateway's test cards and the webhook signature helpers."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest

from clients.payment_client import SandboxGateway, sign_webhook, signed_headers, verify_webhook
from config import load_settings

NOW = 1_790_000_000


@pytest.mark.parametrize(
    ("token", "status", "decline_code"),
    [
        ("tok_approved", "approved", None),
        ("tok_declined", "declined", "card_declined"),
        ("tok_insufficient_funds", "declined", "insufficient_funds"),
        ("tok_pending", "pending", None),
        ("4111111111111111", "declined", "invalid_card_token"),
    ],
)
async def test_sandbox_decides_by_token(token: str, status: str, decline_code: str | None) -> None:
    result = await SandboxGateway(webhook_secret="s").charge(
        amount=Decimal(85000), currency="COP", card_token=token, merchant_reference="1"
    )
    assert (result.status, result.decline_code) == (status, decline_code)
    assert result.gateway_reference.startswith("sbx_")


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"status":"approved"}'
    expected = hmac.new(b"secret", b"1790000000." + body, hashlib.sha256).hexdigest()
    assert sign_webhook("secret", NOW, body) == f"v1={expected}"


def test_verify_accepts_fresh_signed_bodies_only() -> None:
    body = b'{"status":"approved"}'
    headers = signed_headers("secret", body, timestamp=NOW)
    ok = {"timestamp_header": headers["X-Webhook-Timestamp"], "signature_header": headers["X-Webhook-Signature"]}
    assert verify_webhook("secret", body=body, now=NOW + 300, **ok)
    assert not verify_webhook("secret", body=body, now=NOW + 301, **ok)
    assert not verify_webhook("secret", body=body + b" ", now=NOW, **ok)
    assert not verify_webhook("other", body=body, now=NOW, **ok)
    assert not verify_webhook("secret", body=body, now=NOW, timestamp_header=None, signature_header=ok["signature_header"])
    rotated = f"v1={'0' * 64}, {ok['signature_header']}"
    assert verify_webhook("secret", body=body, now=NOW, timestamp_header=ok["timestamp_header"], signature_header=rotated)


def test_sandbox_webhooks_verify_with_its_secret() -> None:
    gateway = SandboxGateway(webhook_secret="s3cret")
    body, headers = gateway.settlement_webhook(gateway_reference="sbx_1", merchant_reference="7", status="approved", timestamp=NOW)
    assert verify_webhook(
        "s3cret", body=body, now=NOW, timestamp_header=headers["X-Webhook-Timestamp"], signature_header=headers["X-Webhook-Signature"]
    )


def test_webhook_secret_defaults_to_one_derived_from_the_secret_key(tmp_path: object) -> None:
    derived = load_settings({"SECRET_KEY": "k" * 40, "VAR_DIR": tmp_path}, environ={})
    assert derived.payment_webhook_secret and derived.payment_webhook_secret != "k" * 40
    assert derived.payment_webhook_secret == load_settings({"SECRET_KEY": "k" * 40, "VAR_DIR": tmp_path}, environ={}).payment_webhook_secret
    explicit = load_settings({"SECRET_KEY": "k" * 40, "VAR_DIR": tmp_path}, environ={"PAYMENT_WEBHOOK_SECRET": "whsec"})
    assert explicit.payment_webhook_secret == "whsec"

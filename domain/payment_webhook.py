"""The payment gateway's webhook contract: its header names, signature version and clock tolerance."""

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"
SIGNATURE_VERSION = "v1"
# A signed delivery older or newer than this is refused, so a captured one cannot be replayed later.
WEBHOOK_TOLERANCE_SECONDS = 300

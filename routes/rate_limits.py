"""Per-IP rate limits for the public endpoints that attract guessing."""

from __future__ import annotations

from quart import request

# Loose enough for an office of people behind one NAT, tight enough to slow password guessing.
LOGIN_PER_MINUTE = 30
# The public quick-pay lookup reveals masked names; keep enumeration slow.
LOOKUP_PER_MINUTE = 30


async def client_ip() -> str:
    """The peer address; X-Forwarded-For is ignored because any client can forge it."""
    return request.remote_addr or "unknown"

"""Per-IP rate limits for the public endpoints that attract guessing, and where the counters live."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

from quart import request
from quart_rate_limiter.redis_store import RedisStore
from quart_rate_limiter.store import MemoryStore, RateLimiterStoreABC
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Loose enough for an office of people behind one NAT, tight enough to slow password guessing.
LOGIN_PER_MINUTE = 30
# The public quick-pay lookup reveals masked names; keep enumeration slow.
LOOKUP_PER_MINUTE = 30
# After a Redis error, skip Redis this long, so an outage costs one failed call, not one per request.
REDIS_RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.5


async def client_ip() -> str:
    """The client address: the peer, or the trusted proxy hop when TRUSTED_PROXY_HOPS is set (routes/proxies.py)."""
    return request.remote_addr or "unknown"


class SharedRedisStore(RedisStore):
    """quart-rate-limiter's Redis store with a key prefix, key expiry and fail-open on Redis errors.

    Every limit (login included) fails open while Redis is down: the per-account lockout in the database
    still stops password guessing, and failing closed would lock every customer out of login and quick-pay.
    """

    def __init__(self, address: str, *, prefix: str) -> None:
        super().__init__(
            address, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        self.prefix = prefix
        self._down_until = 0.0

    def _available(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("rate limits fail open for %gs: Redis unavailable (%s)", REDIS_RETRY_SECONDS, type(exc).__name__)
        self._down_until = time.monotonic() + REDIS_RETRY_SECONDS

    async def get(self, key: str, default: datetime) -> datetime:
        """The stored theoretical arrival time, or `default` when none or Redis is down."""
        if not self._available():
            return default
        try:
            value: Any = await self._redis.get(f"{self.prefix}:{key}")  # type: ignore[union-attr]
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return default
        return default if value is None else datetime.fromtimestamp(float(value), UTC)

    async def set(self, key: str, tat: datetime) -> None:
        """Store the arrival time; it expires when it no longer limits anything (it is then in the past)."""
        if not self._available():
            return
        ttl = max(1, math.ceil(tat.timestamp() - time.time()) + 1)
        try:
            await self._redis.set(f"{self.prefix}:{key}", tat.timestamp(), ex=ttl)  # type: ignore[union-attr]
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def after_serving(self) -> None:
        """Close the client (the library's `close` is deprecated for `aclose`)."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def rate_limit_store(redis_url: str, prefix: str) -> RateLimiterStoreABC:
    """Redis when REDIS_URL is set (limits shared by every process), else this process's memory."""
    return SharedRedisStore(redis_url, prefix=prefix) if redis_url else MemoryStore()

"""Rate limits in Redis: one limit across app processes, and the API keeps serving when Redis is down."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis import asyncio as aioredis

from app import create_app
from routes.rate_limits import LOGIN_PER_MINUTE, LOOKUP_PER_MINUTE, SharedRedisStore
from tests.conftest import TestDatabase, app_config, free_port
from tests.served_app import app_process

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def key_prefix() -> AsyncIterator[str]:
    """A prefix of this test's own, so parallel runs on one Redis never share counters; removed afterwards."""
    prefix = f"cuponera-test-{uuid.uuid4().hex}"
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:  # .ci/run starts Redis; a missing server is a broken setup, not a skip
        pytest.fail(f"Redis is not running at {REDIS_URL}: {exc}")
    yield prefix
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def bad_login(client: httpx.AsyncClient, base_url: str) -> int:
    response = await client.post(f"{base_url}/api/v1/auth/login", json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "x"})
    return response.status_code


async def test_two_app_processes_share_one_limit(
    database_url: str, test_database: TestDatabase, tmp_path: Path, key_prefix: str
) -> None:
    env = {"REDIS_URL": REDIS_URL, "RATE_LIMIT_KEY_PREFIX": key_prefix}
    common = {"database_url": database_url, "schema": test_database.schema, "env": env}
    async with (
        app_process(var_dir=tmp_path / "one", **common) as one,
        app_process(var_dir=tmp_path / "two", **common) as two,
        httpx.AsyncClient() as client,
    ):
        # The app processes keep the real clock, and the limit refills one login every 60/N seconds; so
        # count the logins that pass before the first 429 and allow one more per refill that elapsed.
        started = time.monotonic()
        passed = 0
        while (status := await bad_login(client, (one, two)[passed % 2].base_url)) == 401 and passed < 10 * LOGIN_PER_MINUTE:
            passed += 1
        refills = math.ceil((time.monotonic() - started) / (60 / LOGIN_PER_MINUTE))
        assert status == 429
        # Two separate counters would let 2 x N through before refusing; the shared one stops at N
        # (plus what refilled meanwhile: on this machine a few, so the bound stays well below 2 x N).
        assert LOGIN_PER_MINUTE <= passed <= LOGIN_PER_MINUTE + refills, (passed, refills)
        assert await bad_login(client, (one, two)[(passed + 1) % 2].base_url) == 429
    redis = aioredis.from_url(REDIS_URL)
    keys = [key async for key in redis.scan_iter(f"{key_prefix}:*")]
    assert len(keys) == 1 and 0 < await redis.ttl(keys[0]) <= 61
    await redis.aclose()


async def test_with_redis_down_the_api_keeps_serving_without_limits(
    database_url: str, test_database: TestDatabase, tmp_path: Path, key_prefix: str
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    application = create_app(app_config(database_url, test_database, tmp_path, REDIS_URL=closed, RATE_LIMIT_KEY_PREFIX=key_prefix))
    async with application.test_app():
        client = application.test_client()
        statuses = [
            (await client.post("/api/v1/auth/login", json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "x"})).status_code
            for _ in range(LOGIN_PER_MINUTE + 5)
        ]
        assert statuses == [401] * (LOGIN_PER_MINUTE + 5)
        lookups = [
            (await client.get("/api/v1/invoice-lookup?contract_number=NOPE-1")).status_code
            for _ in range(LOOKUP_PER_MINUTE + 5)
        ]
        assert lookups == [404] * (LOOKUP_PER_MINUTE + 5)


async def test_the_store_prefixes_its_keys(key_prefix: str) -> None:
    store = SharedRedisStore(REDIS_URL, prefix=key_prefix)
    await store.before_serving()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        await store.set("login:1.2.3.4", now + timedelta(seconds=30))
        assert await store.get("login:1.2.3.4", now) == now + timedelta(seconds=30)
        redis = aioredis.from_url(REDIS_URL)
        assert await redis.exists(f"{key_prefix}:login:1.2.3.4") == 1
        await redis.aclose()
    finally:
        await store.after_serving()

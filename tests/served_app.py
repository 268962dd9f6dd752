"""Serve the real app with hypercorn on loopback, for tests that are about HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from config import ROOT
from tests.conftest import TEST_SECRET, free_port


@asynccontextmanager
async def served_app(
    *, database_url: str, schema: str | None, var_dir: Path, env: dict[str, str] | None = None, port: int | None = None
) -> AsyncIterator[str]:
    """Run `hypercorn app:create_app()` in a subprocess on the test database; yields its base URL."""
    port = port or free_port()
    environment = {
        **os.environ,
        "ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "VAR_DIR": str(var_dir),
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "COOKIE_SECURE": "false",
        "DEMO_DATA": "false",
        **(env or {}),
    }
    environment.pop("DATABASE_SCHEMA", None)
    if schema:
        environment["DATABASE_SCHEMA"] = schema
    log_path = var_dir / f"hypercorn-{port}.log"
    var_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hypercorn", "app:create_app()", "--bind", f"127.0.0.1:{port}",
            cwd=ROOT, env=environment, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                if process.returncode is not None:
                    raise RuntimeError(f"hypercorn exited: {log_path.read_text()}")
                try:
                    if (await client.get(f"{base_url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"hypercorn did not start: {log_path.read_text()}")
        yield base_url
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()

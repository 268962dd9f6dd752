"""Serve the real app with hypercorn on loopback (a subprocess or this event loop), for tests that are about HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from config import ROOT
from tests.conftest import TEST_SECRET, free_port


@dataclass
class AppProcess:
    """A hypercorn subprocess serving the app: its URL, the process and the file with its output."""

    base_url: str
    process: asyncio.subprocess.Process
    log_path: Path


def process_env(*, database_url: str, schema: str | None, var_dir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an app or worker subprocess on the test database."""
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
    return environment


async def wait_until_healthy(base_url: str, process: asyncio.subprocess.Process | None, log_path: Path | None) -> None:
    """Poll /healthz until it answers 200; raise with the server's output if it exits or never does."""
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            if process is not None and process.returncode is not None:
                raise RuntimeError(f"hypercorn exited: {log_path.read_text() if log_path else ''}")
            try:
                if (await client.get(f"{base_url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"hypercorn did not start: {log_path.read_text() if log_path else ''}")


async def stop_process(process: asyncio.subprocess.Process, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()


@asynccontextmanager
async def app_process(
    *,
    database_url: str,
    schema: str | None,
    var_dir: Path,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
) -> AsyncIterator[AppProcess]:
    """Run `hypercorn app:create_app()` (plus `args`) in a subprocess on the test database until the block ends."""
    port = port or free_port()
    environment = process_env(database_url=database_url, schema=schema, var_dir=var_dir, env=env)
    log_path = var_dir / f"hypercorn-{port}.log"
    var_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hypercorn", "app:create_app()", "--bind", f"127.0.0.1:{port}", *args,
            cwd=ROOT, env=environment, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(base_url, process, log_path)
        yield AppProcess(base_url=base_url, process=process, log_path=log_path)
    finally:
        await stop_process(process)


@asynccontextmanager
async def served_app(
    *, database_url: str, schema: str | None, var_dir: Path, env: dict[str, str] | None = None, port: int | None = None
) -> AsyncIterator[str]:
    """Run `hypercorn app:create_app()` in a subprocess on the test database; yields its base URL."""
    async with app_process(database_url=database_url, schema=schema, var_dir=var_dir, env=env, port=port) as served:
        yield served.base_url


@asynccontextmanager
async def served_in_process(application: Quart, **config: Any) -> AsyncIterator[str]:
    """Serve `application` with hypercorn on this event loop (real sockets); yields its base URL."""
    hypercorn_config = Config()
    hypercorn_config.bind = [f"127.0.0.1:{free_port()}"]
    hypercorn_config.graceful_timeout = 1
    for key, value in config.items():
        setattr(hypercorn_config, key, value)
    shutdown = asyncio.Event()
    server = asyncio.create_task(serve(application, hypercorn_config, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]
    base_url = f"http://{hypercorn_config.bind[0]}"
    try:
        await wait_until_healthy(base_url, None, None)
        yield base_url
    finally:
        shutdown.set()
        await server


@dataclass
class WorkerProcess:
    """A `quart --app app worker` subprocess and the file with its output."""

    process: asyncio.subprocess.Process
    log_path: Path


@asynccontextmanager
async def worker_process(
    *, database_url: str, schema: str | None, var_dir: Path, env: dict[str, str] | None = None, name: str = "worker"
) -> AsyncIterator[WorkerProcess]:
    """Run the notification worker in a subprocess on the test database until the block ends (SIGTERM then)."""
    environment = process_env(database_url=database_url, schema=schema, var_dir=var_dir, env=env)
    var_dir.mkdir(parents=True, exist_ok=True)
    log_path = var_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "quart", "--app", "app", "worker",
            cwd=ROOT, env=environment, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield WorkerProcess(process=process, log_path=log_path)
    finally:
        await stop_process(process)


async def wait_for_text(path: Path, text: str, process: asyncio.subprocess.Process | None = None) -> None:
    """Wait until a process's log file contains `text`; fail with the log if the process exits first."""
    for _ in range(1200):
        if path.exists() and text in path.read_text():
            return
        if process is not None and process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{path.read_text() if path.exists() else ''}")

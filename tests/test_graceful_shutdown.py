"""SIGTERM on real processes: hypercorn finishes the request in flight; the worker finishes its message and hands back the rest."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from clients.sql_client import SqlClient
from models.notification_model import Notification
from tests.conftest import TestDatabase, free_port
from tests.served_app import app_process, wait_for_text, worker_process
from tests.test_worker_cli import queue_paid


class GatedSink:
    """An SMTP sink that holds each message at DATA until the test opens the gate."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self.recipients: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Signal the arrival, wait for the gate, then accept."""
        self.arrived.set()
        await asyncio.to_thread(self.gate.wait, 60)
        self.recipients.extend(envelope.rcpt_tos)
        return "250 Message accepted"


async def test_sigterm_lets_hypercorn_finish_the_request_in_flight(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    body = json.dumps({"email": "nobody@example.com", "password": "not the password"}).encode()
    head = (
        f"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    async with app_process(database_url=database_url, schema=test_database.schema, var_dir=tmp_path) as served:
        port = int(served.base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body[:10])
        await writer.drain()
        await asyncio.sleep(0.5)  # let the server parse the headers: the request is now in flight
        served.process.terminate()
        await asyncio.sleep(0.5)  # the shutdown has begun while the body is still arriving
        writer.write(body[10:])
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        code = await asyncio.wait_for(served.process.wait(), 20)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 401 "
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["code"] == "invalid_credentials"
    assert code == 0


async def test_sigterm_lets_the_worker_finish_its_messages_in_flight_and_hand_back_the_batch(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    await queue_paid(database_url, test_database.schema, 5)
    sink = GatedSink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_STARTTLS": "false", "LOG_LEVEL": "INFO",
           "NOTIFY_POLL_SECONDS": "0.05", "NOTIFY_BATCH_SIZE": "10", "NOTIFY_SEND_CONCURRENCY": "2"}
    try:
        async with worker_process(database_url=database_url, schema=test_database.schema, var_dir=tmp_path, env=env) as worker:
            assert await asyncio.to_thread(sink.arrived.wait, 60)
            worker.process.terminate()
            await wait_for_text(worker.log_path, "SIGTERM received", worker.process)
            sink.gate.set()
            code = await asyncio.wait_for(worker.process.wait(), 20)
    finally:
        sink.gate.set()
        smtp.stop()
    assert code == 0, worker.log_path.read_text()
    # The two messages sent at once finish; the other three go back to the queue at once.
    assert sorted(sink.recipients) == ["cliente0@example.co", "cliente1@example.co"]
    sql = SqlClient(database_url, schema=test_database.schema)
    try:
        async with sql.session_scope() as session:
            rows = (await session.execute(
                select(Notification.recipient, Notification.status, Notification.claim_token).order_by(Notification.id)
            )).all()
    finally:
        await sql.dispose()
    assert [(r.recipient, r.status) for r in rows] == [
        ("cliente0@example.co", "sent"), ("cliente1@example.co", "sent"), ("cliente2@example.co", "pending"),
        ("cliente3@example.co", "pending"), ("cliente4@example.co", "pending"),
    ]
    assert [r.claim_token for r in rows[2:]] == [None, None, None]

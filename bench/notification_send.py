"""Notification sending benchmark: N queued emails through a real SMTP server that answers each DATA after a
fixed latency (a remote relay's round trip); one JSON line.

Setup (not timed): a fresh SQLite database at head, N `invoice_paid` messages queued, an aiosmtpd server on
loopback. Timed: `notification_controller.dispatch_due` sending all of them, once one at a time
(`NOTIFY_SEND_CONCURRENCY=1`, the floor) and once at the default concurrency, each from a fresh queue.
`speedup` is the floor's time over the concurrent one's: what the setting buys against a relay that far away.
"""

import argparse
import asyncio
import json
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from aiosmtpd.controller import Controller
from sqlalchemy import delete, select

from bench._scratch import scratch_database
from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from config import Settings, SmtpSettings
from controllers.notification_controller import DeliveryPolicy, dispatch_due
from controllers.outbox_controller import OutboxMessage, enqueue_many
from models.base_model import utcnow
from models.notification_model import Notification
from models.tenant_model import Tenant

PAYLOAD = {
    "customer_name": "María Núñez", "tenant_name": "Energía del Valle S.A. E.S.P.", "invoice_number": "FAC-2026-000123",
    "contract_number": "100200300", "period": "2026-10", "amount_paid": "20870", "paid_at": "2026-11-01T03:00:00+00:00",
}


class SlowRelay:
    """Accepts every message after `latency` seconds, counting them."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Wait like a distant relay, then accept."""
        await asyncio.sleep(self.latency)
        self.received += 1
        return "250 Message accepted"


async def queue(sql: SqlClient, count: int, label: str) -> None:
    """Queue `count` fresh messages (the previous round's rows removed)."""
    async with sql.session_scope(write=True) as session:
        await session.execute(delete(Notification))
        tenant_id = await session.scalar(select(Tenant.id).order_by(Tenant.id).limit(1))
        assert tenant_id is not None
        await enqueue_many(session=session, messages=[
            OutboxMessage(tenant_id=tenant_id, event="invoice_paid", dedupe_key=f"{label}:{n}", payload=PAYLOAD,
                          recipient=f"cliente{n}@example.co")
            for n in range(count)
        ])
        await session.commit()


async def timed_round(sql: SqlClient, smtp: SmtpClient, count: int, concurrency: int) -> float:
    """Seconds to send `count` queued messages at `concurrency`."""
    await queue(sql, count, f"c{concurrency}")
    policy = DeliveryPolicy(batch_size=50, send_concurrency=concurrency)
    started = time.perf_counter()
    report = await dispatch_due(sql=sql, smtp=smtp, policy=policy, now=utcnow() + timedelta(minutes=1))
    elapsed = time.perf_counter() - started
    assert report.sent == count, report
    return elapsed


async def run(count: int, latency_ms: float, concurrency: int, url: str, mail_dir: Path) -> dict[str, Any]:
    relay = SlowRelay(latency_ms / 1000)
    with socket.socket() as probe:  # a free port: aiosmtpd's start-up check cannot connect to port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    sql = SqlClient(url)
    try:
        smtp = SmtpClient(SmtpSettings(host="127.0.0.1", port=port, starttls=False, timeout=30, mail_dir=mail_dir))
        floor = await timed_round(sql, smtp, count, 1)
        pooled = await timed_round(sql, smtp, count, concurrency)
    finally:
        await sql.dispose()
        controller.stop()
    return {
        "bench": "notification_send", "messages": count, "relay_latency_ms": latency_ms, "concurrency": concurrency,
        "floor_seconds": round(floor, 3), "floor_per_second": round(count / floor, 1),
        "concurrent_seconds": round(pooled, 3), "concurrent_per_second": round(count / pooled, 1),
        "speedup": round(floor / pooled, 2), "received": relay.received,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=Settings.NOTIFY_SEND_CONCURRENCY, help="the default setting")
    parser.add_argument("--keep", default=None, help="keep the database in this folder")
    args = parser.parse_args()
    if args.messages < 1 or args.concurrency < 1 or args.latency_ms < 0:
        parser.error("--messages and --concurrency must be at least 1, --latency-ms not negative")
    with scratch_database(args.keep) as (path, url):
        print(json.dumps(asyncio.run(run(args.messages, args.latency_ms, args.concurrency, url, path.parent / "mail"))))


if __name__ == "__main__":
    main()

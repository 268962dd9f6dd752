"""Benchmark of the served app on SQLite: invoice lookup (concurrency 32) and coupon + payment (concurrency 8).

Prints one JSON line per scenario: {name, requests, concurrency, rps, p50_ms, p99_ms, cpu_ms_per_request}
(the CPU of hypercorn's worker process, from /proc, per request or pair), then one `exactly_once` line
that counts in the database what the pairs left: one approved payment, one paid coupon and two paid
invoices per pair, nothing pending.
"""

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python bench/payments.py` from anywhere: make the project root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, insert, select, true

from clients.sql_client import SqlClient, upgrade_to_head
from config import ROOT
from models.account_model import Contract, Customer
from models.billing_model import Invoice
from models.payment_model import Coupon, Payment, PaymentAllocation
from models.tenant_model import Tenant


async def generate(url: str, contracts: int) -> list[str]:
    """One customer per contract, each with two unpaid invoices; returns the contract numbers."""
    sql = SqlClient(url)
    now = datetime.now(UTC)
    try:
        async with sql.session_scope(write=True) as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.is_default == true()))
            await session.execute(
                insert(Customer),
                [
                    {
                        "id": n, "tenant_id": tenant_id, "name": f"Cliente Número {n}", "national_id_type": "cc",
                        "national_id": str(10_000_000 + n), "national_id_display": str(10_000_000 + n),
                        "email": f"cliente{n}@example.com", "billing_address": "Calle 1", "locale": "es",
                        "status": "active", "created_at": now, "updated_at": now,
                    }
                    for n in range(1, contracts + 1)
                ],
            )
            numbers = [f"{5_000_000 + n}" for n in range(1, contracts + 1)]
            await session.execute(
                insert(Contract),
                [
                    {
                        "id": n, "tenant_id": tenant_id, "customer_id": n, "contract_number": numbers[n - 1],
                        "service": "electricity", "supply_address": "Carrera 2", "stratum": "3",
                        "tariff_class": "residential", "status": "active", "created_at": now, "updated_at": now,
                    }
                    for n in range(1, contracts + 1)
                ],
            )
            rows = []
            for n in range(1, contracts + 1):
                for month, amount in ((9, Decimal(41250)), (10, Decimal(85000))):
                    rows.append(
                        {
                            "tenant_id": tenant_id, "number": f"FAC-2026-{n:06d}-{month}", "contract_id": n, "customer_id": n,
                            "period": f"2026-{month:02d}", "issued_on": date(2026, month, 1), "due_on": date(2099, month, 16),
                            "status": "issued", "disputed": False, "currency": "COP", "consumption": Decimal(100),
                            "arrears": Decimal(0), "subtotal": amount, "tax": Decimal(0), "total": amount,
                            "amount_due": amount, "created_at": now,
                        }
                    )
            await session.execute(insert(Invoice), rows)
            await session.commit()
    finally:
        await sql.dispose()
    return numbers


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, var_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """Serve the app with hypercorn in its own process, rate limiting off."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "VAR_DIR": str(var_dir),
        "RATE_LIMIT_ENABLED": "false",
        "DEMO_DATA": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_SCHEMA", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "app:create_app()", "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=env
    )


async def wait_ready(base_url: str) -> None:
    """Poll /readyz until the server answers."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(300):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the app did not start")


async def run(name: str, work: list, concurrency: int, call, workers: list[int] = ()) -> dict:
    """Run `call(client, item)` over `work` with `concurrency` workers; latency per item in ms, server CPU per item."""
    from bench.request_path import cpu_seconds

    queue: asyncio.Queue = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    latencies: list[float] = []
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            ok = await call(client, item)
            latencies.append((time.perf_counter() - started) * 1000)
            failures += not ok

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=BASE_URL, timeout=60, limits=limits) as client:
        started, cpu_before = time.perf_counter(), cpu_seconds(list(workers))
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - started, cpu_seconds(list(workers)) - cpu_before
    latencies.sort()
    if failures:
        raise RuntimeError(f"{name}: {failures} of {len(work)} requests failed")
    return {
        "name": name,
        "requests": len(work),
        "concurrency": concurrency,
        "rps": round(len(work) / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "cpu_ms_per_request": round(cpu * 1000 / len(work), 2) if workers else None,
    }


async def exactly_once(url: str, contracts: list[str]) -> dict:
    """What the quick-pay pairs left in the database, counted: each pair paid its two invoices once."""
    sql = SqlClient(url)
    try:
        async with sql.session_scope() as session:
            ids = select(Contract.id).where(Contract.contract_number.in_(contracts))
            paid_invoices = await session.scalar(
                select(func.count()).select_from(Invoice).where(Invoice.contract_id.in_(ids), Invoice.status == "paid")
            )
            payments = dict(
                (await session.execute(select(Payment.status, func.count()).group_by(Payment.status))).all()
            )
            allocations = await session.scalar(select(func.count()).select_from(PaymentAllocation))
            paid_coupons = await session.scalar(select(func.count()).select_from(Coupon).where(Coupon.status == "paid"))
    finally:
        await sql.dispose()
    ok = paid_invoices == allocations == 2 * len(contracts) and payments == {"approved": len(contracts)} and paid_coupons == len(contracts)
    return {"name": "exactly_once", "pairs": len(contracts), "paid_invoices": paid_invoices, "allocations": allocations,
            "payments": payments, "paid_coupons": paid_coupons, "ok": ok}


async def lookup(client: httpx.AsyncClient, contract_number: str) -> bool:
    """One public quick-pay lookup."""
    response = await client.get("/api/v1/invoice-lookup", params={"contract_number": contract_number})
    return response.status_code == 200


async def coupon_and_payment(client: httpx.AsyncClient, contract_number: str) -> bool:
    """Quick-pay: a coupon for the contract, then an approved card payment of it."""
    coupon = await client.post("/api/v1/coupons", json={"contract_number": contract_number})
    if coupon.status_code != 201:
        return False
    payment = await client.post(
        "/api/v1/payments",
        json={"coupon_reference": coupon.json()["reference"], "card_token": "tok_approved"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    return payment.status_code == 201 and payment.json()["status"] == "approved"


BASE_URL = ""


async def main_async(args: argparse.Namespace) -> None:
    """Set up a temp database, serve it, run both scenarios and print their JSON lines."""
    global BASE_URL
    with tempfile.TemporaryDirectory(prefix="cuponera-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        # Alembic runs its own event loop, so it goes to a thread.
        await asyncio.to_thread(upgrade_to_head, url)
        numbers = await generate(url, max(args.contracts, args.payments))
        port = free_port()
        BASE_URL = f"http://127.0.0.1:{port}"
        server = start_server(url, Path(tmp), port)
        try:
            await wait_ready(BASE_URL)
            from bench.request_path import children

            workers = children(server.pid)
            await run("warmup", numbers[:50], 8, lookup)
            lookups = [numbers[i % len(numbers)] for i in range(args.lookups)]
            print(json.dumps(await run("invoice_lookup", lookups, 32, lookup, workers)), flush=True)
            pairs = numbers[: args.payments]
            print(json.dumps(await run("coupon_and_payment", pairs, 8, coupon_and_payment, workers)), flush=True)
            print(json.dumps(await exactly_once(url, pairs)), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    """Parse the sizes and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lookups", type=int, default=3000, help="lookup requests")
    parser.add_argument("--payments", type=int, default=600, help="coupon + payment pairs (one contract each)")
    parser.add_argument("--contracts", type=int, default=2000, help="contracts generated")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

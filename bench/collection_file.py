"""Bank collection file benchmark: one Asobancaria 2001 file of N details on a fresh SQLite database; one JSON line.

Setup (not timed): migrate, then bulk-load N customers, each with a contract, an unpaid invoice and an
active coupon for it, and generate a file paying every coupon (lots of 5 000). Timed: the real
controller (`collection_file_controller.process_file`) parsing, matching, claiming, settling and
writing the reconciliation, committed. Then, as the storage's own limit, the rows the run inserted
(payments, allocations, ledger entries, receipts, file details, outbox messages) are inserted again
with plain sqlite3 executemany in one transaction into scratch copies of their tables (same columns,
indexes and constraints). `ratio` is the run's time over that raw insert time; `parse_seconds` is
the parser alone on the same file.
"""

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):
    # Run as `python bench/collection_file.py` from anywhere: the project root instead of bench/.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._scratch import scratch_database
from clients.sql_client import SqlClient
from controllers import collection_file_controller, tenant_controller
from domain.asobancaria import generate, parse
from domain.coupon_codes import luhn_check_digit

STAMP = "2026-11-01 00:00:00.000000"
EXPIRES = "2099-01-01 00:00:00.000000"
WRITTEN = ("payments", "payment_allocations", "transactions", "collection_receipts", "collection_file_details", "notifications")


def reference(n: int) -> str:
    """A 16-digit coupon reference, as the app draws them (15 digits and a Luhn digit)."""
    body = str(10**14 + n)
    return body + luhn_check_digit(body)


def load_accounts(path: Path, count: int) -> list[tuple[str, Decimal]]:
    """Bulk-load customers, contracts, invoices and their coupons with plain sqlite3; returns (reference, amount)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    tenant_id = db.execute("SELECT id FROM tenants WHERE is_default = 1").fetchone()[0]
    customers, contracts, invoices, coupons, links, paid = [], [], [], [], [], []
    for n in range(1, count + 1):
        amount = 20_000 + (n * 37) % 180_000
        ref = reference(n)
        customers.append((n, tenant_id, f"Cliente {n}", "cc", str(10_000_000 + n), str(10_000_000 + n), f"cliente{n}@example.com",
                          "Calle 1", "es", "active", STAMP, STAMP))
        contracts.append((n, tenant_id, n, str(20_000_000 + n), "electricity", "Carrera 2", "3", "residential", "active", STAMP, STAMP))
        invoices.append((n, tenant_id, f"FAC-2026-{n:07d}", n, n, "2026-10", "2026-11-01", "2099-01-01", "issued", 0, "COP",
                         100, 0, amount, 0, amount, amount, STAMP))
        coupons.append((n, tenant_id, n, ref, "COP", amount, 0, amount, "active", EXPIRES, "2099-01-01", ref, ref, STAMP, "customer"))
        links.append((n, n, tenant_id, amount))
        paid.append((ref, Decimal(amount)))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO customers (id, tenant_id, name, national_id_type, national_id, national_id_display, email, billing_address, "
        "locale, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", customers)
    db.executemany(
        "INSERT INTO contracts (id, tenant_id, customer_id, contract_number, service, supply_address, stratum, tariff_class, "
        "status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", contracts)
    db.executemany(
        "INSERT INTO invoices (id, tenant_id, number, contract_id, customer_id, period, issued_on, due_on, status, disputed, "
        "currency, consumption, arrears, subtotal, tax, total, amount_due, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        invoices)
    db.executemany(
        "INSERT INTO coupons (id, tenant_id, customer_id, reference, currency, invoices_total, channel_fee, amount, status, "
        "expires_at, due_on, barcode_human_readable, barcode_element_string, created_at, creator_kind) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        coupons)
    db.executemany("INSERT INTO coupon_invoices (coupon_id, invoice_id, tenant_id, amount) VALUES (?,?,?,?)", links)
    db.execute("COMMIT")
    db.close()
    return paid


async def timed_run(url: str, content: bytes) -> tuple[float, dict[str, int]]:
    """Time one file through the real controller, in its own committed transaction."""
    sql = SqlClient(url)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            started = time.perf_counter()
            outcome = await collection_file_controller.process_file(session=session, tenant=tenant, content=content)
            seconds = time.perf_counter() - started
            record = outcome.file
            return seconds, {"applied": record.applied_count, "exceptions": record.exception_count}
    finally:
        await sql.dispose()


def raw_insert_seconds(path: Path) -> tuple[float, int]:
    """Time plain executemany of the rows the run inserted into scratch copies of their tables."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    rows = {}
    for table in WRITTEN:
        for (ddl,) in db.execute("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC", (table,)).fetchall():
            db.execute(ddl.replace(table, f"scratch_{table}"))
        rows[table] = db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    started = time.perf_counter()
    db.execute("BEGIN")
    for table, values in rows.items():
        if values:
            marks = ",".join("?" * len(values[0]))
            db.executemany(f"INSERT INTO scratch_{table} VALUES ({marks})", values)
    db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    return seconds, sum(len(v) for v in rows.values())


def main() -> None:
    """Build, run, measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--details", type=int, default=100_000)
    parser.add_argument("--keep", metavar="DIR", help="build the database in DIR and keep it")
    args = parser.parse_args()

    with scratch_database(args.keep) as (path, url):
        paid = load_accounts(path, args.details)
        day = (datetime.now(UTC).astimezone(ZoneInfo("America/Bogota")) - timedelta(days=1)).date()
        text = generate([(ref, amount, day) for ref, amount in paid], service_code="7709998000018")
        started = time.perf_counter()
        parse(text)
        parse_seconds = time.perf_counter() - started
        seconds, counts = asyncio.run(timed_run(url, text.encode("ascii")))
        if counts["applied"] != args.details:
            raise SystemExit(f"expected {args.details} applied details, got {counts}")
        raw, raw_rows = raw_insert_seconds(path)
    print(json.dumps({
        "details": args.details,
        "file_mb": round(len(text) / 1e6, 1),
        "seconds": round(seconds, 2),
        "details_per_second": round(args.details / seconds),
        "parse_seconds": round(parse_seconds, 2),
        "raw_insert_seconds": round(raw, 2),
        "raw_rows": raw_rows,
        "ratio": round(seconds / raw, 2),
    }))


if __name__ == "__main__":
    main()

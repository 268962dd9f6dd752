"""Bill run benchmark: N contracts in a fresh SQLite database, one timed run; prints one JSON line.

Setup (not timed): migrate, then bulk-load N customers with a contract, an active meter and readings
for two months, and the demo tariffs. Timed: one bill run of the second month through the real
controller. Then, as the storage's own limit, the same invoice and line rows are inserted with plain
sqlite3 executemany in one transaction into scratch copies of the two tables (same columns, indexes
and constraints). `ratio` is the run's time over that raw insert time.
"""

import argparse
import asyncio
import json
import random
import resource
import sqlite3
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python bench/bill_run.py` from anywhere: make the project root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench._scratch import load_in_child, scratch_database
from clients.sql_client import SqlClient
from controllers import billing_run_controller, demo_billing, tenant_controller

PERIODS = ("2026-09", "2026-10")
RUN_DAY = date(2026, 11, 5)
STRATA = ("1", "2", "3", "3", "4", "4", "5", "6", "commercial")
# service, share of contracts, monthly consumption range
SERVICES = (("electricity", 0.6, (40, 400)), ("water", 0.3, (4, 40)), ("gas", 0.1, (2, 50)))
STAMP = "2026-11-01 00:00:00.000000"



def load_accounts(path: Path, contracts: int, seed: int, periods: tuple[str, ...] = PERIODS) -> None:
    """Bulk-load customers, contracts, meters and a reading per period with plain sqlite3 (not timed)."""
    rng = random.Random(seed)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    tenant_id = db.execute("SELECT id FROM tenants WHERE is_default = 1").fetchone()[0]
    customers, contract_rows, meters, readings = [], [], [], []
    weights = [share for _, share, _ in SERVICES]
    for n in range(1, contracts + 1):
        customers.append((
            n, tenant_id, f"Cliente {n}", "cc", f"{10_000_000 + n}", f"{10_000_000 + n:,}".replace(",", "."),
            f"cliente{n}@example.com", "+57 300 000 0000", f"Calle {n % 200} # {n % 90}-{n % 70}", "es", "active",
            STAMP, STAMP,
        ))
        service, _, (low, high) = rng.choices(SERVICES, weights)[0]
        contract_rows.append((
            n, tenant_id, n, f"{20_000_000 + n}", service, f"Carrera {n % 100} # {n % 80}-{n % 60}",
            rng.choice(STRATA), "residential", "active", STAMP, STAMP,
        ))
        meters.append((n, tenant_id, n, f"MTR-{n:08d}", 6, 1, 0, "2025-01-01", "active", STAMP))
        value = 0
        for period in periods:
            consumption = rng.randint(low, high)
            value += consumption
            readings.append((tenant_id, n, period, value, f"{period}-28", "actual", consumption, "", STAMP, STAMP))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO customers (id, tenant_id, name, national_id_type, national_id, national_id_display, email, "
        "phone, billing_address, locale, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        customers,
    )
    db.executemany(
        "INSERT INTO contracts (id, tenant_id, customer_id, contract_number, service, supply_address, stratum, "
        "tariff_class, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        contract_rows,
    )
    db.executemany(
        "INSERT INTO meters (id, tenant_id, contract_id, serial, register_digits, multiplier, initial_value, "
        "installed_on, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        meters,
    )
    db.executemany(
        "INSERT INTO readings (tenant_id, meter_id, period, value, read_on, kind, consumption, flags, created_at, "
        "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        readings,
    )
    db.execute("COMMIT")
    db.close()


async def timed_run(url: str, batch_size: int) -> tuple[float, dict[str, int]]:
    """Seed the demo tariffs, then time one bill run of the second period through the real controller."""
    sql = SqlClient(url)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            await demo_billing.seed_demo_tariffs(session=session, tenant=tenant)
            await session.commit()
            started = time.perf_counter()
            run = await billing_run_controller.run_period(
                session=session, tenant=tenant, period=PERIODS[-1], today=RUN_DAY, batch_size=batch_size
            )
            seconds = time.perf_counter() - started
            counts = {k: getattr(run, k) for k in ("billed", "skipped", "estimated", "flagged", "failed")}
            return seconds, counts
    finally:
        await sql.dispose()


def raw_insert_seconds(path: Path) -> tuple[float, int, int]:
    """Time plain executemany of the run's invoice and line rows into scratch copies of their tables."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    for table in ("invoices", "invoice_lines"):
        for (ddl,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC", (table,)
        ).fetchall():
            # Same columns, constraints and indexes under scratch names; lines point at the scratch invoices.
            db.execute(ddl.replace("invoice_lines", "scratch_lines").replace("invoices", "scratch_invoices"))
    invoices = db.execute("SELECT * FROM invoices ORDER BY id").fetchall()
    lines = db.execute("SELECT * FROM invoice_lines ORDER BY id").fetchall()
    invoice_marks = ",".join("?" * len(invoices[0]))
    line_marks = ",".join("?" * len(lines[0]))
    started = time.perf_counter()
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO scratch_invoices VALUES ({invoice_marks})", invoices)
    db.executemany(f"INSERT INTO scratch_lines VALUES ({line_marks})", lines)
    db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    return seconds, len(invoices), len(lines)


def main() -> None:
    """Build, run, measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=billing_run_controller.DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", metavar="DIR", help="build the database in DIR and keep it")
    args = parser.parse_args()

    with scratch_database(args.keep) as (path, url):
        # A child process builds the data, so the peak memory below is the run's, not the loader's.
        load_in_child(load_accounts, path, args.contracts, args.seed)
        seconds, counts = asyncio.run(timed_run(url, args.batch_size))
        run_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        if counts["billed"] != args.contracts:
            raise SystemExit(f"expected {args.contracts} bills, got {counts}")
        raw, invoice_rows, line_rows = raw_insert_seconds(path)
    result = {
        "contracts": args.contracts,
        "seconds": round(seconds, 2),
        "bills_per_second": round(args.contracts / seconds),
        "raw_insert_seconds": round(raw, 2),
        "ratio": round(seconds / raw, 2),
        "invoice_rows": invoice_rows,
        "line_rows": line_rows,
        "batch_size": args.batch_size,
        "run_max_rss_mb": run_rss_mb,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

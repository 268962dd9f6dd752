"""Reading file benchmark: one CSV of N rows into a fresh SQLite database, one timed import; prints one JSON line.

Setup (not timed): migrate, then bulk-load N customers with a contract, an active meter and readings for
two months (bench/bill_run.py's loader), and write the file of the third month: one row per meter, about
1% of them with an observation (`not_accessible`), 1% unknown serials and 1% registers that went down.
Timed: the import through the real controller (hash, parse, checks, inserts, commit). Then, as the floor,
the same file parsed with csv.reader and its accepted rows inserted with plain sqlite3 executemany in one
transaction into a scratch copy of the readings table (same columns, indexes and constraints). `ratio`
is the import's time over that floor.
"""

import argparse
import asyncio
import csv
import io
import json
import random
import resource
import sqlite3
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python bench/reading_file.py` from anywhere: make the project root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._scratch import load_in_child, scratch_database
from bench.bill_run import load_accounts
from clients.sql_client import SqlClient
from controllers import reading_file_controller, tenant_controller

PERIODS = ("2026-09", "2026-10")
FILE_PERIOD = "2026-11"
TODAY = date(2026, 12, 5)


def write_file(path: Path, seed: int) -> bytes:
    """The reading route's CSV for FILE_PERIOD: one row per meter, a few of them bad or observed."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    latest = db.execute(
        "SELECT m.serial, r.value FROM meters m JOIN readings r ON r.meter_id = m.id AND r.period = ? ORDER BY m.id",
        (PERIODS[-1],),
    ).fetchall()
    db.close()
    out = io.StringIO()
    out.write("serial,period,value,read_on,reader,observation\n")
    for n, (serial, value) in enumerate(latest):
        reader = f"LEC-{n // 400:04d}"
        roll = rng.random()
        if roll < 0.01:
            out.write(f"{serial},{FILE_PERIOD},,,{reader},not_accessible\n")
        elif roll < 0.02:
            out.write(f"X{serial},{FILE_PERIOD},{value},2026-11-28,{reader},\n")
        elif roll < 0.03:
            out.write(f"{serial},{FILE_PERIOD},{max(0, int(value) - 5000)},2026-11-28,{reader},\n")
        else:
            out.write(f"{serial},{FILE_PERIOD},{int(value) + rng.randint(2, 400)}.{rng.randint(0, 999):03d},2026-11-28,{reader},\n")
    return out.getvalue().encode()


async def timed_import(url: str, content: bytes) -> tuple[float, dict[str, int]]:
    """Time one import of the file through the controller, as the route calls it."""
    sql = SqlClient(url)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            started = time.perf_counter()
            result = await reading_file_controller.import_reading_file(
                session=session, tenant=tenant, content=content, today=TODAY
            )
            seconds = time.perf_counter() - started
            record = result.file
            counts = {k: getattr(record, k) for k in ("row_count", "accepted", "rejected", "observed")}
            return seconds, counts
    finally:
        await sql.dispose()


def floor_seconds(path: Path, content: bytes) -> float:
    """Parse the file with csv.reader and insert its accepted readings with plain executemany into a scratch table."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    for (ddl,) in db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'readings' AND sql IS NOT NULL ORDER BY type DESC"
    ).fetchall():
        db.execute(ddl.replace("readings", "scratch_readings"))
    rows = db.execute(
        "SELECT tenant_id, meter_id, period, value, read_on, kind, consumption, flags, created_at, updated_at "
        "FROM readings WHERE period = ? ORDER BY id",
        (FILE_PERIOD,),
    ).fetchall()
    started = time.perf_counter()
    parsed = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO scratch_readings (tenant_id, meter_id, period, value, read_on, kind, consumption, flags, "
        "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    assert len(parsed) > len(rows)
    return seconds


def main() -> None:
    """Build, import, measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", metavar="DIR", help="build the database in DIR and keep it")
    args = parser.parse_args()

    with scratch_database(args.keep) as (path, url):
        # A child process builds the data, so the peak memory below is the import's, not the loader's.
        load_in_child(load_accounts, path, args.rows, args.seed, PERIODS)
        content = write_file(path, args.seed)
        seconds, counts = asyncio.run(timed_import(url, content))
        max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        if counts["row_count"] != args.rows or counts["accepted"] < args.rows * 0.9:
            raise SystemExit(f"unexpected counts for {args.rows} rows: {counts}")
        floor = floor_seconds(path, content)
    result = {
        "rows": args.rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(args.rows / seconds),
        "floor_seconds": round(floor, 2),
        "ratio": round(seconds / floor, 2),
        "file_mb": round(len(content) / 1_000_000, 1),
        **{k: counts[k] for k in ("accepted", "rejected", "observed")},
        "max_rss_mb": max_rss_mb,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

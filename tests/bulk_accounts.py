"""Bulk-load tens of thousands of metered contracts on any test database, for bill runs under load.

The same shape as bench/bill_run.py's `load_accounts` (one customer, contract, active meter and actual
reading each), but through SQLAlchemy Core so it runs on SQLite and PostgreSQL alike. No emails: a run
of 20 000 contracts would otherwise queue 20 000 messages for the worker to write out.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.bill_run import STRATA
from models.account_model import Contract, Customer, Meter, Reading
from models.base_model import utcnow

CHUNK = 5_000


async def load_accounts(session: AsyncSession, tenant_id: int, contracts: int, period: str, *, seed: int = 7) -> list[int]:
    """Insert `contracts` electricity contracts with a reading for `period`; returns their ids. Commits."""
    rng = random.Random(seed)
    now: datetime = utcnow()
    first = 1
    for table in (Customer, Contract, Meter):
        first = max(first, 1 + (await session.scalar(select(func.coalesce(func.max(table.id), 0))) or 0))
    ids = list(range(first, first + contracts))
    customers, rows, meters, readings = [], [], [], []
    for n in ids:
        customers.append({
            "id": n, "tenant_id": tenant_id, "name": f"Cliente {n}", "national_id_type": "cc",
            "national_id": f"{80_000_000 + n}", "national_id_display": f"{80_000_000 + n}", "email": None,
            "phone": "+57 300 000 0000", "billing_address": f"Calle {n % 200}", "locale": "es", "status": "active",
            "created_at": now, "updated_at": now,
        })
        rows.append({
            "id": n, "tenant_id": tenant_id, "customer_id": n, "contract_number": f"{90_000_000 + n}",
            "service": "electricity", "supply_address": f"Carrera {n % 100}", "stratum": rng.choice(STRATA[:-1]),
            "tariff_class": "residential", "status": "active", "created_at": now, "updated_at": now,
        })
        meters.append({
            "id": n, "tenant_id": tenant_id, "contract_id": n, "serial": f"BLK-{n:08d}", "register_digits": 6,
            "multiplier": Decimal(1), "initial_value": Decimal(0), "installed_on": date(2025, 1, 1),
            "status": "active", "created_at": now,
        })
        consumption = Decimal(rng.randint(40, 400))
        readings.append({
            "tenant_id": tenant_id, "meter_id": n, "period": period, "value": consumption,
            "read_on": date(int(period[:4]), int(period[5:]), 28), "kind": "actual", "consumption": consumption,
            "flags": "", "created_at": now, "updated_at": now,
        })
    for table, values in ((Customer, customers), (Contract, rows), (Meter, meters), (Reading, readings)):
        for start in range(0, len(values), CHUNK):
            await session.execute(insert(table), values[start:start + CHUNK])
    await session.commit()
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Explicit ids leave the serial sequences behind; later inserts must not reuse them.
        for table in (Customer, Contract, Meter):
            name = table.__tablename__
            await session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT MAX(id) FROM {name}))"
            ))
        await session.commit()
    return ids

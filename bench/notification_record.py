"""The notification worker's database cost per message under the quick-pay mix; one JSON line.

Setup (not timed): a fresh SQLite database at head and, for each round, `--pairs` quick-pay pairs' messages
queued (a `coupon_created` and two `invoice_paid` a pair, as `bench/payments.py` leaves them). Timed:
`notification_controller.dispatch_due` sending them all with the .eml writer (no SMTP_HOST) at the default
`NOTIFY_SEND_CONCURRENCY`. Counted by engine listeners: statements (`before_cursor_execute`) and commits, on the
read and the write engines, per message. How outcomes group depends on when the sends end, so the counts are
given as the lowest and highest of the rounds.

`--compare REV` runs the same rounds, alternately, with `controllers/notification_controller.py` as it is at the
git revision REV (loaded beside the current one), so before and after come from one run on one machine state;
`cpu_ratio` is the median CPU per message of this tree's rounds over REV's.
"""

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import delete, event, func, select

from bench._scratch import scratch_database
from clients.smtp_client import SmtpClient
from clients.sql_client import SqlClient
from config import Settings, SmtpSettings
from controllers import notification_controller
from controllers.outbox_controller import OutboxMessage, enqueue_many
from models.base_model import utcnow
from models.notification_model import Notification
from models.tenant_model import Tenant

ROOT = Path(__file__).resolve().parent.parent
COMMON = {"customer_name": "María Núñez", "tenant_name": "Energía del Valle S.A. E.S.P."}
COUPON = {
    "coupon_reference": "4500012345674", "amount": "20870", "expires_at": "2026-11-01T03:00:00+00:00",
    "invoice_numbers": ["FAC-2026-000123", "FAC-2026-000124"], "contract_numbers": ["100200300"], "created_by": "portal",
}
PAID = {
    "invoice_id": 1, "invoice_number": "FAC-2026-000123", "contract_number": "100200300", "period": "2026-10",
    "amount_paid": "20870", "paid_at": "2026-11-01T03:00:00+00:00",
}


def controller_at(revision: str, folder: Path) -> ModuleType:
    """notification_controller as it is at a git revision, written into `folder` and loaded as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:controllers/notification_controller.py"],
        capture_output=True, text=True, check=True,
    ).stdout
    path = folder / "notification_controller_compared.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("notification_controller_compared", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def queue(sql: SqlClient, pairs: int, label: str) -> None:
    """The messages of `pairs` quick-pay pairs, the previous round's rows removed."""
    async with sql.session_scope(write=True) as session:
        await session.execute(delete(Notification))
        tenant_id = await session.scalar(select(Tenant.id).order_by(Tenant.id).limit(1))
        assert tenant_id is not None
        messages = []
        for n in range(pairs):
            address = f"cliente{n}@example.co"
            messages.append(OutboxMessage(tenant_id=tenant_id, event="coupon_created", dedupe_key=f"{label}:coupon:{n}",
                                          payload={**COMMON, **COUPON}, recipient=address))
            messages += [
                OutboxMessage(tenant_id=tenant_id, event="invoice_paid", dedupe_key=f"{label}:paid:{n}:{k}",
                              payload={**COMMON, **PAID}, recipient=address)
                for k in range(2)
            ]
        await enqueue_many(session=session, messages=messages)
        await session.commit()


async def one_round(module: ModuleType, sql: SqlClient, smtp: SmtpClient, pairs: int, label: str, counts: Counter[str]) -> float:
    """CPU seconds to dispatch one round's messages; `counts` holds its statements and commits."""
    await queue(sql, pairs, label)
    counts.clear()
    policy = module.DeliveryPolicy(batch_size=Settings.NOTIFY_BATCH_SIZE, send_concurrency=Settings.NOTIFY_SEND_CONCURRENCY)
    started = time.process_time()
    report = await module.dispatch_due(sql=sql, smtp=smtp, policy=policy, now=utcnow() + timedelta(minutes=1))
    cpu = time.process_time() - started
    async with sql.session_scope() as session:
        sent = await session.scalar(select(func.count()).where(Notification.status == "sent"))
    assert report.sent == sent == pairs * 3, (report, sent)
    return cpu


def count_on(sql: SqlClient, counts: Counter[str]) -> None:
    """Statements and commits on the read and write engines, into `counts`."""
    for name, engine in (("read", sql.engine), ("write", sql.write_engine)):
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *_, n=name: counts.update([f"{n}_statements"]))
        event.listen(engine.sync_engine, "commit", lambda *_, n=name: counts.update([f"{n}_commits"]))


async def run(pairs: int, rounds: int, compare: str | None, url: str, mail_dir: Path) -> dict[str, Any]:
    modules = {"this_tree": notification_controller}
    if compare:
        modules = {compare: controller_at(compare, mail_dir.parent), **modules}
    sql = SqlClient(url)
    counts: Counter[str] = Counter()
    count_on(sql, counts)
    smtp = SmtpClient(SmtpSettings(host=None, mail_dir=mail_dir))
    runs: dict[str, list[tuple[dict[str, int], float]]] = {name: [] for name in modules}
    try:
        for name, module in modules.items():
            await one_round(module, sql, smtp, 10, f"warm-{name}", counts)
        for r in range(rounds):
            order = list(modules.items()) if r % 2 == 0 else list(reversed(modules.items()))
            for name, module in order:
                cpu = await one_round(module, sql, smtp, pairs, f"{name}-{r}", counts)
                runs[name].append((dict(counts), cpu))
    finally:
        await sql.dispose()
    messages = pairs * 3
    result: dict[str, Any] = {"bench": "notification_record", "messages": messages, "rounds": rounds,
                              "send_concurrency": Settings.NOTIFY_SEND_CONCURRENCY}
    for name, measured in runs.items():
        keys = sorted({key for c, _ in measured for key in c})
        result[name] = {
            **{f"{key}_per_message": [round(min(c.get(key, 0) for c, _ in measured) / messages, 3),
                                      round(max(c.get(key, 0) for c, _ in measured) / messages, 3)] for key in keys},
            "cpu_ms_per_message": round(statistics.median(cpu for _, cpu in measured) / messages * 1000, 2),
        }
    if compare:
        result["cpu_ratio"] = round(result["this_tree"]["cpu_ms_per_message"] / result[compare]["cpu_ms_per_message"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=200, help="quick-pay pairs: three messages each")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", default=None, help="a git revision whose notification_controller runs too")
    parser.add_argument("--keep", default=None, help="keep the database in this folder")
    args = parser.parse_args()
    if args.pairs < 1 or args.rounds < 1:
        parser.error("--pairs and --rounds must be at least 1")
    with scratch_database(args.keep) as (path, url):
        print(json.dumps(asyncio.run(run(args.pairs, args.rounds, args.compare, url, path.parent / "mail"))))


if __name__ == "__main__":
    main()

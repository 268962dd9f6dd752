"""Request-path benchmark: the served app against a bare Quart app (the floor), CPU per request and throughput.

Setup (not timed): a temporary SQLite database with N contracts (default 20 000) and 12 months of
invoices made by the real bill run, an operator and some customer logins. Then the app is served
exactly as `make run` serves it (hypercorn, `app:create_app()`, access log on), once per worker
count asked for, next to a bare Quart app answering a constant JSON object. Each endpoint gets a
bounded loopback load (concurrency 32, a fixed duration; the quick-pay pair at concurrency 8), cut
into slices, each right after a slice of the same length against the floor.

The figure that travels across machines is `cpu_ratio`: CPU milliseconds per request of the
server's worker processes (read from /proc before and after, hypercorn's parent excluded) over the
floor's in the slices interleaved with that endpoint's. Prints one JSON line.
"""

import sys
from pathlib import Path

# Run as `python bench/request_path.py` from anywhere: make the project root importable.
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

import httpx
from sqlalchemy import select, update

from bench.bill_run import load_accounts
from bench.payments import free_port
from clients.sql_client import SqlClient, upgrade_to_head
from config import ROOT
from controllers import auth_controller, billing_run_controller, demo_billing, tenant_controller
from models.account_model import Customer
from models.billing_model import Invoice

PASSWORD = "bench password 2026"
PERIODS = tuple(f"{2025 + (m + 10) // 12}-{(m + 10) % 12 + 1:02d}" for m in range(12))  # 2025-11 .. 2026-10
TICKS = os.sysconf("SC_CLK_TCK")
Call = Callable[[httpx.AsyncClient, int], Awaitable[bool]]


@dataclass
class Fixture:
    """What the load needs to know about the data it runs on."""

    national_ids: list[str]
    contract_numbers: list[str]
    invoice_ids: list[int]
    customer_emails: list[str]
    pay_contracts: list[str]
    cookies: dict[str, str] = field(default_factory=dict)


def run_day(period: str) -> date:
    """The bill run day for a period: the 5th of the next month."""
    year, month = map(int, period.split("-"))
    return date(year + month // 12, month % 12 + 1, 5)


async def build(url: str, contracts: int, customers: int) -> Fixture:
    """Twelve real bill runs, most invoices paid, an operator and `customers` customer logins (not timed)."""
    sql = SqlClient(url)
    try:
        async with sql.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            await demo_billing.seed_demo_tariffs(session=session, tenant=tenant)
            await session.commit()
            for period in PERIODS:
                run = await billing_run_controller.run_period(
                    session=session, tenant=tenant, period=period, today=run_day(period)
                )
                if run.billed != contracts:
                    raise SystemExit(f"{period}: expected {contracts} bills, got {run.billed}")
            # Customers pay: all but the last two months are settled, as after a normal year.
            await session.execute(
                update(Invoice)
                .where(Invoice.period < PERIODS[-2], Invoice.status != "void")
                .values(status="paid", amount_due=0, paid_at=Invoice.created_at)
            )
            await session.commit()
            await auth_controller.create_user(
                session=session, tenant=tenant, email="operator@bench.example", password=PASSWORD,
                role="operator", rounds=4,
            )
            emails = []
            for customer_id in range(1, customers + 1):
                user = await auth_controller.create_user(
                    session=session, tenant=tenant, email=f"cliente{customer_id}@bench.example", password=PASSWORD,
                    role="customer", rounds=4, commit=False,
                )
                user.customer_id = customer_id
                emails.append(user.email)
            await session.commit()
            national_ids = list((await session.scalars(select(Customer.national_id).order_by(Customer.id))).all())
            invoice_ids = list(
                await session.scalars(select(Invoice.id).where(Invoice.period == PERIODS[-1]).order_by(Invoice.id))
            )
    finally:
        await sql.dispose()
    numbers = [f"{20_000_000 + n}" for n in range(1, contracts + 1)]
    # The quick-pay pairs use contracts no other scenario reads, one each, so every pair finds unpaid invoices.
    return Fixture(
        national_ids=national_ids[: contracts // 2], contract_numbers=numbers[: contracts // 2],
        invoice_ids=invoice_ids[: contracts // 2], customer_emails=emails, pay_contracts=numbers[contracts // 2 :],
    )


def children(pid: int) -> list[int]:
    """The worker processes hypercorn started: its children that serve, not multiprocessing's resource tracker."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


@dataclass
class Server:
    """A hypercorn process and its workers."""

    process: subprocess.Popen
    base_url: str
    workers: list[int]


async def serve(target: str, workers: int, env: dict[str, str], cwd: Path) -> Server:
    """Start hypercorn as `make run` does and wait for its workers."""
    port = free_port()
    # Spawned off the event loop: fork and exec block for a moment.
    process = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "hypercorn", target, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--access-logfile", "-"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(600):
            if process.poll() is not None:
                raise SystemExit(f"{target} exited with {process.returncode}")
            try:
                await client.get("/")
                pids = children(process.pid)
                if len(pids) == workers:
                    return Server(process, base_url, pids)
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise SystemExit(f"{target} did not start")


def stop(server: Server) -> None:
    """SIGTERM, then wait."""
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


@dataclass
class Sample:
    """One bounded load against one server: what it served and what that cost the server."""

    latencies: list[float]
    errors: int
    seconds: float
    cpu_seconds: float


async def load_sample(
    server: Server, call: Call, *, concurrency: int, seconds: float, limit: int | None = None
) -> Sample:
    """Drive `call` with `concurrency` workers for `seconds` (or `limit` calls)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(limit if limit is not None else 10**9))
    connections = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=connections) as client:
        await asyncio.gather(*(call(client, n) for n in range(min(concurrency, 8))))  # warm connections and caches
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            for n in counter:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                ok = await call(client, n)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok

        cpu_before, started = cpu_seconds(server.workers), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(server.workers) - cpu_before
    return Sample(latencies, errors, elapsed, cpu)


def summary(samples: list[Sample]) -> dict:
    """Latency, throughput and CPU per request over these samples taken together."""
    latencies = sorted(latency for sample in samples for latency in sample.latencies)
    count = len(latencies)
    elapsed, cpu = sum(sample.seconds for sample in samples), sum(sample.cpu_seconds for sample in samples)
    return {
        "requests": count,
        "rps": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2) if count else None,
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))], 2) if count else None,
        "errors": sum(sample.errors for sample in samples),
        "cpu_ms_per_request": round(cpu * 1000 / count, 3) if count else None,
    }


async def load(server: Server, call: Call, *, concurrency: int, seconds: float, limit: int | None = None) -> dict:
    """Drive `call` with `concurrency` workers for `seconds` (or `limit` calls); latency, throughput, CPU."""
    return summary([await load_sample(server, call, concurrency=concurrency, seconds=seconds, limit=limit)])


async def floor_call(client: httpx.AsyncClient, n: int) -> bool:
    """The floor app's one request."""
    return (await client.get("/")).status_code == 200


async def against_floor(
    server: Server, call: Call, floor: Server, *, concurrency: int, seconds: float, slices: int
) -> tuple[dict, list[Sample]]:
    """`call` on `server` for `seconds` in `slices` slices, each right after a slice of the floor app
    as long; the endpoint's figures with `cpu_ratio` to the floor of the same slices, and those floor
    samples. A shared machine's speed drifts by tens of percent within a minute; measuring the floor
    beside each slice cancels what drifts slower than a slice."""
    ours: list[Sample] = []
    floors: list[Sample] = []
    for _ in range(slices):
        floors.append(await load_sample(floor, floor_call, concurrency=32, seconds=seconds / slices))
        ours.append(await load_sample(server, call, concurrency=concurrency, seconds=seconds / slices))
    figures, floor_figures = summary(ours), summary(floors)
    figures["floor_cpu_ms_per_request"] = floor_figures["cpu_ms_per_request"]
    if figures["cpu_ms_per_request"] and floor_figures["cpu_ms_per_request"]:
        figures["cpu_ratio"] = round(figures["cpu_ms_per_request"] / floor_figures["cpu_ms_per_request"], 2)
    return figures, floors


async def login(base_url: str, email: str) -> str:
    """A session cookie for this login."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        response.raise_for_status()
        return response.cookies["cuponera_session"]


def scenarios(fx: Fixture) -> dict[str, tuple[Call, int]]:
    """Each endpoint's call and its concurrency."""
    customers = fx.customer_emails

    def customer_cookie(n: int) -> dict[str, str]:
        return {"Cookie": f"cuponera_session={fx.cookies[customers[n % len(customers)]]}"}

    operator = {"Cookie": f"cuponera_session={fx.cookies['operator@bench.example']}"}

    async def get(client: httpx.AsyncClient, path: str, **kwargs: object) -> bool:
        response = await client.get(path, **kwargs)
        return response.status_code == 200

    async def healthz(client: httpx.AsyncClient, n: int) -> bool:
        return await get(client, "/healthz")

    async def tenant(client: httpx.AsyncClient, n: int) -> bool:
        return await get(client, "/api/v1/tenant")

    async def auth_me(client: httpx.AsyncClient, n: int) -> bool:
        return await get(client, "/api/v1/auth/me", headers=customer_cookie(n))

    async def invoice_search(client: httpx.AsyncClient, n: int) -> bool:
        params = {"national_id": fx.national_ids[n % len(fx.national_ids)], "period": PERIODS[-1]}
        return await get(client, "/api/v1/invoices", params=params, headers=operator)

    async def me_invoices(client: httpx.AsyncClient, n: int) -> bool:
        return await get(client, "/api/v1/me/invoices", headers=customer_cookie(n))

    async def invoice_lookup(client: httpx.AsyncClient, n: int) -> bool:
        params = {"contract_number": fx.contract_numbers[n % len(fx.contract_numbers)]}
        return await get(client, "/api/v1/invoice-lookup", params=params)

    async def invoice_pdf(client: httpx.AsyncClient, n: int) -> bool:
        return await get(client, f"/api/v1/invoices/{fx.invoice_ids[n % len(fx.invoice_ids)]}/pdf", headers=operator)

    return {
        "healthz": (healthz, 32),
        "tenant": (tenant, 32),
        "auth_me": (auth_me, 32),
        "operator_invoice_search": (invoice_search, 32),
        "customer_invoices": (me_invoices, 32),
        "invoice_lookup": (invoice_lookup, 32),
        "invoice_pdf": (invoice_pdf, 32),
    }


def quick_pay(fx: Fixture, used: set[int]) -> Call:
    """Coupon for a contract number, then an approved card payment of it: one pair per contract."""

    async def pair(client: httpx.AsyncClient, n: int) -> bool:
        index = len(used)
        used.add(index)
        if index >= len(fx.pay_contracts):
            return False
        coupon = await client.post("/api/v1/coupons", json={"contract_number": fx.pay_contracts[index]})
        if coupon.status_code != 201:
            return False
        payment = await client.post(
            "/api/v1/payments",
            json={"coupon_reference": coupon.json()["reference"], "card_token": "tok_approved"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        return payment.status_code == 201 and payment.json()["status"] == "approved"

    return pair


async def main_async(args: argparse.Namespace) -> dict:
    """Build once, then measure the floor and the app at each worker count."""
    with tempfile.TemporaryDirectory(prefix="cuponera-bench-http-") as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(upgrade_to_head, url)
        await asyncio.to_thread(load_accounts, path, args.contracts, 2026, PERIODS)
        built = time.perf_counter()
        fx = await build(url, args.contracts, args.customers)
        build_seconds = time.perf_counter() - built
        env = {
            **os.environ, "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(48), "VAR_DIR": tmp,
            "RATE_LIMIT_ENABLED": "false", "DEMO_DATA": "false", "WORKER_IN_PROCESS": "false", "ENV": "production",
            "COOKIE_SECURE": "false",
        }
        env.pop("DATABASE_SCHEMA", None)
        # The floor stays up beside the app: each endpoint is measured in slices next to slices of it.
        floor_server = await serve("bench._floor_app:app", 1, {**os.environ}, ROOT)
        floor_samples: list[Sample] = []
        results: dict[str, dict] = {}
        try:
            for workers in args.workers:
                server = await serve("app:create_app()", workers, env, ROOT)
                try:
                    for email in ["operator@bench.example", *fx.customer_emails]:
                        fx.cookies[email] = await login(server.base_url, email)
                    endpoints: dict[str, dict] = {}
                    for name, (call, concurrency) in scenarios(fx).items():
                        if args.warm_seconds:  # every login seen, caches and connections warm: the steady state
                            await load(server, call, concurrency=concurrency, seconds=args.warm_seconds)
                        endpoints[name], floors = await against_floor(
                            server, call, floor_server, concurrency=concurrency, seconds=args.seconds,
                            slices=args.slices,
                        )
                        floor_samples += floors
                    used: set[int] = set()
                    pair = await load(
                        server, quick_pay(fx, used), concurrency=8, seconds=args.seconds,
                        limit=len(fx.pay_contracts) // len(args.workers),
                    )
                    fx.pay_contracts = fx.pay_contracts[len(used) :]
                    pair["pairs_per_second"] = pair.pop("rps")
                    endpoints["quick_pay_pair"] = pair
                finally:
                    stop(server)
                results[f"workers_{workers}"] = endpoints
        finally:
            stop(floor_server)
        floor = summary(floor_samples)
        for endpoints in results.values():
            pair = endpoints["quick_pay_pair"]
            if pair["cpu_ms_per_request"] and floor["cpu_ms_per_request"]:
                pair["cpu_ratio"] = round(pair["cpu_ms_per_request"] / floor["cpu_ms_per_request"], 2)
    return {
        "bench": "http",
        "contracts": args.contracts,
        "invoices": args.contracts * len(PERIODS),
        "build_seconds": round(build_seconds, 1),
        "seconds_per_endpoint": args.seconds,
        "slices_per_endpoint": args.slices,
        "warm_seconds": args.warm_seconds,
        "cores": os.cpu_count(),
        "floor": floor,
        **results,
    }


def main() -> None:
    """Parse the sizes, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=20_000, help="contracts, each billed for 12 months")
    parser.add_argument("--customers", type=int, default=64, help="customer logins spread over the load")
    parser.add_argument("--seconds", type=float, default=5.0, help="load duration per endpoint")
    parser.add_argument(
        "--slices", type=int, default=5,
        help="each endpoint's load is cut into this many slices, each right after as long a slice of the floor",
    )
    parser.add_argument(
        "--warm-seconds", type=float, default=0.0,
        help="an unmeasured load of this many seconds before each endpoint's measured one (default: none)",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=sorted({1, min(os.cpu_count() or 1, 2)}),
        help="hypercorn worker counts to measure (default: one, and make run's default on SQLite: cores, at most 2)",
    )
    args = parser.parse_args()
    if (
        args.contracts < 100 or args.customers < 1 or args.customers > args.contracts // 2
        or args.seconds <= 0 or args.slices < 1
    ):
        parser.error("--contracts must be >= 100, --customers between 1 and contracts/2, --seconds > 0, --slices >= 1")
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()

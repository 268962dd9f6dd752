"""Demo accounts: about 50 customers across strata, each with a contract, a meter and 12 months of readings.

Deterministic (a seeded random.Random) apart from the periods, which end with the last complete month
before today in the tenant's time zone, and the demo customer's password. One meter rolls over and
one customer's last month is flagged `high`, so billing has those cases to show.
"""

from __future__ import annotations

import random
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller
from controllers.account_common import tenant_today
from domain.national_id import nit_check_digit, normalize_national_id
from domain.period import Period
from domain.readings import compute_consumption, join_flags, vee_flags
from models.account_model import Contract, Customer, Meter, Reading
from models.tenant_model import Tenant

SEED = 2026
MONTHS = 12
DEMO_CUSTOMER_EMAIL = "cliente@demo.cuponera.co"
ROLLOVER_INDEX = 7  # a 4-digit meter installed near the top of its register
HIGH_INDEX = 12  # last month about five times the usual consumption

# 50 contracts: the strata of a typical Colombian city, plus a few businesses.
STRATA_PLAN = ["1"] * 6 + ["2"] * 10 + ["3"] * 12 + ["4"] * 9 + ["5"] * 6 + ["6"] * 4 + ["commercial"] * 3
# Typical monthly consumption by stratum (kWh for electricity, m3 for water and gas).
BASE_USE = {
    "electricity": {"1": 110, "2": 140, "3": 170, "4": 210, "5": 280, "6": 380, "commercial": 950},
    "water": {"1": 9, "2": 11, "3": 13, "4": 15, "5": 19, "6": 24, "commercial": 60},
    "gas": {"1": 14, "2": 17, "3": 20, "4": 25, "5": 32, "6": 45, "commercial": 120},
}
SERIAL_PREFIX = {"electricity": "E", "water": "A", "gas": "G"}

FIRST_NAMES = [
    "María José", "Andrés Felipe", "Luz Ángela", "Sebastián", "Valentina", "Julián", "Camila", "Óscar",
    "Natalia", "Jesús Antonio", "Mónica", "Germán", "Sofía", "Martín", "Lucía", "Héctor", "Daniela",
    "Ramón", "Paula Andrea", "Nicolás", "Inés", "Joaquín", "Verónica", "Iván", "Ángela María",
]
SURNAMES = [
    "Gómez", "Rodríguez", "Martínez", "López", "García", "Hernández", "Pérez", "Sánchez", "Ramírez",
    "Díaz", "Muñoz", "Álvarez", "Jiménez", "Vásquez", "Ríos", "Zuluaga", "Restrepo", "Ospina",
    "Peña", "Castaño", "Londoño", "Cárdenas", "Giraldo", "Núñez", "Echeverri",
]
BUSINESSES = ["Panadería La Española S.A.S.", "Droguería San José Ltda.", "Ferretería El Tornillo Feliz S.A.S."]
STREETS = ["Calle", "Carrera", "Avenida", "Transversal", "Diagonal", "Circular"]
NEIGHBOURHOODS = [
    "Belén", "Laureles", "El Poblado", "Robledo", "Manrique", "Castilla", "Aranjuez", "Buenos Aires",
    "La América", "Envigado", "Itagüí", "Bello", "San Javier", "Guayabal", "Boston",
]


@dataclass(frozen=True)
class DemoPlan:
    """What one demo customer gets."""

    index: int
    stratum: str
    service: str


def demo_periods(today: date, months: int = MONTHS) -> list[str]:
    """The `months` periods ending with the last complete month before `today`, oldest first."""
    year, month = today.year, today.month
    periods = []
    for _ in range(months):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        periods.append(f"{year:04d}-{month:02d}")
    return periods[::-1]


def _service(index: int) -> str:
    if index % 7 == 3:
        return "water"
    if index % 11 == 5:
        return "gas"
    return "electricity"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _address(rng: random.Random) -> str:
    return (
        f"{rng.choice(STREETS)} {rng.randint(1, 120)} # {rng.randint(1, 99)}-{rng.randint(1, 199)}, "
        f"{rng.choice(NEIGHBOURHOODS)}, Medellín"
    )


def _customer_rows(rng: random.Random, tenant: Tenant) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    used_ids: set[str] = set()
    businesses = iter(BUSINESSES)
    for index, stratum in enumerate(STRATA_PLAN):
        if stratum == "commercial":
            name = next(businesses)
            while True:
                body = str(rng.randint(800_000_000, 999_999_999))
                national = normalize_national_id("nit", body + nit_check_digit(body))
                if national.number not in used_ids:
                    break
            email_user = _ascii(name.split()[0]) + f".{index}"
        else:
            first = rng.choice(FIRST_NAMES)
            surname, second = rng.sample(SURNAMES, 2)
            name = f"{first} {surname} {second}"
            while True:
                national = normalize_national_id("cc", str(rng.randint(10_000_000, 1_299_999_999)))
                if national.number not in used_ids:
                    break
            email_user = f"{_ascii(first.split()[0])}.{_ascii(surname)}{index}"
        used_ids.add(national.number)
        rows.append(
            {
                "tenant_id": tenant.id,
                "name": name,
                "national_id_type": national.type,
                "national_id": national.number,
                "national_id_display": national.display,
                "email": f"{email_user}@example.com",
                "phone": f"+57 3{rng.randint(0, 50):02d} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                "billing_address": _address(rng),
                "locale": tenant.locale,
                "status": "active",
            }
        )
    return rows


def _monthly_use(rng: random.Random, plan: DemoPlan, periods: list[str]) -> list[int]:
    base = BASE_USE[plan.service][plan.stratum] * rng.uniform(0.85, 1.15)
    uses = []
    for period in periods:
        month = Period.parse(period).month
        # A little more in the mid-year and December holidays; noise small enough to stay unflagged.
        season = 1.05 if month in (6, 7, 12) else 1.0
        uses.append(max(1, round(base * season * rng.uniform(0.9, 1.1))))
    if plan.index == HIGH_INDEX:
        uses[-1] = uses[-1] * 5
    return uses


def _reading_rows(
    rng: random.Random, plan: DemoPlan, meter: dict[str, object], periods: list[str]
) -> list[dict[str, object]]:
    digits = int(meter["register_digits"])  # type: ignore[call-overload]
    span = Decimal(10) ** digits
    previous = Decimal(meter["initial_value"])  # type: ignore[arg-type]
    history: list[Decimal] = []
    rows = []
    for period, use in zip(periods, _monthly_use(rng, plan, periods)):
        value = (previous + use) % span
        result = compute_consumption(previous=previous, current=value, register_digits=digits)
        flags = vee_flags(consumption=result.quantity, history=history, rolled_over=result.rolled_over)
        last_day = Period.parse(period).last_day
        rows.append(
            {
                "tenant_id": meter["tenant_id"],
                "meter_id": meter["id"],
                "period": period,
                "value": value,
                "read_on": last_day - timedelta(days=rng.randint(0, 3)),
                "kind": "actual",
                "consumption": result.quantity,
                "flags": join_flags(flags),
            }
        )
        history.insert(0, result.quantity)
        previous = value
    return rows


async def seed_accounts(
    *, session: AsyncSession, tenant: Tenant, rounds: int = 12, today: date | None = None
) -> list[dict[str, str]]:
    """Insert the demo accounts in bulk (no commit) and return the demo customer's login to print."""
    rng = random.Random(SEED)
    periods = demo_periods(today or tenant_today(tenant))
    installed_month = Period.parse(periods[0]).first_day - timedelta(days=1)  # the month before the first period
    plans = [DemoPlan(i, stratum, _service(i)) for i, stratum in enumerate(STRATA_PLAN)]

    customer_rows = _customer_rows(rng, tenant)
    customer_ids = list(
        await session.scalars(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), customer_rows)
    )
    contract_rows = [
        {
            "tenant_id": tenant.id,
            "customer_id": customer_id,
            "contract_number": f"{1_000_100 + plan.index * 13}",
            "service": plan.service,
            "supply_address": customer_rows[plan.index]["billing_address"],
            "stratum": plan.stratum,
            "tariff_class": "residential" if plan.stratum.isdigit() else plan.stratum,
            "status": "active",
        }
        for plan, customer_id in zip(plans, customer_ids)
    ]
    contract_ids = list(
        await session.scalars(insert(Contract).returning(Contract.id, sort_by_parameter_order=True), contract_rows)
    )
    meter_rows: list[dict[str, object]] = []
    for plan, contract_id in zip(plans, contract_ids):
        rolls_over = plan.index == ROLLOVER_INDEX
        meter_rows.append(
            {
                "tenant_id": tenant.id,
                "contract_id": contract_id,
                "serial": f"{SERIAL_PREFIX[plan.service]}-{2025_000 + plan.index * 7:07d}",
                "register_digits": 4 if rolls_over else 5,
                "multiplier": Decimal(1),
                # Near the top of a 4-digit register, so it wraps around within the year.
                "initial_value": Decimal(9_300) if rolls_over else Decimal(rng.randint(0, 40_000)),
                "installed_on": installed_month.replace(day=rng.randint(1, installed_month.day)),
                "status": "active",
            }
        )
    meter_ids = list(await session.scalars(insert(Meter).returning(Meter.id, sort_by_parameter_order=True), meter_rows))
    reading_rows: list[dict[str, object]] = []
    for plan, meter, meter_id in zip(plans, meter_rows, meter_ids):
        reading_rows += _reading_rows(rng, plan, {**meter, "id": meter_id}, periods)
    await session.execute(insert(Reading), reading_rows)

    password = secrets.token_urlsafe(12)
    first = customer_rows[0]
    user = await auth_controller.create_user(
        session=session,
        tenant=tenant,
        email=DEMO_CUSTOMER_EMAIL,
        password=password,
        role="customer",
        full_name=str(first["name"]),
        locale=str(first["locale"]),
        rounds=rounds,
        commit=False,
    )
    user.customer_id = customer_ids[0]
    await session.flush()
    return [{"role": "customer", "email": DEMO_CUSTOMER_EMAIL, "password": password}]

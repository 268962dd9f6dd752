"""Demo data for a first `make run`: logins with random passwords, then each area's sample data."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controllers import auth_controller, demo_accounts, demo_billing, demo_history, demo_pqr, tenant_controller
from controllers.account_common import tenant_today
from models.user_model import User

DEMO_USERS = (
    ("admin@demo.cuponera.co", "admin", "Ana Administradora"),
    ("operador@demo.cuponera.co", "operator", "Óscar Operador"),
)
LOGINS_FILE = "demo_logins.json"


def _random_password() -> str:
    return secrets.token_urlsafe(12)


async def seed_demo(*, session: AsyncSession, var_dir: Path, rounds: int = 12) -> list[str]:
    """Seed the default tenant once; return the lines to print (the demo logins)."""
    tenant = await tenant_controller.default_tenant(session=session)
    logins_path = var_dir / LOGINS_FILE
    already = await session.scalar(select(User.id).where(User.tenant_id == tenant.id, User.email == DEMO_USERS[0][0]))
    if already is not None:
        lines = ["Demo data already loaded."]
        if logins_path.exists():
            lines += _format_logins(json.loads(logins_path.read_text()))
        return lines

    logins: list[dict[str, str]] = []
    for email, role, full_name in DEMO_USERS:
        password = _random_password()
        await auth_controller.create_user(
            session=session,
            tenant=tenant,
            email=email,
            password=password,
            role=role,
            full_name=full_name,
            rounds=rounds,
            commit=False,
        )
        logins.append({"role": role, "email": email, "password": password})
    # Each area appends its demo data here, in dependency order, inside the same transaction.
    logins += await demo_accounts.seed_accounts(session=session, tenant=tenant, rounds=rounds)
    await demo_billing.seed_demo_tariffs(session=session, tenant=tenant)
    await demo_pqr.seed_demo_pqr(session=session, tenant=tenant)
    await session.commit()
    # A year of bills and payments made by the real paths, each committing as in production.
    history = await demo_history.seed_demo_history(session=session, tenant=tenant, today=tenant_today(tenant))

    var_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(logins_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(logins, handle, indent=2)
    summary = (
        f"Demo data loaded: {history.invoices} invoices over 12 months, {history.card_payments} card and "
        f"{history.bank_payments} bank payments."
    )
    return [summary, *_format_logins(logins)]


def _format_logins(logins: list[dict[str, str]]) -> list[str]:
    lines = ["Demo logins (also in var/demo_logins.json):"]
    lines += [f"  {item['role']:<9} {item['email']:<32} {item['password']}" for item in logins]
    return lines

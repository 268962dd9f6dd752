"""The CLI refuses nonsense like the API does: exit status 2 and one error line naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from models.tenant_model import Tenant
from tests.conftest import TestDatabase
from tests.factories import make_customer
from tests.test_cli import _users, run_cli

PASSWORD = "long enough pw\n"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["bill-run", "--period", "2026-10", "--batch-size", "0"], "'--batch-size'"),
        (["bill-run", "--period", "2026-10", "--batch-size", "-5"], "'--batch-size'"),
        (["create-user", "--email", "notanemail", "--role", "operator"], "'--email'"),
        (["create-user", "--email", "c@example.com", "--role", "customer"], "'--customer-id'"),
        (["create-user", "--email", "o@example.com", "--role", "operator", "--customer-id", "1"], "'--customer-id'"),
        (["load-holidays", "--year", "1800"], "'--year'"),
    ],
)
async def test_bad_options_exit_2_with_one_line_naming_the_option(
    args: list[str], option: str, database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    code, out, err = await run_cli(args, database_url=database_url, schema=test_database.schema, var_dir=tmp_path, stdin=PASSWORD)
    assert code == 2, (out, err)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and option in errors[0], err
    assert await _users(database_url, test_database.schema) == []


async def test_a_customer_login_is_created_for_an_existing_customer_only(
    session: AsyncSession, tenant: Tenant, database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    customer = await make_customer(session, tenant)
    await session.commit()
    customer_id = customer.id
    common = {"database_url": database_url, "schema": test_database.schema, "var_dir": tmp_path, "stdin": PASSWORD}
    code, _, err = await run_cli(["create-user", "--email", "x@example.com", "--role", "customer", "--customer-id", "999999"], **common)
    assert code == 1 and "customer_not_found" in err
    code, _, err = await run_cli(
        ["create-user", "--email", "c@example.com", "--role", "customer", "--customer-id", str(customer_id)], **common
    )
    assert code == 0, err
    users = await _users(database_url, test_database.schema)
    assert [(u.email, u.role, u.customer_id) for u in users] == [("c@example.com", "customer", customer_id)]

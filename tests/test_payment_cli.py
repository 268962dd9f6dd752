"""Payment CLI commands run as an operator would: create-bank-key and expire-coupons."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from clients.sql_client import SqlClient
from controllers import collection_controller, tenant_controller
from models.payment_model import BankApiKey, Coupon
from tests.conftest import TestDatabase
from tests.payment_builders import make_coupon, make_debtor
from tests.test_cli import run_cli


async def test_create_bank_key_prints_the_key_once_and_stores_its_hash(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    code, out, err = await run_cli(
        ["create-bank-key", "--tenant", "default", "--name", "Banco de Occidente"],
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path,
    )
    assert code == 0, err
    raw_key = out.strip().splitlines()[-1]
    assert raw_key.startswith("cbk_")
    client = SqlClient(database_url, schema=test_database.schema)
    try:
        async with client.session_scope() as session:
            key = await session.scalar(select(BankApiKey))
            assert key is not None and key.name == "Banco de Occidente"
            assert key.key_hash == collection_controller.hash_api_key(raw_key)
            found = await collection_controller.authenticate_bank(session=session, authorization=f"Bearer {raw_key}")
            assert found.id == key.id
    finally:
        await client.dispose()


async def test_create_bank_key_for_an_unknown_tenant_fails_cleanly(
    database_url: str, test_database: TestDatabase, tmp_path: Path
) -> None:
    code, _out, err = await run_cli(
        ["create-bank-key", "--tenant", "nope", "--name", "X"],
        database_url=database_url, schema=test_database.schema, var_dir=tmp_path,
    )
    assert code != 0
    assert "tenant_not_found" in err


async def test_expire_coupons_expires_past_coupons(database_url: str, test_database: TestDatabase, tmp_path: Path) -> None:
    client = SqlClient(database_url, schema=test_database.schema)
    try:
        async with client.session_scope(write=True) as session:
            tenant = await tenant_controller.default_tenant(session=session)
            debtor = await make_debtor(session, tenant, due_on=date(2026, 1, 10))
            await make_coupon(session, tenant, debtor, now=datetime(2026, 1, 5, tzinfo=UTC))
        code, out, err = await run_cli(
            ["expire-coupons"], database_url=database_url, schema=test_database.schema, var_dir=tmp_path
        )
        assert code == 0, err
        assert "expired 1 coupons" in out
        async with client.session_scope() as session:
            assert await session.scalar(select(Coupon.status)) == "expired"
    finally:
        await client.dispose()

"""The Azure SQL driver path as far as a machine without SQL Server goes: Microsoft's ODBC driver really loads.

pyodbc (on Debian's unixodbc) loads the ODBC Driver 18 that the `mssql-python-odbc` wheel ships, the
app's engine for an mssql+aioodbc URL dials an unused loopback port, and the driver itself answers with
its login-timeout or connection error: no ImportError, no hang. `.ci/run` installs both parts.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from clients import sql_client
from tests.conftest import free_port

LOGIN_TIMEOUT = 2
# Set by a developer who knowingly runs without the driver; CI never sets it.
OFF_CI = os.environ.get("CUPONERA_NO_MSSQL_DRIVER") == "1"


def _driver_or_fail() -> str:
    problems = []
    try:
        import pyodbc  # noqa: F401
    except ImportError as exc:
        problems.append(f"pyodbc does not import ({exc}); install unixodbc (apt-get install unixodbc)")
    driver = sql_client.bundled_odbc_driver()
    if driver is None:
        problems.append("no libmsodbcsql-18 found; pip install -r requirements-dev.txt (mssql-python-odbc)")
    if problems:
        message = "the Azure SQL driver test needs its driver: " + "; ".join(problems)
        if OFF_CI:
            pytest.skip(message)
        pytest.fail(message)
    assert driver is not None
    return driver


def test_the_wheel_ships_microsofts_odbc_driver_18() -> None:
    driver = _driver_or_fail()
    assert os.path.basename(driver).startswith("libmsodbcsql-18.")
    url = sql_client.odbc_url("mssql+aioodbc://u:p@server.database.windows.net/cuponera")
    assert url.query["driver"] == driver  # no odbcinst.ini registration needed


async def test_the_app_engine_reaches_the_driver_and_fails_with_its_own_error() -> None:
    driver = _driver_or_fail()
    import pyodbc

    port = free_port()
    url = f"mssql+aioodbc://cuponera:secret@127.0.0.1:{port}/cuponera"
    engine = sql_client.build_engine(url, connect_args={"timeout": LOGIN_TIMEOUT})
    connection_strings: list[str] = []

    @event.listens_for(engine.sync_engine, "do_connect")
    def _capture(_dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> None:
        # aioodbc takes the ODBC connection string as `dsn`; pyodbc would take it positionally.
        connection_strings.append(cparams.get("dsn") or cargs[0])

    try:
        with pytest.raises(DBAPIError) as caught:
            # A bound so that a hang fails the test instead of stalling the suite; not a timing assertion.
            async with asyncio.timeout(LOGIN_TIMEOUT * 15):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()

    error = caught.value.orig
    assert isinstance(error, pyodbc.Error), type(error)
    sqlstate, message = error.args[0], str(error.args[1])
    assert sqlstate in {"HYT00", "08001", "08S01"}, error.args
    assert "[Microsoft][ODBC Driver 18 for SQL Server]" in message
    assert not sql_client.is_transient_error(error)  # a refused login is not retried forever

    assert len(connection_strings) == 1
    parts = dict(part.split("=", 1) for part in connection_strings[0].split(";") if part)
    assert parts["DRIVER"] == f"{{{driver}}}"
    assert parts["Server"] == f"127.0.0.1,{port}"
    assert parts["Encrypt"] == "yes"
    assert parts["TrustServerCertificate"] == "no"
    assert parts["ConnectRetryCount"] == "3"
    assert parts["ConnectRetryInterval"] == "10"

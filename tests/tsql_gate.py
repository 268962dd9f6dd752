"""The T-SQL gate: every statement the suite runs through SQLAlchemy must also be valid on Azure SQL.

A pytest plugin (loaded from tests/conftest.py). A `before_cursor_execute` listener on every Engine
compiles each statement shape once more with the mssql dialect configured as Azure SQL reports itself
(`clients.sql_client.azure_sql_dialect`), parses that with sqlglot as T-SQL and looks for what SQL
Server rejects or silently ignores. A violation fails the test that issued it, in its teardown, with
the statement and the call site. At the end the terminal summary says how many shapes were checked.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.sql.ddl import ExecutableDDLElement
from sqlalchemy.sql.elements import ReleaseSavepointClause, RollbackToSavepointClause, SavepointClause
from sqlglot import exp

from clients.sql_client import azure_sql_dialect

ROOT = Path(__file__).resolve().parents[1]
# SQL Server accepts at most 2 100 parameters per statement; keep a margin under it.
MAX_PARAMETERS = 2000

AZURE = azure_sql_dialect()
# An opaque command is reported by the gate itself; sqlglot's own warning would only be noise.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

# What SQL Server rejects (or, worse, compiles away) when it appears in the T-SQL we would send.
_FORBIDDEN_IN_TSQL: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bIS\s+(NOT\s+)?(0|1|TRUE|FALSE)\b", re.IGNORECASE), "IS 0/IS 1/IS TRUE: use `== true()` / `== false()`"),
    (re.compile(r"\bLIMIT\b", re.IGNORECASE), "LIMIT: T-SQL has TOP / OFFSET ... FETCH"),
    (re.compile(r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE)\b", re.IGNORECASE), "FOR UPDATE: use a conditional UPDATE ... WHERE"),
    (re.compile(r"\bON\s+CONFLICT\b", re.IGNORECASE), "ON CONFLICT: T-SQL has no upsert clause; insert and catch the key error"),
    (re.compile(r"\bRETURNING\b", re.IGNORECASE), "RETURNING: T-SQL uses OUTPUT inserted.*"),
    (re.compile(r"\bILIKE\b", re.IGNORECASE), "ILIKE: use lower(x) LIKE lower(pattern)"),
    (re.compile(r"\bNULLS\s+(FIRST|LAST)\b", re.IGNORECASE), "NULLS FIRST/LAST: order by a CASE expression instead"),
    (re.compile(r"\bDISTINCT\s+ON\b", re.IGNORECASE), "DISTINCT ON: PostgreSQL only"),
    (re.compile(r"::\s*[a-z_]", re.IGNORECASE), "`::` cast: PostgreSQL only; use CAST(x AS type)"),
]
# The mssql compiler leaves these out without a word, so they are looked for in the statement the
# running database gets (and in the construct itself, below).
_SILENTLY_DROPPED: list[tuple[re.Pattern[str], str]] = [
    p for p in _FORBIDDEN_IN_TSQL if p[1].split(":")[0] in {"FOR UPDATE", "ON CONFLICT", "DISTINCT ON"}
]
_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_\w+(~~[^\]]*)?\]")
_DRIVER_PLACEHOLDER = re.compile(r"\$\d+|%s|%\(\w+\)s")


@dataclass(frozen=True)
class Exemption:
    """A call site whose statements are dialect-specific on purpose, and why."""

    path: str  # repo-relative path, or a fragment of a library path
    functions: frozenset[str]  # empty: every function of the file
    reason: str


# Narrow on purpose: each entry is a branch that never runs on mssql.
EXEMPTIONS = (
    Exemption(
        "sqlalchemy/dialects/", frozenset(), "issued by SQLAlchemy's own dialect for the database in use (connect probes)"
    ),
    Exemption("sqlalchemy/engine/reflection.py", frozenset(), "reflection queries of the database in use"),
    Exemption(
        "alembic/",
        frozenset(),
        "online migrations on SQLite/PostgreSQL; mssql gets the offline script, which tests/migrations checks",
    ),
    Exemption(
        "tests/conftest.py",
        frozenset({"_reset_postgres", "create_schema", "drop_schema"}),
        "PostgreSQL-only test plumbing (CREATE/DROP SCHEMA, TRUNCATE ... RESTART IDENTITY, setval)",
    ),
    Exemption(
        "clients/sql_client.py", frozenset({"_on_begin"}), "SQLite only: writers BEGIN IMMEDIATE (see sql_client)"
    ),
    Exemption(
        "tests/test_azure_sql_rules.py",
        frozenset({"test_read_committed_snapshot_off_is_logged_at_start_up"}),
        "builds a SQLite stand-in for SQL Server's catalog (ATTACH, sys.databases); the check's own query is T-SQL",
    ),
    Exemption(
        "tests/routes/test_database_busy.py",
        frozenset({"test_a_write_waiting_on_another_process_lock_is_503_busy"}),
        "PostgreSQL-only LOCK TABLE, holding a lock as another process would",
    ),
    Exemption(
        "tests/clients/test_sql_client.py",
        frozenset({"test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout"}),
        "asserts SQLite PRAGMAs, a SQLite-only test",
    ),
)


@dataclass
class GateState:
    """Shapes checked so far, and the violations of the running test."""

    shapes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    current: list[str] | None = None
    outside_tests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


STATE = GateState()


def compile_for_azure(statement: Any, *, column_keys: Any = None, for_executemany: bool = False) -> str:
    """The T-SQL Azure SQL would get for a SQLAlchemy construct."""
    kwargs: dict[str, Any] = {}
    if column_keys is not None:
        kwargs["column_keys"] = list(column_keys)
    if for_executemany:
        kwargs["for_executemany"] = True
    return str(statement.compile(dialect=AZURE, **kwargs))


def _tsql_problems(tsql: str) -> list[str]:
    """What is wrong with a T-SQL string: it must parse and hold no forbidden construct."""
    problems = [f"{why}" for pattern, why in _FORBIDDEN_IN_TSQL if pattern.search(tsql)]
    parseable = _DRIVER_PLACEHOLDER.sub("?", _POSTCOMPILE.sub("1", tsql))
    try:
        for tree in sqlglot.parse(parseable, read="tsql", error_level=sqlglot.ErrorLevel.RAISE):
            if tree is None:
                continue
            if isinstance(tree, exp.Command):
                problems.append(f"sqlglot reads it as an opaque command, not T-SQL: {tree.sql()[:60]}")
            for select in tree.find_all(exp.Select):
                if select.args.get("offset") is not None and select.args.get("order") is None:
                    problems.append("OFFSET without ORDER BY")
    except sqlglot.errors.SqlglotError as error:
        problems.append(f"does not parse as T-SQL: {str(error).splitlines()[0]}")
    return problems


def _construct_problems(statement: Any) -> list[str]:
    """Constructs the mssql compiler drops without a word."""
    problems = []
    if getattr(statement, "_for_update_arg", None) is not None:
        problems.append("FOR UPDATE: use a conditional UPDATE ... WHERE (mssql compiles it away)")
    if getattr(statement, "_distinct_on", ()):
        problems.append("DISTINCT ON: PostgreSQL only (mssql compiles it away)")
    if getattr(statement, "_post_values_clause", None) is not None:
        problems.append("ON CONFLICT / upsert clause: T-SQL has none")
    return problems


def check_statement(statement: Any, running_sql: str = "", **compile_kwargs: Any) -> list[str]:
    """Every reason the construct would fail or misbehave on Azure SQL (empty when it is fine)."""
    problems = _construct_problems(statement)
    problems += [why for pattern, why in _SILENTLY_DROPPED if running_sql and pattern.search(running_sql)]
    try:
        tsql = compile_for_azure(statement, **compile_kwargs)
    except exc.SQLAlchemyError as error:
        return [*problems, f"does not compile for mssql: {error}"]
    return list(dict.fromkeys(problems + _tsql_problems(tsql)))


def check_driver_sql(sql: str) -> list[str]:
    """Every reason a raw driver-level SQL string would fail on Azure SQL."""
    return list(dict.fromkeys(_tsql_problems(sql)))


def check_parameter_count(count: int) -> list[str]:
    """SQL Server's per-statement parameter limit (2 100; we keep to 2 000)."""
    if count > MAX_PARAMETERS:
        return [f"{count} parameters in one statement (an IN list or multi-row insert): keep to {MAX_PARAMETERS}"]
    return []


def _parameter_count(parameters: Any, executemany: bool) -> int:
    if executemany and isinstance(parameters, (list, tuple)) and parameters:
        return max(len(p) for p in parameters if hasattr(p, "__len__"))
    return len(parameters) if hasattr(parameters, "__len__") else 0


def _frames() -> list[traceback.FrameSummary]:
    """The stack of this statement, innermost last, across the greenlet SQLAlchemy's asyncio runs it in."""
    frames = traceback.extract_stack(sys._getframe(2))
    try:
        import greenlet

        parent = greenlet.getcurrent().parent
        while parent is not None and parent.gr_frame is not None:
            frames = traceback.extract_stack(parent.gr_frame) + frames
            parent = parent.parent
    except ImportError:  # pragma: no cover - SQLAlchemy's asyncio needs greenlet
        pass
    return frames


def _relative(filename: str) -> str | None:
    path = Path(filename)
    try:
        relative = path.resolve().relative_to(ROOT)
    except ValueError:
        return None
    if relative.parts and relative.parts[0] in {".venv", "venv"}:
        return None
    return relative.as_posix()


def _exemption(frames: list[traceback.FrameSummary]) -> Exemption | None:
    for frame in frames:
        name = frame.filename.replace("\\", "/")
        relative = _relative(frame.filename) or ""
        for exemption in EXEMPTIONS:
            in_file = relative == exemption.path or (not relative and exemption.path in name)
            if in_file and (not exemption.functions or frame.name in exemption.functions):
                return exemption
    return None


def call_site(frames: list[traceback.FrameSummary]) -> str:
    """The project's frames that led to a statement, innermost first."""
    ours = [
        f"{rel}:{frame.lineno} in {frame.name}"
        for frame in frames
        if (rel := _relative(frame.filename)) is not None and rel != "tests/tsql_gate.py"
    ]
    return " <- ".join(reversed(ours[-4:])) or "(outside the project)"


def _record(message: str) -> None:
    with STATE.lock:
        (STATE.current if STATE.current is not None else STATE.outside_tests).append(message)


def _shape_problems(statement: str, context: Any) -> tuple[tuple[str, str], list[str]]:
    compiled = getattr(context, "compiled", None)
    dialect = context.dialect.name if context is not None else "?"
    if compiled is not None and compiled.statement is not None:
        key = (dialect, compiled.string)
        if key not in STATE.shapes:
            construct = compiled.statement
            if isinstance(construct, ExecutableDDLElement):
                # Schema changes are the migrations' business; the mssql schema is the offline script.
                STATE.shapes[key] = []
            elif isinstance(construct, (SavepointClause, RollbackToSavepointClause, ReleaseSavepointClause)):
                # Not compiled on mssql: the dialect's do_savepoint & co. send SAVE TRANSACTION /
                # ROLLBACK TRANSACTION themselves (which sqlglot cannot parse), like BEGIN and COMMIT.
                STATE.shapes[key] = []
            else:
                STATE.shapes[key] = check_statement(
                    construct,
                    compiled.string,
                    column_keys=compiled.column_keys,
                    for_executemany=compiled.for_executemany,
                )
        return key, STATE.shapes[key]
    key = (dialect, statement)
    if key not in STATE.shapes:
        construct = context.execution_options.get("compiled_from") if context is not None else None
        if construct is not None:
            # Driver-level SQL the app compiled itself from a construct: check the construct's T-SQL.
            STATE.shapes[key] = check_statement(construct, statement, for_executemany=bool(context.executemany))
        else:
            STATE.shapes[key] = check_driver_sql(statement)
    return key, STATE.shapes[key]


@event.listens_for(Engine, "before_cursor_execute")
def _gate(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    """Check the statement about to run; record a violation for the running test."""
    _key, problems = _shape_problems(statement, context)
    insertmany = context is not None and getattr(context, "execute_style", None) is ExecuteStyle.INSERTMANYVALUES
    if not insertmany:
        # SQLAlchemy batches insertmanyvalues under the dialect's own limit on mssql; everything
        # else reaches the server as it reaches the database running the test.
        problems = problems + check_parameter_count(_parameter_count(parameters, executemany))
    if not problems:
        return
    frames = _frames()
    if _exemption(frames) is not None:
        return
    shown = " ".join(statement.split())
    _record(
        f"{'; '.join(problems)}\n    statement: {shown[:400]}\n    from: {call_site(frames)}"
    )


@pytest.fixture(autouse=True)
def tsql_gate() -> Any:
    """Fail the test when any statement it ran would fail on Azure SQL."""
    with STATE.lock:
        STATE.current = []
    try:
        yield STATE
    finally:
        with STATE.lock:
            found, STATE.current = STATE.current or [], None
    if found:
        pytest.fail("T-SQL gate: statements Azure SQL would reject:\n" + "\n".join(found), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Statements outside any test (session fixtures) fail the run too."""
    if STATE.outside_tests and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say how many statement shapes the gate checked, and any violation outside tests."""
    failing = sum(1 for problems in STATE.shapes.values() if problems)
    terminalreporter.write_sep("-", "T-SQL gate")
    terminalreporter.write_line(
        f"T-SQL gate: {len(STATE.shapes)} distinct statement shapes checked against Azure SQL; "
        f"{failing} shapes with problems (exempted call sites included), "
        f"{len(STATE.outside_tests)} violations outside tests"
    )
    for message in STATE.outside_tests:
        terminalreporter.write_line(message)

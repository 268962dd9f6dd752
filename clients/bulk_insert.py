"""Bulk writes for the bill run: one compiled multi-row INSERT fed driver-ready tuples, the check that a batch's
conditional UPDATEs all took, and a calmer GC meanwhile."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

# Ids per IN list when a batch reads back what it wrote (well under SQL Server's 2 100 parameters).
CHECK_CHUNK = 1_000
_GC_RELAXED_THRESHOLD = 100_000
_relaxed_runs = 0
_saved_threshold: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Let the cyclic collector run less often while a run churns through millions of short-lived rows.

    With the default threshold each batch's rows get promoted and the whole heap rescanned again and
    again: about a quarter of a run's CPU time. Reference counting still frees the rows at once.
    Nested or concurrent runs share one setting; the last one out restores it.
    """
    global _relaxed_runs, _saved_threshold
    if _relaxed_runs == 0:
        _saved_threshold = gc.get_threshold()
        gc.set_threshold(max(_saved_threshold[0], _GC_RELAXED_THRESHOLD), *_saved_threshold[1:])
    _relaxed_runs += 1
    try:
        yield
    finally:
        _relaxed_runs -= 1
        if _relaxed_runs == 0 and _saved_threshold is not None:
            gc.set_threshold(*_saved_threshold)


class FastInsert:
    """A multi-row INSERT compiled once for the dialect and fed driver-ready tuples with executemany.

    This skips SQLAlchemy's per-row parameter handling, which costs more than the insert itself at
    a million rows. Callers convert values with `converter(column)` (the column type's own bind
    processor), so what reaches the driver is exactly what the ORM would have sent.
    """

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.dialect = dialect
        self.table = table
        self.statement = insert(table).values({name: bindparam(name) for name in self.columns})
        # for_executemany: no RETURNING / OUTPUT inserted.id, whose rows nobody reads here.
        compiled = self.statement.compile(dialect=dialect, for_executemany=True)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        if self.positional:
            order = tuple(compiled.positiontup or ())
            if order != self.columns:
                raise ValueError(f"list the columns of {table.name} in table order: {order}")

    def converter(self, column: str) -> Callable[[Any], Any]:
        """The function that turns a Python value into what the driver expects for `column`."""
        process = self.table.c[column].type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return process if process is not None else _same

    async def run(self, conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
        """Insert `rows` (tuples in `columns` order) with one executemany."""
        if not rows:
            return
        if not self.positional:
            rows = [dict(zip(self.columns, row)) for row in rows]  # type: ignore[misc]
        # `compiled_from` names the construct, so checks such as the T-SQL gate can compile it for mssql.
        await conn.exec_driver_sql(self.sql, rows, execution_options={"compiled_from": self.statement})  # type: ignore[arg-type]


def _same(value: Any) -> Any:
    """No conversion: the driver takes the value as it is."""
    return value


# Columns in table order; the nullable ones left out (paid_at, void_reason, ...) start as NULL.
INVOICE_COLUMNS = (
    "tenant_id", "number", "contract_id", "customer_id", "billing_run_id", "tariff_id", "reading_id", "period",
    "issued_on", "due_on", "status", "disputed", "currency", "consumption", "arrears", "subtotal", "tax", "total",
    "amount_due", "created_at", "payment_reference",
)
LINE_COLUMNS = ("invoice_id", "position", "kind", "description", "quantity", "unit_price", "amount")
# The outbox row of controllers/outbox_controller.enqueue, written here with the batch's fast executemany:
# enqueue_many's per-row ORM processing costs about as much as inserting the invoice and its lines.
OUTBOX_COLUMNS = (
    "tenant_id", "dedupe_key", "event", "channel", "user_id", "customer_id", "recipient", "locale", "payload",
    "status", "attempts", "next_attempt_at", "created_at",
)
READING_COLUMNS = (
    "tenant_id", "meter_id", "period", "value", "kind", "consumption", "flags", "created_at", "updated_at",
)


async def first_unexpected(
    conn: AsyncConnection, id_column: Any, value_column: Any, expected: Mapping[int, Any]
) -> tuple[int, Any] | None:
    """The first row (id, value now stored) whose `value_column` is not what the batch's conditional UPDATE set.

    An executemany's rowcount is not reliable on every driver, so a batch that updated rows "where still
    as read" reads them back: None when every one took, else a row another writer changed meanwhile.
    """
    keys = sorted(expected)
    for start in range(0, len(keys), CHECK_CHUNK):
        found = await conn.execute(select(id_column, value_column).where(id_column.in_(keys[start:start + CHECK_CHUNK])))
        for row_id, value in found:
            if value != expected[row_id]:
                return row_id, value
    return None

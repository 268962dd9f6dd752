"""Whitelisted `order=` parameters for lists, turned into keyset sort keys that always end with the id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from controllers.errors import BadInput
from controllers.pagination import Page, SortKey, decode_cursor, paginate

_PYTHON_TYPES: tuple[type, ...] = (int, str, Decimal, datetime, date)


def sort_keys(
    order: str, columns: Mapping[str, InstrumentedAttribute[Any]], id_column: InstrumentedAttribute[Any]
) -> list[SortKey]:
    """`name` or `-name` (descending) from `columns`, then the id in the same direction for a stable order."""
    descending = order.startswith("-")
    name = order.removeprefix("-")
    if name == "id":
        return [SortKey(id_column, descending)]
    column = columns.get(name)
    if column is None:
        # Routes validate `order` against the same names; this guards direct callers.
        raise BadInput(f"Cannot order by {name!r}.", code="invalid_order")
    return [SortKey(column, descending), SortKey(id_column, descending)]


def _check_cursor_types(keys: list[SortKey], cursor: str) -> None:
    """A cursor made for another order would compare a column with a value of the wrong type: a 400, not a 500."""
    values = decode_cursor(cursor, len(keys))
    for key, value in zip(keys, values):
        column_type = key.column.type
        expected = getattr(column_type, "impl_instance", column_type).python_type  # see through TypeDecorators
        if expected not in _PYTHON_TYPES:
            continue
        if value is None or not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise BadInput("The cursor is not valid for this list and order.", code="invalid_cursor")


async def paginate_ordered(
    session: AsyncSession, stmt: Select[Any], *, keys: list[SortKey], limit: int, cursor: str | None
) -> Page[Any]:
    """`paginate`, after checking that the cursor's values fit the sort keys."""
    if cursor:
        _check_cursor_types(keys, cursor)
    return await paginate(session, stmt, keys=keys, limit=limit, cursor=cursor)

"""Keyset pagination with opaque cursors, portable to SQLite, PostgreSQL and SQL Server."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from controllers.errors import BadInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY column of a keyset; the last key must be unique (usually the id)."""

    column: InstrumentedAttribute[Any]
    descending: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next page, if any."""

    items: list[T]
    next_cursor: str | None


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "dt" in value:
            return datetime.fromisoformat(value["dt"])
        if "d" in value:
            return date.fromisoformat(value["d"])
        if "n" in value:
            return Decimal(value["n"])
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    """Pack the sort values of the last row into an opaque URL-safe string."""
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> list[Any]:
    """Unpack a cursor; a tampered or foreign cursor is a 400, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != width:
            raise ValueError("wrong width")
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise BadInput("The cursor is not valid for this list.", code="invalid_cursor") from exc


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> Any:
    """WHERE clause selecting rows strictly after `values` in the keyset order."""
    clauses = []
    for i, key in enumerate(keys):
        equal_prefix = [keys[j].column == values[j] for j in range(i)]
        step = key.column < values[i] if key.descending else key.column > values[i]
        clauses.append(and_(*equal_prefix, step))
    return or_(*clauses)


def _ordered(stmt: Select[Any], keys: Sequence[SortKey]) -> Select[Any]:
    return stmt.order_by(*[k.column.desc() if k.descending else k.column.asc() for k in keys])


@dataclass(frozen=True)
class PageQuery:
    """A list's statement with bind parameters and its keyset, built once per process (module level).

    Its first page, the one nearly every visit asks for, is a statement built once per page size too
    (`first`), so SQLAlchemy computes its cache key once instead of on every request; later pages add
    the cursor's condition as `paginate` does for any statement. Items are rows.
    """

    stmt: Select[Any]
    keys: tuple[SortKey, ...]
    # One statement per page size asked (at most MAX_LIMIT of them): the limit stays a literal LIMIT
    # (TOP on SQL Server), as for any page, rather than a bound parameter SQL Server would wrap in ROW_NUMBER().
    _firsts: dict[int, Select[Any]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def first(self, limit: int) -> Select[Any]:
        """The first page's statement for pages of `limit` (one row more is read, to know if more follow)."""
        found = self._firsts.get(limit)
        if found is None:
            found = self._firsts[limit] = _ordered(self.stmt, self.keys).limit(limit + 1)
        return found


async def paginate(
    session: AsyncSession,
    stmt: Select[Any] | PageQuery,
    *,
    keys: Sequence[SortKey] = (),
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    rows: bool = False,
    params: dict[str, Any] | None = None,
) -> Page[Any]:
    """Run `stmt` one page at a time in an explicit, stable order.

    `stmt` selects one entity (items are entities), or with `rows` several columns (items are rows,
    whose sort keys are read by column name). A `PageQuery` brings its keys, its items are rows, and
    `params` binds its parameters.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    bound = params or {}
    if isinstance(stmt, PageQuery):
        keys, rows = stmt.keys, True
        if not cursor:
            # Column rows through the session's connection: no ORM result processing for a read-only page.
            found = await (await session.connection()).execute(stmt.first(limit), bound)
            return _page(list(found.all()), keys, limit)
        stmt = stmt.stmt
    elif not keys:
        raise ValueError("a page needs its sort keys (the last one unique)")
    if cursor:
        stmt = stmt.where(_after(keys, decode_cursor(cursor, len(keys))))
    ordered = _ordered(stmt, keys).limit(limit + 1)
    items = list((await session.execute(ordered, bound)).all() if rows else (await session.scalars(ordered, bound)).all())
    return _page(items, keys, limit)


def _page(items: list[Any], keys: Sequence[SortKey], limit: int) -> Page[Any]:
    """The page of `items` (read one past `limit`) and the cursor after its last item, if more follow."""
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor([getattr(last, k.column.key) for k in keys])
    return Page(items=items, next_cursor=next_cursor)

"""Keyset pagination with opaque cursors, portable to SQLite, PostgreSQL and SQL Server."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
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


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    keys: Sequence[SortKey],
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    rows: bool = False,
) -> Page[Any]:
    """Run `stmt` one page at a time in an explicit, stable order.

    `stmt` selects one entity (items are entities), or with `rows` several columns (items are rows,
    whose sort keys are read by column name).
    """
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        stmt = stmt.where(_after(keys, decode_cursor(cursor, len(keys))))
    order = [k.column.desc() if k.descending else k.column.asc() for k in keys]
    ordered = stmt.order_by(*order).limit(limit + 1)
    items = list((await session.execute(ordered)).all() if rows else (await session.scalars(ordered)).all())
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor([getattr(last, k.column.key) for k in keys])
    return Page(items=items, next_cursor=next_cursor)

"""Reading files: a reading route's CSV taken in set-based, each row under the single reading route's rules.

One pass (README "Reading files"; the format is domain/reading_file.py's):
1. The file's SHA-256: a file the tenant already sent answers with its first result and changes nothing.
2. Parse, then load in chunks of IN_CHUNK the file's meters by serial and, for those meters, every reading
   from the file's earliest period on plus, before it, the latest reading and the last HISTORY_PERIODS
   actual ones: exactly what the single route reads for the previous register and the VEE history.
3. Check each row with the functions of domain/readings.py the single route calls, meter by meter in
   period order (then line order), as if the rows were posted one by one in that order: a row the single
   route would refuse is rejected with the same code. That includes `reading_exists` for a second row of
   a meter and period, and `register_decreased` when the meter's next reading would end up below it; a
   next reading that stays valid gets its consumption and flags recomputed, as the single route does.
4. One transaction: the file, its rejected and observed rows, the accepted readings (one executemany)
   and the recomputed next readings. Readings recorded meanwhile by someone else make it a `readings_changed`
   conflict: nothing is stored, and sending the file again checks it afresh.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from clients.bulk_insert import FastInsert, fewer_collections
from controllers.account_common import tenant_today, to_scale
from controllers.errors import Conflict, DomainValidationError, NotFound
from controllers.meter_controller import normalize_serial
from domain.reading_file import (
    FileRow,
    ReadingFileInvalid,
    check_row_fields,
    parse_read_on,
    parse_reading_file,
    parse_value,
)
from domain.readings import (
    EXISTS_MESSAGE,
    HISTORY_PERIODS,
    ReadingRejected,
    RegisterDecreased,
    check_new_reading,
    check_period,
    decrease_message,
    evaluate_reading,
    next_lower_message,
)
from models.account_model import Meter, Reading
from models.base_model import utcnow
from models.reading_file_model import ISSUE_COLUMNS, ReadingFile, ReadingFileIssue
from models.tenant_model import Tenant

IN_CHUNK = 1_000
# The readings table's columns a file fills, in table order (clients/bulk_insert.FastInsert).
FILE_READING_COLUMNS = (
    "tenant_id", "meter_id", "period", "value", "read_on", "kind", "consumption", "flags", "created_at", "updated_at",
)
UNKNOWN_METER = "No meter of the tenant has that serial."
OBSERVED = "Not read ({}): no reading is stored, and the bill run estimates the period."


@dataclass(frozen=True, slots=True)
class FileIssue:
    """A row that stored nothing: `rejected` with the reason's code, or `observed` with the observation."""

    line: int
    serial: str
    period: str
    outcome: str
    code: str
    message: str


@dataclass(frozen=True)
class ReadingFileResult:
    """A reading file's counts and its rows that stored nothing, by line; `created` is False for a resend."""

    file: ReadingFile
    issues: list[FileIssue]
    created: bool


@dataclass(slots=True)
class _Meter:
    id: int
    register_digits: int
    multiplier: Decimal
    initial_value: Decimal
    installed_on: date
    status: str


@dataclass(slots=True)
class _Known:
    """A reading of a meter, stored or accepted from the file (id None), as the checks see it."""

    period: str
    value: Decimal
    kind: str
    consumption: Decimal
    id: int | None = None


@dataclass(slots=True)
class _Candidate:
    row: FileRow
    period: str  # as Period writes it
    value: Decimal
    read_on: date | None


@dataclass(slots=True)
class _Checked:
    issues: list[FileIssue]
    accepted: list[tuple[int, _Candidate, Decimal, str]]
    recomputed: dict[int, tuple[Decimal, str]]


def _issue(row: FileRow, outcome: str, code: str, message: str) -> FileIssue:
    # Cut to the columns' lengths: what the file said is kept as far as it fits.
    return FileIssue(row.line, row.serial[:40], row.period[:16], outcome, code, message[:300])


def _rejected(row: FileRow, code: str, message: str) -> FileIssue:
    return _issue(row, "rejected", code, message)


async def import_reading_file(
    *, session: AsyncSession, tenant: Tenant, content: bytes, user_id: int | None = None, today: date | None = None
) -> ReadingFileResult:
    """Take in a reading route's CSV: store the valid rows, report the others; a resent file changes nothing."""
    digest = hashlib.sha256(content).hexdigest()
    earlier = await _file_by_hash(session, tenant.id, digest)
    if earlier is not None:
        return await _result(session, earlier, created=False)
    try:
        parsed = parse_reading_file(content)
    except ReadingFileInvalid as exc:
        raise DomainValidationError(str(exc), code="invalid_reading_file") from exc
    today = today or tenant_today(tenant)
    with fewer_collections():
        conn = await session.connection()
        checked = await _check_rows(conn, tenant.id, parsed.rows, parsed.decimal_comma, today)
        observed = sum(1 for issue in checked.issues if issue.outcome == "observed")
        record = ReadingFile(
            tenant_id=tenant.id,
            sha256=digest,
            row_count=len(parsed.rows),
            accepted=len(checked.accepted),
            rejected=len(checked.issues) - observed,
            observed=observed,
            created_by=user_id,
        )
        try:
            session.add(record)
            await session.flush()
            await _store(conn, tenant.id, record.id, checked)
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            # The same file sent twice at once: the first one's result is the answer.
            winner = await _file_by_hash(session, tenant.id, digest)
            if winner is not None:
                return await _result(session, winner, created=False)
            raise Conflict(
                "Readings of the file's meters were recorded while it was checked; send the file again.",
                code="readings_changed",
            ) from exc
    issues = sorted(checked.issues, key=lambda issue: issue.line)
    return ReadingFileResult(file=record, issues=issues, created=True)


async def get_reading_file(*, session: AsyncSession, tenant: Tenant, file_id: int) -> ReadingFileResult:
    """A reading file of the tenant with its issues; 404 otherwise."""
    record = await session.scalar(
        select(ReadingFile).where(ReadingFile.id == file_id, ReadingFile.tenant_id == tenant.id)
    )
    if record is None:
        raise NotFound("No such reading file.")
    return await _result(session, record, created=False)


async def _file_by_hash(session: AsyncSession, tenant_id: int, digest: str) -> ReadingFile | None:
    return await session.scalar(
        select(ReadingFile).where(ReadingFile.tenant_id == tenant_id, ReadingFile.sha256 == digest)
    )


async def _result(session: AsyncSession, record: ReadingFile, *, created: bool) -> ReadingFileResult:
    rows = await session.execute(
        select(
            ReadingFileIssue.line, ReadingFileIssue.serial, ReadingFileIssue.period, ReadingFileIssue.outcome,
            ReadingFileIssue.code, ReadingFileIssue.message,
        )
        .where(ReadingFileIssue.reading_file_id == record.id)
        .order_by(ReadingFileIssue.line, ReadingFileIssue.id)
    )
    return ReadingFileResult(file=record, issues=[FileIssue(*row) for row in rows], created=created)


async def _check_rows(
    conn: AsyncConnection, tenant_id: int, rows: list[FileRow], decimal_comma: bool, today: date
) -> _Checked:
    """Every row checked: the rules that need only the row and its meter first, then those against readings."""
    meters = await _meters_by_serial(conn, tenant_id, {normalize_serial(row.serial) for row in rows if row.serial})
    issues: list[FileIssue] = []
    candidates: dict[int, list[_Candidate]] = {}
    for row in rows:
        try:
            check_row_fields(row)
            meter = meters.get(normalize_serial(row.serial))
            if meter is None:
                raise ReadingRejected("unknown_meter", "serial", UNKNOWN_METER)
            if row.observation:
                check_period(row.period, today=today, installed_on=meter.installed_on)
                issues.append(_issue(row, "observed", row.observation, OBSERVED.format(row.observation)))
                continue
            value = to_scale(parse_value(row.value, decimal_comma=decimal_comma), 3)
            read_on = parse_read_on(row.read_on)
            period = check_new_reading(
                period=row.period, value=value, read_on=read_on, today=today, installed_on=meter.installed_on,
                register_digits=meter.register_digits, status=meter.status,
            )
        except ReadingRejected as exc:
            issues.append(_rejected(row, exc.code, exc.message))
            continue
        candidates.setdefault(meter.id, []).append(_Candidate(row, str(period), value, read_on))

    checked = _Checked(issues=issues, accepted=[], recomputed={})
    if candidates:
        since = min(c.period for group in candidates.values() for c in group)
        by_id = {meter.id: meter for meter in meters.values()}
        meter_ids = sorted(candidates)
        # Chunk by chunk, so only one chunk's readings are held at a time.
        for start in range(0, len(meter_ids), IN_CHUNK):
            chunk = meter_ids[start:start + IN_CHUNK]
            known = await _known_readings(conn, chunk, since)
            for meter_id in chunk:
                _check_against_readings(by_id[meter_id], candidates[meter_id], known.get(meter_id, []), checked)
    return checked


def _actual_before(known: list[_Known], index: int) -> list[Decimal]:
    """The consumptions of the last up to HISTORY_PERIODS actual readings before position `index`, newest first."""
    history: list[Decimal] = []
    for position in range(index - 1, -1, -1):
        if known[position].kind == "actual":
            history.append(known[position].consumption)
            if len(history) == HISTORY_PERIODS:
                break
    return history


def _check_against_readings(meter: _Meter, group: list[_Candidate], known: list[_Known], checked: _Checked) -> None:
    """A meter's rows in period order against its readings, each accepted one joining them for the next row."""
    periods = [k.period for k in known]
    group.sort(key=lambda c: (c.period, c.row.line))
    for candidate in group:
        row, period, value = candidate.row, candidate.period, candidate.value
        index = bisect_left(periods, period)
        if index < len(periods) and periods[index] == period:
            checked.issues.append(_rejected(row, "reading_exists", EXISTS_MESSAGE))
            continue
        previous = known[index - 1].value if index else meter.initial_value
        history = _actual_before(known, index)
        try:
            consumption, flags = evaluate_reading(
                previous=previous, value=value, register_digits=meter.register_digits,
                multiplier=meter.multiplier, history=history,
            )
        except RegisterDecreased:
            checked.issues.append(_rejected(row, "register_decreased", decrease_message(previous, value) + "."))
            continue
        if index < len(known) and known[index].id is not None:
            following = known[index]
            try:
                following_result = evaluate_reading(
                    previous=value, value=following.value, register_digits=meter.register_digits,
                    multiplier=meter.multiplier, history=[consumption, *history],
                    # A corrected next reading was already accepted below its predecessor by an operator.
                    allow_decrease=following.kind == "corrected",
                )
            except RegisterDecreased:
                message = next_lower_message(following.period, following.value)
                checked.issues.append(_rejected(row, "register_decreased", message))
                continue
            following.consumption = following_result[0]
            checked.recomputed[following.id] = following_result  # type: ignore[index]
        known.insert(index, _Known(period, value, "actual", consumption))
        periods.insert(index, period)
        checked.accepted.append((meter.id, candidate, consumption, flags))


async def _meters_by_serial(conn: AsyncConnection, tenant_id: int, serials: Iterable[str]) -> dict[str, _Meter]:
    wanted = sorted(s for s in serials if len(s) <= 40)
    meters: dict[str, _Meter] = {}
    # One statement for every chunk, the list bound as one expanding parameter: no per-value coercion.
    stmt = select(
        Meter.serial, Meter.id, Meter.register_digits, Meter.multiplier, Meter.initial_value,
        Meter.installed_on, Meter.status,
    ).where(Meter.tenant_id == tenant_id, Meter.serial.in_(bindparam("serials", expanding=True)))
    for start in range(0, len(wanted), IN_CHUNK):
        result = await conn.execute(stmt, {"serials": wanted[start:start + IN_CHUNK]})
        for serial, *fields in result:
            meters[serial] = _Meter(*fields)
    return meters


async def _known_readings(conn: AsyncConnection, meter_ids: list[int], since: str) -> dict[int, list[_Known]]:
    """Per meter (at most IN_CHUNK), in period order: its readings from `since` on, and before it the latest and last actual ones."""
    columns = (Reading.meter_id, Reading.period, Reading.value, Reading.kind, Reading.consumption, Reading.id)
    in_chunk = Reading.meter_id.in_(bindparam("meter_ids", expanding=True))
    recent_stmt = select(*columns).where(in_chunk, Reading.period >= since)
    ranked = (
        select(
            *columns,
            func.row_number().over(partition_by=Reading.meter_id, order_by=Reading.period.desc()).label("newest"),
            func.row_number()
            .over(partition_by=(Reading.meter_id, Reading.kind), order_by=Reading.period.desc())
            .label("newest_of_kind"),
        )
        .where(in_chunk, Reading.period < since)
        .subquery()
    )
    earlier_stmt = select(
        ranked.c.meter_id, ranked.c.period, ranked.c.value, ranked.c.kind, ranked.c.consumption, ranked.c.id
    ).where(or_(ranked.c.newest == 1, and_(ranked.c.kind == "actual", ranked.c.newest_of_kind <= HISTORY_PERIODS)))
    known: dict[int, list[_Known]] = {}
    chunk = {"meter_ids": meter_ids}
    recent = await conn.execute(recent_stmt, chunk)
    earlier = await conn.execute(earlier_stmt, chunk)
    for meter_id, period, value, kind, consumption, reading_id in [*recent, *earlier]:
        known.setdefault(meter_id, []).append(_Known(period, value, kind, consumption, reading_id))
    for readings in known.values():
        readings.sort(key=lambda k: k.period)
    return known


async def _store(conn: AsyncConnection, tenant_id: int, file_id: int, checked: _Checked) -> None:
    """Write the accepted readings, the recomputed next readings and the file's issues."""
    dialect = conn.dialect
    readings = FastInsert(dialect, Reading.__table__, FILE_READING_COLUMNS)  # type: ignore[arg-type]
    number = readings.converter("value")
    day = readings.converter("read_on")
    now = utcnow()
    stamp = readings.converter("created_at")(now)
    await readings.run(conn, [
        (tenant_id, meter_id, c.period, number(c.value), day(c.read_on), "actual", number(consumption), flags,
         stamp, stamp)
        for meter_id, c, consumption, flags in checked.accepted
    ])
    if checked.recomputed:
        table = Reading.__table__
        await conn.execute(
            update(table)
            .where(table.c.id == bindparam("reading_id"))
            .values(consumption=bindparam("new_consumption"), flags=bindparam("new_flags"), updated_at=now),
            [
                {"reading_id": reading_id, "new_consumption": consumption, "new_flags": flags}
                for reading_id, (consumption, flags) in checked.recomputed.items()
            ],
        )
    issues = FastInsert(dialect, ReadingFileIssue.__table__, ISSUE_COLUMNS)  # type: ignore[arg-type]
    await issues.run(conn, [
        (file_id, i.line, i.serial, i.period, i.outcome, i.code, i.message) for i in checked.issues
    ])


"""Asobancaria 2001 collection files: a pure parser that checks every record and control total, and a generator.

Colombian banks report a day's collections for a biller in this fixed-width format: 162 characters
a record, amounts as whole digits with two implied decimals, dates as YYYYMMDD.

    01 file header   NIT of the biller (10), collection date (8), bank code (3), account (17),
                     file date (8), file time HHMM (4), modifier A-Z/0-9 (1), account type (2), filler
    05 lot header    biller's service code, its EAN-13/GLN (13), lot number (4), filler
    06 detail        payment reference (48, right-aligned, zero-padded), amount (14 = 12 + 2 decimals),
                     origin (2), channel (2), operation id (6), authorisation (6), third entity (3),
                     branch (4), sequence (7), refund reason (3), filler
    08 lot control   detail count (9), lot total (18 = 16 + 2 decimals), lot number (4), filler
    09 file control  detail count (9), file total (18 = 16 + 2 decimals), filler

A file is 01, then one or more lots (05, its 06 details, 08), then 09. The file carries one
collection date (the header's) and no time of day. Fillers are not checked: banks fill them with
spaces or zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

RECORD_LENGTH = 162
REFERENCE_WIDTH = 48
DETAIL_AMOUNT_WIDTH = 14
TOTAL_AMOUNT_WIDTH = 18
COUNT_WIDTH = 9
# Errors that make the totals disagree with the details, as opposed to a malformed record.
CONTROL_ERRORS = frozenset({"lot_count_mismatch", "lot_total_mismatch", "file_count_mismatch", "file_total_mismatch"})


@dataclass(frozen=True)
class LineError:
    """One thing wrong with the file, at a 1-based line number."""

    line: int
    code: str
    message: str


class AsobancariaError(ValueError):
    """The file is not a valid Asobancaria 2001 file; `errors` lists every problem found, by line."""

    def __init__(self, errors: Sequence[LineError]) -> None:
        super().__init__("; ".join(f"line {e.line}: {e.message}" for e in errors[:5]))
        self.errors = tuple(errors)


@dataclass(frozen=True)
class Detail:
    """A 06 record: one payment of `amount` against `reference` (leading zeros removed)."""

    line: int
    lot: int
    reference: str
    amount: Decimal
    origin: str
    channel: str
    sequence: int


@dataclass(frozen=True)
class Lot:
    """A 05 … 08 group: the biller's service code and its lot number."""

    line: int
    number: int
    service_code: str
    count: int
    total: Decimal


@dataclass(frozen=True)
class AsobancariaFile:
    """A parsed, internally consistent file: its header fields, lots and details."""

    biller_nit: str
    collection_date: date
    bank_code: str
    account_number: str
    file_date: date
    file_time: str
    modifier: str
    account_type: str
    lots: tuple[Lot, ...]
    details: tuple[Detail, ...]
    count: int
    total: Decimal


def _amount(digits: str) -> Decimal:
    return Decimal(f"{digits[:-2]}.{digits[-2:]}")


def _digits(value: Decimal, width: int) -> str:
    """An amount as `width` digits with two implied decimals; ValueError when it does not fit."""
    cents = value * 100
    if cents != cents.to_integral_value() or cents < 0:
        raise ValueError(f"amount {value} is not a non-negative amount in cents")
    text = str(int(cents)).zfill(width)
    if len(text) > width:
        raise ValueError(f"amount {value} does not fit in {width} digits")
    return text


@dataclass
class _Reader:
    """Parsing state: errors so far, and the lot being read."""

    errors: list[LineError] = field(default_factory=list)
    lots: list[Lot] = field(default_factory=list)
    details: list[Detail] = field(default_factory=list)
    lot_line: int | None = None
    lot_number: int = 0
    service_code: str = ""
    lot_count: int = 0
    lot_total: Decimal = Decimal(0)

    def error(self, line: int, code: str, message: str) -> None:
        self.errors.append(LineError(line, code, message))

    def number(self, line: int, record: str, start: int, end: int, name: str) -> str | None:
        value = record[start:end]
        if not value.isascii() or not value.isdigit():
            self.error(line, "invalid_field", f"{name} (positions {start + 1}-{end}) must be digits")
            return None
        return value

    def day(self, line: int, record: str, start: int, name: str) -> date | None:
        value = self.number(line, record, start, start + 8, name)
        if value is None:
            return None
        try:
            return datetime.strptime(value, "%Y%m%d").date()
        except ValueError:
            self.error(line, "invalid_field", f"{name} (positions {start + 1}-{start + 8}) is not a date YYYYMMDD")
            return None


def parse(text: str) -> AsobancariaFile:
    """Parse and check a whole file; AsobancariaError lists every malformed record and wrong control total."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    reader = _Reader()
    if not lines:
        raise AsobancariaError([LineError(1, "empty_file", "the file has no records")])
    header: dict[str, object] = {}
    control_seen = False
    for number, record in enumerate(lines, start=1):
        if len(record) != RECORD_LENGTH:
            reader.error(number, "record_length", f"a record is {RECORD_LENGTH} characters, this one {len(record)}")
            continue
        kind = record[:2]
        if control_seen:
            reader.error(number, "record_order", "nothing may follow the 09 file control")
        elif number == 1 and kind != "01":
            reader.error(number, "record_order", "the file must start with a 01 file header")
        if kind == "01":
            if number != 1:
                reader.error(number, "record_order", "a 01 file header may only be the first record")
            header = _header(reader, number, record)
        elif kind == "05":
            _lot_header(reader, number, record)
        elif kind == "06":
            _detail(reader, number, record)
        elif kind == "08":
            _lot_control(reader, number, record)
        elif kind == "09":
            control_seen = True
            _file_control(reader, number, record)
        else:
            reader.error(number, "record_type", f"unknown record type {kind!r} (expected 01, 05, 06, 08 or 09)")
    if reader.lot_line is not None:
        reader.error(reader.lot_line, "record_order", "this lot has no 08 lot control")
    if not control_seen:
        reader.error(len(lines), "record_order", "the file has no 09 file control")
    if not reader.lots and not reader.errors:
        reader.error(1, "record_order", "the file has no lot")
    if reader.errors:
        raise AsobancariaError(sorted(reader.errors, key=lambda e: e.line))
    return AsobancariaFile(
        lots=tuple(reader.lots),
        details=tuple(reader.details),
        count=len(reader.details),
        total=sum((d.amount for d in reader.details), Decimal(0)),
        **header,  # type: ignore[arg-type]
    )


def _header(reader: _Reader, line: int, record: str) -> dict[str, object]:
    nit = reader.number(line, record, 2, 12, "biller NIT")
    collection_date = reader.day(line, record, 12, "collection date")
    bank = reader.number(line, record, 20, 23, "bank code")
    account = record[23:40].strip()
    file_date = reader.day(line, record, 40, "file date")
    file_time = reader.number(line, record, 48, 52, "file time")
    modifier = record[52]
    if not (modifier.isascii() and modifier.isalnum()):
        reader.error(line, "invalid_field", "the file modifier (position 53) must be a letter or digit")
    return {
        "biller_nit": nit or "",
        "collection_date": collection_date or date.min,
        "bank_code": bank or "",
        "account_number": account,
        "file_date": file_date or date.min,
        "file_time": file_time or "",
        "modifier": modifier,
        "account_type": record[53:55],
    }


def _lot_header(reader: _Reader, line: int, record: str) -> None:
    if reader.lot_line is not None:
        reader.error(reader.lot_line, "record_order", "this lot has no 08 lot control before the next 05")
    service_code = reader.number(line, record, 2, 15, "service code")
    lot = reader.number(line, record, 15, 19, "lot number")
    reader.lot_line, reader.service_code = line, service_code or ""
    reader.lot_number = int(lot) if lot else 0
    reader.lot_count, reader.lot_total = 0, Decimal(0)


def _detail(reader: _Reader, line: int, record: str) -> None:
    if reader.lot_line is None:
        reader.error(line, "record_order", "a 06 detail must be inside a lot (after a 05)")
    reference = reader.number(line, record, 2, 2 + REFERENCE_WIDTH, "reference")
    amount = reader.number(line, record, 50, 50 + DETAIL_AMOUNT_WIDTH, "amount")
    sequence = record[87:94].strip()
    if reference is None or amount is None:
        return
    if not reference.lstrip("0"):
        reader.error(line, "invalid_field", "the reference is all zeros")
        return
    value = _amount(amount)
    reader.lot_count += 1
    reader.lot_total += value
    reader.details.append(
        Detail(
            line=line,
            lot=reader.lot_number,
            reference=reference.lstrip("0"),
            amount=value,
            origin=record[64:66],
            channel=record[66:68],
            sequence=int(sequence) if sequence.isascii() and sequence.isdigit() else 0,
        )
    )


def _lot_control(reader: _Reader, line: int, record: str) -> None:
    if reader.lot_line is None:
        reader.error(line, "record_order", "an 08 lot control without its 05 lot header")
        return
    count = reader.number(line, record, 2, 2 + COUNT_WIDTH, "lot detail count")
    total = reader.number(line, record, 11, 11 + TOTAL_AMOUNT_WIDTH, "lot total")
    lot = reader.number(line, record, 29, 33, "lot number")
    if count is not None and int(count) != reader.lot_count:
        reader.error(line, "lot_count_mismatch", f"the lot control says {int(count)} details, the lot has {reader.lot_count}")
    if total is not None and _amount(total) != reader.lot_total:
        reader.error(line, "lot_total_mismatch", f"the lot control says {_amount(total)}, the details add up to {reader.lot_total}")
    if lot is not None and int(lot) != reader.lot_number:
        reader.error(line, "lot_number_mismatch", f"the lot control is for lot {int(lot)}, the lot header for {reader.lot_number}")
    reader.lots.append(Lot(reader.lot_line, reader.lot_number, reader.service_code, reader.lot_count, reader.lot_total))
    reader.lot_line = None


def _file_control(reader: _Reader, line: int, record: str) -> None:
    if reader.lot_line is not None:
        reader.error(reader.lot_line, "record_order", "this lot has no 08 lot control before the 09")
        reader.lot_line = None
    count = reader.number(line, record, 2, 2 + COUNT_WIDTH, "file detail count")
    total = reader.number(line, record, 11, 11 + TOTAL_AMOUNT_WIDTH, "file total")
    details = len(reader.details)
    file_total = sum((d.amount for d in reader.details), Decimal(0))
    if count is not None and int(count) != details:
        reader.error(line, "file_count_mismatch", f"the file control says {int(count)} details, the file has {details}")
    if total is not None and _amount(total) != file_total:
        reader.error(line, "file_total_mismatch", f"the file control says {_amount(total)}, the details add up to {file_total}")


def generate(
    payments: Sequence[tuple[str, Decimal, date]],
    *,
    service_code: str,
    biller_nit: str = "8909002860",
    bank_code: str = "007",
    account_number: str = "00840514521",
    created_at: datetime | None = None,
    modifier: str = "A",
    lot_size: int = 5000,
) -> str:
    """A valid file reporting `payments` (reference, amount, collection date), in lots of `lot_size`.

    The format has one collection date per file, so every payment must carry the same date.
    `service_code` is the biller's EAN-13 (a tenant's GLN). Records end with CRLF, as banks send them.
    """
    days = {day for _, _, day in payments}
    if len(days) > 1:
        raise ValueError("an Asobancaria 2001 file has one collection date; split the payments by date")
    day = days.pop() if days else (created_at or datetime.now()).date()
    created_at = created_at or datetime.combine(day, datetime.min.time())
    records = [
        "01"
        + biller_nit.zfill(10)
        + day.strftime("%Y%m%d")
        + bank_code.zfill(3)
        + account_number.zfill(17)
        + created_at.strftime("%Y%m%d%H%M")
        + modifier
        + "01"
    ]
    total = Decimal(0)
    for lot_number, start in enumerate(range(0, len(payments), lot_size), start=1):
        lot = payments[start : start + lot_size]
        lot_total = Decimal(0)
        records.append("05" + service_code.zfill(13) + str(lot_number).zfill(4))
        for sequence, (reference, amount, _) in enumerate(lot, start=1):
            records.append(
                "06"
                + reference.zfill(REFERENCE_WIDTH)
                + _digits(amount, DETAIL_AMOUNT_WIDTH)
                + "01"  # origin: the bank's own branches
                + "01"  # channel: cash at the counter
                + str(start + sequence).zfill(6)[-6:]
                + "000000"
                + "000"
                + "0001"
                + str(sequence).zfill(7)
                + "   "
            )
            lot_total += amount
        records.append("08" + str(len(lot)).zfill(COUNT_WIDTH) + _digits(lot_total, TOTAL_AMOUNT_WIDTH) + str(lot_number).zfill(4))
        total += lot_total
    records.append("09" + str(len(payments)).zfill(COUNT_WIDTH) + _digits(total, TOTAL_AMOUNT_WIDTH))
    return "".join(record.ljust(RECORD_LENGTH) + "\r\n" for record in records)

"""Reading files: a reading route's CSV, split into rows and their fields (pure; the rules live in domain/readings.py).

FORMAT (README "Reading files"):
- UTF-8, with or without a byte order mark; fields separated by commas or semicolons (whichever the
  header line uses more of); quoting as in RFC 4180.
- A header line names the columns, in any order and any letter case: `serial`, `period`, `value`,
  `reader` are required, `read_on` (`YYYY-MM-DD`) and `observation` optional. Unknown columns are ignored.
- `value` is the register, with a point (or, in a semicolon file, a comma) before up to 3 decimals.
- A row with an `observation` (OBSERVATIONS) records no reading; its value is ignored and the
  bill run estimates the period.
- Line numbers are the file's own, the header being line 1; blank lines are skipped and not counted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from domain.readings import ReadingRejected

REQUIRED_COLUMNS = ("serial", "period", "value", "reader")
OPTIONAL_COLUMNS = ("read_on", "observation")
# What a reader may write instead of a value: the meter was not read, and the bill run estimates.
OBSERVATIONS = ("not_accessible", "meter_damaged", "meter_missing")
SERIAL_MAX = 40
READER_MAX = 40

_VALUE_RE = re.compile(r"^-?[0-9]{1,15}(?:\.[0-9]{1,3})?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class ReadingFileInvalid(ValueError):
    """The file as a whole cannot be read: not UTF-8, no header, required columns missing, no rows."""


@dataclass(frozen=True, slots=True)
class FileRow:
    """One data row as written: its line number and the text of each known column."""

    line: int
    serial: str
    period: str
    value: str
    read_on: str
    reader: str
    observation: str


@dataclass(frozen=True, slots=True)
class ReadingFileContent:
    """A parsed file: its rows, and whether values may use a decimal comma (semicolon files)."""

    rows: list[FileRow]
    decimal_comma: bool


def parse_reading_file(content: bytes) -> ReadingFileContent:
    """Split a reading file into rows; ReadingFileInvalid when it has no usable header or no rows."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadingFileInvalid("The file is not UTF-8 text.") from exc
    if "\x00" in text:
        raise ReadingFileInvalid("The file holds NUL characters; it is not a text file.")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        positions = _header(reader)
        rows = list(_rows(reader, positions))
    except csv.Error as exc:  # a field over csv's size limit
        raise ReadingFileInvalid(f"Line {reader.line_num} cannot be read: {exc}.") from exc
    if not rows:
        raise ReadingFileInvalid("The file has a header but no rows.")
    return ReadingFileContent(rows=rows, decimal_comma=delimiter == ";")


def _header(reader: Iterator[list[str]]) -> dict[str, int]:
    for fields in reader:
        if not fields or not any(f.strip() for f in fields):
            continue
        names = [f.strip().lower() for f in fields]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ReadingFileInvalid(
                f"The header line lacks {', '.join(missing)}; it must name {', '.join(REQUIRED_COLUMNS)} "
                f"(and optionally {', '.join(OPTIONAL_COLUMNS)})."
            )
        return {c: names.index(c) for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in names}
    raise ReadingFileInvalid("The file is empty.")


def _rows(reader: Any, positions: dict[str, int]) -> Iterator[FileRow]:  # a csv.reader: rows and line_num
    serial, period, value, reader_at = (positions[c] for c in REQUIRED_COLUMNS)
    read_on = positions.get("read_on")
    observation = positions.get("observation")
    width = max(positions.values()) + 1
    for fields in reader:
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        yield FileRow(
            line=reader.line_num,
            serial=fields[serial].strip(),
            period=fields[period].strip(),
            value=fields[value].strip(),
            read_on=fields[read_on].strip() if read_on is not None else "",
            reader=fields[reader_at].strip(),
            observation=fields[observation].strip().lower() if observation is not None else "",
        )


def check_row_fields(row: FileRow) -> None:
    """The checks of a row that need no meter: serial, reader and observation present and known."""
    if not row.serial:
        raise ReadingRejected("missing_serial", "serial", "The row names no meter serial.")
    if len(row.serial) > SERIAL_MAX:
        raise ReadingRejected("unknown_meter", "serial", "No meter of the tenant has that serial.")
    if not row.reader:
        raise ReadingRejected("missing_reader", "reader", "The row names no reader.")
    if len(row.reader) > READER_MAX:
        raise ReadingRejected("invalid_reader", "reader", f"A reader code has at most {READER_MAX} characters.")
    if row.observation and row.observation not in OBSERVATIONS:
        raise ReadingRejected(
            "unknown_observation", "observation", f"The observation must be one of {', '.join(OBSERVATIONS)}."
        )


def parse_value(text: str, *, decimal_comma: bool) -> Decimal:
    """A register value as written: digits with up to 3 decimals (a comma allowed in semicolon files)."""
    if decimal_comma:
        text = text.replace(",", ".", 1)
    if not _VALUE_RE.match(text):
        raise ReadingRejected(
            "invalid_value", "value", "The value must be a number with at most 3 decimals, such as 1234.5."
        )
    return Decimal(text)


def parse_read_on(text: str) -> date | None:
    """The read date `YYYY-MM-DD`, or None when the column is empty."""
    if not text:
        return None
    try:
        if not _DATE_RE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ReadingRejected("invalid_read_on", "read_on", "The read date must be YYYY-MM-DD.") from exc

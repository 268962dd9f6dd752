"""Reading file format: header by name, comma or semicolon, BOM, quoting, line numbers, field parsing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from domain.reading_file import (
    FileRow,
    ReadingFileInvalid,
    check_row_fields,
    parse_read_on,
    parse_reading_file,
    parse_value,
)
from domain.readings import ReadingRejected


def test_columns_by_name_in_any_order_and_case_with_lines_of_the_file() -> None:
    content = (
        b"Reader , VALUE,serial,period,extra\n"
        b"R-1,10.5,M-1,2025-01,ignored\n"
        b"\n"
        b'R-2,"11",M-2,2025-01,"two\nlines"\n'
        b"R-3,12,M-3\n"  # short row: missing fields are empty
    )
    parsed = parse_reading_file(content)
    assert parsed.decimal_comma is False
    assert parsed.rows == [
        FileRow(2, "M-1", "2025-01", "10.5", "", "R-1", ""),
        FileRow(5, "M-2", "2025-01", "11", "", "R-2", ""),  # the quoted field ends on line 5
        FileRow(6, "M-3", "", "12", "", "R-3", ""),
    ]


def test_semicolons_and_a_byte_order_mark() -> None:
    parsed = parse_reading_file("\ufeffserial;period;value;reader;observation\r\nM-1;2025-01;;R;Not_Accessible\r\n".encode())
    assert parsed.decimal_comma is True
    assert parsed.rows == [FileRow(2, "M-1", "2025-01", "", "", "R", "not_accessible")]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n\n",
        b"serial,period,value\nM,2025-01,1\n",
        b"serial,period,value,reader\n",
        b"\xff\xfe\x00s",
        b"serial,period,value,reader\nM\x00,2025-01,1,R\n",
        b"serial,period,value,reader\nM,2025-01,1," + b"R" * 200_000 + b"\n",
    ],
)
def test_unreadable_files(content: bytes) -> None:
    with pytest.raises(ReadingFileInvalid):
        parse_reading_file(content)


@pytest.mark.parametrize(
    ("text", "comma", "expected"),
    [("12", False, D(12)), ("12.345", False, D("12.345")), ("-1", False, D(-1)), ("12,5", True, D("12.5"))],
)
def test_values(text: str, comma: bool, expected: D) -> None:
    assert parse_value(text, decimal_comma=comma) == expected


@pytest.mark.parametrize(("text", "comma"), [("", False), ("1.2345", False), ("12,5", False), ("1e3", False), ("NaN", False), ("1.2.3", True)])
def test_bad_values(text: str, comma: bool) -> None:
    with pytest.raises(ReadingRejected) as caught:
        parse_value(text, decimal_comma=comma)
    assert caught.value.code == "invalid_value"


def test_read_dates() -> None:
    assert parse_read_on("") is None
    assert parse_read_on("2025-01-31") == date(2025, 1, 31)
    for bad in ("31/01/2025", "20250131", "2025-02-30"):
        with pytest.raises(ReadingRejected) as caught:
            parse_read_on(bad)
        assert caught.value.code == "invalid_read_on"


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (FileRow(2, "", "2025-01", "1", "", "R", ""), "missing_serial"),
        (FileRow(2, "M", "2025-01", "1", "", "", ""), "missing_reader"),
        (FileRow(2, "M", "2025-01", "1", "", "R" * 41, ""), "invalid_reader"),
        (FileRow(2, "M", "2025-01", "", "", "R", "dog"), "unknown_observation"),
    ],
)
def test_row_fields(row: FileRow, code: str) -> None:
    with pytest.raises(ReadingRejected) as caught:
        check_row_fields(row)
    assert caught.value.code == code

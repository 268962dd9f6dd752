"""The Asobancaria 2001 parser and generator: round trip, exact amounts, and every error with its line."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from domain.asobancaria import RECORD_LENGTH, AsobancariaError, generate, parse

GLN = "7709998000018"
DAY = date(2026, 12, 1)


def lines_of(payments: list[tuple[str, str]], **kwargs: object) -> list[str]:
    text = generate([(r, Decimal(a), DAY) for r, a in payments], service_code=GLN, **kwargs)  # type: ignore[arg-type]
    return text.split("\r\n")[:-1]


def errors_of(lines: list[str]) -> list[tuple[int, str]]:
    with pytest.raises(AsobancariaError) as err:
        parse("\n".join(lines))
    return [(e.line, e.code) for e in err.value.errors]


def test_a_generated_file_parses_back_exactly() -> None:
    text = generate(
        [("1234567890123456", Decimal(85000), DAY), ("00020260001238", Decimal("1520.50"), DAY), ("77", Decimal("0.01"), DAY)],
        service_code=GLN, bank_code="51", created_at=datetime(2026, 12, 2, 6, 30), modifier="B", lot_size=2,
    )
    assert all(len(line) == RECORD_LENGTH for line in text.split("\r\n")[:-1])
    parsed = parse(text)
    assert (parsed.collection_date, parsed.file_date, parsed.file_time, parsed.modifier) == (DAY, date(2026, 12, 2), "0630", "B")
    assert (parsed.bank_code, parsed.biller_nit, parsed.count, parsed.total) == ("051", "8909002860", 3, Decimal("86520.51"))
    assert [(lot.line, lot.number, lot.service_code, lot.count, lot.total) for lot in parsed.lots] == [
        (2, 1, GLN, 2, Decimal("86520.50")),
        (6, 2, GLN, 1, Decimal("0.01")),
    ]
    assert [(d.line, d.lot, d.reference, d.amount, d.sequence) for d in parsed.details] == [
        (3, 1, "1234567890123456", Decimal("85000.00"), 1),
        (4, 1, "20260001238", Decimal("1520.50"), 2),
        (7, 2, "77", Decimal("0.01"), 1),
    ]
    # Unix line ends and trailing blank lines read the same.
    assert parse(text.replace("\r\n", "\n") + "\n\n").details == parsed.details


def test_the_generator_refuses_what_the_format_cannot_say() -> None:
    with pytest.raises(ValueError, match="one collection date"):
        generate([("1", Decimal(1), DAY), ("2", Decimal(1), date(2026, 12, 2))], service_code=GLN)
    with pytest.raises(ValueError, match="cents"):
        generate([("1", Decimal("0.001"), DAY)], service_code=GLN)
    with pytest.raises(ValueError, match="does not fit"):
        generate([("1", Decimal(10) ** 12, DAY)], service_code=GLN)


def test_control_totals_and_counts_are_checked_per_lot_and_file() -> None:
    lines = lines_of([("11", "100"), ("22", "200")])
    lines[3] = lines[3][:50] + "00000000020100" + lines[3][64:]  # the second detail now says 201
    assert errors_of(lines) == [(5, "lot_total_mismatch"), (6, "file_total_mismatch")]
    lines = lines_of([("11", "100"), ("22", "200")])
    del lines[3]
    assert errors_of(lines) == [(4, "lot_count_mismatch"), (4, "lot_total_mismatch"), (5, "file_count_mismatch"), (5, "file_total_mismatch")]
    lines = lines_of([("11", "100")])
    lines[3] = lines[3][:29] + "0009" + lines[3][33:]
    assert errors_of(lines) == [(4, "lot_number_mismatch")]


def test_malformed_records_are_reported_by_line() -> None:
    lines = lines_of([("11", "100")])
    assert errors_of([lines[0], lines[1], lines[2][:100], lines[3], lines[4]]) == [
        (3, "record_length"), (4, "lot_count_mismatch"), (4, "lot_total_mismatch"), (5, "file_count_mismatch"), (5, "file_total_mismatch"),
    ]
    assert errors_of([lines[0], "07" + lines[2][2:], *lines[1:]]) == [(2, "record_type")]
    assert errors_of(lines[1:]) == [(1, "record_order")]
    assert errors_of(lines[:-1]) == [(4, "record_order")]
    assert errors_of([*lines, lines[2]]) == [(6, "record_order"), (6, "record_order")]
    bad_amount = list(lines)
    bad_amount[2] = bad_amount[2][:50] + "0000000001000X" + bad_amount[2][64:]
    assert (3, "invalid_field") in errors_of(bad_amount)
    bad_date = list(lines)
    bad_date[0] = bad_date[0][:12] + "20261332" + bad_date[0][20:]
    assert errors_of(bad_date) == [(1, "invalid_field")]
    zeros = list(lines)
    zeros[2] = "06" + "0" * 48 + zeros[2][50:]
    assert errors_of(zeros)[0] == (3, "invalid_field")
    with pytest.raises(AsobancariaError) as err:
        parse("\n\n")
    assert [(e.line, e.code) for e in err.value.errors] == [(1, "empty_file")]

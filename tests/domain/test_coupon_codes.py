"""Table-driven tests of coupon references, the GS1-128 barcode and name masking."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from domain.coupon_codes import (
    GS,
    CouponBarcode,
    build_coupon_barcode,
    coupon_fields,
    gln_check_digit,
    gln_is_valid,
    luhn_check_digit,
    luhn_is_valid,
    make_reference,
    mask_name,
    parse_element_string,
    random_reference,
    render_barcode_svg,
)

GLN = "7709998000018"
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("digits", "check"),
    [("7992739871", "3"), ("1234", "4"), ("0", "0"), ("00000001234", "4"), ("4111111111111111"[:-1], "1")],
)
def test_luhn_check_digit(digits: str, check: str) -> None:
    assert luhn_check_digit(digits) == check


@pytest.mark.parametrize("digits", ["", "12a4", "١٢٣"])
def test_luhn_check_digit_rejects_non_digits(digits: str) -> None:
    with pytest.raises(ValueError):
        luhn_check_digit(digits)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("79927398713", True),
        ("79927398710", False),
        ("79927398731", False),  # swapped neighbours are caught
        ("4111111111111111", True),
        ("000000012344", True),
        ("000000012345", False),
        ("", False),
        ("7", False),
        ("7992739871a", False),
    ],
)
def test_luhn_is_valid(number: str, valid: bool) -> None:
    assert luhn_is_valid(number) is valid


@pytest.mark.parametrize(
    ("sequence", "width", "reference"),
    [(1234, 11, "000000012344"), (0, 11, "000000000000"), (1, 4, "00018"), (99999999999, 11, "999999999991")],
)
def test_make_reference(sequence: int, width: int, reference: str) -> None:
    assert make_reference(sequence, width=width) == reference
    assert luhn_is_valid(reference)


def test_random_references_are_16_digits_with_luhn_and_differ() -> None:
    drawn = {random_reference() for _ in range(1000)}
    assert len(drawn) == 1000
    assert all(len(r) == 16 and r.isascii() and r.isdigit() and r[0] != "0" and luhn_is_valid(r) for r in drawn)


@pytest.mark.parametrize(("sequence", "width"), [(-1, 11), (100000000000, 11), (12345, 4)])
def test_make_reference_rejects_what_does_not_fit(sequence: int, width: int) -> None:
    with pytest.raises(ValueError):
        make_reference(sequence, width=width)


@pytest.mark.parametrize(
    ("body", "check"),
    [("770999800001", "8"), ("590123412345", "7"), ("061414100001", "2")],
)
def test_gln_check_digit(body: str, check: str) -> None:
    assert gln_check_digit(body) == check
    assert gln_is_valid(body + check)


@pytest.mark.parametrize("gln", ["7709998000010", "770999800001", "77099980000188", "770999800001X", ""])
def test_gln_is_valid_rejects_bad_glns(gln: str) -> None:
    assert not gln_is_valid(gln)


@pytest.mark.parametrize(
    ("amount", "printed"),
    [
        (Decimal(20870), "20870"),
        (Decimal("20870.50"), "20871"),
        (Decimal("20870.49"), "20870"),
        (Decimal("20870.45"), "20870"),
        (Decimal("0.5"), "1"),
        (Decimal(0), "0"),
        (Decimal("1234567.5"), "1234568"),
    ],
)
def test_build_coupon_barcode(amount: Decimal, printed: str) -> None:
    barcode = build_coupon_barcode(
        gln=GLN, reference="000000012344", amount=amount, due_on=date(2026, 12, 15)
    )
    assert barcode == CouponBarcode(
        human_readable=f"(415){GLN}(8020)000000012344(3900){printed}(96)20261215",
        element_string=f"415{GLN}8020000000012344{GS}3900{printed}{GS}9620261215",
    )


@pytest.mark.parametrize(
    ("sequence", "amount", "due_on"),
    [
        (1234, Decimal("20870.50"), date(2026, 12, 15)),
        (7, Decimal(1), date(2027, 1, 1)),
        (98765432101, Decimal("999999999.99"), date(2026, 2, 28)),
    ],
)
def test_element_string_round_trip(sequence: int, amount: Decimal, due_on: date) -> None:
    reference = make_reference(sequence)
    barcode = build_coupon_barcode(gln=GLN, reference=reference, amount=amount, due_on=due_on)
    whole = amount.quantize(Decimal(1), rounding="ROUND_HALF_UP")
    assert parse_element_string(barcode.element_string) == {
        "415": GLN,
        "8020": reference,
        "3900": str(whole),
        "96": due_on.strftime("%Y%m%d"),
    }
    assert coupon_fields(barcode.element_string) == (GLN, reference, whole, due_on)
    assert not barcode.element_string.endswith(GS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": Decimal(-1)}, "amount"),
        ({"amount": Decimal("-0.4")}, "amount"),
        ({"amount": Decimal("NaN")}, "amount"),
        ({"amount": Decimal("Infinity")}, "amount"),
        ({"amount": Decimal("1E+15")}, "too large"),
        ({"gln": "7709998000010"}, "GLN"),
        ({"gln": "770999800001"}, "GLN"),
        ({"gln": "77099980000A8"}, "GLN"),
        ({"reference": "000000012345"}, "reference"),
        ({"reference": "12a4"}, "reference"),
        ({"reference": ""}, "reference"),
    ],
)
def test_build_coupon_barcode_rejects_bad_input(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "gln": GLN, "reference": "000000012344", "amount": Decimal(100), "due_on": date(2026, 12, 15),
    }
    arguments.update(changes)
    with pytest.raises(ValueError, match=message):
        build_coupon_barcode(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "element_string",
    [
        f"99{GLN}",  # unknown AI
        "4157709998",  # truncated GLN
        f"415{GLN}8020{GS}390012",  # empty reference
        f"415{GLN}8020" + "1" * 26,  # reference longer than 25
        f"415{GLN}415{GLN}",  # repeated AI
    ],
)
def test_parse_element_string_rejects_malformed_data(element_string: str) -> None:
    with pytest.raises(ValueError):
        parse_element_string(element_string)


def test_parse_element_string_tolerates_gs_after_fixed_field() -> None:
    assert parse_element_string(f"415{GLN}{GS}9620261215") == {"415": GLN, "96": "20261215"}


@pytest.mark.parametrize("amount", [Decimal(20870), Decimal(20871), Decimal(5), Decimal(123456789)])
def test_render_barcode_svg_keeps_quiet_zones_and_text_inside_the_view_box(amount: Decimal) -> None:
    barcode = build_coupon_barcode(
        gln=GLN, reference=make_reference(1234), amount=amount, due_on=date(2026, 12, 15)
    )
    svg = render_barcode_svg(barcode)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    _, _, view_width, view_height = (float(v) for v in root.attrib["viewBox"].split())
    bars = [r for r in root.iter(f"{SVG_NS}rect") if "0%,0%,0%" in r.attrib.get("style", "")]
    assert len(bars) > 30
    left = min(float(r.attrib["x"]) for r in bars)
    right = max(float(r.attrib["x"]) + float(r.attrib["width"]) for r in bars)
    # Ten 2-unit modules of white on both sides, as GS1 asks.
    assert left == 20 and view_width - right == 20
    texts = [t for t in root.iter(f"{SVG_NS}text")]
    assert [t.text for t in texts] == [barcode.human_readable]
    size = float(texts[0].attrib["style"].split("font-size:")[1].split("px")[0].strip())
    width = stringWidth(barcode.human_readable, "Helvetica", size)
    # reportlab centres by computing the start: the whole line must sit between 0 and the view box's width.
    start = float(texts[0].attrib["x"])
    assert start >= 0 and start + width <= view_width + 0.01 and size < view_height / 4


@pytest.mark.parametrize(
    ("full_name", "masked"),
    [
        ("Juan Pérez", "J*** P***"),
        ("  Juan   Pérez  ", "J*** P***"),
        ("María José Ñúñez Gómez", "M*** J*** Ñ*** G***"),
        ("E\u0301milie Zoë", "É*** Z***"),  # decomposed accent stays with its letter
        ("Ana", "A***"),
        ("josé de la cruz", "j*** d*** l*** c***"),
        ("João\tda Silva", "J*** d*** S***"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_mask_name(full_name: str, masked: str) -> None:
    assert mask_name(full_name) == masked

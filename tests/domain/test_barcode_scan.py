"""The coupon and invoice barcodes, rasterised the way a customer sees them, read back by a real decoder (zxing-cpp)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from domain.coupon_codes import GS, CouponBarcode, build_coupon_barcode, make_reference, render_barcode_svg
from domain.coupon_pdf import render_coupon_pdf
from tests.domain.test_coupon_pdf import sample_coupon

GLN = "7709998000018"


def _tool(name: str) -> str:
    path = shutil.which(name)
    # These come from Debian (poppler-utils, librsvg2-bin); .ci/run installs them.
    assert path, f"{name} is not installed: apt-get install poppler-utils librsvg2-bin"
    return path


def decode(png: bytes) -> list[zxingcpp.Barcode]:
    """Every barcode zxing-cpp finds in a PNG."""
    return zxingcpp.read_barcodes(Image.open(BytesIO(png)))


def rasterise_svg(svg: bytes, zoom: float) -> bytes:
    """The SVG as a PNG at `zoom`, on white, as a browser would paint it."""
    return subprocess.run(
        [_tool("rsvg-convert"), "--zoom", str(zoom), "--background-color", "white", "--format", "png"],
        input=svg, capture_output=True, check=True,
    ).stdout


def pdf_page_png(pdf: bytes, tmp_path: Path, dpi: int = 150, page: int = 1) -> bytes:
    """One page of the PDF as a PNG, rendered by poppler's pdftoppm."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "doc.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        [_tool("pdftoppm"), "-r", str(dpi), "-f", str(page), "-l", str(page), "-png", "-singlefile", str(source), str(tmp_path / "page")],
        check=True, capture_output=True,
    )
    return (tmp_path / "page.png").read_bytes()


def gs1_fields(result: zxingcpp.Barcode) -> tuple[str, bytes]:
    """The GS1 human-readable element string and the raw bytes (FNC1 as GS) of a GS1-128 symbol."""
    assert result.format == zxingcpp.BarcodeFormat.Code128
    assert result.content_type == zxingcpp.ContentType.GS1
    return result.text, result.bytes


@pytest.mark.parametrize("zoom", [1, 2, 3, 4])
@pytest.mark.parametrize("amount", [Decimal(5), Decimal(629790), Decimal(123456789)])
def test_svg_scans_at_every_zoom(zoom: int, amount: Decimal) -> None:
    barcode = build_coupon_barcode(gln=GLN, reference=make_reference(987654), amount=amount, due_on=date(2026, 12, 15))
    results = decode(rasterise_svg(render_barcode_svg(barcode), zoom))
    assert len(results) == 1
    text, raw = gs1_fields(results[0])
    assert text == f"(415){GLN}(8020)000009876541(3900){amount}(96)20261215"
    assert text == barcode.human_readable
    assert raw.decode("ascii") == barcode.element_string
    assert GS in barcode.element_string


def test_coupon_pdf_barcode_scans_at_150_dpi(tmp_path: Path) -> None:
    doc = sample_coupon()
    results = decode(pdf_page_png(render_coupon_pdf(doc), tmp_path))
    assert len(results) == 1
    text, raw = gs1_fields(results[0])
    assert text == "(415)7709998001234(8020)100000123(3900)152050(96)20261116"
    assert raw.decode("ascii") == doc.barcode_element_string


def test_svg_and_pdf_draw_the_same_bars(tmp_path: Path) -> None:
    """One renderer: the SVG of a coupon and its PDF decode to the same bytes."""
    doc = sample_coupon()
    svg = render_barcode_svg(CouponBarcode(doc.barcode_human_readable, doc.barcode_element_string))
    from_svg = decode(rasterise_svg(svg, 2))[0].bytes
    from_pdf = decode(pdf_page_png(render_coupon_pdf(doc), tmp_path))[0].bytes
    assert from_svg == from_pdf == doc.barcode_element_string.encode("ascii")

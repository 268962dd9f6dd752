"""Table-driven tests of national ID validation and normalisation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.national_id import (
    NATIONAL_ID_TYPES,
    InvalidNationalId,
    NationalId,
    cnpj_check_digits,
    cpf_check_digits,
    nit_check_digit,
    normalize_national_id,
    rut_check_digit,
)

VALID = [
    # Chile RUT: dotted, plain, check digit K in both cases, check digit 0.
    ("rut", "12.345.678-5", "123456785", "12.345.678-5"),
    ("rut", "12345678-5", "123456785", "12.345.678-5"),
    ("rut", "123456785", "123456785", "12.345.678-5"),
    ("rut", " 12 345 678-5 ", "123456785", "12.345.678-5"),
    ("rut", "10.000.013-K", "10000013K", "10.000.013-K"),
    ("rut", "10.000.013-k", "10000013K", "10.000.013-K"),
    ("rut", "10000004-0", "100000040", "10.000.004-0"),
    ("rut", "7.654.321-6", "76543216", "7.654.321-6"),
    ("rut", "012.345.678-5", "123456785", "12.345.678-5"),
    ("rut", "1-9", "19", "1-9"),
    # Colombia NIT: check digit after a dash or simply last.
    ("nit", "900.373.115-3", "9003731153", "900.373.115-3"),
    ("nit", "9003731153", "9003731153", "900.373.115-3"),
    ("nit", "800197268-4", "8001972684", "800.197.268-4"),
    ("nit", "890.903.938-8", "8909039388", "890.903.938-8"),
    # DIAN keeps remainders 0 and 1 as the check digit itself.
    ("nit", "900.000.002-1", "9000000021", "900.000.002-1"),
    ("nit", "900.000.009-0", "9000000090", "900.000.009-0"),
    # Colombia CC: 6 to 10 digits, no check digit.
    ("cc", "1.020.304.050", "1020304050", "1.020.304.050"),
    ("cc", "1020304050", "1020304050", "1.020.304.050"),
    ("cc", "123456", "123456", "123.456"),
    ("cc", "79.123.456", "79123456", "79.123.456"),
    # Brazil CPF and CNPJ.
    ("cpf", "529.982.247-25", "52998224725", "529.982.247-25"),
    ("cpf", "52998224725", "52998224725", "529.982.247-25"),
    # Brazil turns a remainder of 1 into check digit 0, unlike DIAN.
    ("cpf", "123.456.789-09", "12345678909", "123.456.789-09"),
    ("cpf", "100.000.001-08", "10000000108", "100.000.001-08"),
    ("cnpj", "10.000.000/0009-00", "10000000000900", "10.000.000/0009-00"),
    ("cnpj", "11.222.333/0001-81", "11222333000181", "11.222.333/0001-81"),
    ("cnpj", "11222333000181", "11222333000181", "11.222.333/0001-81"),
    # Type names are case-insensitive.
    ("RUT", "12.345.678-5", "123456785", "12.345.678-5"),
    ("CPF", "529.982.247-25", "52998224725", "529.982.247-25"),
]


@pytest.mark.parametrize(("id_type", "raw", "number", "display"), VALID)
def test_valid_ids_are_normalised(id_type: str, raw: str, number: str, display: str) -> None:
    assert normalize_national_id(id_type, raw) == NationalId(id_type.lower(), number, display)


INVALID = [
    ("passport", "12345678", "unknown id type"),
    ("", "12345678", "unknown id type"),
    ("rut", "", "empty"),
    ("rut", "  ", "empty"),
    ("cpf", "..-/", "empty"),
    ("cnpj", "11.222.333/0001-81-0000", "too long"),
    ("cc", "1" * 21, "too long"),
    # Letters where digits belong.
    ("rut", "12.345.67A-5", "non-digit characters"),
    ("rut", "12.345.678-X", "non-digit characters"),
    ("nit", "900.373.11A-3", "non-digit characters"),
    ("nit", "900.373.115-K", "non-digit characters"),
    ("cc", "1O2O3O4O", "non-digit characters"),
    ("cpf", "529.982.247-2S", "non-digit characters"),
    ("cnpj", "11.222.333/0001-8I", "non-digit characters"),
    ("cc", "١٢٣٤٥٦٧", "non-digit characters"),  # Arabic-Indic digits pass str.isdigit()
    # Wrong length.
    ("rut", "5", "wrong length"),
    ("rut", "123.456.789-2", "wrong length"),
    ("rut", "0-0", "wrong length"),
    ("nit", "12345-1", "wrong length"),
    ("nit", "1234567890123456-1", "wrong length"),
    ("cc", "12345", "wrong length"),
    ("cc", "12345678901", "wrong length"),
    ("cpf", "529.982.247-2", "wrong length"),
    ("cnpj", "11.222.333/0001-8", "wrong length"),
    # Wrong check digit.
    ("rut", "12.345.678-9", "wrong check digit"),
    ("rut", "12.345.678-K", "wrong check digit"),
    ("rut", "10.000.013-0", "wrong check digit"),
    ("nit", "900.373.115-4", "wrong check digit"),
    ("cpf", "529.982.247-26", "wrong check digit"),
    ("cpf", "529.982.247-35", "wrong check digit"),
    ("cnpj", "11.222.333/0001-82", "wrong check digit"),
    ("cnpj", "11.222.333/0001-91", "wrong check digit"),
    # Repeated digits pass the checksum but are not real numbers.
    ("cpf", "111.111.111-11", "repeated digits"),
    ("cpf", "000.000.000-00", "repeated digits"),
    ("cnpj", "00.000.000/0000-00", "repeated digits"),
    ("cnpj", "11.111.111/1111-11", "repeated digits"),
]


@pytest.mark.parametrize(("id_type", "raw", "reason"), INVALID)
def test_invalid_ids_are_rejected_with_a_reason(id_type: str, raw: str, reason: str) -> None:
    with pytest.raises(InvalidNationalId) as caught:
        normalize_national_id(id_type, raw)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_every_declared_type_is_supported() -> None:
    assert NATIONAL_ID_TYPES == ("rut", "nit", "cc", "cpf", "cnpj")
    samples = {"rut": "12.345.678-5", "nit": "900.373.115-3", "cc": "123456",
               "cpf": "529.982.247-25", "cnpj": "11.222.333/0001-81"}
    assert {normalize_national_id(t, samples[t]).type for t in NATIONAL_ID_TYPES} == set(NATIONAL_ID_TYPES)


@pytest.mark.parametrize(
    ("function", "body", "expected"),
    [
        (rut_check_digit, "12345678", "5"),
        (rut_check_digit, "10000013", "K"),
        (rut_check_digit, "10000004", "0"),
        (nit_check_digit, "900373115", "3"),
        (nit_check_digit, "800197268", "4"),
        (cpf_check_digits, "529982247", "25"),
        (cnpj_check_digits, "112223330001", "81"),
    ],
)
def test_check_digit_functions(function: Callable[[str], str], body: str, expected: str) -> None:
    assert function(body) == expected


def test_national_id_is_immutable() -> None:
    national_id = normalize_national_id("cc", "123456")
    with pytest.raises(AttributeError):
        national_id.number = "654321"  # type: ignore[misc]

"""Validation and normalisation of Chilean, Colombian and Brazilian national IDs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

NATIONAL_ID_TYPES = ("rut", "nit", "cc", "cpf", "cnpj")

# Guards against pasting a whole paragraph into the field; the longest real
# display form (a CNPJ, "12.345.678/0001-95") is 18 characters.
MAX_RAW_LENGTH = 20

_SEPARATORS = str.maketrans("", "", " .-/\t")

# DIAN's weights, applied from the rightmost digit of the NIT body.
_NIT_WEIGHTS = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)
_CNPJ_WEIGHTS_1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_WEIGHTS_2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


class InvalidNationalId(ValueError):
    """A national ID that fails validation; `reason` says briefly why."""

    def __init__(self, reason: str, id_type: str | None = None) -> None:
        self.reason = reason
        self.id_type = id_type
        super().__init__(f"invalid {id_type or 'national'} id: {reason}")


def search_form(raw: str) -> str:
    """The stored form of an ID typed into a search box ("12.345.678-5" -> "123456785"), without validating it."""
    return raw.translate(_SEPARATORS).upper()


@dataclass(frozen=True)
class NationalId:
    """A validated ID: normalised digits (plus check digit) and its display form."""

    type: str
    number: str
    display: str


def normalize_national_id(id_type: str, raw: str) -> NationalId:
    """Validate `raw` as an ID of `id_type` and return its normalised and display forms."""
    kind = id_type.strip().lower()
    normalizer = _NORMALIZERS.get(kind)
    if normalizer is None:
        raise InvalidNationalId("unknown id type", id_type)
    text = raw.strip()
    if len(text) > MAX_RAW_LENGTH:
        raise InvalidNationalId("too long", kind)
    compact = text.translate(_SEPARATORS)
    if not compact:
        raise InvalidNationalId("empty", kind)
    return normalizer(compact)


def rut_check_digit(body: str) -> str:
    """Chilean RUT check digit (mod 11, weights 2..7 from the right; 10 is K, 11 is 0)."""
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(body)))
    value = 11 - total % 11
    return {11: "0", 10: "K"}.get(value, str(value))


def nit_check_digit(body: str) -> str:
    """Colombian NIT check digit per DIAN (prime weights from the right, mod 11)."""
    if len(body) > len(_NIT_WEIGHTS):
        raise ValueError("NIT body longer than 15 digits")
    total = sum(int(d) * w for d, w in zip(reversed(body), _NIT_WEIGHTS))
    return str(_dian_digit(total))


def cpf_check_digits(body: str) -> str:
    """The two check digits of a Brazilian CPF from its first 9 digits."""
    first = _brazil_digit(sum(int(d) * w for d, w in zip(body, range(10, 1, -1))))
    partial = body + str(first)
    second = _brazil_digit(sum(int(d) * w for d, w in zip(partial, range(11, 1, -1))))
    return f"{first}{second}"


def cnpj_check_digits(body: str) -> str:
    """The two check digits of a Brazilian CNPJ from its first 12 digits."""
    first = _brazil_digit(sum(int(d) * w for d, w in zip(body, _CNPJ_WEIGHTS_1)))
    partial = body + str(first)
    second = _brazil_digit(sum(int(d) * w for d, w in zip(partial, _CNPJ_WEIGHTS_2)))
    return f"{first}{second}"


def _dian_digit(total: int) -> int:
    # DIAN keeps a remainder of 1 as the check digit; Brazil's rule turns it into 0.
    remainder = total % 11
    return remainder if remainder < 2 else 11 - remainder


def _brazil_digit(total: int) -> int:
    remainder = total % 11
    return 0 if remainder < 2 else 11 - remainder


def _dotted(digits: str) -> str:
    # Grouped as text, not via int(), so that a leading zero is shown as typed.
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return ".".join(groups)


def _require_digits(value: str, kind: str) -> None:
    # isdigit() accepts superscripts and other scripts' digits; IDs are ASCII only.
    if not (value.isascii() and value.isdigit()):
        raise InvalidNationalId("non-digit characters", kind)


def _normalize_rut(compact: str) -> NationalId:
    body, check = compact[:-1], compact[-1].upper()
    if body:
        _require_digits(body, "rut")
    if check != "K":
        _require_digits(check, "rut")
    # Leading zeros do not change the RUT; dropping them keeps one stored form per person.
    body = body.lstrip("0")
    if not 1 <= len(body) <= 8:
        raise InvalidNationalId("wrong length", "rut")
    if rut_check_digit(body) != check:
        raise InvalidNationalId("wrong check digit", "rut")
    return NationalId("rut", body + check, f"{_dotted(body)}-{check}")


def _normalize_nit(compact: str) -> NationalId:
    _require_digits(compact, "nit")
    body, check = compact[:-1], compact[-1]
    # Bodies shorter than a cédula are not issued; 15 is the DIAN weight table's reach.
    if not 6 <= len(body) <= 15:
        raise InvalidNationalId("wrong length", "nit")
    if nit_check_digit(body) != check:
        raise InvalidNationalId("wrong check digit", "nit")
    return NationalId("nit", compact, f"{_dotted(body)}-{check}")


def _normalize_cc(compact: str) -> NationalId:
    _require_digits(compact, "cc")
    if not 6 <= len(compact) <= 10:
        raise InvalidNationalId("wrong length", "cc")
    return NationalId("cc", compact, _dotted(compact))


def _normalize_cpf(compact: str) -> NationalId:
    _require_digits(compact, "cpf")
    if len(compact) != 11:
        raise InvalidNationalId("wrong length", "cpf")
    # Repeated digits pass the checksum, so they must be refused explicitly.
    if len(set(compact)) == 1:
        raise InvalidNationalId("repeated digits", "cpf")
    if cpf_check_digits(compact[:9]) != compact[9:]:
        raise InvalidNationalId("wrong check digit", "cpf")
    c = compact
    return NationalId("cpf", c, f"{c[:3]}.{c[3:6]}.{c[6:9]}-{c[9:]}")


def _normalize_cnpj(compact: str) -> NationalId:
    _require_digits(compact, "cnpj")
    if len(compact) != 14:
        raise InvalidNationalId("wrong length", "cnpj")
    if len(set(compact)) == 1:
        raise InvalidNationalId("repeated digits", "cnpj")
    if cnpj_check_digits(compact[:12]) != compact[12:]:
        raise InvalidNationalId("wrong check digit", "cnpj")
    c = compact
    return NationalId("cnpj", c, f"{c[:2]}.{c[2:5]}.{c[5:8]}/{c[8:12]}-{c[12:]}")


_NORMALIZERS: dict[str, Callable[[str], NationalId]] = {
    "rut": _normalize_rut,
    "nit": _normalize_nit,
    "cc": _normalize_cc,
    "cpf": _normalize_cpf,
    "cnpj": _normalize_cnpj,
}

"""Country packs: what a new tenant in Colombia, Chile or Brazil gets unless it says otherwise.

Public holidays come from the `holidays` package (maintained against each country's gazette; it
already knows laws newer than a hand-written table would, such as Colombia's holiday for the Virgin
of Chiquinquirá from 2026). A tenant keeps its own holiday rows, so a local holiday or a correction
is added beside the country's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import holidays as holiday_calendars

from domain.money import MINOR_UNITS


@dataclass(frozen=True)
class CountryPack:
    """A country's defaults for a utility tenant."""

    country: str
    currency: str
    timezone: str
    locale: str
    # The national ID types customers of this country register with, and the one a company's tax id is.
    national_id_types: tuple[str, ...]
    tax_id_type: str
    tax_id_label: str
    # Business days a utility has to answer a PQR. Colombia's is law (Ley 1755 de 2015, Ley 142 de 1994);
    # Chile's and Brazil's are starting points for the tenant to set to its regulator's rule.
    pqr_answer_business_days: int
    # The language the holidays package names holidays in.
    holiday_language: str

    @property
    def minor_units(self) -> int:
        """Decimal places of the currency (0 for COP and CLP, 2 for BRL)."""
        return MINOR_UNITS[self.currency]

    def holidays(self, year: int) -> list[tuple[date, str]]:
        """The country's national public holidays of `year`, by date."""
        calendar = holiday_calendars.country_holidays(self.country, years=year, language=self.holiday_language)
        return sorted(calendar.items())


COUNTRY_PACKS: dict[str, CountryPack] = {
    "CO": CountryPack(
        country="CO", currency="COP", timezone="America/Bogota", locale="es",
        national_id_types=("cc", "nit"), tax_id_type="nit", tax_id_label="NIT",
        pqr_answer_business_days=15, holiday_language="es",
    ),
    "CL": CountryPack(
        country="CL", currency="CLP", timezone="America/Santiago", locale="es",
        national_id_types=("rut",), tax_id_type="rut", tax_id_label="RUT",
        pqr_answer_business_days=20, holiday_language="es",
    ),
    "BR": CountryPack(
        country="BR", currency="BRL", timezone="America/Sao_Paulo", locale="pt",
        national_id_types=("cpf", "cnpj"), tax_id_type="cnpj", tax_id_label="CNPJ",
        pqr_answer_business_days=10, holiday_language="pt_BR",
    ),
}


class UnknownCountry(ValueError):
    """No country pack for this country code."""


def country_pack(country: str) -> CountryPack:
    """The pack of an ISO 3166 alpha-2 country code (CO, CL, BR); UnknownCountry otherwise."""
    try:
        return COUNTRY_PACKS[country.upper()]
    except KeyError:
        raise UnknownCountry(f"no country pack for {country!r}; known: {', '.join(COUNTRY_PACKS)}") from None

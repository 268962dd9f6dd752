"""Charges and credits on a bill: a credit never makes it negative, whatever the taxes and rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain import billing_calculator as calc
from domain.charges import PendingCharge, bill_with_charges


def _tariff(*, rounding: str | None = None, rate: str = "19") -> calc.PreparedTariff:
    return calc.prepare_tariff(calc.Tariff(
        currency="COP", fixed_charges=(calc.FixedCharge("Cargo fijo", Decimal(3333)),),
        blocks=(calc.Block(None, Decimal(777)),), stratum_adjustments={},
        taxes=(calc.TaxRule("IVA", Decimal(rate), ("fixed", "adjustment")),),
        late_fee_monthly_rate=Decimal(0), rounding_increment=Decimal(rounding) if rounding else None,
    ))


def test_charges_apply_in_full_and_only_taxable_ones_are_taxed() -> None:
    charged = bill_with_charges(
        tariff=_tariff(), stratum="4", consumption=Decimal(10),
        charges=[PendingCharge(1, "Reconexión", Decimal(1000), True), PendingCharge(2, "Multa", Decimal(500), False)],
    )
    assert [(c.key, a) for c, a in charged.applied] == [(1, Decimal(1000)), (2, Decimal(500))]
    # Tax: 19 % of the fixed charge and the taxable charge, 4333 -> 823.27 -> 823.
    assert (charged.bill.subtotal, charged.bill.tax, charged.bill.total) == (
        Decimal(3333 + 7770 + 1000 + 500), Decimal(823), Decimal(13426)
    )


@pytest.mark.parametrize("rounding", [None, "10", "100", "1000"])
@pytest.mark.parametrize("taxable", [True, False])
@pytest.mark.parametrize("credit", ["-11800", "-14000", "-999999"])
def test_a_large_credit_leaves_the_bill_at_zero_or_just_above(rounding: str | None, taxable: bool, credit: str) -> None:
    tariff = _tariff(rounding=rounding)
    plain = calc.calculate_bill(tariff=tariff, stratum="4", consumption=Decimal(10))
    charges = [PendingCharge(1, "Crédito", Decimal(credit), taxable), PendingCharge(2, "Otro crédito", Decimal(-5), False)]
    charged = bill_with_charges(tariff=tariff, stratum="4", consumption=Decimal(10), charges=charges)
    assert charged.bill.total >= 0
    # Within one rounding step (or one peso and its tax) of zero: the credit took all it could.
    assert charged.bill.total <= Decimal(rounding or 2)
    [(first, applied)] = charged.applied  # the second credit waits for the next bill
    assert first.key == 1 and Decimal(credit) <= applied < 0
    assert charged.bill.total < plain.total


def test_a_bill_already_at_zero_takes_no_credit() -> None:
    tariff = calc.prepare_tariff(calc.Tariff(
        currency="COP", fixed_charges=(), blocks=(calc.Block(None, Decimal(100)),), stratum_adjustments={},
        taxes=(), late_fee_monthly_rate=Decimal(0), rounding_increment=None,
    ))
    charged = bill_with_charges(
        tariff=tariff, stratum="4", consumption=Decimal(0), charges=[PendingCharge(1, "Crédito", Decimal(-50), False)]
    )
    assert (charged.bill.total, charged.applied) == (Decimal(0), ())

"""One-off charges and credits on a bill: which apply, and how much of a credit the bill can take.

RULES:
1. Every pending charge (amount > 0) applies in full as an `adjustment` line; taxed by the tariff's
   tax rules that list `adjustment` when the charge is taxable, by none otherwise.
2. Credits (amount < 0) apply oldest first. A credit never makes the bill negative: the credit that
   would is applied only up to what leaves the total at zero or just above it (taxes and rounding
   are worked out again on the smaller credit), and the credits after it wait for the next bill.
   The caller carries the part not applied forward as a new pending credit.
3. A bill that is negative without any credit (a subsidy above 100 %, never an honest tariff) takes
   no credit; the caller refuses it as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from domain import billing_calculator as calc

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PendingCharge:
    """A charge or credit waiting for its contract's next bill; `key` is the caller's id for it."""

    key: int
    description: str
    amount: Decimal
    taxable: bool


@dataclass(frozen=True, slots=True)
class ChargedBill:
    """The bill with its charges, and the amount applied of each charge it took."""

    bill: calc.Bill
    applied: tuple[tuple[PendingCharge, Decimal], ...]


def _adjustment_tax_factor(tariff: calc.PreparedTariff) -> Decimal:
    """1 + the rates of the taxes levied on adjustments: what a taxable credit of 1 takes off the total."""
    return Decimal(1) + sum((t.factor for t in tariff.taxes if "adjustment" in t.kinds), _ZERO)


def bill_as_applied(
    *,
    tariff: calc.PreparedTariff,
    stratum: str,
    consumption: Decimal,
    arrears: Decimal = _ZERO,
    arrears_months: int = 1,
    applied: Sequence[tuple[PendingCharge, Decimal]] = (),
) -> calc.Bill:
    """One contract's bill for one period with each charge or credit taken at exactly the amount given.

    The bill run reaches it through `bill_with_charges` (which chooses the amounts); a re-bill calls it
    with the amounts the invoice took, so the corrected invoice differs only by what was corrected.
    """
    return calc.calculate_bill(
        tariff=tariff, stratum=stratum, consumption=consumption, arrears=arrears, arrears_months=arrears_months,
        adjustments=[(c.description, amount) for c, amount in applied if c.taxable],
        untaxed_adjustments=[(c.description, amount) for c, amount in applied if not c.taxable],
    )


def bill_with_charges(
    *,
    tariff: calc.PreparedTariff,
    stratum: str,
    consumption: Decimal,
    arrears: Decimal = _ZERO,
    arrears_months: int = 1,
    charges: Sequence[PendingCharge] = (),
) -> ChargedBill:
    """Compute a bill with its pending charges and credits (oldest first) under the rules above."""
    applied: list[tuple[PendingCharge, Decimal]] = [(c, c.amount) for c in charges if c.amount > 0]

    def compute(extra: list[tuple[PendingCharge, Decimal]]) -> calc.Bill:
        return bill_as_applied(
            tariff=tariff, stratum=stratum, consumption=consumption, arrears=arrears,
            arrears_months=arrears_months, applied=applied + extra,
        )

    bill = compute([])
    quantum = tariff.quantum
    for credit in (c for c in charges if c.amount < 0):
        if bill.total <= 0:
            break
        full = compute([(credit, credit.amount)])
        if full.total >= 0:
            applied.append((credit, credit.amount))
            bill = full
            continue
        # The part of the credit the bill can take: its total over the credit's tax factor, then
        # nudged toward zero until taxes and rounding leave the total at zero or above.
        factor = _adjustment_tax_factor(tariff) if credit.taxable else Decimal(1)
        part = -(bill.total / factor).quantize(quantum, ROUND_DOWN)
        part = max(part, credit.amount)
        partial = compute([(credit, part)])
        while partial.total < 0:
            part = min(_ZERO, part + max(quantum, (-partial.total / factor).quantize(quantum, ROUND_UP)))
            partial = compute([(credit, part)]) if part else bill
        if part:
            applied.append((credit, part))
            bill = partial
        break
    return ChargedBill(bill, tuple(applied))

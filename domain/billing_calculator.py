"""Pure billing calculator: tariff, stratum, consumption and arrears in; lines and totals out."""

# RULES (the ones DOMAIN.md leaves to us are marked *):
# 1. Money is Decimal end to end. Every line amount is rounded on its own to the currency's minor
#    unit (CLP, COP 0; BRL, USD 2) with ROUND_HALF_UP (ties away from zero), and every derived
#    figure (stratum adjustment, tax, rounding) is computed from the already rounded line amounts.
#    That is what makes the CLP cross-check total 20870 rather than 20870.45.
# 2. Each fixed charge is a `fixed` line, quantity 1, always present, even at zero consumption.
# 3. Consumption is split over cumulative blocks: one `consumption` line per block with quantity
#    > 0, amount = round(quantity x unit_price). * Consumption above a closed last block is a
#    ValueError, never silently priced.
# 4. The stratum's adjustment takes percent of the first (subsistence) block's line amount or of all
#    consumption line amounts: negative gives a `subsidy` line, positive a `contribution` line.
#    * A stratum without an entry, or an adjustment that rounds to zero, adds no line; a stratum
#    outside 1-6/commercial/industrial/official is a ValueError, so a typo cannot drop a subsidy.
# 5. Operator adjustments become `adjustment` lines, taxed by the rules that list `adjustment`;
#    `untaxed_adjustments` (a charge the operator marked not taxable) are `adjustment` lines no
#    rule taxes. Arrears become an `adjustment` line
#    "Saldo anterior" that is * never taxed (it was taxed on its own invoice) even if `adjustment`
#    is taxable; when arrears > 0 a `late_fee` line adds arrears x rate/100 x months.
#    The caller leaves disputed invoices out of the arrears (DOMAIN.md, PQR).
# 6. Each tax rule adds a `tax` line: round(rate/100 x sum of amounts of the lines whose kind it
#    lists). * Taxes never apply to tax or rounding lines, so their order does not matter.
# 7. With a rounding increment, a `rounding` line moves the total to the nearest multiple of it
#    (ties away from zero), only when that move is non-zero.
# 8. * Lines derived from a percentage (subsidy, contribution, late_fee, tax) appear only when
#    non-zero. For them quantity is the base and unit_price the factor, so for every line
#    amount == round(quantity x unit_price); fixed, adjustment and rounding lines have quantity 1.
# 9. subtotal = all lines but tax and rounding; tax = tax lines; total = subtotal + tax + rounding.

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Literal

from domain.money import MINOR_UNITS, round_money
from domain.money import quantum as money_quantum

LINE_KINDS = frozenset(
    {"fixed", "consumption", "subsidy", "contribution", "tax", "late_fee", "rounding", "adjustment"}
)
# A tax on tax or on the rounding line would make the result depend on the order of the rules.
TAXABLE_KINDS = LINE_KINDS - {"tax", "rounding"}
STRATA = frozenset({"1", "2", "3", "4", "5", "6", "commercial", "industrial", "official"})
ARREARS_DESCRIPTION = "Saldo anterior"
LATE_FEE_DESCRIPTION = "Intereses de mora"
ROUNDING_DESCRIPTION = "Redondeo"

# Ceilings no honest tariff or bill reaches: they keep every amount inside NUMERIC(18, 2) and a
# coupon of 50 invoices inside the barcode's 15 digits (see routes.fields for request bounds).
MAX_PRICE = Decimal(10) ** 9
MAX_PRICE_PLACES = 6  # unit prices are stored as NUMERIC(18, 6) on invoice lines
MAX_BLOCK_BOUND = Decimal(10) ** 12
MAX_BLOCK_PLACES = 3
MAX_BILL_TOTAL = Decimal(10) ** 12

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class FixedCharge:
    """A named charge billed once per period whatever the consumption."""

    name: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Block:
    """A consumption block: cumulative upper bound (None for the open last block) and unit price."""

    up_to: Decimal | None
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class StratumAdjustment:
    """A stratum's subsidy (negative percent) or contribution (positive percent)."""

    percent: Decimal
    applies_to: Literal["subsistence", "consumption"]


@dataclass(frozen=True, slots=True)
class TaxRule:
    """A tax: its rate as a percent and the line kinds it is levied on."""

    name: str
    rate: Decimal
    applies_to: tuple[str, ...]

    def __post_init__(self) -> None:
        # A list from a JSON body would be mutable and break the prepared-tariff cache.
        object.__setattr__(self, "applies_to", tuple(self.applies_to))


@dataclass(frozen=True, slots=True)
class Tariff:
    """One tariff version's prices and rules, mirroring the API's tariff fields."""

    currency: str
    fixed_charges: tuple[FixedCharge, ...]
    blocks: tuple[Block, ...]
    stratum_adjustments: Mapping[str, StratumAdjustment]
    taxes: tuple[TaxRule, ...]
    late_fee_monthly_rate: Decimal
    rounding_increment: Decimal | None
    unit: str = "kWh"

    def __post_init__(self) -> None:
        # Freeze the containers too: a prepared tariff is cached by identity, so it must not change.
        object.__setattr__(self, "fixed_charges", tuple(self.fixed_charges))
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "taxes", tuple(self.taxes))
        object.__setattr__(
            self, "stratum_adjustments", MappingProxyType(dict(self.stratum_adjustments))
        )


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice line; amount is already rounded to the currency's minor unit."""

    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Bill:
    """A computed bill: its lines and totals in one currency."""

    lines: tuple[Line, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    currency: str


class InvalidTariff(ValueError):
    """A tariff that validate_tariff rejects; `errors` holds its (field path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class _PreparedBlock:
    lower: Decimal
    upper: Decimal | None
    unit_price: Decimal
    description: str
    # Most bills fill the lower blocks completely, so those lines are built once per tariff.
    full_line: Line | None


@dataclass(frozen=True, slots=True)
class _PreparedAdjustment:
    kind: str
    factor: Decimal
    on_subsistence: bool
    description: str
    # The subsidy line of every bill that fills the subsistence block is the same one.
    full_subsistence_line: Line | None


@dataclass(frozen=True, slots=True)
class _PreparedTax:
    description: str
    factor: Decimal
    kinds: frozenset[str]


@dataclass(frozen=True, slots=True)
class PreparedTariff:
    """A validated tariff with everything that does not depend on the bill worked out once."""

    tariff: Tariff
    quantum: Decimal
    fixed_lines: tuple[Line, ...]
    fixed_total: Decimal
    blocks: tuple[_PreparedBlock, ...]
    adjustments: dict[str, _PreparedAdjustment]
    taxes: tuple[_PreparedTax, ...]
    late_fee_factor: Decimal
    rounding_increment: Decimal | None
    # At most increment / minor unit distinct rounding lines exist, so they are memoised.
    rounding_lines: dict[Decimal, Line]


def _decimal_problem(value: object) -> str | None:
    # Floats are refused outright: a binary fraction is not the price the admin typed.
    if not isinstance(value, Decimal):
        return "must be a Decimal"
    if not value.is_finite():
        return "must be a finite number"
    return None


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _bounded_problem(value: object, *, high: Decimal, places: int) -> str | None:
    """Finite, not negative, at most `high` and with at most `places` decimals (so 1e30 and 1e-12 fail)."""
    problem = _decimal_problem(value)
    if problem is not None:
        return problem
    assert isinstance(value, Decimal)
    if value < 0:
        return "must not be negative"
    if value > high:
        return f"must be at most {high:f}"
    if _places(value) > places:
        return f"must have at most {places} decimals"
    return None


def _check_range(
    errors: list[tuple[str, str]], path: str, value: object, low: int, high: int
) -> None:
    problem = _decimal_problem(value)
    if problem is None and not low <= value <= high:  # type: ignore[operator]
        problem = f"must be between {low} and {high}"
    if problem:
        errors.append((path, problem))


def validate_tariff(t: Tariff, *, tenant_currency: str) -> list[tuple[str, str]]:
    """Return (field path, message) pairs for everything wrong with a tariff; empty when valid."""
    errors: list[tuple[str, str]] = []

    if t.currency not in MINOR_UNITS:
        errors.append(("currency", f"unknown currency {t.currency!r}"))
    elif t.currency != tenant_currency:
        errors.append(("currency", f"must be the tenant's currency {tenant_currency}"))

    for i, charge in enumerate(t.fixed_charges):
        problem = _bounded_problem(charge.amount, high=MAX_PRICE, places=MAX_PRICE_PLACES)
        if problem:
            errors.append((f"fixed_charges[{i}].amount", problem))

    if not t.blocks:
        errors.append(("blocks", "at least one block is required"))
    previous: Decimal | None = None
    last = len(t.blocks) - 1
    for i, block in enumerate(t.blocks):
        path = f"blocks[{i}].up_to"
        if block.up_to is None:
            if i != last:
                errors.append((path, "only the last block may be open"))
        elif problem := _bounded_problem(block.up_to, high=MAX_BLOCK_BOUND, places=MAX_BLOCK_PLACES):
            errors.append((path, problem))
        elif block.up_to <= (previous if previous is not None else 0):
            bound = f"blocks[{i - 1}].up_to" if previous is not None else "0"
            errors.append((path, f"must be greater than {bound}"))
        else:
            previous = block.up_to
        problem = _bounded_problem(block.unit_price, high=MAX_PRICE, places=MAX_PRICE_PLACES)
        if problem:
            errors.append((f"blocks[{i}].unit_price", problem))

    closed_last = f"blocks[{last}].up_to"
    if t.blocks and t.blocks[-1].up_to is not None and all(path != closed_last for path, _ in errors):
        # A closed last block leaves consumption above it without a price.
        errors.append((closed_last, "the last block must be open (null)"))

    for stratum, adjustment in t.stratum_adjustments.items():
        path = f"stratum_adjustments[{stratum}]"
        if stratum not in STRATA:
            errors.append((path, "unknown stratum"))
        _check_range(errors, f"{path}.percent", adjustment.percent, -100, 100)
        if adjustment.applies_to not in ("subsistence", "consumption"):
            errors.append((f"{path}.applies_to", "must be 'subsistence' or 'consumption'"))

    for i, rule in enumerate(t.taxes):
        _check_range(errors, f"taxes[{i}].rate", rule.rate, 0, 100)
        for j, kind in enumerate(rule.applies_to):
            if kind not in TAXABLE_KINDS:
                errors.append(
                    (f"taxes[{i}].applies_to[{j}]", f"not a taxable line kind: {kind!r}")
                )

    _check_range(errors, "late_fee_monthly_rate", t.late_fee_monthly_rate, 0, 100)

    increment = t.rounding_increment
    if increment is not None:
        problem = _decimal_problem(increment)
        if problem is None and increment <= 0:
            problem = "must be greater than 0"
        elif problem is None and t.currency in MINOR_UNITS and increment % money_quantum(t.currency):
            problem = f"must be a multiple of the {t.currency} minor unit"
        if problem:
            errors.append(("rounding_increment", problem))
    return errors


def _format_quantity(value: Decimal) -> str:
    # "130", not "1.3E+2", on the printed invoice.
    return f"{value.normalize():f}"


def _format_percent(value: Decimal) -> str:
    return f"{value.normalize():+f} %"


def prepare_tariff(t: Tariff) -> PreparedTariff:
    """Validate a tariff and precompute what every bill on it shares; raises InvalidTariff."""
    errors = validate_tariff(t, tenant_currency=t.currency)
    if errors:
        raise InvalidTariff(errors)
    currency = t.currency
    quantum = money_quantum(currency)
    fixed_lines = tuple(
        Line("fixed", c.name, _ONE, c.amount, round_money(c.amount, currency))
        for c in t.fixed_charges
    )
    blocks = []
    lower = _ZERO
    for block in t.blocks:
        if block.up_to is not None:
            span = f"{_format_quantity(lower)}-{_format_quantity(block.up_to)}"
            description = f"Consumo {span} {t.unit}"
        elif lower:
            description = f"Consumo > {_format_quantity(lower)} {t.unit}"
        else:
            description = f"Consumo ({t.unit})"
        full_line = None
        if block.up_to is not None:
            quantity = block.up_to - lower
            amount = round_money(quantity * block.unit_price, currency)
            full_line = Line("consumption", description, quantity, block.unit_price, amount)
        blocks.append(
            _PreparedBlock(lower, block.up_to, block.unit_price, description, full_line)
        )
        lower = block.up_to if block.up_to is not None else lower
    subsistence = blocks[0].full_line
    adjustments = {}
    for stratum, a in t.stratum_adjustments.items():
        if not a.percent:
            continue
        kind = "subsidy" if a.percent < 0 else "contribution"
        factor = a.percent / _HUNDRED
        description = (
            f"{'Subsidio' if a.percent < 0 else 'Contribución'} estrato {stratum}"
            f" ({_format_percent(a.percent)})"
        )
        full_subsistence_line = None
        if a.applies_to == "subsistence" and subsistence is not None:
            base = subsistence.amount
            amount = round_money(base * factor, currency)
            if amount:
                full_subsistence_line = Line(kind, description, base, factor, amount)
        adjustments[stratum] = _PreparedAdjustment(
            kind, factor, a.applies_to == "subsistence", description, full_subsistence_line
        )
    taxes = tuple(
        _PreparedTax(rule.name, rule.rate / _HUNDRED, frozenset(rule.applies_to))
        for rule in t.taxes
    )
    return PreparedTariff(
        tariff=t,
        quantum=quantum,
        fixed_lines=fixed_lines,
        fixed_total=sum((line.amount for line in fixed_lines), _ZERO),
        blocks=tuple(blocks),
        adjustments=adjustments,
        taxes=taxes,
        late_fee_factor=t.late_fee_monthly_rate / _HUNDRED,
        rounding_increment=t.rounding_increment,
        rounding_lines={},
    )


# Keyed by id() with the tariff itself kept alive beside it, so an id is never reused while cached;
# Tariff holds a mapping and is not hashable, and hashing it per bill would cost more than the bill.
_PREPARED: dict[int, tuple[Tariff, PreparedTariff]] = {}
_PREPARED_MAX = 256


def _prepared(tariff: Tariff | PreparedTariff) -> PreparedTariff:
    if type(tariff) is PreparedTariff:
        return tariff
    hit = _PREPARED.get(id(tariff))
    if hit is not None and hit[0] is tariff:
        return hit[1]
    if not isinstance(tariff, Tariff):
        raise TypeError("tariff must be a Tariff or a PreparedTariff")
    prepared = prepare_tariff(tariff)
    if len(_PREPARED) >= _PREPARED_MAX:
        _PREPARED.clear()
    _PREPARED[id(tariff)] = (tariff, prepared)
    return prepared


def _require_decimal(name: str, value: object) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite")


def calculate_bill(
    *,
    tariff: Tariff | PreparedTariff,
    stratum: str,
    consumption: Decimal,
    arrears: Decimal = _ZERO,
    arrears_months: int = 1,
    adjustments: Sequence[tuple[str, Decimal]] = (),
    untaxed_adjustments: Sequence[tuple[str, Decimal]] = (),
) -> Bill:
    """Compute one bill's lines and totals from a tariff and the period's consumption."""
    p = tariff if type(tariff) is PreparedTariff else _prepared(tariff)
    if stratum not in STRATA:
        # A mistyped stratum must not silently drop a subsidy.
        raise ValueError(f"unknown stratum {stratum!r}")
    _require_decimal("consumption", consumption)
    if consumption < 0:
        raise ValueError("consumption must not be negative")
    if arrears_months < 0:
        raise ValueError("arrears_months must not be negative")
    quantum = p.quantum

    lines = list(p.fixed_lines)
    # Running sums by kind are all that taxes and the subtotal need.
    sums = {"fixed": p.fixed_total}

    consumption_total = _ZERO
    subsistence_amount = _ZERO
    subsistence_full = False
    if consumption:
        blocks = p.blocks
        for block in blocks:
            if consumption <= block.lower:
                break
            upper = block.upper
            if upper is not None and consumption >= upper:
                if consumption > upper and block is blocks[-1]:
                    raise ValueError(
                        f"consumption {consumption} exceeds the last block's up_to {upper}"
                    )
                line = block.full_line
                if block is blocks[0]:
                    subsistence_full = True
            else:
                quantity = consumption - block.lower
                price = block.unit_price
                amount = (quantity * price).quantize(quantum, ROUND_HALF_UP)
                line = Line("consumption", block.description, quantity, price, amount)
            lines.append(line)
            if block is blocks[0]:
                subsistence_amount = line.amount
            consumption_total += line.amount
        sums["consumption"] = consumption_total

    stratum_adjustment = p.adjustments.get(stratum)
    if stratum_adjustment is not None:
        on_subsistence = stratum_adjustment.on_subsistence
        if on_subsistence and subsistence_full:
            line = stratum_adjustment.full_subsistence_line
        else:
            base = subsistence_amount if on_subsistence else consumption_total
            factor = stratum_adjustment.factor
            amount = (base * factor).quantize(quantum, ROUND_HALF_UP)
            line = (
                Line(stratum_adjustment.kind, stratum_adjustment.description, base, factor, amount)
                if amount
                else None
            )
        if line is not None:
            lines.append(line)
            sums[line.kind] = line.amount

    carried = _ZERO
    if adjustments:
        adjustment_total = _ZERO
        for description, value in adjustments:
            _require_decimal("adjustment amount", value)
            # Adding zero turns a rounded -0 into 0.
            amount = value.quantize(quantum, ROUND_HALF_UP) + _ZERO
            lines.append(Line("adjustment", description, _ONE, value, amount))
            adjustment_total += amount
        sums["adjustment"] = adjustment_total
    for description, value in untaxed_adjustments:
        _require_decimal("adjustment amount", value)
        amount = value.quantize(quantum, ROUND_HALF_UP) + _ZERO
        lines.append(Line("adjustment", description, _ONE, value, amount))
        # Kept out of `sums` like arrears: in the subtotal, never in a tax base.
        carried += amount

    if arrears:
        _require_decimal("arrears", arrears)
        owed = arrears.quantize(quantum, ROUND_HALF_UP) + _ZERO
        carried += owed
        # Kept out of `sums`: the prior balance was already taxed on its own invoice.
        lines.append(Line("adjustment", ARREARS_DESCRIPTION, _ONE, arrears, owed))
        if arrears > 0:
            factor = p.late_fee_factor * arrears_months
            amount = (arrears * factor).quantize(quantum, ROUND_HALF_UP)
            if amount:
                lines.append(Line("late_fee", LATE_FEE_DESCRIPTION, arrears, factor, amount))
                sums["late_fee"] = amount
    elif not isinstance(arrears, Decimal):
        _require_decimal("arrears", arrears)

    subtotal = sum(sums.values(), carried)

    tax_total = _ZERO
    for rule in p.taxes:
        base = _ZERO
        for kind, amount in sums.items():
            if kind in rule.kinds:
                base += amount
        amount = (base * rule.factor).quantize(quantum, ROUND_HALF_UP)
        if amount:
            lines.append(Line("tax", rule.description, base, rule.factor, amount))
            tax_total += amount

    total = subtotal + tax_total
    increment = p.rounding_increment
    if increment is not None:
        target = (total / increment).quantize(_ONE, ROUND_HALF_UP) * increment
        amount = (target - total).quantize(quantum, ROUND_HALF_UP)
        if amount:
            line = p.rounding_lines.get(amount)
            if line is None:
                line = Line("rounding", ROUNDING_DESCRIPTION, _ONE, amount, amount)
                if len(p.rounding_lines) < 4096:
                    p.rounding_lines[amount] = line
            lines.append(line)
            total += amount

    if abs(total) > MAX_BILL_TOTAL:
        # The run records this contract as failed instead of writing an amount no column holds.
        raise ValueError(f"the bill total {total:f} is above the maximum {MAX_BILL_TOTAL:f}")
    return Bill(
        tuple(lines),
        subtotal.quantize(quantum),
        tax_total.quantize(quantum),
        total.quantize(quantum),
        p.tariff.currency,
    )

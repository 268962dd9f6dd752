"""Table-driven tests of the pure billing calculator, with exact Decimals."""

from dataclasses import replace
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.billing_calculator import (
    Block,
    FixedCharge,
    InvalidTariff,
    StratumAdjustment,
    Tariff,
    TaxRule,
    calculate_bill,
    prepare_tariff,
    validate_tariff,
)
from domain.demo_tariffs import DEMO_TARIFFS
from domain.money import MINOR_UNITS, money_rounder, round_money

COLOMBIAN_STRATA = {
    "1": StratumAdjustment(D(-50), "subsistence"),
    "2": StratumAdjustment(D(-40), "subsistence"),
    "3": StratumAdjustment(D(-15), "subsistence"),
    "5": StratumAdjustment(D(20), "consumption"),
    "6": StratumAdjustment(D(20), "consumption"),
    "commercial": StratumAdjustment(D(20), "consumption"),
    "industrial": StratumAdjustment(D(20), "consumption"),
}

# Three blocks at distinct prices so every line shows which block it came from.
COP = Tariff(
    currency="COP",
    fixed_charges=(FixedCharge("Cargo fijo", D(10000)),),
    blocks=(Block(D(130), D(800)), Block(D(400), D(900)), Block(None, D(1000))),
    stratum_adjustments=COLOMBIAN_STRATA,
    taxes=(),
    late_fee_monthly_rate=D(2),
    rounding_increment=None,
)

# DOMAIN.md's cross-check tariff.
CROSS_CHECK = Tariff(
    currency="CLP",
    fixed_charges=(FixedCharge("Cargo fijo", D("1033.19")), FixedCharge("Cargo extra", D(450))),
    blocks=(Block(None, D("160.55")),),
    stratum_adjustments={},
    taxes=(TaxRule("IVA 19 %", D(19), ("fixed", "consumption")),),
    late_fee_monthly_rate=D(0),
    rounding_increment=None,
)


def rows(bill):
    return [(line.kind, line.quantity, line.unit_price, line.amount) for line in bill.lines]


def amounts(bill, kind):
    return [line.amount for line in bill.lines if line.kind == kind]


def assert_consistent(bill):
    places = MINOR_UNITS[bill.currency]
    for line in bill.lines:
        assert line.amount == round_money(line.quantity * line.unit_price, bill.currency)
        assert line.amount.as_tuple().exponent == -places
    assert bill.subtotal == sum(
        (ln.amount for ln in bill.lines if ln.kind not in ("tax", "rounding")), D(0)
    )
    assert bill.tax == sum((ln.amount for ln in bill.lines if ln.kind == "tax"), D(0))
    assert bill.total == bill.subtotal + bill.tax + sum(amounts(bill, "rounding"), D(0))


# --- The cross-check -------------------------------------------------------------------------


def test_cross_check_clp_lines_and_total():
    bill = calculate_bill(tariff=CROSS_CHECK, stratum="4", consumption=D(100))
    assert [(kind, amount) for kind, _, _, amount in rows(bill)] == [
        ("fixed", D(1033)),
        ("fixed", D(450)),
        ("consumption", D(16055)),
        ("tax", D(3332)),
    ]
    assert (bill.subtotal, bill.tax, bill.total) == (D(17538), D(3332), D(20870))
    assert str(bill.total) == "20870"
    assert_consistent(bill)


def test_cross_check_kept_at_two_decimals_is_wrong_for_clp():
    cents = D("0.01")
    fixed = D("1033.19") + D(450)
    consumption = (D(100) * D("160.55")).quantize(cents, ROUND_HALF_UP)
    vat = ((fixed + consumption) * D("0.19")).quantize(cents, ROUND_HALF_UP)
    two_decimals = fixed + consumption + vat
    assert two_decimals == D("20870.45")
    bill = calculate_bill(tariff=CROSS_CHECK, stratum="4", consumption=D(100))
    assert bill.total == D(20870) != two_decimals


# --- Strata ----------------------------------------------------------------------------------

# 200 kWh: block 1 is 130 x 800 = 104000, block 2 is 70 x 900 = 63000, fixed 10000.
@pytest.mark.parametrize(
    ("stratum", "adjustment_row", "total"),
    [
        ("1", ("subsidy", D(104000), D("-0.5"), D(-52000)), D(125000)),
        ("2", ("subsidy", D(104000), D("-0.4"), D(-41600)), D(135400)),
        ("3", ("subsidy", D(104000), D("-0.15"), D(-15600)), D(161400)),
        ("4", None, D(177000)),
        ("5", ("contribution", D(167000), D("0.2"), D(33400)), D(210400)),
        ("6", ("contribution", D(167000), D("0.2"), D(33400)), D(210400)),
        ("commercial", ("contribution", D(167000), D("0.2"), D(33400)), D(210400)),
        ("industrial", ("contribution", D(167000), D("0.2"), D(33400)), D(210400)),
        ("official", None, D(177000)),
    ],
)
def test_stratum_adjustment(stratum, adjustment_row, total):
    bill = calculate_bill(tariff=COP, stratum=stratum, consumption=D(200))
    expected = [
        ("fixed", D(1), D(10000), D(10000)),
        ("consumption", D(130), D(800), D(104000)),
        ("consumption", D(70), D(900), D(63000)),
    ]
    if adjustment_row:
        expected.append(adjustment_row)
    assert rows(bill) == expected
    assert bill.total == total
    assert_consistent(bill)


@pytest.mark.parametrize("stratum", ["1", "5", "4"])
def test_zero_consumption_keeps_fixed_charges_only(stratum):
    bill = calculate_bill(tariff=COP, stratum=stratum, consumption=D(0))
    assert rows(bill) == [("fixed", D(1), D(10000), D(10000))]
    assert (bill.subtotal, bill.tax, bill.total) == (D(10000), D(0), D(10000))


def test_subsidy_rounds_half_up_away_from_zero():
    # 1 kWh x 801 = 801; -50 % is -400.5, which rounds to -401.
    tariff = replace(COP, blocks=(Block(D(130), D(801)), Block(None, D(900))))
    bill = calculate_bill(tariff=tariff, stratum="1", consumption=D(1))
    assert amounts(bill, "subsidy") == [D(-401)]


def test_descriptions_name_blocks_and_stratum():
    bill = calculate_bill(tariff=COP, stratum="2", consumption=D(500))
    assert [line.description for line in bill.lines] == [
        "Cargo fijo",
        "Consumo 0-130 kWh",
        "Consumo 130-400 kWh",
        "Consumo > 400 kWh",
        "Subsidio estrato 2 (-40 %)",
    ]


# --- Block boundaries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumption", "consumption_rows"),
    [
        (D(0), []),
        (D("0.4"), [(D("0.4"), D(800), D(320))]),
        (D(129), [(D(129), D(800), D(103200))]),
        (D("129.5"), [(D("129.5"), D(800), D(103600))]),
        (D(130), [(D(130), D(800), D(104000))]),
        (D("130.5"), [(D(130), D(800), D(104000)), (D("0.5"), D(900), D(450))]),
        (D(131), [(D(130), D(800), D(104000)), (D(1), D(900), D(900))]),
        (D(399), [(D(130), D(800), D(104000)), (D(269), D(900), D(242100))]),
        (D(400), [(D(130), D(800), D(104000)), (D(270), D(900), D(243000))]),
        (
            D(401),
            [
                (D(130), D(800), D(104000)),
                (D(270), D(900), D(243000)),
                (D(1), D(1000), D(1000)),
            ],
        ),
    ],
)
def test_consumption_split_over_blocks(consumption, consumption_rows):
    bill = calculate_bill(tariff=COP, stratum="4", consumption=consumption)
    assert [r[1:] for r in rows(bill) if r[0] == "consumption"] == consumption_rows
    assert sum(r[0] for r in consumption_rows) == consumption
    assert_consistent(bill)


@pytest.mark.parametrize(
    ("consumption", "subsidy"),
    [
        (D(129), D(-51600)),  # all in the subsistence block
        (D(130), D(-52000)),
        (D(131), D(-52000)),  # the extra kWh is not subsidised
    ],
)
def test_subsidy_stops_at_the_subsistence_boundary(consumption, subsidy):
    bill = calculate_bill(tariff=COP, stratum="1", consumption=consumption)
    assert amounts(bill, "subsidy") == [subsidy]


def test_a_tariff_with_a_closed_last_block_cannot_bill():
    tariff = replace(COP, blocks=(Block(D(130), D(800)), Block(D(400), D(900))))
    # Consumption above 400 would have no price: the tariff is refused before any bill.
    with pytest.raises(ValueError, match="last block must be open"):
        calculate_bill(tariff=tariff, stratum="4", consumption=D(400))


def test_a_bill_above_the_maximum_total_is_refused():
    tariff = replace(COP, blocks=(Block(None, D(1000000000)),))
    with pytest.raises(ValueError, match="above the maximum"):
        calculate_bill(tariff=tariff, stratum="4", consumption=D(1000000))


# --- Money rounding per currency -------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        (D("1033.19"), "CLP", "1033"),
        (D("0.5"), "CLP", "1"),
        (D("2.5"), "CLP", "3"),
        (D("1.49"), "CLP", "1"),
        (D("-0.5"), "CLP", "-1"),
        (D("1234.5"), "COP", "1235"),
        (D("1234.49"), "COP", "1234"),
        (D("0.005"), "BRL", "0.01"),
        (D("0.004"), "BRL", "0.00"),
        (D("1.005"), "BRL", "1.01"),
        (D("2.675"), "BRL", "2.68"),
        (D("-0.005"), "BRL", "-0.01"),
        (D(7), "BRL", "7.00"),
        (D("10.125"), "USD", "10.13"),
    ],
)
def test_round_money(amount, currency, rounded):
    assert str(round_money(amount, currency)) == rounded
    assert str(money_rounder(currency)(amount)) == rounded  # the same rule, looked up once for a page


def test_round_money_unknown_currency():
    with pytest.raises(ValueError, match="EUR"):
        round_money(D(1), "EUR")
    with pytest.raises(ValueError, match="EUR"):
        money_rounder("EUR")


BRL = Tariff(
    currency="BRL",
    fixed_charges=(FixedCharge("Custo de disponibilidade", D("12.345")),),
    blocks=(Block(None, D("0.78905")),),
    stratum_adjustments={},
    taxes=(TaxRule("ICMS", D(18), ("fixed", "consumption")),),
    late_fee_monthly_rate=D(1),
    rounding_increment=None,
)


def test_brl_bill_rounds_each_line_to_cents():
    # 150 x 0.78905 = 118.3575; ICMS 18 % of 130.71 = 23.5278.
    bill = calculate_bill(tariff=BRL, stratum="4", consumption=D(150))
    assert [str(line.amount) for line in bill.lines] == ["12.35", "118.36", "23.53"]
    assert [str(x) for x in (bill.subtotal, bill.tax, bill.total)] == ["130.71", "23.53", "154.24"]
    assert_consistent(bill)


def test_brl_half_cent_line_rounds_up():
    tariff = replace(BRL, fixed_charges=(), taxes=(), blocks=(Block(None, D("0.005")),))
    bill = calculate_bill(tariff=tariff, stratum="4", consumption=D(1))
    assert str(bill.total) == "0.01"
    assert str(calculate_bill(tariff=tariff, stratum="4", consumption=D(0)).total) == "0.00"


# --- Rounding increment ----------------------------------------------------------------------


def _unit_priced(currency, increment):
    # One open block at 1 per unit, so the consumption is the pre-rounding total.
    return Tariff(currency, (), (Block(None, D(1)),), {}, (), D(0), increment)


@pytest.mark.parametrize(
    ("currency", "increment", "before", "rounding", "total"),
    [
        ("COP", D(10), D(151012), D(-2), D(151010)),
        ("COP", D(10), D(235436), D(4), D(235440)),
        ("COP", D(10), D(1005), D(5), D(1010)),
        ("COP", D(10), D(1004), D(-4), D(1000)),
        ("COP", D(10), D(1000), None, D(1000)),
        ("CLP", D(50), D(20870), D(-20), D(20850)),
        ("CLP", D(50), D(20875), D(25), D(20900)),
        ("CLP", D(50), D(20824), D(-24), D(20800)),
        ("CLP", D(50), D(20900), None, D(20900)),
        ("BRL", D("0.05"), D("10.12"), D("-0.02"), D("10.10")),
        ("BRL", D("0.05"), D("10.13"), D("0.02"), D("10.15")),
    ],
)
def test_rounding_increment(currency, increment, before, rounding, total):
    bill = calculate_bill(
        tariff=_unit_priced(currency, increment), stratum="4", consumption=before
    )
    assert amounts(bill, "rounding") == ([rounding] if rounding is not None else [])
    assert bill.subtotal == before
    assert bill.total == total
    assert bill.total % increment == 0
    assert_consistent(bill)


def test_rounding_line_comes_last_and_rounds_the_taxed_total():
    bill = calculate_bill(
        tariff=replace(CROSS_CHECK, rounding_increment=D(50)), stratum="4", consumption=D(100)
    )
    assert rows(bill)[-1] == ("rounding", D(1), D(-20), D(-20))
    assert (bill.subtotal, bill.tax, bill.total) == (D(17538), D(3332), D(20850))


# --- Arrears and late fee --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrears", "months", "extra_rows", "total"),
    [
        (D(0), 1, [], D(10000)),
        (
            D(45210),
            1,
            [("adjustment", D(1), D(45210), D(45210)),
             ("late_fee", D(45210), D("0.02"), D(904))],  # 904.2
            D(56114),
        ),
        (
            D(45210),
            3,
            [("adjustment", D(1), D(45210), D(45210)),
             ("late_fee", D(45210), D("0.06"), D(2713))],  # 2712.6
            D(57923),
        ),
        (
            D(25),
            1,
            [("adjustment", D(1), D(25), D(25)),
             ("late_fee", D(25), D("0.02"), D(1))],  # 0.5 rounds up
            D(10026),
        ),
        (D(-5000), 1, [("adjustment", D(1), D(-5000), D(-5000))], D(5000)),
        (D(45210), 0, [("adjustment", D(1), D(45210), D(45210))], D(55210)),
    ],
)
def test_arrears_and_late_fee(arrears, months, extra_rows, total):
    bill = calculate_bill(
        tariff=COP, stratum="4", consumption=D(0), arrears=arrears, arrears_months=months
    )
    assert rows(bill) == [("fixed", D(1), D(10000), D(10000))] + extra_rows
    assert bill.total == total
    assert_consistent(bill)


def test_arrears_line_is_the_prior_balance():
    bill = calculate_bill(tariff=COP, stratum="4", consumption=D(0), arrears=D(100))
    assert [ln.description for ln in bill.lines if ln.kind == "adjustment"] == ["Saldo anterior"]


def test_operator_adjustments_are_rounded_lines():
    bill = calculate_bill(
        tariff=COP,
        stratum="4",
        consumption=D(0),
        adjustments=[("Reconexión", D("35000.5")), ("Nota crédito", D("-0.4"))],
    )
    assert [(ln.description, ln.amount) for ln in bill.lines if ln.kind == "adjustment"] == [
        ("Reconexión", D(35001)),
        ("Nota crédito", D(0)),
    ]
    assert str(bill.lines[-1].amount) == "0"
    assert bill.total == D(45001)


# --- Taxes -----------------------------------------------------------------------------------

# Fixed 1000, consumption 10 x 100 = 1000, stratum 5 contribution 200, operator adjustment 500,
# arrears 1000 with a 2 % late fee of 20: subtotal 3720 before tax.
def _taxed(applies_to):
    return Tariff(
        currency="CLP",
        fixed_charges=(FixedCharge("Cargo fijo", D(1000)),),
        blocks=(Block(None, D(100)),),
        stratum_adjustments={"5": StratumAdjustment(D(20), "consumption")},
        taxes=(TaxRule("IVA", D(19), applies_to),),
        late_fee_monthly_rate=D(2),
        rounding_increment=None,
    )


@pytest.mark.parametrize(
    ("applies_to", "base", "tax"),
    [
        ((), None, D(0)),
        (("consumption",), D(1000), D(190)),
        (("fixed",), D(1000), D(190)),
        (("fixed", "consumption"), D(2000), D(380)),
        (("contribution",), D(200), D(38)),
        (("late_fee",), D(20), D(4)),  # 3.8
        (("adjustment",), D(500), D(95)),  # the prior balance is never taxed
        (("fixed", "consumption", "contribution", "late_fee", "adjustment"), D(2720), D(517)),
    ],
)
def test_taxes_apply_only_to_taxable_kinds(applies_to, base, tax):
    bill = calculate_bill(
        tariff=_taxed(applies_to),
        stratum="5",
        consumption=D(10),
        arrears=D(1000),
        adjustments=[("Reconexión", D(500))],
    )
    tax_rows = [r for r in rows(bill) if r[0] == "tax"]
    assert tax_rows == ([("tax", base, D("0.19"), tax)] if base is not None else [])
    assert bill.subtotal == D(3720)
    assert bill.tax == tax
    assert bill.total == D(3720) + tax
    assert_consistent(bill)


def test_tax_on_subsidised_consumption_uses_the_net_base():
    tariff = replace(
        COP, taxes=(TaxRule("IVA", D(19), ("consumption", "subsidy")),), fixed_charges=()
    )
    bill = calculate_bill(tariff=tariff, stratum="1", consumption=D(100))
    # 80000 consumption - 40000 subsidy = 40000; 19 % = 7600.
    assert amounts(bill, "tax") == [D(7600)]
    assert bill.total == D(47600)


def test_several_tax_rules_each_round_their_own_line():
    tariff = replace(
        CROSS_CHECK,
        taxes=(
            TaxRule("IVA", D(19), ("fixed", "consumption")),
            TaxRule("Impuesto específico", D("0.5"), ("consumption",)),
        ),
    )
    bill = calculate_bill(tariff=tariff, stratum="4", consumption=D(100))
    assert amounts(bill, "tax") == [D(3332), D(80)]  # 16055 x 0.005 = 80.275
    assert bill.total == D(20950)


# --- Every line kind -------------------------------------------------------------------------


def _every_kind(stratum):
    tariff = replace(
        COP,
        taxes=(TaxRule("IVA", D(19), ("fixed",)),),
        rounding_increment=D(10),
    )
    return calculate_bill(
        tariff=tariff,
        stratum=stratum,
        consumption=D(135),
        arrears=D(1234),
        adjustments=[("Reconexión", D(5000))],
    )


@pytest.mark.parametrize(
    ("kind", "stratum"),
    [
        ("fixed", "1"),
        ("consumption", "1"),
        ("subsidy", "1"),
        ("contribution", "5"),
        ("tax", "1"),
        ("late_fee", "1"),
        ("rounding", "1"),
        ("adjustment", "1"),
    ],
)
def test_every_line_kind_is_produced(kind, stratum):
    bill = _every_kind(stratum)
    assert kind in {line.kind for line in bill.lines}
    assert_consistent(bill)


def test_line_order_is_stable():
    assert [line.kind for line in _every_kind("1").lines] == [
        "fixed",
        "consumption",
        "consumption",
        "subsidy",
        "adjustment",
        "adjustment",
        "late_fee",
        "tax",
        "rounding",
    ]


# --- Inputs and prepared tariffs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"consumption": D(-1)}, ValueError),
        ({"consumption": 1.5}, TypeError),
        ({"consumption": 150}, TypeError),
        ({"consumption": D("NaN")}, ValueError),
        ({"consumption": D(1), "arrears": 100.0}, TypeError),
        ({"consumption": D(1), "arrears_months": -1, "arrears": D(1)}, ValueError),
        ({"consumption": D(1), "stratum": "7"}, ValueError),
        ({"consumption": D(1), "adjustments": [("x", 1.0)]}, TypeError),
    ],
)
def test_bad_inputs_are_refused(kwargs, error):
    kwargs = {"stratum": "4", **kwargs}
    with pytest.raises(error):
        calculate_bill(tariff=COP, **kwargs)


def test_invalid_tariff_is_refused_with_its_errors():
    with pytest.raises(InvalidTariff) as raised:
        calculate_bill(tariff=replace(COP, blocks=()), stratum="4", consumption=D(1))
    assert raised.value.errors == [("blocks", "at least one block is required")]


def test_prepared_tariff_gives_the_same_bill():
    prepared = prepare_tariff(COP)
    for consumption in (D(0), D(130), D("401.25")):
        for stratum in ("1", "5"):
            assert calculate_bill(
                tariff=prepared, stratum=stratum, consumption=consumption
            ) == calculate_bill(tariff=COP, stratum=stratum, consumption=consumption)


def test_tariff_containers_are_frozen():
    tariff = Tariff(
        "CLP",
        [FixedCharge("Cargo fijo", D(1))],
        [Block(None, D(1))],
        {"1": StratumAdjustment(D(-10), "subsistence")},
        [TaxRule("IVA", D(19), ["fixed"])],
        D(0),
        None,
    )
    assert isinstance(tariff.blocks, tuple) and isinstance(tariff.taxes[0].applies_to, tuple)
    with pytest.raises(TypeError):
        tariff.stratum_adjustments["2"] = StratumAdjustment(D(-5), "subsistence")
    assert tariff == replace(tariff)


# --- validate_tariff -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"blocks": ()}, "blocks"),
        ({"blocks": (Block(D(100), D(1)), Block(D(50), D(1)), Block(None, D(1)))},
         "blocks[1].up_to"),
        ({"blocks": (Block(D(100), D(1)), Block(D(100), D(1)))}, "blocks[1].up_to"),
        ({"blocks": (Block(None, D(1)), Block(D(100), D(1)), Block(None, D(1)))}, "blocks[0].up_to"),
        ({"blocks": (Block(D(130), D(800)), Block(D(400), D(900)))}, "blocks[1].up_to"),  # closed last block
        ({"blocks": (Block(None, D("1e-12")),)}, "blocks[0].unit_price"),
        ({"blocks": (Block(None, D("1e30")),)}, "blocks[0].unit_price"),
        ({"blocks": (Block(D("1e13"), D(1)), Block(None, D(1)))}, "blocks[0].up_to"),
        ({"blocks": (Block(D("0.0001"), D(1)), Block(None, D(1)))}, "blocks[0].up_to"),
        ({"fixed_charges": (FixedCharge("Cargo fijo", D("1e30")),)}, "fixed_charges[0].amount"),
        ({"fixed_charges": (FixedCharge("Cargo fijo", D("1e-12")),)}, "fixed_charges[0].amount"),
        ({"blocks": (Block(D(0), D(1)), Block(None, D(1)))}, "blocks[0].up_to"),
        ({"blocks": (Block(D(-5), D(1)), Block(None, D(1)))}, "blocks[0].up_to"),
        ({"blocks": (Block(D(130), D(800)), Block(None, D(-1)))}, "blocks[1].unit_price"),
        ({"blocks": (Block(None, 800.0),)}, "blocks[0].unit_price"),
        ({"blocks": (Block(None, 800),)}, "blocks[0].unit_price"),
        ({"blocks": (Block(D("Infinity"), D(1)),)}, "blocks[0].up_to"),
        ({"fixed_charges": (FixedCharge("Cargo fijo", D(-1)),)}, "fixed_charges[0].amount"),
        ({"fixed_charges": (FixedCharge("a", D(1)), FixedCharge("b", D("NaN")))},
         "fixed_charges[1].amount"),
        ({"taxes": (TaxRule("IVA", D(101), ("fixed",)),)}, "taxes[0].rate"),
        ({"taxes": (TaxRule("IVA", D(-1), ("fixed",)),)}, "taxes[0].rate"),
        ({"taxes": (TaxRule("IVA", D(19), ("fixed", "shipping")),)}, "taxes[0].applies_to[1]"),
        ({"taxes": (TaxRule("IVA", D(19), ("tax",)),)}, "taxes[0].applies_to[0]"),
        ({"taxes": (TaxRule("IVA", D(19), ("rounding",)),)}, "taxes[0].applies_to[0]"),
        ({"stratum_adjustments": {"1": StratumAdjustment(D(-101), "subsistence")}},
         "stratum_adjustments[1].percent"),
        ({"stratum_adjustments": {"5": StratumAdjustment(D("100.5"), "consumption")}},
         "stratum_adjustments[5].percent"),
        ({"stratum_adjustments": {"1": StratumAdjustment(D(-50), "everything")}},
         "stratum_adjustments[1].applies_to"),
        ({"stratum_adjustments": {"7": StratumAdjustment(D(-50), "subsistence")}},
         "stratum_adjustments[7]"),
        ({"late_fee_monthly_rate": D(-1)}, "late_fee_monthly_rate"),
        ({"late_fee_monthly_rate": D(101)}, "late_fee_monthly_rate"),
        ({"currency": "EUR"}, "currency"),
        ({"currency": "CLP"}, "currency"),  # not the tenant's COP
        ({"rounding_increment": D(0)}, "rounding_increment"),
        ({"rounding_increment": D(-10)}, "rounding_increment"),
        ({"rounding_increment": D("0.5")}, "rounding_increment"),  # finer than a peso
    ],
)
def test_validate_tariff_names_the_field(changes, path):
    errors = validate_tariff(replace(COP, **changes), tenant_currency="COP")
    assert [p for p, _ in errors] == [path]
    assert all(message for _, message in errors)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"blocks": (Block(D(130), D(800)), Block(None, D("900.123456")))},
        {"fixed_charges": (FixedCharge("Cargo fijo", D(1000000000)),)},
        {"blocks": (Block(None, D(0)),)},
        {"stratum_adjustments": {"1": StratumAdjustment(D(-100), "subsistence")}},
        {"taxes": (TaxRule("IVA", D(100), ("fixed", "late_fee", "adjustment")),)},
        {"late_fee_monthly_rate": D(0)},
        {"rounding_increment": D(50)},
        {"fixed_charges": ()},
    ],
)
def test_validate_tariff_accepts_valid_tariffs(changes):
    assert validate_tariff(replace(COP, **changes), tenant_currency="COP") == []


def test_validate_tariff_reports_every_problem():
    tariff = replace(
        COP,
        currency="EUR",
        blocks=(Block(None, D(-1)), Block(D(5), D(1))),
        late_fee_monthly_rate=D(200),
        rounding_increment=D(0),
    )
    assert [p for p, _ in validate_tariff(tariff, tenant_currency="COP")] == [
        "currency",
        "blocks[0].up_to",
        "blocks[0].unit_price",
        "blocks[1].up_to",
        "late_fee_monthly_rate",
        "rounding_increment",
    ]


# --- Demo tariffs and invariants -------------------------------------------------------------


@pytest.mark.parametrize("service", ["electricity", "water", "gas"])
def test_demo_tariffs_are_valid(service):
    assert validate_tariff(DEMO_TARIFFS[service], tenant_currency="COP") == []


def test_demo_electricity_stratum_1_bill():
    bill = calculate_bill(tariff=DEMO_TARIFFS["electricity"], stratum="1", consumption=D(173))
    # 130 x 847.63 = 110191.9; 43 x 847.63 = 36448.09; half the subsistence value is subsidised.
    assert [(kind, amount) for kind, _, _, amount in rows(bill)] == [
        ("consumption", D(110192)),
        ("consumption", D(36448)),
        ("subsidy", D(-55096)),
        ("rounding", D(-4)),
    ]
    assert bill.total == D(91540)


@settings(max_examples=300, deadline=None)
@given(
    service=st.sampled_from(sorted(DEMO_TARIFFS)),
    stratum=st.sampled_from(["1", "2", "3", "4", "5", "6", "commercial", "industrial", "official"]),
    consumption=st.decimals(min_value=0, max_value=100000, places=3),
    arrears=st.decimals(min_value=-100000, max_value=10000000, places=2),
    months=st.integers(min_value=0, max_value=24),
)
def test_bill_invariants_hold(service, stratum, consumption, arrears, months):
    bill = calculate_bill(
        tariff=DEMO_TARIFFS[service],
        stratum=stratum,
        consumption=consumption,
        arrears=arrears,
        arrears_months=months,
    )
    assert_consistent(bill)
    assert bill.total % 10 == 0
    consumption_lines = [ln for ln in bill.lines if ln.kind == "consumption"]
    assert sum(ln.quantity for ln in consumption_lines) == consumption
    # Recompute the stratum adjustment the slow way, to check the precomputed full-block lines.
    rule = DEMO_TARIFFS[service].stratum_adjustments.get(stratum)
    expected = []
    if rule is not None and consumption_lines:
        bases = consumption_lines[:1] if rule.applies_to == "subsistence" else consumption_lines
        base = sum(ln.amount for ln in bases)
        adjustment = round_money(base * rule.percent / 100, "COP")
        expected = [adjustment] if adjustment else []
    assert amounts(bill, "subsidy") + amounts(bill, "contribution") == expected
    late_fee = round_money(arrears * months * 2 / 100, "COP") if arrears > 0 else D(0)
    assert amounts(bill, "late_fee") == ([late_fee] if late_fee else [])

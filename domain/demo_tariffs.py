"""Realistic Colombian demo tariffs (COP) for electricity, water and gas, to seed a demo tenant."""

from decimal import Decimal

from domain.billing_calculator import Block, FixedCharge, StratumAdjustment, Tariff

# Law 142 of 1994: strata 1-3 are subsidised on the subsistence block, 5-6 and commercial/industrial
# users pay a 20 % contribution on all consumption, stratum 4 and official users pay the cost.
_STRATA = {
    "1": StratumAdjustment(Decimal(-50), "subsistence"),
    "2": StratumAdjustment(Decimal(-40), "subsistence"),
    "3": StratumAdjustment(Decimal(-15), "subsistence"),
    "5": StratumAdjustment(Decimal(20), "consumption"),
    "6": StratumAdjustment(Decimal(20), "consumption"),
    "commercial": StratumAdjustment(Decimal(20), "consumption"),
    "industrial": StratumAdjustment(Decimal(20), "consumption"),
}
_LATE_FEE = Decimal(2)
_ROUND_TO = Decimal(10)

# Residential electricity carries no VAT in Colombia, and the unit cost (CU) is the same in both
# blocks: the first 130 kWh (subsistence above 1000 m altitude) only matter for the subsidy.
ELECTRICITY = Tariff(
    currency="COP",
    fixed_charges=(),
    blocks=(
        Block(Decimal(130), Decimal("847.63")),
        Block(None, Decimal("847.63")),
    ),
    stratum_adjustments=_STRATA,
    taxes=(),
    late_fee_monthly_rate=_LATE_FEE,
    rounding_increment=_ROUND_TO,
    unit="kWh",
)

# Water: basic consumption 11 m3 (CRA rule for cities above 2000 m), complementary up to 22 m3,
# and sumptuary consumption above that priced higher to discourage waste.
WATER = Tariff(
    currency="COP",
    fixed_charges=(
        FixedCharge("Cargo fijo acueducto", Decimal("12450.30")),
        FixedCharge("Cargo fijo alcantarillado", Decimal("6320.85")),
    ),
    blocks=(
        Block(Decimal(11), Decimal("3150.40")),
        Block(Decimal(22), Decimal("3150.40")),
        Block(None, Decimal("4410.56")),
    ),
    stratum_adjustments=_STRATA,
    taxes=(),
    late_fee_monthly_rate=_LATE_FEE,
    rounding_increment=_ROUND_TO,
    unit="m3",
)

# Natural gas: subsistence consumption is 20 m3 a month.
GAS = Tariff(
    currency="COP",
    fixed_charges=(FixedCharge("Cargo fijo", Decimal("3580.00")),),
    blocks=(
        Block(Decimal(20), Decimal("3420.15")),
        Block(None, Decimal("3420.15")),
    ),
    stratum_adjustments=_STRATA,
    taxes=(),
    late_fee_monthly_rate=_LATE_FEE,
    rounding_increment=_ROUND_TO,
    unit="m3",
)

DEMO_TARIFFS: dict[str, Tariff] = {"electricity": ELECTRICITY, "water": WATER, "gas": GAS}

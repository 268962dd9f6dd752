"""Micro benchmark of calculate_bill; prints one JSON line with the bills per second."""

import argparse
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python bench/calculator.py` from anywhere: make the project root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.billing_calculator import calculate_bill
from domain.demo_tariffs import DEMO_TARIFFS

STRATA = ("1", "2", "3", "4", "5", "6", "commercial", "industrial", "official")


def make_inputs(count: int, seed: int) -> list[tuple]:
    """Build a pool of realistic bill inputs: mixed services, strata, consumptions and arrears."""
    rng = random.Random(seed)
    services = sorted(DEMO_TARIFFS)
    inputs = []
    for _ in range(count):
        service = rng.choice(services)
        top = 600 if service == "electricity" else 60
        consumption = Decimal(rng.randint(0, top * 100)) / 100
        # About one customer in five carries an unpaid balance into the bill.
        arrears = Decimal(rng.randint(1000, 300000)) if rng.random() < 0.2 else Decimal(0)
        inputs.append((DEMO_TARIFFS[service], rng.choice(STRATA), consumption, arrears))
    return inputs


def main() -> None:
    """Time N bills over a cycled pool of inputs and print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bills", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261)
    args = parser.parse_args()

    pool = make_inputs(args.pool, args.seed)
    rounds, rest = divmod(args.bills, len(pool))
    batches = [pool] * rounds + [pool[:rest]]
    started = time.perf_counter()
    for batch in batches:
        for tariff, stratum, consumption, arrears in batch:
            calculate_bill(tariff=tariff, stratum=stratum, consumption=consumption, arrears=arrears)
    seconds = time.perf_counter() - started
    result = {
        "bills": args.bills,
        "seconds": round(seconds, 3),
        "bills_per_second": round(args.bills / seconds),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

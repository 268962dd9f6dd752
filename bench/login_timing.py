"""Login timing: a wrong password and an unknown email should cost the same (one bcrypt check each).

Prints one JSON line: mean seconds per failed login for each case and their ratio.
Usage: .venv/bin/python bench/login_timing.py [--rounds 12] [--attempts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app
from clients.sql_client import upgrade_to_head
from controllers import auth_controller, tenant_controller


async def measure(rounds: int, attempts: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(upgrade_to_head, url)
        app = create_app({
            "DATABASE_URL": url, "ENV": "test", "SECRET_KEY": "bench", "VAR_DIR": Path(tmp),
            "BCRYPT_ROUNDS": rounds, "RATE_LIMIT_ENABLED": False, "LOCKOUT_THRESHOLD": 10_000, "LOG_LEVEL": "ERROR",
        })
        async with app.test_app():
            async with app.extensions["cuponera"].sql.session_scope(write=True) as session:
                tenant = await tenant_controller.default_tenant(session=session)
                await auth_controller.create_user(
                    session=session, tenant=tenant, email="known@example.com", password="the right password",
                    role="customer", rounds=rounds,
                )
            client = app.test_client()
            results = {}
            for label, email in (("wrong_password", "known@example.com"), ("unknown_email", "nobody@example.com")):
                started = time.perf_counter()
                for _ in range(attempts):
                    response = await client.post("/api/v1/auth/login", json={"email": email, "password": "not the password"})
                    assert response.status_code == 401
                results[label] = (time.perf_counter() - started) / attempts
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--attempts", type=int, default=20)
    args = parser.parse_args()
    results = asyncio.run(measure(args.rounds, args.attempts))
    print(json.dumps({
        "bcrypt_rounds": args.rounds,
        "attempts": args.attempts,
        "wrong_password_seconds": round(results["wrong_password"], 4),
        "unknown_email_seconds": round(results["unknown_email"], 4),
        "ratio": round(results["unknown_email"] / results["wrong_password"], 3),
    }))


if __name__ == "__main__":
    main()

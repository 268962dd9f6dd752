"""Report routes: staff only, JSON with decimal strings, the same rows as CSV on `Accept: text/csv`."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from controllers import collection_controller, report_controller
from controllers.billing_run_controller import run_period
from models.tenant_model import Tenant
from tests.billing_builders import make_metered_contract, make_tariff
from tests.conftest import ApiClient
from tests.factories import make_contract, make_customer, make_invoice
from tests.payment_builders import BEFORE_DUE, make_coupon, make_debtor


def _csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


async def test_reports_are_for_staff_only(client: ApiClient, customer_user_client: ApiClient) -> None:
    for path in ("/api/v1/reports/aging", "/api/v1/reports/collections?from=2026-11-01&to=2026-11-30", "/api/v1/reports/billing?period=2026-10"):
        assert (await client.get(path)).status_code == 401
        response = await customer_user_client.get(path)
        assert response.status_code == 403 and (await response.get_json())["code"] == "forbidden"


async def test_billing_report_as_json_and_csv(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    await make_tariff(session, tenant, "electricity")
    await make_metered_contract(session, tenant, stratum="1", readings={"2026-10": (100, 100)})
    await make_metered_contract(session, tenant, stratum="6", readings={"2026-10": (300, 300)})
    await session.commit()
    await run_period(session=session, tenant=tenant, period="2026-10", today=date(2026, 11, 5))
    _period, expected = await report_controller.billing(session=session, tenant=tenant, period="2026-10")

    response = await operator_client.get("/api/v1/reports/billing?period=2026-10")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["period"] == "2026-10"
    assert [(r["stratum"], r["invoices"], r["total"], r["subsidies"], r["contributions"]) for r in body["rows"]] == [
        (r.stratum, r.invoices, str(r.total), str(r.subsidies), str(r.contributions)) for r in expected
    ]
    assert all(isinstance(r["total"], str) for r in body["rows"])

    as_csv = await operator_client.get("/api/v1/reports/billing?period=2026-10", headers={"Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.content_type.startswith("text/csv")
    assert 'filename="billing-2026-10.csv"' in as_csv.headers["Content-Disposition"]
    rows = _csv(await as_csv.get_data())
    assert rows == [{k: str(v) for k, v in r.items()} for r in body["rows"]]
    assert [Decimal(r["total"]) for r in rows] == [r.total for r in expected]

    bad = await operator_client.get("/api/v1/reports/billing?period=2026-13")
    assert bad.status_code in (400, 422)
    too_early = await operator_client.get("/api/v1/reports/billing?period=0000-01")
    assert too_early.status_code == 422 and (await too_early.get_json())["code"] == "invalid_period"


async def test_aging_report_defaults_to_today_and_answers_csv(admin_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    contract = await make_contract(session, await make_customer(session, tenant), stratum="3")
    await make_invoice(session, contract, period="2026-09", total="1500", issued_on=date(2026, 9, 1), due_on=date(2026, 9, 16), status="overdue")
    await make_invoice(session, contract, period="2026-10", total="2500", issued_on=date(2026, 10, 1), due_on=date(2026, 11, 20))
    await session.commit()

    response = await admin_client.get("/api/v1/reports/aging?as_of=2026-11-15")
    body = await response.get_json()
    assert response.status_code == 200 and body["as_of"] == "2026-11-15"
    assert body["rows"] == [
        {
            "service": "electricity", "stratum": "3", "currency": "COP", "invoices": 2, "current": "2500", "days_1_30": "0",
            "days_31_60": "1500", "days_61_90": "0", "days_90_plus": "0", "total": "4000",
        }
    ]
    as_csv = await admin_client.get("/api/v1/reports/aging?as_of=2026-11-15", headers={"Accept": "text/csv"})
    assert _csv(await as_csv.get_data()) == [{k: str(v) for k, v in r.items()} for r in body["rows"]]
    today = await admin_client.get("/api/v1/reports/aging")
    assert today.status_code == 200 and date.fromisoformat((await today.get_json())["as_of"]) >= date(2026, 11, 15)


async def test_collections_report_json_csv_and_range_errors(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    key, _raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Banco Popular")
    debtor = await make_debtor(session, tenant, amounts=("4321",))
    reference = (await make_coupon(session, tenant, debtor)).coupon.reference
    await collection_controller.record_collection(
        session=session, bank_key=key, reference=reference, amount=Decimal(4321), paid_at=BEFORE_DUE,
        now=datetime.fromisoformat("2026-11-07T20:00:00+00:00"),
    )

    response = await operator_client.get("/api/v1/reports/collections?from=2026-11-01&to=2026-11-30")
    body = await response.get_json()
    assert response.status_code == 200 and (body["from"], body["to"]) == ("2026-11-01", "2026-11-30")
    assert body["rows"] == [{"day": "2026-11-07", "channel": "bank_api", "currency": "COP", "payments": 1, "amount": "4321"}]
    as_csv = await operator_client.get("/api/v1/reports/collections?from=2026-11-01&to=2026-11-30", headers={"Accept": "text/csv"})
    assert _csv(await as_csv.get_data()) == [{"day": "2026-11-07", "channel": "bank_api", "currency": "COP", "payments": "1", "amount": "4321"}]

    reversed_range = await operator_client.get("/api/v1/reports/collections?from=2026-11-30&to=2026-11-01")
    assert reversed_range.status_code == 422 and (await reversed_range.get_json())["code"] == "invalid_date_range"
    for query in ("from=2026-11-30", "from=9999-12-31&to=9999-12-31", "from=0001-01-01&to=0001-01-01"):
        refused = await operator_client.get(f"/api/v1/reports/collections?{query}")
        assert refused.status_code in (400, 422), query
    far_future = await operator_client.get("/api/v1/reports/aging?as_of=9999-12-31")
    assert far_future.status_code in (400, 422)

"""POST/GET /api/v1/collection-files: a bank's key or an operator, raw or multipart, once per file, 422 with lines."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.datastructures import FileStorage

from controllers import collection_controller
from domain.asobancaria import generate
from models.payment_model import Payment
from models.tenant_model import Tenant
from tests.conftest import ApiClient, logged_in_client
from tests.payment_builders import BEFORE_DUE, coupon_status, make_coupon, make_debtor

PATH = "/api/v1/collection-files"


def upload(content: bytes) -> FileStorage:
    return FileStorage(BytesIO(content), filename="recaudo.txt", content_type="text/plain")
TEXT = {"Content-Type": "text/plain"}


async def coupons(session: AsyncSession, tenant: Tenant, n: int) -> list[tuple[str, Decimal]]:
    made = []
    for i in range(n):
        coupon = (await make_coupon(session, tenant, await make_debtor(session, tenant, name=f"Cliente {i}"))).coupon
        made.append((coupon.reference, coupon.amount))
    return made


def asobancaria(tenant: Tenant, payments: list[tuple[str, Decimal]], modifier: str = "A") -> bytes:
    return generate([(r, a, BEFORE_DUE.date()) for r, a in payments], service_code=tenant.gln, modifier=modifier).encode()


async def test_a_bank_posts_a_file_once_and_reads_its_reconciliation(client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    paid = await coupons(session, tenant, 2)
    _key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Bancolombia")
    auth = {"Authorization": f"Bearer {raw}", **TEXT}
    content = asobancaria(tenant, [*paid, ("999999999999", Decimal(5000))])

    created = await client.post(PATH, data=content, headers=auth)
    assert created.status_code == 201, await created.get_data(as_text=True)
    body = await created.get_json()
    assert (body["status"], body["detail_count"], body["applied_count"], body["exception_count"]) == ("with_exceptions", 3, 2, 1)
    assert (body["total"], body["applied_total"], body["currency"]) == ("175000", "170000", "COP")
    assert body["counts"] == {
        "applied": 2, "duplicate": 0, "unknown_reference": 1, "amount_mismatch": 0, "expired_coupon": 0, "already_paid": 0, "not_payable": 0,
    }
    assert body["amounts"]["applied"] == "170000" and body["amounts"]["unknown_reference"] == "5000"
    assert body["exceptions"] == [
        {"line": 5, "lot": 1, "reference": "999999999999", "amount": "5000", "outcome": "unknown_reference", "expected_amount": None}
    ]
    assert body["collection_date"] == "2026-11-05" and body["bank_code"] == "007" and not body["exceptions_truncated"]
    for reference, _amount in paid:
        assert await coupon_status(session, reference) == "paid"

    again = await client.post(PATH, data=content, headers=auth)
    assert again.status_code == 200 and await again.get_json() == body
    assert await session.scalar(select(func.count()).select_from(Payment)) == 2
    read = await client.get(f"{PATH}/{body['id']}", headers={"Authorization": f"Bearer {raw}"})
    assert read.status_code == 200 and await read.get_json() == body


async def test_an_operator_uploads_a_file_as_multipart(app: object, session: AsyncSession, tenant: Tenant) -> None:
    paid = await coupons(session, tenant, 1)
    operator = await logged_in_client(app, "operator")  # type: ignore[arg-type]
    response = await operator.post(PATH, files={"file": upload(asobancaria(tenant, paid))})
    assert response.status_code == 201, await response.get_data(as_text=True)
    body = await response.get_json()
    assert body["applied_count"] == 1 and body["status"] == "reconciled"
    assert (await operator.get(f"{PATH}/{body['id']}")).status_code == 200
    missing = await operator.post(PATH, files={"other": upload(b"x")})
    assert missing.status_code == 422 and (await missing.get_json())["code"] == "missing_file"


async def test_a_bad_control_total_is_a_422_with_the_lines(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    paid = await coupons(session, tenant, 1)
    lines = asobancaria(tenant, paid).decode().split("\r\n")
    lines[4] = lines[4][:2] + "000000002" + lines[4][11:]  # the file control counts two details
    response = await operator_client.post(PATH, data="\r\n".join(lines).encode(), headers=TEXT)
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = await response.get_json()
    assert (problem["code"], problem["lines"]) == ("control_total_mismatch", [5])
    assert problem["errors"] == [{"field": "line 5", "message": "the file control says 2 details, the file has 1", "code": "file_count_mismatch"}]
    assert await coupon_status(session, paid[0][0]) == "active"


async def test_who_may_send_and_read_files(app: object, client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    content = asobancaria(tenant, [("999999999999", Decimal(1))])
    assert (await client.post(PATH, data=content, headers=TEXT)).status_code == 401
    wrong_key = await client.post(PATH, data=content, headers={"Authorization": "Bearer cbk_nope", **TEXT})
    assert wrong_key.status_code == 401 and (await wrong_key.get_json())["code"] == "invalid_api_key"
    customer = await logged_in_client(app, "customer")  # type: ignore[arg-type]
    assert (await customer.post(PATH, data=content, headers=TEXT)).status_code == 403
    assert (await customer.get(f"{PATH}/1")).status_code == 403
    operator = await logged_in_client(app, "operator")  # type: ignore[arg-type]
    assert (await operator.get(f"{PATH}/999999")).status_code == 404
    empty = await operator.post(PATH, data=b"", headers=TEXT)
    assert (empty.status_code, (await empty.get_json())["code"]) == (422, "missing_file")

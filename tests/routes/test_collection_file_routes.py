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
from tests.conftest import ApiClient, logged_in_client, make_user
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
        {
            "line": 5, "lot": 1, "reference": "999999999999", "amount": "5000", "outcome": "unknown_reference", "expected_amount": None,
            "resolution": None, "resolution_note": None, "resolved_by": None, "resolved_at": None,
        }
    ]
    assert body["unresolved_count"] == 1
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


async def test_an_operator_resolves_each_exception_once_and_lists_what_is_still_open(
    app: object, session: AsyncSession, tenant: Tenant
) -> None:
    paid = await coupons(session, tenant, 1)
    operator = await logged_in_client(app, "operator")  # type: ignore[arg-type]
    clean = await (await operator.post(PATH, data=asobancaria(tenant, paid), headers=TEXT)).get_json()
    unknown = [("999999999991", Decimal(5000)), ("999999999992", Decimal(7000))]
    body = await (await operator.post(PATH, data=asobancaria(tenant, unknown, modifier="B"), headers=TEXT)).get_json()
    assert (body["exception_count"], body["unresolved_count"]) == (2, 2)
    first_line, second_line = (e["line"] for e in body["exceptions"])

    still_open = await (await operator.get(PATH, query_string={"unresolved": "true"})).get_json()
    assert [f["id"] for f in still_open["items"]] == [body["id"]] and still_open["next_cursor"] is None
    everything = await (await operator.get(PATH)).get_json()
    assert [(f["id"], f["unresolved_count"]) for f in everything["items"]] == [(body["id"], 2), (clean["id"], 0)]

    resolve = f"{PATH}/{body['id']}/exceptions/{first_line}/resolution"
    done = await operator.post(resolve, json={"resolution": "returned_to_bank", "note": "Banco revirtió el abono el 6 de noviembre"})
    assert done.status_code == 200, await done.get_data(as_text=True)
    resolved = await done.get_json()
    assert (resolved["line"], resolved["resolution"], resolved["resolution_note"]) == (
        first_line, "returned_to_bank", "Banco revirtió el abono el 6 de noviembre"
    )
    assert resolved["resolved_by"] is not None and resolved["resolved_at"] is not None
    again = await operator.post(resolve, json={"resolution": "written_off", "note": "otra vez"})
    assert (again.status_code, (await again.get_json())["code"]) == (409, "exception_resolved")

    read = await (await operator.get(f"{PATH}/{body['id']}")).get_json()
    assert read["unresolved_count"] == 1 and read["exception_count"] == 2
    assert [e["resolution"] for e in read["exceptions"]] == ["returned_to_bank", None]

    last = await operator.post(
        f"{PATH}/{body['id']}/exceptions/{second_line}/resolution", json={"resolution": "applied_by_hand", "note": "Recibo de caja 88"}
    )
    assert last.status_code == 200
    assert (await (await operator.get(PATH, query_string={"unresolved": "true"})).get_json())["items"] == []
    closed = await (await operator.get(PATH, query_string={"unresolved": "false"})).get_json()
    assert {f["id"] for f in closed["items"]} == {body["id"], clean["id"]}
    assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_resolving_needs_an_operator_a_known_exception_line_and_a_valid_body(
    app: object, client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    paid = await coupons(session, tenant, 1)
    _key, raw = await collection_controller.create_bank_key(session=session, tenant=tenant, name="Bancolombia")
    bank = {"Authorization": f"Bearer {raw}"}
    body = await (await client.post(PATH, data=asobancaria(tenant, [*paid, ("999999999999", Decimal(1))]), headers={**bank, **TEXT})).get_json()
    applied_line, exception_line = 3, body["exceptions"][0]["line"]
    good = {"resolution": "written_off", "note": "Consignación sin referencia"}

    customer = await logged_in_client(app, "customer")  # type: ignore[arg-type]
    assert (await customer.post(f"{PATH}/{body['id']}/exceptions/{exception_line}/resolution", json=good)).status_code == 403
    assert (await customer.get(PATH)).status_code == 403
    assert (await client.post(f"{PATH}/{body['id']}/exceptions/{exception_line}/resolution", json=good, headers=bank)).status_code == 401

    operator = await logged_in_client(app, "operator")  # type: ignore[arg-type]
    applied = await operator.post(f"{PATH}/{body['id']}/exceptions/{applied_line}/resolution", json=good)
    assert (applied.status_code, (await applied.get_json())["code"]) == (404, "not_found")
    bad = await operator.post(f"{PATH}/{body['id']}/exceptions/{exception_line}/resolution", json={"resolution": "forgiven", "note": ""})
    assert bad.status_code == 422
    assert {e["field"] for e in (await bad.get_json())["errors"]} == {"resolution", "note"}

    session.add(
        Tenant(code="OTRA", name="Aguas del Sur S.A.", country="CL", currency="CLP", timezone="America/Santiago", gln="7800000000001")
    )
    await session.commit()
    user = await make_user(app, role="operator", tenant_code="OTRA")  # type: ignore[arg-type]
    other = ApiClient(app)  # type: ignore[arg-type]
    assert (await other.login(user.email, headers={"X-Tenant-ID": "OTRA"})).status_code == 200
    foreign = await other.post(f"{PATH}/{body['id']}/exceptions/{exception_line}/resolution", json=good)
    assert foreign.status_code == 404
    assert (await (await other.get(PATH)).get_json())["items"] == []
    assert (await (await operator.get(f"{PATH}/{body['id']}")).get_json())["unresolved_count"] == 1

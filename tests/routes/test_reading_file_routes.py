"""Reading files through the API: good rows stored, bad rows listed by line with the single route's codes, resends inert."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.datastructures import FileStorage

from models.account_model import Meter, Reading
from models.reading_file_model import ReadingFile, ReadingFileIssue
from models.tenant_model import Tenant
from tests.conftest import ApiClient
from tests.factories import make_contract, make_customer, make_meter

# Periods well in the past, so these tests never depend on today's date.
JAN, FEB, MAR = "2025-01", "2025-02", "2025-03"
HEADER = "serial,period,value,read_on,reader,observation"


async def _meter(session: AsyncSession, tenant: Tenant, **fields: Any) -> Meter:
    contract = await make_contract(session, await make_customer(session, tenant))
    meter = await make_meter(session, contract, installed_on=date(2024, 12, 1), **fields)
    await session.commit()
    return meter


async def _send(client: ApiClient, text: str | bytes, content_type: str = "text/csv") -> Any:
    body = text.encode() if isinstance(text, str) else text
    return await client.post("/api/v1/reading-files", data=body, headers={"Content-Type": content_type})


def _csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


async def _readings(session: AsyncSession, meter: Meter) -> list[tuple[str, Decimal, Decimal, str]]:
    rows = await session.execute(
        select(Reading.period, Reading.value, Reading.consumption, Reading.flags)
        .where(Reading.meter_id == meter.id)
        .order_by(Reading.period)
        .execution_options(populate_existing=True)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _codes(body: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(issue["line"], issue["outcome"], issue["code"]) for issue in body["issues"]]


async def test_good_rows_are_stored_and_bad_rows_listed_with_line_and_reason(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    a = await _meter(session, tenant, initial_value=1000)
    b = await _meter(session, tenant)
    retired = await _meter(session, tenant, status="retired")
    text = _csv(
        f"{a.serial},{JAN},1150,2025-01-30,R-01,",  # line 2: stored
        f"{b.serial},2025-13,10,,R-01,",  # 3
        "NO-SUCH-METER,2025-01,10,,R-01,",  # 4
        f"{retired.serial},{JAN},10,,R-01,",  # 5
        f"{b.serial},{JAN},diez,,R-01,",  # 6
        f"{a.serial},{JAN},1200,,R-01,",  # 7: a second reading of the period
        "",  # a blank line is skipped, and still counts as a line of the file
        f"{b.serial},{JAN},,,R-02,not_accessible",  # 9
        f"{b.serial},{FEB},500,2025-01-15,R-02,",  # 10: read before its period began
        f"{a.serial},{FEB},1100,,R-02,",  # 11: below January's 1150, not a rollover
        f"{b.serial},{MAR},5,,,",  # 12: no reader
        f"{b.serial},{FEB},100000,,R-02,",  # 13: six digits on a five-digit register
        f"{b.serial},{MAR},42.5,,R-02,",  # 14: stored
    )
    response = await _send(operator_client, text)
    assert response.status_code == 201, await response.get_data(as_text=True)
    body = await response.get_json()
    assert (body["rows"], body["accepted"], body["rejected"], body["observed"]) == (12, 2, 9, 1)
    assert _codes(body) == [
        (3, "rejected", "invalid_period"),
        (4, "rejected", "unknown_meter"),
        (5, "rejected", "meter_retired"),
        (6, "rejected", "invalid_value"),
        (7, "rejected", "reading_exists"),
        (9, "observed", "not_accessible"),
        (10, "rejected", "invalid_read_on"),
        (11, "rejected", "register_decreased"),
        (12, "rejected", "missing_reader"),
        (13, "rejected", "value_exceeds_register"),
    ]
    assert body["issues"][1]["serial"] == "NO-SUCH-METER"
    assert await _readings(session, a) == [(JAN, Decimal("1150.000"), Decimal("150.000"), "")]
    assert await _readings(session, b) == [(MAR, Decimal("42.500"), Decimal("42.500"), "")]
    stored = await session.scalar(select(Reading.read_on).where(Reading.meter_id == a.id))
    assert stored == date(2025, 1, 30)

    again = await operator_client.get(f"/api/v1/reading-files/{body['id']}")
    assert again.status_code == 200
    assert await again.get_json() == body


async def test_the_same_file_twice_changes_nothing_the_second_time(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    meter = await _meter(session, tenant, initial_value=10)
    text = _csv(f"{meter.serial},{JAN},60,,R-01,", f"{meter.serial},{FEB},oops,,R-01,")
    first = await _send(operator_client, text)
    assert first.status_code == 201
    first_body = await first.get_json()
    # Meanwhile the meter is read for February through the single route: the resend must not reject it anew.
    single = await operator_client.post(f"/api/v1/meters/{meter.id}/readings", json={"period": FEB, "value": "70"})
    assert single.status_code == 201

    second = await _send(operator_client, text)
    assert second.status_code == 200
    assert await second.get_json() == first_body
    assert await _readings(session, meter) == [
        (JAN, Decimal("60.000"), Decimal("50.000"), ""),
        (FEB, Decimal("70.000"), Decimal("10.000"), "low"),
    ]
    assert await session.scalar(select(func.count()).select_from(ReadingFile)) == 1
    assert await session.scalar(select(func.count()).select_from(ReadingFileIssue)) == 1


# (setup through the single route, the row's period and value, the read date). A malformed period or value
# never reaches the single route's rules (its request schema answers `validation_error`); files report
# `invalid_period` and `invalid_value` for those, as the first test shows.
SINGLE_ROUTE_REFUSALS = {
    "period_in_future": ([], "2999-01", "10", None),
    "period_before_installation": ([], "2024-11", "10", None),
    "value_exceeds_register": ([], JAN, "100000", None),
    "invalid_read_on": ([], FEB, "10", "2025-01-31"),
    "reading_exists": ([(JAN, "10")], JAN, "20", None),
    "register_decreased": ([(JAN, "5000")], FEB, "4000", None),
    "next_reading_lower": ([(JAN, "10"), (MAR, "20")], FEB, "30", None),
}


@pytest.mark.parametrize("case", sorted(SINGLE_ROUTE_REFUSALS))
async def test_a_row_the_single_route_refuses_is_rejected_with_its_code(
    case: str, operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    setup, period, value, read_on = SINGLE_ROUTE_REFUSALS[case]
    meter = await _meter(session, tenant)
    for setup_period, setup_value in setup:
        response = await operator_client.post(
            f"/api/v1/meters/{meter.id}/readings", json={"period": setup_period, "value": setup_value}
        )
        assert response.status_code == 201
    single = await operator_client.post(
        f"/api/v1/meters/{meter.id}/readings",
        json={"period": period, "value": value, **({"read_on": read_on} if read_on else {})},
    )
    assert single.status_code in (409, 422)
    single_body = await single.get_json()
    before = await _readings(session, meter)

    response = await _send(operator_client, _csv(f"{meter.serial},{period},{value},{read_on or ''},R-01,"))
    body = await response.get_json()
    assert (body["accepted"], _codes(body)) == (0, [(2, "rejected", single_body["code"])])
    assert body["issues"][0]["message"].split(";")[0].rstrip(".") == single_body["detail"].split(";")[0].rstrip(".")
    assert await _readings(session, meter) == before


async def test_retired_meter_is_refused_alike(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant, status="retired")
    single = await operator_client.post(f"/api/v1/meters/{meter.id}/readings", json={"period": JAN, "value": "1"})
    body = await (await _send(operator_client, _csv(f"{meter.serial},{JAN},1,,R-01,"))).get_json()
    assert _codes(body) == [(2, "rejected", (await single.get_json())["code"])] == [(2, "rejected", "meter_retired")]


async def test_a_late_reading_recomputes_the_next_one_as_the_single_route_does(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    by_route = await _meter(session, tenant)
    by_file = await _meter(session, tenant)
    for meter in (by_route, by_file):
        for period, value in ((JAN, "100"), ("2025-04", "1000")):
            response = await operator_client.post(f"/api/v1/meters/{meter.id}/readings", json={"period": period, "value": value})
            assert response.status_code == 201
    for period, value in ((FEB, "200"), (MAR, "900")):
        response = await operator_client.post(f"/api/v1/meters/{by_route.id}/readings", json={"period": period, "value": value})
        assert response.status_code == 201
    # The file lists March before February: rows are taken in period order, as the route took them above.
    body = await (await _send(operator_client, _csv(f"{by_file.serial},{MAR},900,,R,", f"{by_file.serial},{FEB},200,,R,"))).get_json()
    assert (body["accepted"], body["issues"]) == (2, [])
    expected = await _readings(session, by_route)
    # April now follows March's 900; March's 700 is high against January's and February's 100.
    assert [row[2:] for row in expected] == [
        (Decimal("100.000"), ""), (Decimal("100.000"), ""), (Decimal("700.000"), "high"), (Decimal("100.000"), "")
    ]
    assert await _readings(session, by_file) == expected


async def test_semicolons_a_byte_order_mark_and_decimal_commas(
    operator_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    meter = await _meter(session, tenant, initial_value=1000)
    # Serials compare as the meter routes store them: trimmed, in upper case.
    text = "\ufeffSerial;Period;Reader;Value\r\n" f" {meter.serial.lower()} ;{JAN};R-01;\"1150,5\"\r\n"
    response = await _send(operator_client, text.encode("utf-8"))
    assert response.status_code == 201
    assert await _readings(session, meter) == [(JAN, Decimal("1150.500"), Decimal("150.500"), "")]


async def test_multipart_upload_of_the_file_part(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    upload = FileStorage(io.BytesIO(_csv(f"{meter.serial},{JAN},7,,R-01,").encode()), filename="ruta-07.csv", content_type="text/csv")
    response = await operator_client.post("/api/v1/reading-files", files={"file": upload})
    assert response.status_code == 201
    assert (await response.get_json())["accepted"] == 1
    other = FileStorage(io.BytesIO(b"x"), filename="x.csv", content_type="text/csv")
    empty = await operator_client.post("/api/v1/reading-files", files={"other": other})
    assert (empty.status_code, (await empty.get_json())["code"]) == (422, "missing_file")


async def test_a_file_larger_than_a_json_body_is_taken(operator_client: ApiClient, session: AsyncSession, tenant: Tenant) -> None:
    meter = await _meter(session, tenant)
    # A note column the API ignores pads each row: some 1.5 MB in all, beyond the 1 MiB JSON limit.
    rows = [f"{meter.serial},{JAN},{n},,R-01,{'x' * 1000}" for n in range(1500)]
    response = await _send(operator_client, _csv(*rows, header="serial,period,value,read_on,reader,note"))
    assert response.status_code == 201
    body = await response.get_json()
    assert (body["accepted"], body["rejected"]) == (1, 1499)
    assert {issue["code"] for issue in body["issues"]} == {"reading_exists"}


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "missing_file"),
        (b"serial,period,value\nM-1,2025-01,1\n", "invalid_reading_file"),  # no reader column
        (HEADER.encode() + b"\n", "invalid_reading_file"),  # no rows
        (b"\xff\xfeserial,period,value,reader\n", "invalid_reading_file"),  # not UTF-8
    ],
)
async def test_files_that_cannot_be_read_are_refused_whole(operator_client: ApiClient, content: bytes, code: str) -> None:
    response = await _send(operator_client, content)
    assert (response.status_code, (await response.get_json())["code"]) == (422, code)


async def test_operators_only_and_tenant_scoped(
    operator_client: ApiClient, customer_user_client: ApiClient, session: AsyncSession, tenant: Tenant
) -> None:
    meter = await _meter(session, tenant)
    assert (await _send(customer_user_client, _csv(f"{meter.serial},{JAN},1,,R,"))).status_code == 403
    assert (await operator_client.get("/api/v1/reading-files/999999")).status_code == 404

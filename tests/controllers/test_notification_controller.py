"""The outbox dispatcher against a real SMTP server: content, outages, concurrency, retries and leases."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.utils import parseaddr
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import Attachment, SmtpClient
from clients.sql_client import SqlClient
from config import SmtpSettings
from controllers import notification_controller, outbox_controller
from controllers.notification_controller import DeliveryPolicy, dispatch_due, message_id_for, retry_delay
from controllers.outbox_controller import OutboxMessage, enqueue, enqueue_many
from domain.notification_templates import render_email
from models.notification_model import Notification
from models.tenant_model import Tenant
from tests.conftest import MailServer
from tests.factories import make_customer, make_customer_user

# The test's own clock, set by `clock` for each test: rows are queued a minute before T0 and the
# dispatcher runs at T0, however long the suite took to reach the test.
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PDF = b"%PDF-1.4\n%fake invoice\n%%EOF\n"
COMMON = {"customer_name": "María Núñez", "tenant_name": "Energía del Valle S.A. E.S.P."}
PAYLOADS: dict[str, dict[str, Any]] = {
    "invoice_issued": {
        "invoice_id": 41, "invoice_number": "FAC-2026-000123", "contract_number": "100200300",
        "period": "2026-10", "amount_due": "20870", "due_date": "2026-11-15",
    },
    "invoice_paid": {
        "invoice_number": "FAC-2026-000123", "contract_number": "100200300", "period": "2026-10",
        "amount_paid": "20870", "paid_at": "2026-11-01T03:00:00+00:00",
    },
    "credit_note_issued": {
        "invoice_id": 41, "invoice_number": "FAC-2026-000123", "contract_number": "100200300", "period": "2026-10",
        "note_number": "NC-2026-000007", "amount": "5000", "amount_due": "15870", "to_credit_balance": False,
        "reason": "Lectura mal tomada", "pqr_filing_number": "PQR-20261122-00042",
    },
    "coupon_created": {
        "coupon_reference": "4500012345674", "amount": "20870", "expires_at": "2026-11-01T03:00:00Z",
        "invoice_numbers": ["FAC-2026-000123", "FAC-2026-000124"],
    },
    "coupon_expiring": {"coupon_reference": "4500012345674", "amount": "20870", "expires_at": "2026-11-01T03:00:00Z"},
    "coupon_expired": {"coupon_reference": "4500012345674", "amount": "20870", "expires_at": "2026-11-01T03:00:00Z"},
    "payment_reversed": {
        "coupon_reference": "4500012345674", "amount": "20870", "reversed_at": "2026-11-01T03:00:00Z",
        "reason": "Pago duplicado", "invoice_numbers": ["FAC-2026-000123"],
    },
    "pqr_filed": {
        "filing_number": "PQR-20261122-00042", "pqr_type": "claim", "filed_at": "2026-11-01T03:00:00Z",
        "due_date": "2026-12-14",
    },
    "pqr_answered": {
        "filing_number": "PQR-20261122-00042", "pqr_type": "claim", "answered_at": "2026-11-01T03:00:00Z",
        "answer": "Revisamos la lectura.",
    },
    "suspension_notice": {
        "contract_number": "100200300", "supply_address": "Calle 5 # 10-20", "amount_due": "41740",
        "oldest_due_date": "2026-09-15", "suspend_from": "2026-12-11",
    },
    "agreement_created": {
        "agreement_id": 7, "contract_number": "100200300", "debt": "100000", "financing": "10500", "total": "110500",
        "down_payment": "30000", "instalment_count": 7, "first_amount": "30000", "first_due_date": "2026-12-09",
    },
    "instalment_due_soon": {
        "agreement_id": 7, "contract_number": "100200300", "instalment_number": 2, "coupon_reference": "000000010017",
        "amount": "11500", "due_date": "2027-02-08",
    },
    "instalment_overdue": {
        "agreement_id": 7, "contract_number": "100200300", "instalment_number": 0, "coupon_reference": "000000010009",
        "amount": "30000", "due_date": "2026-12-09",
    },
    "agreement_completed": {
        "agreement_id": 7, "contract_number": "100200300", "total": "110500", "completed_at": "2027-07-06T15:00:00Z",
    },
    "agreement_broken": {"agreement_id": 7, "contract_number": "100200300", "missed_count": 2, "amount_due": "58500"},
    "password_reset": {"reset_url": "http://127.0.0.1:8000/reset-password?token=abc"},
    "email_change": {"confirm_url": "http://127.0.0.1:8000/portal/?confirm_email=abc", "new_email": "maria.nueva@example.co"},
}


async def fake_invoice_pdf(*, session: AsyncSession, tenant: Tenant, notification: Notification) -> list[Attachment]:
    """Stands in for the billing controller's PDF (the real builder is wired at merge)."""
    return [Attachment(f"{notification.payload['invoice_number']}.pdf", PDF + tenant.code.encode(), "application/pdf")]


FAKE_BUILDERS = {"invoice_issued": fake_invoice_pdf}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """One clock per test, shared by the queueing (T0 - 1 min) and the dispatch (T0)."""
    t0 = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(outbox_controller, "utcnow", lambda: t0 - timedelta(minutes=1))
    monkeypatch.setattr(sys.modules[__name__], "T0", t0)
    return t0


@pytest.fixture
def sql(app: Quart) -> SqlClient:
    return app.extensions["cuponera"].sql


def policy(**overrides: Any) -> DeliveryPolicy:
    return DeliveryPolicy(**{"base_seconds": 30.0, "max_attempts": 8, "batch_size": 50, **overrides})


def message(tenant: Tenant, event: str, key: str, **fields: Any) -> OutboxMessage:
    return OutboxMessage(
        tenant_id=tenant.id,
        event=event,
        dedupe_key=key,
        payload=fields.pop("payload", {**COMMON, **PAYLOADS[event]}),
        recipient=fields.pop("recipient", "maria@example.co"),
        **fields,
    )


async def queue(session: AsyncSession, *messages: OutboxMessage) -> list[int]:
    await enqueue_many(session=session, messages=list(messages))
    await session.commit()
    keys = [m.dedupe_key for m in messages]
    rows = (await session.execute(select(Notification.dedupe_key, Notification.id).where(Notification.dedupe_key.in_(keys)))).all()
    by_key = dict(rows)
    return [by_key[k] for k in keys]


async def rows(sql: SqlClient, ids: list[int] | None = None) -> list[Notification]:
    async with sql.session() as fresh:
        stmt = select(Notification).order_by(Notification.id)
        if ids is not None:
            stmt = stmt.where(Notification.id.in_(ids))
        return list((await fresh.scalars(stmt)).all())


async def dispatch(sql: SqlClient, server: MailServer, **kwargs: Any) -> notification_controller.DispatchReport:
    kwargs.setdefault("policy", policy())
    kwargs.setdefault("now", T0)
    kwargs.setdefault("attachment_builders", FAKE_BUILDERS)
    return await dispatch_due(sql=sql, smtp=SmtpClient(server.smtp_settings()), **kwargs)


def sender(email: Any) -> tuple[str, str]:
    """(display name, address) of From, decoded per RFC 2047 (adjacent encoded words join without a space).

    The stdlib's header parser puts a space between two encoded words, so it would misread long names.
    """
    raw = dict(email.raw_items())["From"]
    return parseaddr(str(make_header(decode_header(raw))))


def mid(tenant: Tenant, key: str) -> str:
    """The Message-ID the dispatcher gives a dedupe key with the default sender."""
    return message_id_for(tenant_id=tenant.id, dedupe_key=key, mail_from="no-reply@cuponera.local")


def text_of(email: Any, kind: str) -> str:
    return email.get_body(preferencelist=(kind,)).get_content().replace("\r\n", "\n")


async def test_every_event_arrives_with_its_template_locale_headers_and_attachment(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    messages = [
        message(tenant, event, f"{event}:{locale}", locale=locale)
        for event in PAYLOADS
        for locale in ("es", "en", "pt")
    ]
    ids = await queue(session, *messages)

    report = await dispatch(sql, mail_server)

    assert (report.claimed, report.sent, report.retried, report.failed) == (51, 51, 0, 0)
    received = {email["Message-ID"]: email for email in mail_server.catcher.messages}
    assert len(received) == 51
    for row_id, sent in zip(ids, messages, strict=True):
        email = received[mid(tenant, sent.dedupe_key)]
        expected = render_email(sent.event, sent.locale, sent.payload, currency="COP", timezone="America/Bogota")
        assert email["Subject"] == expected.subject
        assert email["To"].addresses[0].addr_spec == "maria@example.co"
        assert email["From"].addresses[0].addr_spec == "no-reply@cuponera.local"
        assert sender(email) == (tenant.name, "no-reply@cuponera.local")
        assert email["Reply-To"] is None  # the tenant set none
        assert email["X-Cuponera-Event"] == sent.event
        assert email["X-Cuponera-Notification-Id"] == str(row_id)
        assert email["Auto-Submitted"] == "auto-generated"
        assert text_of(email, "plain") == expected.text
        assert text_of(email, "html").strip() == expected.html.strip()
        attachments = list(email.iter_attachments())
        if sent.event == "invoice_issued":
            [pdf] = attachments
            assert pdf.get_filename() == "FAC-2026-000123.pdf"
            assert pdf.get_content_type() == "application/pdf"
            assert pdf.get_content() == PDF + b"default"
        else:
            assert attachments == []
    es_paid = received[mid(tenant, "invoice_paid:es")]
    # Money in the tenant's currency (COP, no decimals) and the payment time in Bogotá (UTC-5).
    assert "$20.870" in text_of(es_paid, "plain")
    assert "31 de octubre de 2026" in text_of(es_paid, "plain") and "22:00" in text_of(es_paid, "plain")
    en_issued = received[mid(tenant, "invoice_issued:en")]
    assert en_issued["Subject"] == "Your October 2026 bill FAC-2026-000123 is ready"
    assert "COP\u00a020,870" in text_of(en_issued, "plain")  # a non-breaking space keeps code and amount together
    assert all(row.status == "sent" and row.sent_at == T0 and row.attempts == 0 for row in await rows(sql))


async def test_the_tenants_sender_name_and_reply_to_are_on_its_emails(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    tenant.sender_name = "EPM Servicio al Cliente"
    tenant.reply_to = "clientes@epm.example.co"
    await session.commit()
    key = "invoice_issued:reply-to"
    await queue(session, message(tenant, "invoice_issued", key))

    report = await dispatch(sql, mail_server)

    assert report.sent == 1
    [email] = [e for e in mail_server.catcher.messages if e["Message-ID"] == mid(tenant, key)]
    assert sender(email) == ("EPM Servicio al Cliente", "no-reply@cuponera.local")
    assert email["Reply-To"].addresses[0].addr_spec == "clientes@epm.example.co"


async def test_missing_names_are_filled_from_the_tenant_and_customer(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    customer = await make_customer(session, tenant, name="Jorge Ramírez", email="jorge@example.co")
    await queue(session, message(tenant, "coupon_expiring", "c:1", payload=PAYLOADS["coupon_expiring"], customer_id=customer.id))

    await dispatch(sql, mail_server)

    [email] = mail_server.catcher.messages
    body = text_of(email, "plain")
    assert body.startswith("Hola, Jorge Ramírez:")
    assert tenant.name in body


async def test_smtp_down_loses_nothing_and_each_message_is_delivered_once_when_it_returns(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    mail_server.stop()
    ids = await queue(session, *[message(tenant, "invoice_issued", f"invoice_issued:{n}") for n in range(20)])

    down = await dispatch(sql, mail_server, random=lambda: 0.5)

    assert (down.claimed, down.retried, down.sent) == (20, 20, 0)
    for row in await rows(sql, ids):
        assert (row.status, row.attempts, row.claim_token) == ("pending", 1, None)
        assert row.next_attempt_at == T0 + timedelta(seconds=30)
        assert "unavailable" in (row.last_error or "")
    assert (await dispatch(sql, mail_server, now=T0 + timedelta(seconds=29))).claimed == 0  # backing off

    mail_server.start()
    up = await dispatch(sql, mail_server, now=T0 + timedelta(seconds=31))
    again = await dispatch(sql, mail_server, now=T0 + timedelta(days=1))

    assert (up.claimed, up.sent, again.claimed) == (20, 20, 0)
    counts = Counter(mail_server.catcher.message_ids())
    expected = {mid(tenant, f"invoice_issued:{n}") for n in range(20)}
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert {(r.status, r.attempts) for r in await rows(sql, ids)} == {("sent", 1)}


async def test_two_dispatchers_at_once_never_send_a_message_twice(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    await queue(session, *[message(tenant, "invoice_paid", f"invoice_paid:{n}") for n in range(30)])
    small_batches = policy(batch_size=4)

    first, second = await asyncio.gather(
        dispatch(sql, mail_server, policy=small_batches, now=None),
        dispatch(sql, mail_server, policy=small_batches, now=None),
    )

    assert first.sent + second.sent == 30
    assert first.sent and second.sent  # each waits on SMTP between batches, so both take a share
    assert first.claimed + second.claimed == 30
    counts = Counter(mail_server.catcher.message_ids())
    assert len(counts) == 30 and set(counts.values()) == {1}
    assert {r.status for r in await rows(sql)} == {"sent"}


async def test_a_row_picked_by_two_dispatchers_is_claimed_by_one(
    sql: SqlClient, session: AsyncSession, tenant: Tenant
) -> None:
    ids = await queue(session, *[message(tenant, "invoice_paid", f"k:{n}") for n in range(3)])
    lease = timedelta(minutes=15)
    async with sql.session(write=True) as first, sql.session(write=True) as second:
        seen_by_first = await notification_controller.due_notification_ids(session=first, now=T0, limit=10)
        await first.commit()
        seen_by_second = await notification_controller.due_notification_ids(session=second, now=T0, limit=10)
        _, won_by_second = await notification_controller.claim(session=second, ids=seen_by_second, now=T0, lease=lease)
        _, won_by_first = await notification_controller.claim(session=first, ids=seen_by_first, now=T0, lease=lease)

    assert seen_by_first == seen_by_second == ids
    assert [r.id for r in won_by_second] == ids
    assert won_by_first == []
    assert {(r.status, r.claimed_until) for r in await rows(sql)} == {("sending", T0 + lease)}


def test_backoff_doubles_from_the_base_with_jitter_between_half_and_one_and_a_half() -> None:
    middle = [retry_delay(attempts=n, base_seconds=30, random=lambda: 0.5).total_seconds() for n in range(1, 8)]
    low = [retry_delay(attempts=n, base_seconds=30, random=lambda: 0.0).total_seconds() for n in range(1, 4)]
    high = retry_delay(attempts=3, base_seconds=30, random=lambda: 0.999).total_seconds()

    assert middle == [30, 60, 120, 240, 480, 960, 1920]
    assert low == [15, 30, 60]
    assert high == pytest.approx(179.88)


async def test_a_message_fails_after_eight_attempts_with_backoff_between_them(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    mail_server.stop()
    [row_id] = await queue(session, message(tenant, "coupon_created", "coupon_created:9"))
    now = T0
    schedule = []
    for attempt in range(1, 9):
        await dispatch(sql, mail_server, now=now, random=lambda: 0.25)
        [row] = await rows(sql, [row_id])
        assert row.attempts == attempt
        if attempt < 8:
            assert row.status == "pending"
            schedule.append((row.next_attempt_at - now).total_seconds())
            now = row.next_attempt_at
    assert schedule == [22.5, 45, 90, 180, 360, 720, 1440]  # 30 × 2^(n-1) × (0.5 + 0.25)
    assert (row.status, row.attempts) == ("failed", 8)
    assert "unavailable" in (row.last_error or "")
    assert (await dispatch(sql, mail_server, now=now + timedelta(days=30))).claimed == 0


async def test_a_permanent_smtp_refusal_fails_at_once(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    [row_id] = await queue(session, message(tenant, "invoice_paid", "invoice_paid:1", recipient="nobody@refused.example"))

    report = await dispatch(sql, mail_server)

    [row] = await rows(sql, [row_id])
    assert report.failed == 1
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in (row.last_error or "")
    assert mail_server.catcher.messages == []


async def test_an_incomplete_payload_fails_at_once_and_says_why(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    [row_id] = await queue(session, message(tenant, "invoice_paid", "broken:1", payload={"invoice_number": "X"}))

    await dispatch(sql, mail_server)

    [row] = await rows(sql, [row_id])
    assert (row.status, row.attempts) == ("failed", 1)
    assert "incomplete" in (row.last_error or "")


async def test_an_attachment_error_is_retried(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    async def broken_pdf(**_: Any) -> list[Attachment]:
        raise RuntimeError("PDF renderer crashed")

    [row_id] = await queue(session, message(tenant, "invoice_issued", "invoice_issued:7"))

    await dispatch(sql, mail_server, attachment_builders={"invoice_issued": broken_pdf}, random=lambda: 0.5)

    [row] = await rows(sql, [row_id])
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "PDF renderer crashed")
    assert mail_server.catcher.messages == []


async def test_the_real_invoice_builder_needs_an_invoice_id(session: AsyncSession, tenant: Tenant) -> None:
    row = Notification(event="invoice_issued", payload={"invoice_number": "FAC-1"})
    with pytest.raises((notification_controller.UndeliverableError, ImportError)):
        await notification_controller.invoice_pdf_attachment(session=session, tenant=tenant, notification=row)


async def test_a_message_without_an_address_is_kept_in_app_only(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    customer = await make_customer(session, tenant, email=None)
    user = await make_customer_user(session, customer)
    [row_id] = await queue(
        session, message(tenant, "invoice_paid", "invoice_paid:2", recipient=None, user_id=user.id, customer_id=customer.id)
    )

    report = await dispatch(sql, mail_server)

    [row] = await rows(sql, [row_id])
    assert report.in_app_only == 1
    assert (row.status, row.channel, row.sent_at) == ("sent", "in_app", T0)
    assert mail_server.catcher.messages == []


async def test_an_expired_lease_is_taken_over_and_counted_but_a_live_one_is_left_alone(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    crashed, busy = await queue(session, message(tenant, "invoice_paid", "a:1"), message(tenant, "invoice_paid", "a:2"))
    await session.execute(
        update(Notification).where(Notification.id == crashed)
        .values(status="sending", claim_token="dead", claimed_until=T0 - timedelta(seconds=1))
    )
    await session.execute(
        update(Notification).where(Notification.id == busy)
        .values(status="sending", claim_token="alive", claimed_until=T0 + timedelta(minutes=5))
    )
    await session.commit()

    report = await dispatch(sql, mail_server)

    taken_over, left = await rows(sql, [crashed, busy])
    assert report.sent == 1
    assert (taken_over.status, taken_over.attempts, taken_over.claim_token) == ("sent", 1, None)
    assert (left.status, left.claim_token) == ("sending", "alive")
    assert mail_server.catcher.message_ids() == [mid(tenant, "a:1")]


async def test_a_message_whose_sender_keeps_dying_ends_failed(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    [row_id] = await queue(session, message(tenant, "invoice_paid", "poison:1"))
    await session.execute(
        update(Notification).where(Notification.id == row_id)
        .values(status="sending", attempts=7, claim_token="dead", claimed_until=T0 - timedelta(seconds=1))
    )
    await session.commit()

    await dispatch(sql, mail_server)

    [row] = await rows(sql, [row_id])
    assert (row.status, row.attempts) == ("failed", 8)
    assert mail_server.catcher.messages == []


async def test_a_sent_reset_link_is_not_kept_in_the_outbox(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    [row_id] = await queue(session, message(tenant, "password_reset", "password_reset:1:abc"))

    await dispatch(sql, mail_server)

    [row] = await rows(sql, [row_id])
    assert row.status == "sent"
    assert row.payload["reset_url"] == "[redacted]"
    assert "reset-password?token=abc" in text_of(mail_server.catcher.messages[0], "plain")


def test_message_ids_follow_the_dedupe_key_and_tenant() -> None:
    first = message_id_for(tenant_id=1, dedupe_key="invoice_issued:42", mail_from="EPM <avisos@epm.example>")
    again = message_id_for(tenant_id=1, dedupe_key="invoice_issued:42", mail_from="avisos@epm.example")
    other_tenant = message_id_for(tenant_id=2, dedupe_key="invoice_issued:42", mail_from="avisos@epm.example")
    odd_key = message_id_for(tenant_id=1, dedupe_key="a b::c<>@d", mail_from="")

    assert first == again
    assert first.startswith("<invoice_issued.42.t1.") and first.endswith("@epm.example>")
    assert other_tenant != first
    assert odd_key.startswith("<a.b.c.d.t1.") and odd_key.endswith("@cuponera.local>")
    SmtpClient(SmtpSettings(host=None)).build_message(
        notification_controller.OutgoingEmail(to="a@example.co", subject="x", text="x", html=None, message_id=odd_key)
    )


async def test_enqueue_twice_with_one_dedupe_key_sends_once(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer
) -> None:
    assert await enqueue(session=session, message=message(tenant, "invoice_paid", "invoice_paid:77")) is True
    await session.commit()
    assert await enqueue(session=session, message=message(tenant, "invoice_paid", "invoice_paid:77")) is False
    await session.commit()

    await dispatch(sql, mail_server)

    assert len(mail_server.catcher.messages) == 1


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ("invoice_issued", "/portal/#/invoices/41"),
        ("coupon_created", "/portal/#/coupons/{coupon_reference}"),
        ("pqr_filed", "/portal/#/pqrs/9"),
    ],
)
async def test_each_email_links_to_its_portal_page(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, mail_server: MailServer, event: str, path: str
) -> None:
    payload = {**COMMON, **PAYLOADS[event], "pqr_id": 9}
    await queue(session, message(tenant, event, f"{event}:links", payload=payload))

    await dispatch(sql, mail_server, policy=policy(public_base_url="http://127.0.0.1:8106/"))

    [email] = mail_server.catcher.messages
    url = "http://127.0.0.1:8106" + path.format(**payload)
    assert url in text_of(email, "plain")
    assert f'href="{url}"' in text_of(email, "html")
    assert "http://127.0.0.1:8106/portal/" in text_of(email, "plain")
    assert sender(email) == (tenant.name, "no-reply@cuponera.local")


class HeldRecording:
    """Sends that end while a recording holds the writer. The first address's send ends at once; the
    others' end only once its recording has begun, and that recording waits for them before it writes.
    `steal` (if given) runs inside that first recording, before it writes: another sender taking a lease.
    Stands in for the SMTP client and wraps `_write_outcomes`, whose calls (row ids each) it keeps."""

    def __init__(self, first: str, others: int, steal: Any = None) -> None:
        self.smtp = SmtpClient(SmtpSettings(host=None))
        self.smtp.send = self.send  # type: ignore[method-assign]
        self.first, self.others, self.steal = first, others, steal
        self.recording = asyncio.Event()
        self.others_ended = asyncio.Event()
        self.sent: list[str] = []
        self.recordings: list[list[int]] = []
        self.write_outcomes = notification_controller._write_outcomes

    async def send(self, email: Any) -> str:
        if email.to != self.first:
            await self.recording.wait()
        self.sent.append(email.to)
        if len(self.sent) == 1 + self.others:
            self.others_ended.set()
        return email.message_id

    async def record(self, writer: AsyncSession, token: str, outcomes: Any) -> None:
        self.recordings.append([outcome.row_id for outcome in outcomes])
        if len(self.recordings) == 1:
            self.recording.set()
            await self.others_ended.wait()
            if self.steal is not None:
                await self.steal()
        await self.write_outcomes(writer, token, outcomes)


def write_transactions(sql: SqlClient) -> tuple[list[list[str]], list[list[str]], Any]:
    """The transactions that wrote the outbox (their statements), committed and rolled back, and a function that
    stops the count."""
    committed: list[list[str]] = []
    rolled_back: list[list[str]] = []
    running: dict[int, list[str]] = {}

    def on_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        running.setdefault(id(conn), []).append(statement)

    def ended(into: list[list[str]]) -> Any:
        def on_end(conn: Any) -> None:
            statements = running.pop(id(conn), [])
            if outbox_updates(statements):
                into.append(statements)
        return on_end

    listeners = [("before_cursor_execute", on_execute), ("commit", ended(committed)), ("rollback", ended(rolled_back))]
    engines = {id(e): e.sync_engine for e in (sql.engine, sql.write_engine)}.values()
    for engine in engines:
        for name, listener in listeners:
            event.listen(engine, name, listener)

    def stop() -> None:
        for engine in engines:
            for name, listener in listeners:
                event.remove(engine, name, listener)

    return committed, rolled_back, stop


def outbox_updates(transaction: list[str]) -> int:
    return sum(s.lstrip().upper().startswith("UPDATE NOTIFICATIONS") for s in transaction)


def verbs(transaction: list[str]) -> list[str]:
    """The first word of each statement, BEGIN left out (SQLite's is a statement, asyncpg's is not)."""
    return [s.split()[0].upper() for s in transaction if not s.lstrip().upper().startswith("BEGIN")]


async def held_messages(session: AsyncSession, tenant: Tenant, label: str, count: int) -> tuple[list[str], list[int]]:
    """`count` invoice_paid messages queued, each to its own address: (addresses, row ids)."""
    addresses = [f"cliente{n}@example.co" for n in range(count)]
    ids = await queue(session, *[message(tenant, "invoice_paid", f"{label}:{n}", recipient=a) for n, a in enumerate(addresses)])
    return addresses, ids


async def test_sends_ending_while_a_recording_holds_the_writer_are_recorded_in_one_commit(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses, ids = await held_messages(session, tenant, "group", 4)
    held = HeldRecording(first=addresses[0], others=3)
    monkeypatch.setattr(notification_controller, "_write_outcomes", held.record)
    committed, rolled_back, stop = write_transactions(sql)
    try:
        report = await dispatch_due(sql=sql, smtp=held.smtp, policy=policy(send_concurrency=4), now=T0)
    finally:
        stop()

    assert (report.claimed, report.sent) == (4, 4)
    assert held.sent[0] == addresses[0] and sorted(held.sent) == addresses
    # The first send is recorded alone; the three that ended during that recording, together after it.
    assert held.recordings == [ids[:1], ids[1:]]
    # Three write transactions: the claim (UPDATE and read back in one commit), the first outcome, the other three
    # in one UPDATE (they are alike: sent at T0).
    assert [verbs(t) for t in committed] == [["SELECT", "UPDATE", "SELECT"], ["UPDATE"], ["UPDATE"]]
    assert " IN " in committed[2][-1].upper()
    assert rolled_back == []
    assert [(r.status, r.sent_at, r.claim_token, r.claimed_until) for r in await rows(sql, ids)] == [("sent", T0, None, None)] * 4


async def test_a_lease_lost_during_a_grouped_recording_is_warned_about_for_its_row_alone(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Four in the first group, a fifth in a second one: prepared after the rollback of the group's shared UPDATE.
    addresses, ids = await held_messages(session, tenant, "lost", 5)
    taken = ids[2]

    async def another_sender_takes_a_lease() -> None:
        async with sql.session(write=True) as thief:
            await thief.execute(
                update(Notification).where(Notification.id == taken)
                .values(claim_token="thief", claimed_until=T0 + timedelta(minutes=30), attempts=1)
            )
            await thief.commit()

    held = HeldRecording(first=addresses[0], others=3, steal=another_sender_takes_a_lease)
    monkeypatch.setattr(notification_controller, "_write_outcomes", held.record)
    committed, rolled_back, stop = write_transactions(sql)
    try:
        with caplog.at_level("WARNING", logger="cuponera.notifications"):
            report = await dispatch_due(sql=sql, smtp=held.smtp, policy=policy(send_concurrency=4), now=T0)
    finally:
        stop()

    assert (report.claimed, report.sent) == (5, 5)
    assert held.recordings == [ids[:1], ids[1:4], ids[4:]]
    lost = [r.getMessage() for r in caplog.records if "lease expired" in r.getMessage()]
    assert lost == [f"notification {taken} was sent after its lease expired; another sender may repeat it"]
    # The shared UPDATE matched two rows of three: rolled back, and the group written again row by row in one commit.
    assert [outbox_updates(t) for t in committed] == [1, 1, 1, 3, 1]  # claim, first outcome, the thief, the group, the fifth
    assert [verbs(t) for t in rolled_back] == [["UPDATE"]] and " IN " in rolled_back[0][-1].upper()
    states = {r.id: (r.status, r.claim_token, r.attempts) for r in await rows(sql, ids)}
    assert states == {
        ids[0]: ("sent", None, 0), ids[1]: ("sent", None, 0), taken: ("sending", "thief", 1), ids[3]: ("sent", None, 0),
        ids[4]: ("sent", None, 0),
    }


async def test_a_recording_that_fails_raises_and_leaves_its_rows_to_a_later_taker(
    sql: SqlClient, session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses, ids = await held_messages(session, tenant, "down", 4)
    held = HeldRecording(first=addresses[0], others=3)
    recordings = 0

    async def database_down_after_the_first(writer: AsyncSession, token: str, outcomes: Any) -> None:
        nonlocal recordings
        recordings += 1
        if recordings > 1:
            raise ConnectionError("the database went away")
        await held.record(writer, token, outcomes)

    monkeypatch.setattr(notification_controller, "_write_outcomes", database_down_after_the_first)
    with pytest.raises(ConnectionError, match="the database went away"):
        await dispatch_due(sql=sql, smtp=held.smtp, policy=policy(send_concurrency=4), now=T0)

    assert sorted(held.sent) == addresses and held.recordings == [ids[:1]]
    states = [(r.status, r.claimed_until is not None) for r in await rows(sql, ids)]
    # The first was recorded; the three whose recording failed stay claimed, for whoever takes the lease over.
    assert states == [("sent", False)] + [("sending", True)] * 3

"""The outbox dispatcher (claim, render, send, retry) plus in-app notifications and the operators' view."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random as random_module
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clients.smtp_client import Attachment, OutgoingEmail, SmtpClient, SmtpDeliveryError
from clients.sql_client import SqlClient
from controllers import invoice_controller, note_controller
from controllers.errors import Conflict, NotFound
from controllers.pagination import Page, SortKey, paginate
from domain.notification_templates import NotificationTemplateError, render_email
from models.account_model import Customer
from models.base_model import UtcDateTime, utcnow
from models.notification_model import Notification
from models.tenant_model import Tenant
from models.user_model import User

log = logging.getLogger("cuponera.notifications")

MAX_ERROR_CHARS = 1000
# Reset and email-confirmation links are bearer credentials: once sent or given up on, the outbox keeps no copy.
REDACTED_AFTER_DELIVERY: Mapping[str, tuple[str, ...]] = {
    "password_reset": ("reset_url",),
    "email_change": ("confirm_url",),
}
REDACTED = "[redacted]"
# Events whose retry by an operator could only resend a dead or redacted link.
NOT_RETRYABLE = frozenset(REDACTED_AFTER_DELIVERY)
IN_APP_CHANNEL = "in_app"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the dispatcher batches, leases and retries (from the NOTIFY_* settings)."""

    base_seconds: float = 30.0
    max_attempts: int = 8
    batch_size: int = 50
    # Longer than a whole batch of sends at the SMTP timeout, so a live sender never loses its claim.
    lease: timedelta = timedelta(minutes=15)
    # Messages of a batch sent at once (NOTIFY_SEND_CONCURRENCY), each on its own SMTP connection;
    # rendering and recording stay one at a time on the worker's two sessions.
    send_concurrency: int = 1
    # PUBLIC_BASE_URL: emails link to the portal page they are about.
    public_base_url: str | None = None


@dataclass
class DispatchReport:
    """What one dispatch call did."""

    claimed: int = 0
    sent: int = 0
    in_app_only: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True)
class InAppNotification:
    """A notification as its user sees it in the app."""

    id: int
    event: str
    subject: str
    created_at: datetime
    read: bool


class UndeliverableError(Exception):
    """A message that no retry can fix (its payload lacks what an attachment needs)."""


class AttachmentBuilder(Protocol):
    """Builds the files attached to one event's email."""

    def __call__(
        self, *, session: AsyncSession, tenant: Tenant, notification: Notification
    ) -> Awaitable[Sequence[Attachment]]: ...


async def invoice_pdf_attachment(
    *, session: AsyncSession, tenant: Tenant, notification: Notification
) -> Sequence[Attachment]:
    """The invoice PDF for `invoice_issued`, built by the billing controller."""
    invoice_id = notification.payload.get("invoice_id")
    if invoice_id is None:
        raise UndeliverableError("invoice_issued payload has no invoice_id for the PDF attachment")
    filename, content = await invoice_controller.invoice_pdf(
        session=session, tenant=tenant, invoice_id=int(invoice_id)
    )
    return [Attachment(filename=filename, content=content, mime_type="application/pdf")]


async def note_pdf_attachment(
    *, session: AsyncSession, tenant: Tenant, notification: Notification
) -> Sequence[Attachment]:
    """The note PDF for `credit_note_issued`."""
    note_id = notification.payload.get("note_id")
    if note_id is None:
        raise UndeliverableError("credit_note_issued payload has no note_id for the PDF attachment")
    filename, content = await note_controller.note_pdf(session=session, tenant=tenant, note_id=int(note_id))
    return [Attachment(filename=filename, content=content, mime_type="application/pdf")]


ATTACHMENT_BUILDERS: dict[str, AttachmentBuilder] = {
    "invoice_issued": invoice_pdf_attachment,
    "credit_note_issued": note_pdf_attachment,
}


def retry_delay(*, attempts: int, base_seconds: float, random: Callable[[], float]) -> timedelta:
    """Backoff after the `attempts`-th failure: base × 2^(attempts-1) × a jitter factor in [0.5, 1.5)."""
    return timedelta(seconds=base_seconds * 2 ** (attempts - 1) * (0.5 + random()))


def message_id_for(*, tenant_id: int, dedupe_key: str, mail_from: str) -> str:
    """A Message-ID derived from the dedupe key, so a resent message carries the same id."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", ".", dedupe_key).strip(".")[:60].strip(".") or "message"
    digest = hashlib.sha256(f"{tenant_id}:{dedupe_key}".encode()).hexdigest()[:16]
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "cuponera.local"
    return f"<{slug}.t{tenant_id}.{digest}@{domain}>"


# Statements built once per process, with bind parameters (as auth_controller's `_SESSION_USER`): SQLAlchemy
# computes each one's cache key once instead of per batch or per message.
_NOW = bindparam("now", type_=UtcDateTime())
# Rows a dispatcher may take: pending and due, or sending with an expired lease (a crashed sender).
_DUE = or_(
    and_(Notification.status == "pending", Notification.next_attempt_at <= _NOW),
    and_(Notification.status == "sending", Notification.claimed_until < _NOW),
)
_DUE_IDS = select(Notification.id).where(_DUE).order_by(Notification.next_attempt_at, Notification.id)
_CLAIM_IDS = bindparam("ids", expanding=True)
_CLAIM = (
    update(Notification)
    .where(Notification.id.in_(_CLAIM_IDS), _DUE)
    .values(
        status="sending",
        claim_token=bindparam("token"),
        claimed_until=bindparam("claimed_until", type_=UtcDateTime()),
        # Taking over an expired lease counts as an attempt, so a message that kills its sender stops.
        attempts=case((Notification.status == "sending", Notification.attempts + 1), else_=Notification.attempts),
    )
    .execution_options(synchronize_session=False)
)
_CLAIMED = (
    select(Notification)
    .where(Notification.id.in_(_CLAIM_IDS), Notification.claim_token == bindparam("token"))
    .order_by(Notification.next_attempt_at, Notification.id)
    .execution_options(populate_existing=True)
)
# An outcome, written only while this claim still holds the row; the columns to set come with the parameters
# (a Core UPDATE sets the columns its parameters name), so one statement serves every kind of outcome.
_OUTBOX = Notification.__table__
_GUARD = (_OUTBOX.c.claim_token == bindparam("claim"), _OUTBOX.c.status == "sending")
_RECORD_ONE = update(_OUTBOX).where(_OUTBOX.c.id == bindparam("row_id"), *_GUARD)
_RECORD_SAME = update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("row_ids", expanding=True)), *_GUARD)


async def due_notification_ids(*, session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Candidate rows, oldest due first (across tenants: the dispatcher serves the whole install)."""
    return list((await session.scalars(_DUE_IDS.limit(limit), {"now": now})).all())


async def claim(
    *, session: AsyncSession, ids: Sequence[int], now: datetime, lease: timedelta
) -> tuple[str, list[Notification]]:
    """Take the still-due rows among `ids` with one conditional UPDATE; returns the claim token and the rows won.

    The WHERE repeats the due condition, so of two dispatchers that picked the same ids only the
    first UPDATE matches; no SELECT FOR UPDATE is needed (SQL Server has none). The rows won are read
    back in the same transaction (it sees its own UPDATE), so a claim is one commit. They are returned
    detached from `session`: outcomes are written by id, and a later rollback of the session (see
    `_write_outcomes`) must not expire what the rest of the batch still reads.
    """
    token = secrets.token_hex(16)
    if not ids:
        await session.commit()
        return token, []
    await session.execute(_CLAIM, {"ids": list(ids), "now": now, "token": token, "claimed_until": now + lease})
    rows = (await session.scalars(_CLAIMED, {"ids": list(ids), "token": token})).all()
    await session.commit()
    for row in rows:
        session.expunge(row)
    return token, list(rows)


async def release(*, session: AsyncSession, ids: Sequence[int], token: str) -> None:
    """Hand claimed, unsent messages back as pending (only while this claim still holds them)."""
    await session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.claim_token == token, Notification.status == "sending")
        .values(status="pending", claim_token=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def dispatch_due(
    *,
    sql: SqlClient,
    smtp: SmtpClient,
    policy: DeliveryPolicy,
    now: datetime | None = None,
    random: Callable[[], float] = random_module.random,
    attachment_builders: Mapping[str, AttachmentBuilder] | None = None,
    stop: asyncio.Event | None = None,
) -> DispatchReport:
    """Claim due messages batch by batch and deliver each; sending happens outside any transaction.

    Once `stop` is set (SIGTERM), the message being sent is finished and the rest of the batch is
    handed back at once, instead of waiting out its lease.
    """
    builders = ATTACHMENT_BUILDERS if attachment_builders is None else attachment_builders
    report = DispatchReport()
    async with sql.session(write=True) as writer, sql.session() as reader:
        tenants: dict[int, Tenant] = {}
        while True:
            moment = now or utcnow()
            ids = await due_notification_ids(session=writer, now=moment, limit=policy.batch_size)
            token, rows = await claim(session=writer, ids=ids, now=moment, lease=policy.lease)
            report.claimed += len(rows)
            step = max(1, policy.send_concurrency)
            for start in range(0, len(rows), step):
                if stop is not None and stop.is_set():
                    await release(session=writer, ids=[r.id for r in rows[start:]], token=token)
                    return report
                outcomes = await _deliver_group(
                    writer=writer, reader=reader, tenants=tenants, group=rows[start : start + step], token=token,
                    smtp=smtp, policy=policy, now=moment, random=random, builders=builders,
                )
                for outcome in outcomes:
                    setattr(report, outcome, getattr(report, outcome) + 1)
            if len(ids) < policy.batch_size or (stop is not None and stop.is_set()):
                break
    return report


@dataclass(frozen=True)
class _Outcome:
    """What to write on one claimed row (`values`), and the DispatchReport field it counts in."""

    row_id: int
    counted: str
    values: dict[str, Any]
    # A sent message whose lease was lost may be sent again by the taker: that is worth a warning.
    warn_if_lost: bool = False


class _Recorder:
    """Writes outcomes on the writer session as soon as it is free. Outcomes that arrive while a recording
    is in progress wait in `pending`, and whoever takes the writer next writes all of them in one
    transaction: a message is never recorded later than it would be one commit at a time, but the
    sends of a group that end together cost one commit instead of one each.
    """

    def __init__(self, writer: AsyncSession, token: str) -> None:
        self.writer = writer
        self.token = token
        self.pending: list[tuple[_Outcome, asyncio.Future[str]]] = []
        self.lock = asyncio.Lock()

    def add(self, outcome: _Outcome) -> asyncio.Future[str]:
        """Queue an outcome for the next recording; the future gives its DispatchReport field once written."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending.append((outcome, future))
        return future

    async def record(self, outcome: _Outcome) -> str:
        """Queue the outcome and write it now, or wait for the recording in progress and write it with the
        others queued meanwhile (unless the writer that went first already took it along)."""
        future = self.add(outcome)
        await self.flush()
        return future.result()

    async def flush(self) -> None:
        """Write every queued outcome in one transaction (after any recording in progress)."""
        async with self.lock:
            if not self.pending:
                return
            batch, self.pending = self.pending, []
            try:
                await _write_outcomes(self.writer, self.token, [outcome for outcome, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch, each raises it
                # Each message of the batch goes up with the error (the database is down, say).
                for _, future in batch:
                    future.set_exception(exc)
                await self.writer.rollback()
                return
            except BaseException:
                for _, future in batch:
                    future.cancel()
                raise
            for outcome, future in batch:
                future.set_result(outcome.counted)


async def _deliver_group(
    *,
    writer: AsyncSession,
    reader: AsyncSession,
    tenants: dict[int, Tenant],
    group: Sequence[Notification],
    token: str,
    smtp: SmtpClient,
    policy: DeliveryPolicy,
    now: datetime,
    random: Callable[[], float],
    builders: Mapping[str, AttachmentBuilder],
) -> list[str]:
    """Render each claimed row, send the emails at once, record each outcome; the DispatchReport fields to count."""
    recorder = _Recorder(writer, token)
    unsent: list[asyncio.Future[str]] = []
    ready: list[tuple[Notification, OutgoingEmail]] = []
    try:
        for row in group:
            prepared = await _prepare(reader=reader, tenants=tenants, row=row, smtp=smtp, policy=policy, now=now,
                                      random=random, builders=builders)
            if isinstance(prepared, _Outcome):
                # Nothing goes out for it, so it may wait for the first recording of the group's sends.
                unsent.append(recorder.add(prepared))
            else:
                ready.append((row, prepared))
        # The group's rendering read in one transaction, ended before any network I/O.
        await reader.commit()
    except Exception:
        await recorder.flush()  # what was decided before the error is still written
        raise

    # Each message is recorded as soon as the writer is free after its own send ends (not when the slowest
    # of the group does), so a sender killed mid-group repeats only the messages it was still sending.
    async def send_and_record(row: Notification, email: OutgoingEmail) -> str:
        try:
            await smtp.send(email)
            result: BaseException | None = None
        except Exception as exc:  # noqa: BLE001 - recorded (and logged) on the row by _outcome_of
            result = exc
        return await recorder.record(_outcome_of(row, result, policy=policy, now=now, random=random))

    # Every send runs to its end before an error goes up: none is left writing on a session being closed.
    sent = await asyncio.gather(*(send_and_record(row, email) for row, email in ready), return_exceptions=True)
    await recorder.flush()
    errors = [future.exception() for future in unsent] + list(sent)
    for error in errors:
        if isinstance(error, BaseException):
            raise error
    return [future.result() for future in unsent] + [str(result) for result in sent]


async def _prepare(
    *,
    reader: AsyncSession,
    tenants: dict[int, Tenant],
    row: Notification,
    smtp: SmtpClient,
    policy: DeliveryPolicy,
    now: datetime,
    random: Callable[[], float],
    builders: Mapping[str, AttachmentBuilder],
) -> OutgoingEmail | _Outcome:
    """The email to send for a claimed row, or the outcome to record when there is none to send."""
    if row.attempts >= policy.max_attempts:
        return _Outcome(row.id, "failed", _finished(
            row, status="failed", attempts=row.attempts, last_error="gave up: the sender stopped while holding this message",
        ))
    if not row.recipient:
        # No address: the message lives on in the user's in-app list only.
        return _Outcome(row.id, "in_app_only", _finished(row, status="sent", sent_at=now, channel=IN_APP_CHANNEL))
    try:
        return await _compose(reader, tenants, row, smtp, builders, policy.public_base_url)
    except Exception as exc:  # noqa: BLE001 - recorded (and logged) on the row by _outcome_of, as a failed send is
        return _outcome_of(row, exc, policy=policy, now=now, random=random)


def _outcome_of(
    row: Notification, result: BaseException | None, *, policy: DeliveryPolicy, now: datetime, random: Callable[[], float]
) -> _Outcome:
    """What rendering or sending one row gave (`result` is the exception, or None for sent)."""
    if isinstance(result, (NotificationTemplateError, UndeliverableError)):
        return _failure(row, result, permanent=True, policy=policy, now=now, random=random)
    if isinstance(result, SmtpDeliveryError):
        return _failure(row, result, permanent=result.permanent, policy=policy, now=now, random=random)
    if isinstance(result, Exception):
        # A bug or an unreachable database: retry later, loudly.
        log.error("notification %s (%s) could not be prepared or sent", row.id, row.event, exc_info=result)
        return _failure(row, result, permanent=False, policy=policy, now=now, random=random)
    return _Outcome(row.id, "sent", _finished(row, status="sent", sent_at=now, last_error=None), warn_if_lost=True)


async def _compose(
    reader: AsyncSession,
    tenants: dict[int, Tenant],
    row: Notification,
    smtp: SmtpClient,
    builders: Mapping[str, AttachmentBuilder],
    public_base_url: str | None = None,
) -> OutgoingEmail:
    """Render the row and build its attachments in the group's read transaction (the caller ends it)."""
    try:
        tenant = tenants.get(row.tenant_id) or await reader.get(Tenant, row.tenant_id)
        if tenant is None:
            raise UndeliverableError(f"tenant {row.tenant_id} does not exist")
        tenants[row.tenant_id] = tenant
        customer_name = await _customer_name(reader, row)
        rendered = render_email(
            row.event, row.locale, _template_context(row.payload, tenant.name, customer_name),
            currency=tenant.currency, timezone=tenant.timezone, public_base_url=public_base_url,
        )
        builder = builders.get(row.event)
        attachments = tuple(await builder(session=reader, tenant=tenant, notification=row)) if builder else ()
    except BaseException:
        await reader.rollback()
        tenants.clear()  # the rollback expired them
        raise
    return OutgoingEmail(
        to=row.recipient or "",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        attachments=attachments,
        message_id=message_id_for(tenant_id=row.tenant_id, dedupe_key=row.dedupe_key, mail_from=smtp.settings.mail_from),
        sender_name=tenant.sender_name or tenant.name,
        headers={
            "Auto-Submitted": "auto-generated",
            "X-Cuponera-Event": row.event,
            "X-Cuponera-Notification-Id": str(row.id),
            # Replies reach the utility's service desk, not the unattended sending address.
            **({"Reply-To": tenant.reply_to} if tenant.reply_to else {}),
        },
    )


async def _customer_name(session: AsyncSession, row: Notification) -> str:
    """The greeting name when the payload lacks one: the customer's, else the user's."""
    if "customer_name" in row.payload:
        return str(row.payload["customer_name"])
    if row.customer_id is not None:
        name = await session.scalar(select(Customer.name).where(Customer.id == row.customer_id))
        if name:
            return name
    if row.user_id is not None:
        name = await session.scalar(select(User.full_name).where(User.id == row.user_id))
        if name:
            return name
    return ""


def _template_context(payload: Mapping[str, Any], tenant_name: str, customer_name: str) -> dict[str, Any]:
    """The payload with the greeting and signature filled in when the enqueuer left them out."""
    return {"tenant_name": tenant_name, "customer_name": customer_name, **payload}


def _failure(
    row: Notification,
    exc: BaseException,
    *,
    permanent: bool,
    policy: DeliveryPolicy,
    now: datetime,
    random: Callable[[], float],
) -> _Outcome:
    """Schedule the next attempt with backoff, or give up: after max attempts or on a permanent error."""
    attempts = row.attempts + 1
    error = (str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS]
    if permanent or attempts >= policy.max_attempts:
        log.warning("notification %s failed for good after %d attempt(s): %s", row.id, attempts, error)
        return _Outcome(row.id, "failed", _finished(row, status="failed", attempts=attempts, last_error=error))
    next_at = now + retry_delay(attempts=attempts, base_seconds=policy.base_seconds, random=random)
    return _Outcome(row.id, "retried", _finished(
        row, status="pending", attempts=attempts, last_error=error, next_attempt_at=next_at,
    ))


def _finished(row: Notification, **values: Any) -> dict[str, Any]:
    """The columns that end this claim on a row: the outcome, the claim let go, delivered links redacted."""
    values.update(claim_token=None, claimed_until=None)
    if values["status"] in {"sent", "failed"} and row.event in REDACTED_AFTER_DELIVERY:
        payload = row.payload
        values["payload"] = {**payload, **{key: REDACTED for key in REDACTED_AFTER_DELIVERY[row.event] if key in payload}}
    return values


async def _write_outcomes(writer: AsyncSession, token: str, outcomes: Sequence[_Outcome]) -> None:
    """Record outcomes in one transaction, each only while this claim still holds its row; warn, row by row,
    of the sent ones whose lease was lost to another sender.

    Outcomes with the same values (messages sent at the same time) share one UPDATE ... WHERE id IN (...).
    Should it match fewer rows than it names, the transaction is rolled back and written again row by
    row: only one UPDATE a row can tell which leases were lost (a rare case: a send slower than the lease).
    """
    lost = await _update_outcomes(writer, token, outcomes, shared=True)
    if lost is None:
        await writer.rollback()
        lost = await _update_outcomes(writer, token, outcomes, shared=False)
        assert lost is not None
    await writer.commit()
    for outcome in outcomes:
        if outcome.warn_if_lost and outcome.row_id in lost:
            log.warning("notification %s was sent after its lease expired; another sender may repeat it", outcome.row_id)


async def _update_outcomes(
    writer: AsyncSession, token: str, outcomes: Sequence[_Outcome], *, shared: bool
) -> set[int] | None:
    """Run the guarded UPDATEs; the ids of the rows not held any more, or None when a shared UPDATE fell short."""
    alike: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    lost: set[int] = set()
    for outcome in outcomes:
        if shared and "payload" not in outcome.values:  # a redacted payload is the row's own
            alike.setdefault(tuple(sorted(outcome.values.items())), []).append(outcome.row_id)
        elif not await _guarded_update(writer, _RECORD_ONE, {"row_id": outcome.row_id, "claim": token, **outcome.values}):
            lost.add(outcome.row_id)
    for key, ids in alike.items():
        if len(ids) == 1:
            if not await _guarded_update(writer, _RECORD_ONE, {"row_id": ids[0], "claim": token, **dict(key)}):
                lost.add(ids[0])
        elif await _guarded_update(writer, _RECORD_SAME, {"row_ids": ids, "claim": token, **dict(key)}) < len(ids):
            return None
    return lost


async def _guarded_update(writer: AsyncSession, statement: Any, parameters: dict[str, Any]) -> int:
    """Rows an outcome UPDATE matched."""
    result = await writer.execute(statement, parameters)
    return int(result.rowcount)  # type: ignore[attr-defined]


def render_subject(notification: Notification, tenant: Tenant) -> str:
    """The subject line in the row's language, rendered on demand for listings."""
    try:
        rendered = render_email(
            notification.event,
            notification.locale,
            _template_context(notification.payload, tenant.name, ""),
            currency=tenant.currency,
            timezone=tenant.timezone,
        )
    except NotificationTemplateError:
        return notification.event.replace("_", " ")
    return rendered.subject


async def list_for_user(
    *, session: AsyncSession, tenant: Tenant, user_id: int, limit: int, cursor: str | None
) -> Page[InAppNotification]:
    """The user's own notifications, newest first, whatever their delivery state."""
    stmt = select(Notification).where(Notification.tenant_id == tenant.id, Notification.user_id == user_id)
    page = await paginate(
        session,
        stmt,
        keys=[SortKey(Notification.created_at, descending=True), SortKey(Notification.id, descending=True)],
        limit=limit,
        cursor=cursor,
    )
    items = [
        InAppNotification(
            id=row.id, event=row.event, subject=render_subject(row, tenant), created_at=row.created_at,
            read=row.read_at is not None,
        )
        for row in page.items
    ]
    return Page(items=items, next_cursor=page.next_cursor)


async def mark_read(
    *, session: AsyncSession, tenant: Tenant, user_id: int, notification_id: int, now: datetime | None = None
) -> None:
    """Mark one of the user's notifications read (again is fine); someone else's is a 404."""
    owned = (Notification.id == notification_id, Notification.tenant_id == tenant.id, Notification.user_id == user_id)
    exists = await session.scalar(select(Notification.id).where(*owned))
    if exists is None:
        raise NotFound("No such notification.", code="not_found")
    await session.execute(
        update(Notification)
        .where(*owned, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def list_outbox(
    *, session: AsyncSession, tenant: Tenant, status: str, limit: int, cursor: str | None
) -> Page[Notification]:
    """The tenant's outbox rows in one status (operators look at `failed`), newest first."""
    stmt = select(Notification).where(Notification.tenant_id == tenant.id, Notification.status == status)
    return await paginate(
        session,
        stmt,
        keys=[SortKey(Notification.created_at, descending=True), SortKey(Notification.id, descending=True)],
        limit=limit,
        cursor=cursor,
    )


async def retry_failed(
    *, session: AsyncSession, tenant: Tenant, notification_id: int, now: datetime | None = None
) -> Notification:
    """Put a failed message back in the queue with a fresh set of attempts; 409 unless it failed."""
    scope = (Notification.id == notification_id, Notification.tenant_id == tenant.id)
    event = await session.scalar(select(Notification.event).where(*scope))
    if event is None:
        raise NotFound("No such notification.", code="not_found")
    if event in NOT_RETRYABLE:
        raise Conflict(
            "A password reset link expires in 30 minutes and is not kept; the user must request a new one.",
            code="not_retryable",
        )
    result = await session.execute(
        update(Notification)
        .where(*scope, Notification.status == "failed")
        .values(status="pending", attempts=0, next_attempt_at=now or utcnow(), claim_token=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("Only a failed message can be retried.", code="not_failed")
    await session.commit()
    row = await session.scalar(select(Notification).where(*scope).execution_options(populate_existing=True))
    assert row is not None
    return row

"""SMTP client: builds MIME messages and sends them, or drops them as .eml files when no host is set."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

import aiosmtplib

from config import SmtpSettings

# Headers that send() owns; letting callers set them would produce duplicates.
_RESERVED_HEADERS = frozenset(
    {"message-id", "date", "from", "to", "subject", "mime-version", "content-type",
     "content-transfer-encoding"}
)
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class _KeptHeaderClasses(HeaderRegistry):
    """The standard header registry, but each header name's class made once per process.

    `HeaderRegistry` builds a new class (`type(...)`) for every header it parses; with about twenty
    headers a message (the parts' included) that was a third of building one. The classes hold no
    state (each header is an instance of its class), so keeping them changes nothing else.
    """

    def __init__(self) -> None:
        super().__init__()
        self._kept: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        found = self._kept.get(key)
        if found is None:
            found = self._kept[key] = super().__getitem__(name)
        return found


# RFC 5322 with CRLF line ends (the standard SMTP policy), headers parsed through `_KeptHeaderClasses`.
_POLICY = policy.SMTP.clone(header_factory=_KeptHeaderClasses())


class SmtpDeliveryError(Exception):
    """An email could not be handed to the SMTP server; str(error) is fit to store as a last error."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        # A 5xx answer about the message or its recipient will not change on retry.
        self.permanent = permanent


@dataclass(frozen=True)
class Attachment:
    """A file attached to an email, e.g. an invoice PDF."""

    filename: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class OutgoingEmail:
    """One email to one recipient, already rendered."""

    to: str
    subject: str
    text: str
    html: str | None
    attachments: tuple[Attachment, ...] = ()
    message_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # The tenant's name shown in From, in front of MAIL_FROM's address (whose domain is the sender domain).
    sender_name: str | None = None


class SmtpClient:
    """Sends OutgoingEmail through SMTP, or writes it under settings.mail_dir when host is None."""

    def __init__(
        self, settings: SmtpSettings, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.settings = settings
        self._clock = clock

    async def send(self, email: OutgoingEmail) -> str:
        """Deliver one email and return its Message-ID; raises SmtpDeliveryError on failure."""
        message = self.build_message(email)
        if self.settings.host is None:
            await asyncio.to_thread(self._write_eml, message)
        else:
            await self._send_smtp(message)
        return str(message["Message-ID"])

    def from_header(self, sender_name: str | None) -> str | Address:
        """MAIL_FROM, or its address under the sender's display name ("Aguas del Valle <no-reply@…>")."""
        if not sender_name:
            return self.settings.mail_from
        # An Address object is quoted and encoded by the email package: a tenant name with commas,
        # quotes, accents or line breaks stays one display name and cannot add headers.
        return Address(display_name=" ".join(sender_name.split()), addr_spec=parseaddr(self.settings.mail_from)[1])

    def build_message(self, email: OutgoingEmail) -> EmailMessage:
        """Build the MIME message: text/html alternatives, wrapped in multipart/mixed with attachments."""
        message = EmailMessage(policy=_POLICY)
        message["Message-ID"] = self._message_id(email.message_id)
        message["Date"] = format_datetime(self._clock().astimezone(UTC))
        message["From"] = self.from_header(email.sender_name)
        message["To"] = _single_recipient(email.to)
        message["Subject"] = email.subject
        for name, value in email.headers.items():
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the SMTP client")
            message[name] = value
        message.set_content(email.text)
        if email.html is not None:
            message.add_alternative(email.html, subtype="html")
        for attachment in email.attachments:
            maintype, _, subtype = attachment.mime_type.partition("/")
            message.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.filename,
            )
        return message

    def _message_id(self, message_id: str | None) -> str:
        if message_id is None:
            domain = parseaddr(self.settings.mail_from)[1].rpartition("@")[2] or "cuponera.local"
            # Passing the domain also avoids make_msgid's slow getfqdn() lookup.
            return make_msgid(domain=domain)
        message_id = message_id.strip()
        if any(ch in message_id for ch in ("\r", "\n", " ")) or not message_id.strip("<>"):
            raise ValueError(f"invalid Message-ID {message_id!r}")
        return message_id if message_id.startswith("<") else f"<{message_id}>"

    def _write_eml(self, message: EmailMessage) -> Path:
        mail_dir = self.settings.mail_dir
        mail_dir.mkdir(parents=True, exist_ok=True)
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_id = _UNSAFE_FILENAME_CHARS.sub("_", message["Message-ID"].strip("<>"))[:120]
        target = mail_dir / f"{stamp}-{safe_id}.eml"
        fd, tmp_name = tempfile.mkstemp(dir=mail_dir, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as fh:
                # Unix line ends on disk, so the file parses back to exactly what was sent.
                fh.write(message.as_bytes(policy=message.policy.clone(linesep="\n")))
                fh.flush()
                os.fsync(fh.fileno())
            # A reader of mail_dir never sees a half-written .eml.
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target

    async def _send_smtp(self, message: EmailMessage) -> None:
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password,
                start_tls=settings.starttls,
                timeout=settings.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise SmtpDeliveryError(
                f"SMTP {where} refused recipients: {details}",
                permanent=all(r.code >= 500 for r in exc.recipients),
            ) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SmtpDeliveryError(
                f"SMTP {where} authentication failed: {exc.code} {exc.message}"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpDeliveryError(
                f"SMTP {where} error: {exc.code} {exc.message}",
                permanent=exc.code >= 500 and not isinstance(exc, aiosmtplib.SMTPConnectError),
            ) from exc
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            raise SmtpDeliveryError(
                f"SMTP {where} timed out after {settings.timeout:g}s: {exc}"
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SmtpDeliveryError(
                f"SMTP {where} unavailable: {type(exc).__name__}: {exc}"
            ) from exc


def _single_recipient(value: str) -> Address:
    """Exactly one clean address: a stored "x,evil@evil.co" never becomes two recipients in `To:`."""
    header = _POLICY.header_factory("To", value)
    if len(header.addresses) != 1 or header.defects or not header.addresses[0].domain:
        raise SmtpDeliveryError(f"invalid recipient address {value!r}", permanent=True)
    return header.addresses[0]


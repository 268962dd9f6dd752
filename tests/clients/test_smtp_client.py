"""Tests for the SMTP client against a real local SMTP server and the .eml drop."""

import socket
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from clients.smtp_client import (
    Attachment,
    OutgoingEmail,
    SmtpClient,
    SmtpDeliveryError,
    SmtpSettings,
)

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n\x00\xff\x10binary"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CollectingHandler:
    """Keeps every envelope the server accepts; refuses recipients at refused.example."""

    def __init__(self) -> None:
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    handler = CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture
def invoice_email() -> OutgoingEmail:
    return OutgoingEmail(
        to="María Pérez <maria@example.co>",
        subject="Su factura FAC-2026-000123 de octubre ya está disponible — pago único",
        text="Hola, María:\nSu factura está lista.\n",
        html="<p>Hola, <b>María</b>: tu factura está lista.</p>",
        attachments=(Attachment("FAC-2026-000123.pdf", PDF_BYTES, "application/pdf"),),
        message_id="<outbox-42.invoice_issued@cuponera.local>",
        headers={"X-Cuponera-Event": "invoice_issued"},
    )


def _settings_for(controller, **overrides) -> SmtpSettings:
    return SmtpSettings(
        host=controller.hostname, port=controller.port, starttls=False, timeout=5.0, **overrides
    )


def _text(part) -> str:
    # SMTP puts CRLF line ends in the parts; compare the text, not the wire format.
    return part.get_content().replace("\r\n", "\n")


def _assert_same_content(parsed, email: OutgoingEmail) -> None:
    assert parsed["Subject"] == email.subject
    assert parsed["To"].addresses[0].addr_spec == "maria@example.co"
    assert parsed["To"].addresses[0].display_name == "María Pérez"
    assert parsed["From"].addresses[0].addr_spec == "no-reply@cuponera.local"
    assert parsed["Message-ID"] == email.message_id
    assert parsed["X-Cuponera-Event"] == "invoice_issued"
    assert parsed["Date"].datetime.tzinfo is not None
    assert parsed.get_content_type() == "multipart/mixed"
    assert _text(parsed.get_body(preferencelist=("plain",))) == email.text
    assert _text(parsed.get_body(preferencelist=("html",))).strip() == email.html
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "FAC-2026-000123.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF_BYTES


async def test_send_delivers_text_html_and_pdf(smtp_server, invoice_email):
    controller, handler = smtp_server
    client = SmtpClient(_settings_for(controller))

    message_id = await client.send(invoice_email)

    assert message_id == "<outbox-42.invoice_issued@cuponera.local>"
    [envelope] = handler.envelopes
    assert envelope.mail_from == "no-reply@cuponera.local"
    assert envelope.rcpt_tos == ["maria@example.co"]
    raw = envelope.original_content or envelope.content
    # On the wire the accented subject is an RFC 2047 encoded word, not raw UTF-8.
    raw_subject = next(line for line in raw.split(b"\r\n") if line.startswith(b"Subject:"))
    assert raw_subject.isascii() and b"=?utf-8?" in raw_subject.lower()
    parsed = message_from_bytes(raw, policy=policy.default)
    _assert_same_content(parsed, invoice_email)
    alternative = next(p for p in parsed.iter_parts() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]


async def test_send_without_message_id_generates_one_on_the_sender_domain(smtp_server):
    controller, handler = smtp_server
    client = SmtpClient(_settings_for(controller, mail_from="EPM <avisos@epm.example>"))

    message_id = await client.send(
        OutgoingEmail(to="a@example.co", subject="Hola", text="Texto", html=None)
    )

    assert message_id.startswith("<") and message_id.endswith("@epm.example>")
    parsed = message_from_bytes(handler.envelopes[0].content, policy=policy.default)
    assert parsed["Message-ID"] == message_id
    assert parsed.get_content_type() == "text/plain"
    assert _text(parsed) == "Texto\n"


async def test_message_id_without_brackets_is_wrapped(smtp_server):
    controller, _ = smtp_server
    client = SmtpClient(_settings_for(controller))

    message_id = await client.send(
        OutgoingEmail(to="a@example.co", subject="x", text="x", html=None, message_id="k1@cuponera.local")
    )

    assert message_id == "<k1@cuponera.local>"


async def test_refused_recipient_is_a_permanent_delivery_error(smtp_server):
    controller, handler = smtp_server
    client = SmtpClient(_settings_for(controller))

    with pytest.raises(SmtpDeliveryError) as excinfo:
        await client.send(OutgoingEmail(to="nobody@refused.example", subject="x", text="x", html=None))

    assert excinfo.value.permanent is True
    assert "550" in str(excinfo.value) and "nobody@refused.example" in str(excinfo.value)
    assert handler.envelopes == []


async def test_smtp_down_raises_delivery_error_quickly():
    port = _free_port()  # bound then released: nothing listens there
    client = SmtpClient(SmtpSettings(host="127.0.0.1", port=port, starttls=False, timeout=2.0))

    started = time.monotonic()
    with pytest.raises(SmtpDeliveryError) as excinfo:
        await client.send(OutgoingEmail(to="a@example.co", subject="x", text="x", html=None))

    assert time.monotonic() - started < 2.0
    assert f"127.0.0.1:{port}" in str(excinfo.value)
    assert excinfo.value.permanent is False


async def test_silent_server_raises_delivery_error_after_timeout():
    # The kernel completes the handshake from the backlog, but no greeting ever comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = SmtpClient(SmtpSettings(host="127.0.0.1", port=port, starttls=False, timeout=0.3))

        started = time.monotonic()
        with pytest.raises(SmtpDeliveryError, match="timed out") as excinfo:
            await client.send(OutgoingEmail(to="a@example.co", subject="x", text="x", html=None))

    assert time.monotonic() - started < 3.0
    assert excinfo.value.permanent is False


async def test_no_host_writes_an_eml_that_parses_back(tmp_path, invoice_email):
    mail_dir = tmp_path / "var" / "mail"
    fixed_now = datetime(2026, 11, 1, 3, 0, 5, 123456, tzinfo=UTC)
    client = SmtpClient(SmtpSettings(host=None, mail_dir=mail_dir), clock=lambda: fixed_now)

    message_id = await client.send(invoice_email)

    assert message_id == invoice_email.message_id
    [eml] = list(mail_dir.iterdir())  # no temp file left behind
    assert eml.name == "20261101T030005123456Z-outbox-42.invoice_issued_cuponera.local.eml"
    parsed = message_from_bytes(eml.read_bytes(), policy=policy.default)
    _assert_same_content(parsed, invoice_email)
    assert parsed.get_body(preferencelist=("plain",)).get_content() == invoice_email.text
    assert parsed["Date"].datetime == fixed_now.replace(microsecond=0)


async def test_no_host_keeps_every_message(tmp_path):
    client = SmtpClient(SmtpSettings(host=None, mail_dir=tmp_path))

    ids = {
        await client.send(OutgoingEmail(to="a@example.co", subject=f"n{i}", text="x", html=None))
        for i in range(3)
    }

    assert len(ids) == 3
    assert len(list(tmp_path.glob("*.eml"))) == 3


def test_caller_cannot_override_headers_the_client_owns():
    client = SmtpClient(SmtpSettings(host=None))
    email = OutgoingEmail(to="a@example.co", subject="x", text="x", html=None, headers={"Subject": "y"})

    with pytest.raises(ValueError, match="Subject"):
        client.build_message(email)


def test_settings_from_env_reads_every_variable(tmp_path):
    settings = SmtpSettings.from_env(
        {
            "SMTP_HOST": "smtp.example.co",
            "SMTP_PORT": "2525",
            "SMTP_USERNAME": "mailer",
            "SMTP_PASSWORD": "s3cret",
            "SMTP_STARTTLS": "0",
            "MAIL_FROM": "EPM <avisos@epm.example>",
        },
        var_dir=tmp_path,
    )

    assert settings == SmtpSettings(
        host="smtp.example.co",
        port=2525,
        username="mailer",
        password="s3cret",
        starttls=False,
        mail_from="EPM <avisos@epm.example>",
        mail_dir=tmp_path / "mail",
    )
    assert "s3cret" not in repr(settings)


def test_settings_from_env_defaults_to_the_eml_drop():
    settings = SmtpSettings.from_env({"SMTP_HOST": "  "}, var_dir=Path("var"))

    assert settings.host is None
    assert settings.port == 587
    assert settings.starttls is True
    assert settings.mail_from == "Cuponera <no-reply@cuponera.local>"
    assert settings.mail_dir == Path("var/mail")


@pytest.mark.parametrize("raw, expected", [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)])
def test_settings_from_env_parses_starttls(raw, expected):
    settings = SmtpSettings.from_env({"SMTP_STARTTLS": raw}, var_dir=Path("var"))

    assert settings.starttls is expected


@pytest.mark.parametrize("env", [{"SMTP_STARTTLS": "maybe"}, {"SMTP_PORT": "smtp"}])
def test_settings_from_env_rejects_bad_values(env):
    with pytest.raises(ValueError, match=next(iter(env))):
        SmtpSettings.from_env(env, var_dir=Path("var"))


@pytest.mark.parametrize(
    ("sender_name", "display"),
    [
        (None, "Cuponera"),
        ("Aguas del Valle S.A. E.S.P.", "Aguas del Valle S.A. E.S.P."),
        ("Energía \"Sur\", Ltda.", "Energía \"Sur\", Ltda."),
        ("Evil\r\nBcc: victim@example.com", "Evil Bcc: victim@example.com"),
    ],
)
def test_from_carries_the_tenant_name_on_the_configured_address(sender_name, display):
    client = SmtpClient(SmtpSettings(host=None, mail_from="Cuponera <no-reply@pagos.example.co>"))
    built = client.build_message(OutgoingEmail(to="a@example.com", subject="s", text="t", html=None, sender_name=sender_name))
    parsed = message_from_bytes(built.as_bytes(), policy=policy.default)
    [address] = parsed["From"].addresses
    assert (address.display_name, address.addr_spec) == (display, "no-reply@pagos.example.co")
    assert parsed["Bcc"] is None


def test_header_classes_are_made_once_and_the_message_is_what_the_standard_policy_writes(invoice_email):
    """The kept header classes (see smtp_client._KeptHeaderClasses) change nothing in the bytes sent."""
    moment = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
    client = SmtpClient(SmtpSettings(host=None, mail_from="Cuponera <no-reply@aguas.example>"), clock=lambda: moment)
    first, second = client.build_message(invoice_email), client.build_message(invoice_email)
    for name in ("Subject", "From", "To", "Message-ID", "Date", "Content-Type"):
        assert type(first[name]) is type(second[name])
    # The same message built through a fresh standard registry (new classes per header, as before).
    reference = message_from_bytes(first.as_bytes(), policy=policy.SMTP)
    assert reference.as_bytes() == first.as_bytes()
    assert type(reference["Subject"]) is not type(first["Subject"])
    assert first["Subject"] == invoice_email.subject

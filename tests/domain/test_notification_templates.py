"""Tests for rendering notification emails in every event and language."""

import pytest

from domain.notification_templates import (
    EVENTS,
    SUPPORTED_LOCALES,
    NotificationTemplateError,
    RenderedEmail,
    normalise_locale,
    render_email,
)

COMMON = {
    "customer_name": "María <Pérez> & Hijos",
    "tenant_name": "Energía del Valle S.A. E.S.P.",
    "portal_url": "https://portal.energia.example/clientes",
}

SAMPLE_PAYLOADS = {
    "invoice_issued": {
        "invoice_number": "FAC-2026-000123",
        "contract_number": "100200300",
        "period": "2026-10",
        "amount_due": "20870",
        "due_date": "2026-11-15",
    },
    "invoice_paid": {
        "invoice_number": "FAC-2026-000123",
        "contract_number": "100200300",
        "period": "2026-10",
        "amount_paid": "20870",
        "paid_at": "2026-11-01T03:00:00+00:00",
    },
    "invoice_overdue": {
        "invoice_number": "FAC-2026-000123",
        "contract_number": "100200300",
        "period": "2026-10",
        "amount_due": "20870",
        "due_date": "2026-11-15",
    },
    "invoice_voided": {
        "invoice_number": "FAC-2026-000123",
        "contract_number": "100200300",
        "period": "2026-10",
        "amount_due": "0",
        "due_date": "2026-11-15",
        "reason": "Lectura mal tomada",
    },
    "credit_note_issued": {
        "invoice_id": 41, "invoice_number": "FAC-2026-000123", "contract_number": "100200300", "period": "2026-10",
        "note_number": "NC-2026-000007", "amount": "5000", "amount_due": "15870", "to_credit_balance": False,
        "reason": "Lectura mal tomada", "pqr_filing_number": "PQR-20261122-00042",
    },
    "coupon_created": {
        "coupon_reference": "4500012345674",
        "amount": "20870",
        "expires_at": "2026-11-01T03:00:00Z",
        "invoice_numbers": ["FAC-2026-000123", "FAC-2026-000124"],
    },
    "coupon_expiring": {"coupon_reference": "4500012345674", "amount": "20870", "expires_at": "2026-11-01T03:00:00Z"},
    "coupon_expired": {"coupon_reference": "4500012345674", "amount": "20870", "expires_at": "2026-11-01T03:00:00Z"},
    "payment_reversed": {
        "coupon_reference": "4500012345674",
        "amount": "20870",
        "reversed_at": "2026-11-01T03:00:00Z",
        "reason": "Pago duplicado",
        "invoice_numbers": ["FAC-2026-000123"],
    },
    "pqr_filed": {
        "filing_number": "PQR-20261122-00042",
        "pqr_type": "claim",
        "filed_at": "2026-11-01T03:00:00Z",
        "due_date": "2026-12-14",
    },
    "pqr_answered": {
        "filing_number": "PQR-20261122-00042",
        "pqr_type": "claim",
        "answered_at": "2026-11-01T03:00:00Z",
        "answer": "Revisamos la lectura.\nEl consumo facturado es correcto.",
    },
    "suspension_notice": {
        "contract_number": "100200300",
        "supply_address": "Calle 5 # 10-20, Cali",
        "amount_due": "41740",
        "oldest_due_date": "2026-09-15",
        "suspend_from": "2026-12-11",
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
    "password_reset": {"reset_url": "https://portal.energia.example/reset?token=abc&x=1"},
    "email_change": {"confirm_url": "https://portal.energia.example/portal/?confirm_email=abc&x=1", "new_email": "maria.nueva@example.co"},
}

EXPECTED_SUBJECTS = {
    ("invoice_issued", "es"): "Su factura FAC-2026-000123 de octubre de 2026 ya está disponible",
    ("invoice_issued", "en"): "Your October 2026 bill FAC-2026-000123 is ready",
    ("invoice_issued", "pt"): "Sua fatura FAC-2026-000123 de outubro de 2026 está disponível",
    ("invoice_paid", "es"): "Recibimos el pago de su factura FAC-2026-000123",
    ("invoice_paid", "en"): "We received payment for invoice FAC-2026-000123",
    ("invoice_paid", "pt"): "Recebemos o pagamento da sua fatura FAC-2026-000123",
    ("invoice_overdue", "es"): "Su factura FAC-2026-000123 está vencida",
    ("invoice_overdue", "en"): "Your bill FAC-2026-000123 is overdue",
    ("invoice_overdue", "pt"): "Sua fatura FAC-2026-000123 está vencida",
    ("invoice_voided", "es"): "Su factura FAC-2026-000123 fue anulada",
    ("invoice_voided", "en"): "Your bill FAC-2026-000123 was cancelled",
    ("invoice_voided", "pt"): "Sua fatura FAC-2026-000123 foi cancelada",
    ("credit_note_issued", "es"): "Nota crédito NC-2026-000007 a su factura FAC-2026-000123",
    ("credit_note_issued", "en"): "Credit note NC-2026-000007 on your bill FAC-2026-000123",
    ("credit_note_issued", "pt"): "Nota de crédito NC-2026-000007 na sua fatura FAC-2026-000123",
    ("coupon_created", "es"): "Su cupón de pago 4500012345674 por $20.870",
    ("coupon_created", "en"): "Your payment coupon 4500012345674 for COP 20,870",
    ("coupon_created", "pt"): "Seu cupom de pagamento 4500012345674 de COP 20.870",
    ("coupon_expiring", "es"): "Su cupón de pago 4500012345674 vence pronto",
    ("coupon_expiring", "en"): "Your payment coupon 4500012345674 expires soon",
    ("coupon_expiring", "pt"): "Seu cupom de pagamento 4500012345674 vence em breve",
    ("coupon_expired", "es"): "Su cupón de pago 4500012345674 venció",
    ("coupon_expired", "en"): "Your payment coupon 4500012345674 has expired",
    ("coupon_expired", "pt"): "Seu cupom de pagamento 4500012345674 venceu",
    ("payment_reversed", "es"): "Anulamos el pago del cupón 4500012345674",
    ("payment_reversed", "en"): "The payment on coupon 4500012345674 has been reversed",
    ("payment_reversed", "pt"): "O pagamento do cupom 4500012345674 foi estornado",
    ("pqr_filed", "es"): "Radicamos su solicitud PQR-20261122-00042",
    ("pqr_filed", "en"): "We have received your request PQR-20261122-00042",
    ("pqr_filed", "pt"): "Registramos sua solicitação PQR-20261122-00042",
    ("pqr_answered", "es"): "Respondimos su solicitud PQR-20261122-00042",
    ("pqr_answered", "en"): "We have answered your request PQR-20261122-00042",
    ("pqr_answered", "pt"): "Respondemos sua solicitação PQR-20261122-00042",
    ("suspension_notice", "es"): "Aviso de suspensión del servicio del contrato 100200300",
    ("suspension_notice", "en"): "Notice of service suspension for contract 100200300",
    ("suspension_notice", "pt"): "Aviso de suspensão do fornecimento do contrato 100200300",
    ("agreement_created", "es"): "Su acuerdo de pago del contrato 100200300 quedó firmado",
    ("agreement_created", "en"): "Your payment agreement for contract 100200300 is signed",
    ("agreement_created", "pt"): "Seu acordo de pagamento do contrato 100200300 foi assinado",
    ("instalment_due_soon", "es"): "Su cuota 2 del acuerdo de pago vence pronto",
    ("instalment_due_soon", "en"): "Instalment 2 of your payment agreement is due soon",
    ("instalment_due_soon", "pt"): "Sua parcela 2 do acordo de pagamento vence em breve",
    ("instalment_overdue", "es"): "Su cuota inicial del acuerdo de pago está vencida",
    ("instalment_overdue", "en"): "The down payment of your payment agreement is overdue",
    ("instalment_overdue", "pt"): "Sua entrada do acordo de pagamento está vencida",
    ("agreement_completed", "es"): "Completó su acuerdo de pago del contrato 100200300",
    ("agreement_completed", "en"): "You have completed your payment agreement for contract 100200300",
    ("agreement_completed", "pt"): "Você concluiu seu acordo de pagamento do contrato 100200300",
    ("agreement_broken", "es"): "Su acuerdo de pago del contrato 100200300 fue anulado",
    ("agreement_broken", "en"): "Your payment agreement for contract 100200300 has been broken",
    ("agreement_broken", "pt"): "Seu acordo de pagamento do contrato 100200300 foi rompido",
    ("password_reset", "es"): "Restablezca su contraseña",
    ("password_reset", "en"): "Reset your password",
    ("password_reset", "pt"): "Redefina sua senha",
    ("email_change", "es"): "Confirme su nuevo correo electrónico",
    ("email_change", "en"): "Confirm your new email address",
    ("email_change", "pt"): "Confirme seu novo e-mail",
}

GREETINGS = {"es": "Hola, María <Pérez> & Hijos:", "en": "Hello María <Pérez> & Hijos,", "pt": "Olá, María <Pérez> & Hijos,"}


def _render(event, locale="es", *, currency="COP", timezone="America/Bogota", **overrides) -> RenderedEmail:
    payload = {**COMMON, **SAMPLE_PAYLOADS[event], **overrides}
    return render_email(event, locale, payload, currency=currency, timezone=timezone)


def test_every_event_has_a_sample_and_expected_subjects():
    assert set(SAMPLE_PAYLOADS) == set(EVENTS)
    assert {key for key in EXPECTED_SUBJECTS} == {(e, loc) for e in EVENTS for loc in SUPPORTED_LOCALES}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("event", EVENTS)
def test_every_event_renders_in_every_locale(event, locale):
    rendered = _render(event, locale)

    assert rendered.subject == EXPECTED_SUBJECTS[event, locale]
    assert "\n" not in rendered.subject and rendered.subject == rendered.subject.strip()
    # Text is plain: the customer's name comes out verbatim.
    assert rendered.text.startswith(GREETINGS[locale] + "\n")
    assert "Energía del Valle S.A. E.S.P." in rendered.text
    assert "https://portal.energia.example/clientes" in rendered.text
    assert "<" not in rendered.text.replace("<Pérez>", "")
    # HTML is autoescaped and declares its language.
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in rendered.html
    assert "María &lt;Pérez&gt; &amp; Hijos" in rendered.html
    assert "<Pérez>" not in rendered.html
    assert "{{" not in rendered.text + rendered.html


@pytest.mark.parametrize(
    "event, facts",
    [
        ("invoice_issued", ["FAC-2026-000123", "100200300", "$20.870", "15 de noviembre de 2026", "octubre de 2026"]),
        ("invoice_paid", ["FAC-2026-000123", "$20.870", "31 de octubre de 2026, 22:00"]),
        ("coupon_created", ["4500012345674", "FAC-2026-000123, FAC-2026-000124", "$20.870", "31 de octubre de 2026, 22:00"]),
        ("coupon_expiring", ["4500012345674", "$20.870", "31 de octubre de 2026, 22:00", "24 horas"]),
        ("coupon_expired", ["4500012345674", "$20.870", "31 de octubre de 2026, 22:00"]),
        ("payment_reversed", ["4500012345674", "$20.870", "Pago duplicado", "31 de octubre de 2026, 22:00"]),
        ("pqr_filed", ["PQR-20261122-00042", "reclamo", "31 de octubre de 2026, 22:00", "14 de diciembre de 2026"]),
        ("pqr_answered", ["PQR-20261122-00042", "reclamo", "El consumo facturado es correcto."]),
        ("suspension_notice", ["100200300", "Calle 5 # 10-20, Cali", "$41.740", "15 de septiembre de 2026", "11 de diciembre de 2026"]),
        ("agreement_created", ["100200300", "$100.000", "$10.500", "$110.500", "$30.000", "9 de diciembre de 2026"]),
        ("instalment_due_soon", ["000000010017", "$11.500", "8 de febrero de 2027"]),
        ("instalment_overdue", ["000000010009", "$30.000", "9 de diciembre de 2026"]),
        ("agreement_completed", ["100200300", "$110.500", "6 de julio de 2027, 10:00"]),
        ("agreement_broken", ["100200300", "$58.500"]),
        ("password_reset", ["https://portal.energia.example/reset?token=abc&x=1", "30 minutos"]),
        ("email_change", ["https://portal.energia.example/portal/?confirm_email=abc&x=1", "maria.nueva@example.co", "24 horas"]),
    ],
)
def test_key_facts_appear_in_text_and_html(event, facts):
    rendered = _render(event, "es")

    for fact in facts:
        assert fact in rendered.text
        assert fact.replace("&", "&amp;") in rendered.html


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_cop_amounts_have_no_decimals_and_the_readers_grouping(locale):
    rendered = _render("invoice_issued", locale, currency="COP")

    # One formatter (domain/money_format.py): the reader's separators, the ISO code for a non-Spanish reader.
    expected = {"es": "$20.870", "en": "COP\u00a020,870", "pt": "COP\u00a020.870"}[locale]
    assert expected in rendered.text
    assert "20.870,00" not in rendered.text and "20,870.00" not in rendered.text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_brl_amounts_keep_centavos(locale):
    rendered = _render("invoice_issued", locale, currency="BRL", timezone="America/Sao_Paulo", amount_due="1520.50")

    expected = {"es": "BRL\u00a01,520.50", "en": "BRL\u00a01,520.50", "pt": "R$\u00a01.520,50"}[locale]
    assert expected in rendered.text


def test_brl_for_a_portuguese_reader_uses_the_real_sign():
    rendered = _render("coupon_created", "pt", currency="BRL", timezone="America/Sao_Paulo", amount="1520.5")

    # The body keeps babel's no-break space; the subject collapses it to a plain one.
    assert rendered.subject == "Seu cupom de pagamento 4500012345674 de R$ 1.520,50"
    assert "R$\u00a01.520,50" in rendered.text


def test_clp_amounts_have_no_decimals():
    rendered = _render("coupon_created", "es", currency="CLP", timezone="America/Santiago", amount="20870")

    assert rendered.subject == "Su cupón de pago 4500012345674 por $20.870"


def test_whole_currency_amounts_round_half_up():
    rendered = _render("coupon_created", "es", amount="20870.5")

    assert "$20.871" in rendered.subject


@pytest.mark.parametrize(
    "locale, expected",
    [
        ("es", "31 de octubre de 2026, 22:00"),
        ("en", "October 31, 2026, 22:00"),
        ("pt", "31 de outubro de 2026 22:00"),
    ],
)
def test_datetimes_show_in_the_tenant_time_zone(locale, expected):
    rendered = _render("coupon_expiring", locale, expires_at="2026-11-01T03:00Z")

    assert expected in rendered.text
    assert expected in rendered.html


def test_datetimes_follow_the_tenant_time_zone_not_utc():
    rendered = _render("coupon_expiring", "es", currency="CLP", timezone="America/Santiago")

    # Santiago is on summer time (UTC-3) in November.
    assert "1 de noviembre de 2026, 00:00" in rendered.text


def test_unknown_locale_falls_back_to_spanish():
    assert _render("invoice_paid", "fr") == _render("invoice_paid", "es")


@pytest.mark.parametrize("raw, expected", [("pt-BR", "pt"), ("EN_us", "en"), ("es", "es"), ("", "es"), (None, "es"), ("de", "es")])
def test_normalise_locale(raw, expected):
    assert normalise_locale(raw) == expected


def test_unknown_event_raises_value_error():
    with pytest.raises(ValueError, match="unknown notification event"):
        render_email("meter_exploded", "es", COMMON, currency="COP", timezone="America/Bogota")


def test_missing_payload_key_raises_a_clear_error():
    payload = {**COMMON, **SAMPLE_PAYLOADS["invoice_issued"]}
    del payload["due_date"]

    with pytest.raises(NotificationTemplateError, match="due_date"):
        render_email("invoice_issued", "es", payload, currency="COP", timezone="America/Bogota")


def test_bad_amount_raises_a_clear_error():
    with pytest.raises(NotificationTemplateError, match="not a decimal amount"):
        _render("invoice_issued", amount_due="veinte mil")


def test_portal_url_is_optional():
    payload = {key: value for key, value in {**COMMON, **SAMPLE_PAYLOADS["invoice_paid"]}.items() if key != "portal_url"}

    rendered = render_email("invoice_paid", "es", payload, currency="COP", timezone="America/Bogota")

    assert "Portal de clientes" not in rendered.text


def test_reset_link_validity_can_be_set_by_the_caller():
    rendered = _render("password_reset", "en", expires_in_minutes=15)

    assert "valid for 15 minutes" in rendered.text


def test_pqr_answer_keeps_its_line_breaks_in_text():
    rendered = _render("pqr_answered", "es")

    assert "Revisamos la lectura.\nEl consumo facturado es correcto." in rendered.text


CREATED_FOR_YOU = {
    "es": "Se generó un cupón de pago para su contrato 100200300",
    "en": "A payment coupon was created for your contract 100200300",
    "pt": "Foi gerado um cupom de pagamento para seu contrato 100200300",
}
YOU_CREATED = {"es": "Usted generó un cupón de pago", "en": "You created a payment coupon", "pt": "Você gerou um cupom de pagamento"}
NOT_YOU = {"es": "Si no lo generó usted", "en": "If it was not you", "pt": "Se não foi você"}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("created_by", ["customer", "staff", "anonymous"])
def test_the_coupon_email_says_who_created_it(locale, created_by):
    rendered = _render("coupon_created", locale, created_by=created_by, contract_numbers=["100200300"])

    for body in (rendered.text, rendered.html):
        assert (YOU_CREATED[locale] in body) == (created_by == "customer")
        assert (CREATED_FOR_YOU[locale] in body) == (created_by != "customer")
        assert (NOT_YOU[locale] in body) == (created_by == "anonymous")


def test_a_coupon_email_queued_before_the_creator_was_recorded_still_renders():
    # Outbox rows written by the previous release have neither key; they were the customer's own coupons or quick-pay.
    rendered = _render("coupon_created", "es")
    assert YOU_CREATED["es"] in rendered.text

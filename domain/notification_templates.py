"""Renders notification emails (subject, text, HTML) from Jinja templates in the customer's language."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time

from domain.money_format import format_money

EVENTS = (
    "invoice_issued",
    "invoice_paid",
    "invoice_overdue",
    "invoice_voided",
    "credit_note_issued",
    "coupon_created",
    "coupon_expiring",
    "coupon_expired",
    "payment_reversed",
    "pqr_filed",
    "pqr_answered",
    "suspension_notice",
    "agreement_created",
    "instalment_due_soon",
    "instalment_overdue",
    "agreement_completed",
    "agreement_broken",
    "password_reset",
    "email_change",
)
SUPPORTED_LOCALES = ("es", "en", "pt")
DEFAULT_LOCALE = "es"

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

# Language used when the tenant's country has no CLDR locale for it (there is no en_CO).
_LANGUAGE_LOCALES = {"es": "es_CO", "en": "en_US", "pt": "pt_BR"}
# Dates read in the reader's language, in the regional variant of the bill's country.
_CURRENCY_LOCALES = {"CLP": "es_CL", "COP": "es_CO", "BRL": "pt_BR"}


class NotificationTemplateError(ValueError):
    """An event has no template or its payload does not fit the template."""


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered notification, ready to become an OutgoingEmail."""

    subject: str
    text: str
    html: str


def normalise_locale(locale: str | None) -> str:
    """Map 'pt-BR', 'EN', None... to one of SUPPORTED_LOCALES, Spanish by default."""
    language = re.split(r"[-_]", (locale or "").strip().lower(), maxsplit=1)[0]
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


def portal_page_path(event: str, payload: Mapping[str, Any]) -> str | None:
    """The portal page an email is about: the invoice, the coupon or the PQR (None when the payload cannot name it)."""
    if (event.startswith("invoice_") or event == "credit_note_issued") and payload.get("invoice_id") is not None:
        return f"/portal/#/invoices/{quote(str(payload['invoice_id']), safe='')}"
    if (event.startswith("coupon_") or event == "payment_reversed") and payload.get("coupon_reference"):
        return f"/portal/#/coupons/{quote(str(payload['coupon_reference']), safe='')}"
    if event.startswith("pqr_") and payload.get("pqr_id") is not None:
        return f"/portal/#/pqrs/{quote(str(payload['pqr_id']), safe='')}"
    return None


def render_email(
    event: str,
    locale: str,
    payload: Mapping[str, Any],
    *,
    currency: str,
    timezone: str,
    public_base_url: str | None = None,
) -> RenderedEmail:
    """Render the subject, plain text and HTML of one event for one customer.

    With `public_base_url`, the email links to its portal page (`page_url`) and the portal (`portal_url`).
    """
    if event not in EVENTS:
        raise NotificationTemplateError(f"unknown notification event {event!r}")
    language = normalise_locale(locale)
    formatter = _Formatter(language, currency.upper(), ZoneInfo(timezone))
    links: dict[str, str] = {}
    if public_base_url:
        base = public_base_url.rstrip("/")
        links["portal_url"] = f"{base}/portal/"
        path = portal_page_path(event, payload)
        if path is not None:
            links["page_url"] = base + path
    context = {**links, **payload, "locale": language, "_fmt": formatter}
    env = _environment()
    base = f"email/{event}/{language}"
    try:
        subject = env.get_template(f"{base}/subject.txt").render(context)
        text = env.get_template(f"{base}/body.txt").render(context)
        html = env.get_template(f"{base}/body.html").render(context)
    except jinja2.UndefinedError as exc:
        raise NotificationTemplateError(f"payload for {event!r} is incomplete: {exc}") from exc
    except jinja2.TemplateNotFound as exc:
        raise NotificationTemplateError(f"missing template {exc.name!r}") from exc
    return RenderedEmail(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), disabled_extensions=("txt",), default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(money=_money, date=_date, datetime=_datetime, period=_period)
    return env


# Filters read the per-render formatter from the context, so one Environment serves every tenant.
@jinja2.pass_context
def _money(ctx: jinja2.runtime.Context, value: Any) -> str:
    return ctx["_fmt"].money(value)


@jinja2.pass_context
def _date(ctx: jinja2.runtime.Context, value: Any) -> str:
    return ctx["_fmt"].date(value)


@jinja2.pass_context
def _datetime(ctx: jinja2.runtime.Context, value: Any) -> str:
    return ctx["_fmt"].datetime(value)


@jinja2.pass_context
def _period(ctx: jinja2.runtime.Context, value: Any) -> str:
    return ctx["_fmt"].period(value)


class _Formatter:
    """Formats money and dates for one language, tenant currency and tenant time zone."""

    def __init__(self, language: str, currency: str, tz: ZoneInfo) -> None:
        self.language = language
        self.currency = currency
        self.tz = tz
        country_locale = _CURRENCY_LOCALES.get(currency)
        territory = country_locale.split("_")[1] if country_locale else None
        # Dates read in the customer's language, in the tenant's regional variant when CLDR has one.
        self.text_locale = _existing_locale(f"{language}_{territory}") if territory else None
        self.text_locale = self.text_locale or Locale.parse(_LANGUAGE_LOCALES[language])

    def money(self, value: Any) -> str:
        return format_money(_to_decimal(value), self.currency, self.language)

    def date(self, value: Any) -> str:
        return format_date(self._to_date(value), format="long", locale=self.text_locale)

    def datetime(self, value: Any) -> str:
        moment = self._to_local_datetime(value)
        day = format_date(moment.date(), format="long", locale=self.text_locale)
        # 24-hour clock everywhere: "22:00" cannot be misread on a due time.
        time = format_time(moment, "HH:mm", tzinfo=self.tz, locale=self.text_locale)
        return self.text_locale.datetime_formats["medium"].format(time, day)

    def period(self, value: Any) -> str:
        """'2026-10' -> 'octubre de 2026' / 'October 2026' / 'outubro de 2026'."""
        year, _, month = str(value).partition("-")
        try:
            first_day = date(int(year), int(month[:2]), 1)
        except ValueError:
            raise NotificationTemplateError(f"period must be YYYY-MM, got {value!r}") from None
        return format_skeleton("yMMMM", first_day, locale=self.text_locale)

    def _to_date(self, value: Any) -> date:
        if isinstance(value, datetime):
            return self._to_local_datetime(value).date()
        if isinstance(value, date):
            return value
        text = str(value)
        if "T" in text or " " in text:
            return self._to_local_datetime(text).date()
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise NotificationTemplateError(f"not an ISO date: {value!r}") from None

    def _to_local_datetime(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                raise NotificationTemplateError(f"not an ISO datetime: {value!r}") from None
        if moment.tzinfo is None:
            # Outbox payloads are written in UTC; a missing offset means UTC.
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.tz)


def _existing_locale(identifier: str) -> Locale | None:
    try:
        return Locale.parse(identifier)
    except UnknownLocaleError:
        return None


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise NotificationTemplateError(f"not a decimal amount: {value!r}") from None
    if not amount.is_finite():
        raise NotificationTemplateError(f"not a decimal amount: {value!r}")
    return amount

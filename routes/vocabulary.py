"""The closed vocabularies of the API as `Literal` types, taken from the tables' own lists.

OpenAPI shows each as an `enum`, so a partner's generated client gets real enums, and a new status
added to a model reaches the document without a second list to keep in step.
"""

from __future__ import annotations

from typing import Literal

from controllers.report_controller import REPORT_CHANNELS
from domain.billing_calculator import LINE_KINDS
from domain.money import MINOR_UNITS
from domain.national_id import NATIONAL_ID_TYPES
from domain.notification_templates import SUPPORTED_LOCALES
from domain.readings import FLAG_ORDER
from models.account_model import (
    CONTRACT_STATUSES,
    CUSTOMER_STATUSES,
    METER_KINDS,
    METER_STATUSES,
    READING_KINDS,
    SERVICES,
    STRATA,
)
from models.agreement_model import AGREEMENT_STATUSES, INSTALMENT_STATUSES
from models.billing_model import BILLING_RUN_STATUSES, CHARGE_STATUSES, INVOICE_STATUSES
from models.collection_file_model import COLLECTION_FILE_STATUSES, DETAIL_OUTCOMES, EXCEPTION_RESOLUTIONS
from models.note_model import NOTE_KINDS
from models.notification_model import NOTIFICATION_STATUSES
from models.payment_model import (
    COUPON_STATUSES,
    CREDIT_BALANCE_REASONS,
    CREDIT_BALANCE_STATUSES,
    LEDGER_KINDS,
    PAYMENT_CHANNELS,
    PAYMENT_STATUSES,
    REFUND_METHODS,
    REFUND_STATUSES,
)
from models.pqr_model import PQR_STATUSES, PQR_TYPES
from models.reading_file_model import ISSUE_OUTCOMES
from models.service_order_model import SERVICE_ORDER_KINDS, SERVICE_ORDER_STATUSES
from models.user_model import ROLES, USER_STATUSES

# mypy cannot see through a tuple in Literal[...]; at run time typing expands it to its members.
Service = Literal[SERVICES]  # type: ignore[valid-type]
Stratum = Literal[STRATA]  # type: ignore[valid-type]
CustomerStatus = Literal[CUSTOMER_STATUSES]  # type: ignore[valid-type]
ContractStatus = Literal[CONTRACT_STATUSES]  # type: ignore[valid-type]
MeterStatus = Literal[METER_STATUSES]  # type: ignore[valid-type]
ReadingKind = Literal[READING_KINDS]  # type: ignore[valid-type]
InvoiceStatus = Literal[INVOICE_STATUSES]  # type: ignore[valid-type]
InvoiceLineKind = Literal[tuple(sorted(LINE_KINDS))]  # type: ignore[valid-type]
BillingRunStatus = Literal[BILLING_RUN_STATUSES]  # type: ignore[valid-type]
CouponStatus = Literal[COUPON_STATUSES]  # type: ignore[valid-type]
PaymentStatus = Literal[PAYMENT_STATUSES]  # type: ignore[valid-type]
PaymentChannel = Literal[PAYMENT_CHANNELS]  # type: ignore[valid-type]
LedgerKind = Literal[LEDGER_KINDS]  # type: ignore[valid-type]
NotificationStatus = Literal[NOTIFICATION_STATUSES]  # type: ignore[valid-type]
PqrStatus = Literal[PQR_STATUSES]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]
UserStatus = Literal[USER_STATUSES]  # type: ignore[valid-type]
Locale = Literal[SUPPORTED_LOCALES]  # type: ignore[valid-type]
Currency = Literal[tuple(MINOR_UNITS)]  # type: ignore[valid-type]
NationalIdType = Literal[NATIONAL_ID_TYPES]  # type: ignore[valid-type]
PqrType = Literal[PQR_TYPES]  # type: ignore[valid-type]
ReadingFlag = Literal[FLAG_ORDER]  # type: ignore[valid-type]
ReportChannel = Literal[REPORT_CHANNELS]  # type: ignore[valid-type]
CreditBalanceStatus = Literal[CREDIT_BALANCE_STATUSES]  # type: ignore[valid-type]
CreditBalanceReason = Literal[CREDIT_BALANCE_REASONS]  # type: ignore[valid-type]
ReadingFileOutcome = Literal[ISSUE_OUTCOMES]  # type: ignore[valid-type]
CollectionFileStatus = Literal[COLLECTION_FILE_STATUSES]  # type: ignore[valid-type]
CollectionFileOutcome = Literal[DETAIL_OUTCOMES]  # type: ignore[valid-type]
ExceptionResolution = Literal[EXCEPTION_RESOLUTIONS]  # type: ignore[valid-type]
ChargeStatus = Literal[CHARGE_STATUSES]  # type: ignore[valid-type]
MeterKind = Literal[METER_KINDS]  # type: ignore[valid-type]
NoteKind = Literal[NOTE_KINDS]  # type: ignore[valid-type]
RefundMethod = Literal[REFUND_METHODS]  # type: ignore[valid-type]
RefundStatus = Literal[REFUND_STATUSES]  # type: ignore[valid-type]
ServiceOrderKind = Literal[SERVICE_ORDER_KINDS]  # type: ignore[valid-type]
ServiceOrderStatus = Literal[SERVICE_ORDER_STATUSES]  # type: ignore[valid-type]
AgreementStatus = Literal[AGREEMENT_STATUSES]  # type: ignore[valid-type]
InstalmentStatus = Literal[INSTALMENT_STATUSES]  # type: ignore[valid-type]

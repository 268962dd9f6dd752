"""ORM tables. Importing this package registers every table on `Base.metadata`."""

from models.account_model import Contract, Customer, Meter, Reading, ReadingCorrection
from models.agreement_model import Agreement, AgreementInstalment, AgreementInvoice
from models.base_model import Base
from models.billing_model import BillingRun, BillingRunItem, Invoice, InvoiceLine, Tariff
from models.collection_file_model import CollectionFile, CollectionFileDetail
from models.note_model import InvoiceNote
from models.notification_model import Notification
from models.payment_model import (
    BankApiKey,
    CollectionReceipt,
    Coupon,
    CouponInvoice,
    CreditApplication,
    CreditBalance,
    IdempotencyKey,
    LedgerEntry,
    Payment,
    PaymentAllocation,
    Refund,
)
from models.pqr_model import Pqr, TenantHoliday
from models.reading_file_model import ReadingFile, ReadingFileIssue
from models.sequence_model import TenantSequence
from models.service_order_model import ServiceOrder
from models.tenant_model import Tenant
from models.user_model import LoginThrottle, User

__all__ = [
    "Agreement",
    "AgreementInstalment",
    "AgreementInvoice",
    "BankApiKey",
    "Base",
    "BillingRun",
    "BillingRunItem",
    "CollectionFile",
    "CollectionFileDetail",
    "CollectionReceipt",
    "Contract",
    "Coupon",
    "CouponInvoice",
    "CreditApplication",
    "CreditBalance",
    "Customer",
    "IdempotencyKey",
    "Invoice",
    "InvoiceLine",
    "InvoiceNote",
    "LedgerEntry",
    "LoginThrottle",
    "Meter",
    "Notification",
    "Payment",
    "PaymentAllocation",
    "Pqr",
    "Reading",
    "ReadingCorrection",
    "ReadingFile",
    "ReadingFileIssue",
    "Refund",
    "ServiceOrder",
    "Tariff",
    "Tenant",
    "TenantHoliday",
    "TenantSequence",
    "User",
]

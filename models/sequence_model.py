"""Per-tenant counters for gap-free numbers: invoice numbers, coupon references, PQR filing numbers."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base_model import Base


class TenantSequence(Base):
    """The last number handed out for one named sequence of one tenant."""

    __tablename__ = "tenant_sequences"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)

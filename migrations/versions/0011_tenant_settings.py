"""Tenant settings a country pack defaults and an admin may change: PQR answer term, sender name, Reply-To.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("pqr_answer_business_days", sa.Integer(), nullable=False, server_default="15"))
        batch.add_column(sa.Column("sender_name", sa.Unicode(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("reply_to", sa.String(length=254), nullable=True))
        batch.create_check_constraint(op.f("ck_tenants_pqr_answer_days_positive"), "pqr_answer_business_days > 0")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("tenants") as batch:
        batch.drop_constraint(op.f("ck_tenants_pqr_answer_days_positive"), type_="check")
        batch.drop_column("reply_to")
        batch.drop_column("sender_name")
        batch.drop_column("pqr_answer_business_days")

"""Azure SQL: index the invoice foreign keys we query, drop a duplicate index, binary idempotency keys.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must equal models.payment_model.MSSQL_BINARY_COLLATION (migrations never import models).
MSSQL_BINARY_COLLATION = "Latin1_General_100_BIN2"


def _set_key_collation(collation: str | None) -> None:
    """Change idempotency_keys.key's collation on SQL Server; its unique constraint must step aside."""
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_constraint("uq_idempotency_keys_tenant_id_scope_key", type_="unique")
        batch_op.alter_column(
            "key",
            existing_type=sa.String(length=255),
            type_=sa.String(length=255, collation=collation),
            existing_nullable=False,
        )
        batch_op.create_unique_constraint("uq_idempotency_keys_tenant_id_scope_key", ["tenant_id", "scope", "key"])


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_tariff_id"), ["tariff_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoices_carried_into_invoice_id"), ["carried_into_invoice_id"], unique=False)
    # The filtered unique index uq_users_customer_id already serves every lookup by customer_id.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_customer_id"))
    # SQLite and PostgreSQL already compare keys byte for byte; Azure SQL's default collation does not.
    if op.get_context().dialect.name == "mssql":
        _set_key_collation(MSSQL_BINARY_COLLATION)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_context().dialect.name == "mssql":
        _set_key_collation(None)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_customer_id"), ["customer_id"], unique=False)
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_carried_into_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_invoices_tariff_id"))

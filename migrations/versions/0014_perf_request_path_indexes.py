"""Request path: index a customer's invoices by period, and customers by national ID alone.

`GET /api/v1/me/invoices` filters on (tenant, customer) and orders by period: without
ix_invoices_tenant_id_customer_id_period, SQLite walked ix_invoices_tenant_id_period through every
invoice of the tenant to find a customer's dozen. The operator search by national ID (any ID type)
could not use the (tenant, type, national_id) unique constraint and scanned the tenant's customers.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invoices_tenant_id_customer_id_period", ["tenant_id", "customer_id", "period"], unique=False
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_tenant_id_national_id", ["tenant_id", "national_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_tenant_id_national_id")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_tenant_id_customer_id_period")

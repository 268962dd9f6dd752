"""Billing: tariff versions, bill runs and their items, invoices and invoice lines.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('tariffs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('service', sa.String(length=16), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('name', sa.Unicode(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('fixed_charges', sa.JSON(), nullable=False),
    sa.Column('blocks', sa.JSON(), nullable=False),
    sa.Column('stratum_adjustments', sa.JSON(), nullable=False),
    sa.Column('taxes', sa.JSON(), nullable=False),
    sa.Column('late_fee_monthly_rate', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('rounding_increment', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('late_fee_monthly_rate >= 0 AND late_fee_monthly_rate <= 100', name=op.f('ck_tariffs_late_fee_range')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tariffs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tariffs')),
    sa.UniqueConstraint('tenant_id', 'service', 'effective_from', name=op.f('uq_tariffs_tenant_id_service_effective_from'))
    )
    op.create_table('billing_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('billed', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('estimated', sa.Integer(), nullable=False),
    sa.Column('flagged', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('started_by', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Unicode(length=500), nullable=True),
    sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name=op.f('ck_billing_runs_status_known')),
    sa.ForeignKeyConstraint(['started_by'], ['users.id'], name=op.f('fk_billing_runs_started_by_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_runs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_runs'))
    )
    with op.batch_alter_table('billing_runs', schema=None) as batch_op:
        batch_op.create_index('ix_billing_runs_tenant_id_period', ['tenant_id', 'period'], unique=False)

    op.create_table('billing_run_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('billing_run_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Unicode(length=500), nullable=False),
    sa.ForeignKeyConstraint(['billing_run_id'], ['billing_runs.id'], name=op.f('fk_billing_run_items_billing_run_id_billing_runs')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_billing_run_items_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_run_items'))
    )
    with op.batch_alter_table('billing_run_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_run_items_billing_run_id'), ['billing_run_id'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('billing_run_id', sa.Integer(), nullable=True),
    sa.Column('tariff_id', sa.Integer(), nullable=True),
    sa.Column('reading_id', sa.Integer(), nullable=True),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('disputed', sa.Boolean(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('consumption', sa.Numeric(precision=18, scale=3), nullable=False),
    sa.Column('arrears', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('tax', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('amount_due', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('void_reason', sa.Unicode(length=500), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('carried_into_invoice_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('issued', 'paid', 'overdue', 'void')", name=op.f('ck_invoices_status_known')),
    sa.CheckConstraint('amount_due >= 0', name=op.f('ck_invoices_amount_due_nonnegative')),
    sa.ForeignKeyConstraint(['billing_run_id'], ['billing_runs.id'], name=op.f('fk_invoices_billing_run_id_billing_runs')),
    sa.ForeignKeyConstraint(['carried_into_invoice_id'], ['invoices.id'], name=op.f('fk_invoices_carried_into_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_invoices_contract_id_contracts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_invoices_customer_id_customers')),
    sa.ForeignKeyConstraint(['reading_id'], ['readings.id'], name=op.f('fk_invoices_reading_id_readings')),
    sa.ForeignKeyConstraint(['tariff_id'], ['tariffs.id'], name=op.f('fk_invoices_tariff_id_tariffs')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invoices_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('contract_id', 'period', name=op.f('uq_invoices_contract_id_period')),
    sa.UniqueConstraint('tenant_id', 'number', name=op.f('uq_invoices_tenant_id_number'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_invoices_tenant_id_period', ['tenant_id', 'period'], unique=False)
        batch_op.create_index('ix_invoices_tenant_id_status_due_on', ['tenant_id', 'status', 'due_on'], unique=False)

    op.create_table('invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Unicode(length=200), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_lines_invoice_id'), ['invoice_id'], unique=False)



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_lines_invoice_id'))

    op.drop_table('invoice_lines')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_tenant_id_status_due_on')
        batch_op.drop_index('ix_invoices_tenant_id_period')
        batch_op.drop_index(batch_op.f('ix_invoices_customer_id'))

    op.drop_table('invoices')
    with op.batch_alter_table('billing_run_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_run_items_billing_run_id'))

    op.drop_table('billing_run_items')
    with op.batch_alter_table('billing_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_runs_tenant_id_period')

    op.drop_table('billing_runs')
    op.drop_table('tariffs')

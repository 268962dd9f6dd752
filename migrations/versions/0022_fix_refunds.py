"""Refunds, credit balances the bill run applies, and re-bill notes (issue 18 §1-§3).

`credit_balances.used_amount` (and the status `used`) tracks what refunds and bill runs took; the
`refunds` and `credit_applications` tables record each taking; the ledger (`transactions`) gets the
kinds `credit_applied` and `refund_paid`, whose entries name their credit balance, refund and invoice
instead of a coupon, so `coupon_id` becomes nullable (its index and foreign key are dropped around the
change, which SQL Server needs). A re-bill's note records its step (`rebill_seq`, unique per invoice
through a filtered index) and the old and new lines.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_LEDGER_KINDS = "kind IN ('coupon_created', 'payment_approved', 'payment_declined', 'payment_reversed')"
NEW_LEDGER_KINDS = (
    "kind IN ('coupon_created', 'payment_approved', 'payment_declined', 'payment_reversed', 'credit_applied', "
    "'refund_paid')"
)
OLD_CREDIT_STATUSES = "status IN ('open', 'reversed')"
NEW_CREDIT_STATUSES = "status IN ('open', 'used', 'reversed')"
COUPON_FK = 'fk_transactions_coupon_id_coupons'
REBILL = 'rebill_seq IS NOT NULL'


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('credit_applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('credit_balance_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_credit_applications_amount_positive')),
    sa.ForeignKeyConstraint(['credit_balance_id'], ['credit_balances.id'], name=op.f('fk_credit_applications_credit_balance_id_credit_balances')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_credit_applications_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_applications_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_applications')),
    sa.UniqueConstraint('credit_balance_id', 'invoice_id', name=op.f('uq_credit_applications_credit_balance_id_invoice_id'))
    )
    with op.batch_alter_table('credit_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_applications_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('credit_balance_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Unicode(length=500), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255).with_variant(sa.String(length=255, collation='Latin1_General_100_BIN2'), 'mssql'), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('gateway_reference', sa.String(length=64), nullable=True),
    sa.Column('decline_code', sa.String(length=40), nullable=True),
    sa.Column('transfer_reference', sa.Unicode(length=100), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_by', sa.Integer(), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("method IN ('gateway', 'bank_transfer')", name=op.f('ck_refunds_method_known')),
    sa.CheckConstraint("status IN ('pending', 'paid', 'failed')", name=op.f('ck_refunds_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_refunds_contract_id_contracts')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_refunds_created_by_users')),
    sa.ForeignKeyConstraint(['credit_balance_id'], ['credit_balances.id'], name=op.f('fk_refunds_credit_balance_id_credit_balances')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_refunds_customer_id_customers')),
    sa.ForeignKeyConstraint(['paid_by'], ['users.id'], name=op.f('fk_refunds_paid_by_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_refunds_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('tenant_id', 'idempotency_key', name=op.f('uq_refunds_tenant_id_idempotency_key'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_credit_balance_id'), ['credit_balance_id'], unique=False)
        batch_op.create_index('ix_refunds_tenant_id_created_at', ['tenant_id', 'created_at'], unique=False)

    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('used_amount', sa.Numeric(precision=18, scale=2), server_default='0', nullable=False))
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', NEW_CREDIT_STATUSES)
        batch_op.create_check_constraint('used_within_amount', 'used_amount >= 0 AND used_amount <= amount')

    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credit_balance_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('refund_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('invoice_id', sa.Integer(), nullable=True))
        batch_op.drop_index('ix_transactions_coupon_id')
        batch_op.drop_constraint(COUPON_FK, type_='foreignkey')
        batch_op.alter_column('coupon_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(COUPON_FK, 'coupons', ['coupon_id'], ['id'])
        batch_op.create_index('ix_transactions_coupon_id', ['coupon_id'], unique=False)
        batch_op.drop_constraint('kind_known', type_='check')
        batch_op.create_check_constraint('kind_known', NEW_LEDGER_KINDS)
        batch_op.create_index(batch_op.f('ix_transactions_credit_balance_id'), ['credit_balance_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_transactions_refund_id_refunds'), 'refunds', ['refund_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_transactions_invoice_id_invoices'), 'invoices', ['invoice_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_transactions_credit_balance_id_credit_balances'), 'credit_balances', ['credit_balance_id'], ['id'])



    with op.batch_alter_table('invoice_notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rebill_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rebill_lines', sa.JSON(), nullable=True))
    with op.batch_alter_table('invoice_notes', schema=None) as batch_op:
        batch_op.create_index(
            'uq_invoice_notes_invoice_id_rebill_seq', ['invoice_id', 'rebill_seq'], unique=True,
            sqlite_where=sa.text(REBILL), postgresql_where=sa.text(REBILL), mssql_where=sa.text(REBILL),
        )


def downgrade() -> None:
    """Revert this revision (the credit-balance ledger entries go with their tables)."""
    with op.batch_alter_table('invoice_notes', schema=None) as batch_op:
        batch_op.drop_index('uq_invoice_notes_invoice_id_rebill_seq')
    with op.batch_alter_table('invoice_notes', schema=None) as batch_op:
        batch_op.drop_column('rebill_lines')
        batch_op.drop_column('rebill_seq')
    op.execute(sa.text("DELETE FROM transactions WHERE kind IN ('credit_applied', 'refund_paid')"))
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_transactions_credit_balance_id_credit_balances'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_transactions_invoice_id_invoices'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_transactions_refund_id_refunds'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_transactions_credit_balance_id'))
        batch_op.drop_constraint('kind_known', type_='check')
        batch_op.create_check_constraint('kind_known', OLD_LEDGER_KINDS)
        batch_op.drop_index('ix_transactions_coupon_id')
        batch_op.drop_constraint(COUPON_FK, type_='foreignkey')
        batch_op.alter_column('coupon_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(COUPON_FK, 'coupons', ['coupon_id'], ['id'])
        batch_op.create_index('ix_transactions_coupon_id', ['coupon_id'], unique=False)
        batch_op.drop_column('invoice_id')
        batch_op.drop_column('refund_id')
        batch_op.drop_column('credit_balance_id')

    op.execute(sa.text("UPDATE credit_balances SET status = 'open' WHERE status = 'used'"))
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.drop_constraint('used_within_amount', type_='check')
        batch_op.drop_constraint('status_known', type_='check')
        batch_op.create_check_constraint('status_known', OLD_CREDIT_STATUSES)
        batch_op.drop_column('used_amount')

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_tenant_id_created_at')
        batch_op.drop_index(batch_op.f('ix_refunds_credit_balance_id'))

    op.drop_table('refunds')
    with op.batch_alter_table('credit_applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_applications_invoice_id'))

    op.drop_table('credit_applications')

"""Payment agreements (issue 17 §1): agreements, their frozen invoices and instalments; the tenant's limits.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "status = 'current'"
TENANT_CHECKS = (
    ("agreement_max_instalments_positive", "agreement_max_instalments > 0"),
    (
        "agreement_min_down_payment_range",
        "agreement_min_down_payment_percent >= 0 AND agreement_min_down_payment_percent < 100",
    ),
    ("agreement_monthly_rate_range", "agreement_monthly_rate >= 0 AND agreement_monthly_rate <= 100"),
    ("agreement_missed_to_break_positive", "agreement_missed_to_break > 0"),
)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('tenants') as batch:
        batch.add_column(sa.Column('agreement_self_service', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('agreement_max_instalments', sa.Integer(), server_default='12', nullable=False))
        batch.add_column(sa.Column('agreement_min_down_payment_percent', sa.Numeric(precision=7, scale=4), server_default='10', nullable=False))
        batch.add_column(sa.Column('agreement_monthly_rate', sa.Numeric(precision=7, scale=4), server_default='0', nullable=False))
        batch.add_column(sa.Column('agreement_missed_to_break', sa.Integer(), server_default='2', nullable=False))
        for name, condition in TENANT_CHECKS:
            batch.create_check_constraint(op.f(f'ck_tenants_{name}'), condition)
    op.create_table('agreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('debt', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('down_payment', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('instalment_count', sa.Integer(), nullable=False),
    sa.Column('monthly_rate', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('financing', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('missed_count', sa.Integer(), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('broken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('current', 'completed', 'broken', 'cancelled')", name=op.f('ck_agreements_status_known')),
    sa.CheckConstraint('debt > 0 AND down_payment >= 0 AND down_payment < debt', name=op.f('ck_agreements_amounts_valid')),
    sa.CheckConstraint('financing >= 0 AND total = debt + financing', name=op.f('ck_agreements_total_is_debt_plus_financing')),
    sa.CheckConstraint('instalment_count > 0', name=op.f('ck_agreements_instalment_count_positive')),
    sa.CheckConstraint('monthly_rate >= 0 AND monthly_rate <= 100', name=op.f('ck_agreements_monthly_rate_range')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_agreements_contract_id_contracts')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_agreements_created_by_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_agreements_customer_id_customers')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_agreements_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements'))
    )
    op.create_index('ix_agreements_customer_id', 'agreements', ['customer_id'], unique=False)
    op.create_index('ix_agreements_tenant_id_status', 'agreements', ['tenant_id', 'status'], unique=False)
    op.create_index(
        'uq_agreements_current_contract_id', 'agreements', ['contract_id'], unique=True,
        sqlite_where=sa.text(CURRENT), postgresql_where=sa.text(CURRENT), mssql_where=sa.text(CURRENT),
    )
    op.create_table('agreement_invoices',
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_invoices_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_agreement_invoices_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_agreement_invoices_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('agreement_id', 'invoice_id', name=op.f('pk_agreement_invoices'))
    )
    op.create_index(op.f('ix_agreement_invoices_invoice_id'), 'agreement_invoices', ['invoice_id'], unique=False)
    op.create_table('agreement_instalments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('principal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('financing', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'overdue', 'paid', 'cancelled')", name=op.f('ck_agreement_instalments_status_known')),
    sa.CheckConstraint('number >= 0', name=op.f('ck_agreement_instalments_number_nonnegative')),
    sa.CheckConstraint(
        'principal >= 0 AND financing >= 0 AND amount = principal + financing', name=op.f('ck_agreement_instalments_amount_parts')
    ),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_instalments_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_agreement_instalments_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_agreement_instalments_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement_instalments')),
    sa.UniqueConstraint('agreement_id', 'number', name=op.f('uq_agreement_instalments_agreement_id_number')),
    sa.UniqueConstraint('coupon_id', name=op.f('uq_agreement_instalments_coupon_id'))
    )
    op.create_index(
        'ix_agreement_instalments_tenant_id_status_due_on', 'agreement_instalments', ['tenant_id', 'status', 'due_on'], unique=False
    )
    with op.batch_alter_table('invoices') as batch:
        batch.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch.create_index(batch.f('ix_invoices_agreement_id'), ['agreement_id'], unique=False)
        batch.create_foreign_key(batch.f('fk_invoices_agreement_id_agreements'), 'agreements', ['agreement_id'], ['id'])


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('invoices') as batch:
        batch.drop_constraint(batch.f('fk_invoices_agreement_id_agreements'), type_='foreignkey')
        batch.drop_index(batch.f('ix_invoices_agreement_id'))
        batch.drop_column('agreement_id')
    op.drop_index('ix_agreement_instalments_tenant_id_status_due_on', table_name='agreement_instalments')
    op.drop_table('agreement_instalments')
    op.drop_index(op.f('ix_agreement_invoices_invoice_id'), table_name='agreement_invoices')
    op.drop_table('agreement_invoices')
    op.drop_index('uq_agreements_current_contract_id', table_name='agreements')
    op.drop_index('ix_agreements_tenant_id_status', table_name='agreements')
    op.drop_index('ix_agreements_customer_id', table_name='agreements')
    op.drop_table('agreements')
    with op.batch_alter_table('tenants') as batch:
        for name, _ in reversed(TENANT_CHECKS):
            batch.drop_constraint(op.f(f'ck_tenants_{name}'), type_='check')
        batch.drop_column('agreement_missed_to_break')
        batch.drop_column('agreement_monthly_rate')
        batch.drop_column('agreement_min_down_payment_percent')
        batch.drop_column('agreement_max_instalments')
        batch.drop_column('agreement_self_service')

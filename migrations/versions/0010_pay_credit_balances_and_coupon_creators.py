"""Payment safety: coupons know who made them, and approvals no invoice can take become credit balances.

Existing coupons get their creator from their user's role; coupons with no user were quick-pay or a
bank paying an invoice's reference, and are marked `anonymous` (so no new quick-pay cancels them).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('creator_kind', sa.String(length=16), nullable=True))
    coupons = sa.table('coupons', sa.column('created_by', sa.Integer()), sa.column('creator_kind', sa.String()))
    users = sa.table('users', sa.column('id', sa.Integer()), sa.column('role', sa.String()))
    op.execute(
        coupons.update()
        .where(coupons.c.created_by.in_(sa.select(users.c.id).where(users.c.role == 'customer')))
        .values(creator_kind='customer')
    )
    op.execute(
        coupons.update()
        .where(coupons.c.created_by.in_(sa.select(users.c.id).where(users.c.role.in_(('operator', 'admin')))))
        .values(creator_kind='staff')
    )
    op.execute(coupons.update().where(coupons.c.creator_kind.is_(None)).values(creator_kind='anonymous'))
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.alter_column('creator_kind', existing_type=sa.String(length=16), nullable=False)
        batch_op.create_check_constraint(
            'creator_kind_known', "creator_kind IN ('customer', 'staff', 'anonymous', 'bank')"
        )

    op.create_table('credit_balances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'reversed')", name=op.f('ck_credit_balances_status_known')),
    sa.CheckConstraint("reason IN ('invoice_void', 'invoice_paid', 'invoice_carried')", name=op.f('ck_credit_balances_reason_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_credit_balances_amount_positive')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_credit_balances_contract_id_contracts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_balances_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_credit_balances_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_credit_balances_payment_id_payments')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_balances_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_balances')),
    sa.UniqueConstraint('payment_id', 'invoice_id', name=op.f('uq_credit_balances_payment_id_invoice_id'))
    )
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_balances_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index('ix_credit_balances_tenant_id_status_created_at', ['tenant_id', 'status', 'created_at'], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_balances_tenant_id_status_created_at')
        batch_op.drop_index(batch_op.f('ix_credit_balances_contract_id'))
    op.drop_table('credit_balances')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_constraint('creator_kind_known', type_='check')
        batch_op.drop_column('creator_kind')
